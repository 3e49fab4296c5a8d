// An in-memory StateStore with the SQLite store's semantics (puts replace,
// updates and deletes need the same incarnation), that counts its
// transactions and can be told to fail.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/core/record_codec.h"
#include "server/core/state_store.h"

namespace lstmserve::server {

class FakeStateStore final : public StateStore {
 public:
  absl::Status Apply(std::span<const StoreWrite> writes) override {
    absl::MutexLock lock(&mu_);
    ++attempts_;
    if (failing_) return absl::UnavailableError("disk full (fake)");
    ++transactions_;
    writes_per_transaction_.push_back(static_cast<int>(writes.size()));
    for (const StoreWrite& w : writes) {
      auto it = records_.find(w.record.id);
      const bool same = it != records_.end() &&
                        it->second.incarnation == w.record.incarnation;
      switch (w.kind) {
        case StoreWrite::Kind::kPut:
          records_[w.record.id] = Stored(w.record);
          break;
        case StoreWrite::Kind::kUpdate:
          if (same) it->second = Stored(w.record);
          break;
        case StoreWrite::Kind::kDelete:
          if (same) records_.erase(it);
          break;
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Contents> LoadAll() override {
    absl::MutexLock lock(&mu_);
    Contents c;
    for (const auto& [id, r] : records_) c.records.push_back(r);
    return c;
  }

  std::string Describe() const override { return "fake"; }

  // As if the store held exactly these (a copy taken before a crash).
  void set_records(std::map<std::string, SessionRecord> records) {
    absl::MutexLock lock(&mu_);
    records_ = std::move(records);
  }
  void set_failing(bool failing) {
    absl::MutexLock lock(&mu_);
    failing_ = failing;
  }
  std::map<std::string, SessionRecord> records() const {
    absl::MutexLock lock(&mu_);
    return records_;
  }
  int transactions() const {
    absl::MutexLock lock(&mu_);
    return transactions_;
  }
  std::vector<int> writes_per_transaction() const {
    absl::MutexLock lock(&mu_);
    return writes_per_transaction_;
  }

 private:
  // As a store reads it back: the replay record decoded.
  static SessionRecord Stored(const SessionRecord& r) {
    SessionRecord stored = r;
    if (!r.replay_chunks.empty()) {
      std::string blob;
      EncodeReplayTo(r.replay_chunks, blob);
      stored.replay = *DecodeReplay(blob);
      stored.replay_chunks.clear();
    }
    return stored;
  }

  mutable absl::Mutex mu_;
  std::map<std::string, SessionRecord> records_ ABSL_GUARDED_BY(mu_);
  bool failing_ ABSL_GUARDED_BY(mu_) = false;
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  int transactions_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int> writes_per_transaction_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lstmserve::server
