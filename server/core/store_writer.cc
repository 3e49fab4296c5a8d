#include "server/core/store_writer.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "server/core/session_handle.h"

namespace lstmserve::server {
namespace {

int64_t FloatBytes(const SessionRecord& r) {
  int64_t n = static_cast<int64_t>(r.state.size() + r.initial_state.size());
  for (const ReplayChunk& c : r.replay) n += c.inputs.size() + c.outputs.size();
  for (const auto& c : r.replay_chunks) {
    n += c->inputs.size() + c->outputs.size();
  }
  return n * static_cast<int64_t>(sizeof(float));
}

// Folds `later` into `earlier`, both writes of the same session (id and
// incarnation): the result has the same effect on the store as applying
// both in order.
void Fold(StoreWriter::Item& earlier, StoreWriter::Item&& later) {
  using Kind = StoreWrite::Kind;
  if (later.write.kind == Kind::kDelete) {
    earlier.write.kind = Kind::kDelete;
    earlier.write.record = std::move(later.write.record);
    earlier.session = nullptr;
    return;
  }
  if (earlier.write.kind == Kind::kDelete) return;  // nothing after a delete
  // A put stays a put (the record may not exist yet); an update takes the
  // later record.
  if (later.write.kind == Kind::kPut) earlier.write.kind = Kind::kPut;
  earlier.write.record = std::move(later.write.record);
  earlier.session = std::move(later.session);
}

// Leaves one write per session, in the order of each session's first
// write. In place: a checkpoint round holds a write for each of up to
// hundreds of thousands of sessions, and nearly all are distinct.
void Merge(std::vector<StoreWriter::Item>& items) {
  // Where each write's session first appears.
  std::vector<size_t> first(items.size());
  {
    // Keyed by views of the records' ids: done with before Fold changes
    // any record.
    using Key = std::pair<absl::string_view, uint64_t>;
    absl::flat_hash_map<Key, size_t> seen;
    seen.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      const SessionRecord& r = items[i].write.record;
      first[i] = seen.try_emplace(Key(r.id, r.incarnation), i).first->second;
    }
  }
  // Compacts the first writes to the front; first[j] of a session's first
  // write j becomes its place there, where its later writes fold.
  size_t kept = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (first[i] != i) {
      Fold(items[first[first[i]]], std::move(items[i]));
      continue;
    }
    if (kept != i) items[kept] = std::move(items[i]);
    first[i] = kept++;
  }
  items.erase(items.begin() + static_cast<ptrdiff_t>(kept), items.end());
}

}  // namespace

StoreWriter::StoreWriter(StateStore& store, absl::Duration retry_interval)
    : store_(store), retry_interval_(retry_interval) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "lstm-store");  // for top, perf
    Run();
  });
}

StoreWriter::~StoreWriter() { Stop(); }

void StoreWriter::Submit(std::vector<Item> items, Done done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(Batch{std::move(items), std::move(done)});
      ++submitted_;
      cv_.Signal();
      return;
    }
  }
  if (done) done(absl::UnavailableError("the server is shutting down"));
}

void StoreWriter::BeginRound(int parts) {
  absl::MutexLock lock(&mu_);
  round_parts_ = parts;
  retry_at_ = absl::InfinitePast();  // a round is a retry's turn too
}

void StoreWriter::SubmitRoundPart(std::vector<Item> items) {
  absl::MutexLock lock(&mu_);
  if (round_parts_ > 0) --round_parts_;
  if (stopped_) return;
  if (!items.empty()) {
    queue_.push_back(Batch{std::move(items), nullptr});
    ++submitted_;
  }
  cv_.Signal();
}

absl::Status StoreWriter::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = submitted_;
  // Also waits for a retry that is due (one a round has just made due).
  while (attempted_ < target || committing_ ||
         (!retry_.empty() && round_parts_ == 0 && absl::Now() >= retry_at_ &&
          !stopped_)) {
    cv_.Wait(&mu_);
  }
  return last_status_;
}

void StoreWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopping_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

StoreWriter::Stats StoreWriter::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s = stats_;
  s.pending = static_cast<int64_t>(retry_.size());
  for (const Batch& b : queue_)
    s.pending += static_cast<int64_t>(b.items.size());
  return s;
}

void StoreWriter::TakeSpareStates(size_t n,
                                  std::vector<std::vector<float>>& spares) {
  absl::MutexLock lock(&spare_mu_);
  while (spares.size() < n && !spare_states_.empty()) {
    spares.push_back(std::move(spare_states_.back()));
    spare_states_.pop_back();
  }
}

void StoreWriter::Run() {
  bool final_attempt = false;
  while (true) {
    std::vector<Batch> batches;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        // While a round is incomplete its parts still come: wait for them.
        if (!queue_.empty() && (round_parts_ == 0 || stopping_)) break;
        if (stopping_) {
          // One last attempt for what keeps failing, then end.
          if (retry_.empty() || final_attempt) return;
          final_attempt = true;
          break;
        }
        if (!retry_.empty() && round_parts_ == 0 && absl::Now() >= retry_at_) {
          break;
        }
        if (retry_.empty()) {
          cv_.Wait(&mu_);
        } else {
          cv_.WaitWithDeadline(&mu_, retry_at_);
        }
      }
      while (!queue_.empty()) {
        batches.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      committing_ = true;
    }
    Commit(std::move(batches)).IgnoreError();  // logged by the caller's done
  }
}

absl::Status StoreWriter::Commit(std::vector<Batch> batches) {
  std::vector<Item>& items = items_;
  std::vector<StoreWrite>& writes = writes_;
  {
    absl::MutexLock lock(&mu_);
    for (Item& item : retry_) items.push_back(std::move(item));
    retry_.clear();
  }
  for (Batch& b : batches) {
    for (Item& item : b.items) items.push_back(std::move(item));
  }
  Merge(items);

  int64_t bytes = 0, records = 0, deletes = 0;
  for (Item& item : items) {
    if (item.write.kind == StoreWrite::Kind::kDelete) {
      ++deletes;
    } else {
      ++records;
      bytes += FloatBytes(item.write.record);
    }
    writes.push_back(std::move(item.write));
  }
  const absl::Time started = absl::Now();
  const absl::Status status =
      writes.empty() ? absl::OkStatus() : store_.Apply(writes);
  const absl::Time finished = absl::Now();

  if (status.ok()) {
    // Published before the callbacks run, so that a response built in a
    // callback already carries the new durable step.
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].session && writes[i].kind != StoreWrite::Kind::kDelete) {
        items[i].session->durable_step.store(writes[i].record.next_step,
                                             std::memory_order_release);
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      if (!writes.empty()) {
        ++stats_.commits;
        stats_.records += records;
        stats_.deletes += deletes;
        stats_.bytes += bytes;
        stats_.last_duration = finished - started;
        stats_.last_success = finished;
      }
    } else {
      ++stats_.failures;
      // Kept (already merged) for the next attempt, ahead of anything
      // submitted since.
      for (size_t i = 0; i < items.size(); ++i) {
        items[i].write = std::move(writes[i]);
      }
      retry_.swap(items);  // retry_ was empty
      retry_at_ = finished + retry_interval_;
    }
  }
  const absl::Status reply =
      status.ok() ? status
                  : absl::UnavailableError(
                        absl::StrCat("the session store could not be written (",
                                     status.message(), "); it is retried"));
  for (Batch& b : batches) {
    if (b.done) b.done(reply);
  }
  if (status.ok() && records > 0) {
    // The state buffers go back for the next checkpoint's records (the
    // replay chunks they shared are released with the writes).
    absl::MutexLock lock(&spare_mu_);
    spare_cap_ = std::max(static_cast<size_t>(records), spare_cap_ / 2);
    for (StoreWrite& w : writes) {
      if (spare_states_.size() >= spare_cap_) break;
      if (w.record.state.capacity() > 0) {
        spare_states_.push_back(std::move(w.record.state));
      }
    }
    if (spare_states_.size() > spare_cap_) spare_states_.resize(spare_cap_);
  }
  // Releases the records (their sessions and replay chunks); the buffers
  // keep their capacity for the next commit.
  items.clear();
  writes.clear();
  // Counted after the callbacks, so that Flush returns only once they ran.
  absl::MutexLock lock(&mu_);
  last_status_ = status;
  committing_ = false;
  attempted_ += batches.size();
  cv_.SignalAll();
  return status;
}

}  // namespace lstmserve::server
