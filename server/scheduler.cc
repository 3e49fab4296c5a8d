#include "server/scheduler.h"

#include <algorithm>
#include <tuple>

#include "absl/time/clock.h"
#include "model/model.h"

namespace lstmserve::server {
namespace {

constexpr absl::Duration kCancelPoll = absl::Milliseconds(20);
// Batches of at least twice this many chunks are split when a worker idles.
constexpr int kMinSplitHalf = 8;

// Bucket k holds values in (2^(k-1), 2^k]; bucket 0 holds values <= 1.
size_t Log2Bucket(int64_t v) {
  size_t k = 0;
  while (v > (int64_t{1} << k) && k < 40) ++k;
  return k;
}

void Count(std::vector<int64_t>& histogram, int64_t value) {
  const size_t k = Log2Bucket(value);
  if (histogram.size() <= k) histogram.resize(k + 1, 0);
  ++histogram[k];
}

}  // namespace

Scheduler::Scheduler(Options options)
    : options_(options), queue_(options.batching) {
  const int n = options_.threads > 0 ? options_.threads : 1;
  workers_.reserve(n);
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Submit(std::shared_ptr<Session> session, Chunk chunk,
                       Done done) {
  Task task;
  task.chunk = std::move(chunk);
  task.done = std::move(done);
  Submit(std::move(session), std::move(task));
}

void Scheduler::Submit(std::shared_ptr<Session> session, Task task) {
  const LoadedModel& model = session->model();
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      refused = absl::UnavailableError("the server is shutting down");
    } else {
      // Batching delays are measured on the real clock: they are waited for.
      refused = queue_.Push(std::move(session), task, absl::Now());
      if (refused.ok()) {
        work_.Signal();
        return;
      }
    }
  }
  if (absl::IsResourceExhausted(refused)) {
    absl::MutexLock lock(&stats_mu_);
    ++StatsFor(model).rejected;
  }
  task.done(refused);
}

void Scheduler::WorkerLoop() {
  // One workspace per worker, reused across models and calls.
  model::Workspace workspace;
  while (true) {
    BatchQueue::Next next;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        if (!handoff_.empty()) {  // half of a batch another worker split
          next.batch = std::move(handoff_.front());
          handoff_.pop_front();
          break;
        }
        next = queue_.TakeBatch(absl::Now());
        if (next.batch || !next.expired.empty()) break;
        if (stopping_ && queue_.empty()) return;
        ++idle_workers_;
        if (queue_.empty()) {
          work_.Wait(&mu_);
        } else {
          // Cancelled calls are noticed by looking, so look at least every
          // kCancelPoll while anything waits.
          work_.WaitWithDeadline(
              &mu_, std::min(next.wake_at, absl::Now() + kCancelPoll));
        }
        --idle_workers_;
      }
      // With a worker idle, a large batch is split in two and run on both:
      // the batch's chunks finish sooner, which is what a session waiting
      // for its next step feels.
      if (next.batch && idle_workers_ > 0 &&
          static_cast<int>(next.batch->tasks.size()) >= 2 * kMinSplitHalf) {
        Batch& whole = *next.batch;
        const size_t half = whole.tasks.size() / 2;
        Batch other;
        other.model = whole.model;
        for (size_t i = half; i < whole.tasks.size(); ++i) {
          other.sessions.push_back(std::move(whole.sessions[i]));
          other.tasks.push_back(std::move(whole.tasks[i]));
        }
        whole.sessions.resize(half);
        whole.tasks.resize(half);
        handoff_.push_back(std::move(other));
        work_.Signal();
      }
    }
    for (auto& [model, t] : next.expired) {
      const bool cancelled = t.cancelled && t.cancelled();
      {
        absl::MutexLock lock(&stats_mu_);
        ++StatsFor(*model).expired;
      }
      t.done(cancelled ? absl::CancelledError("the call was cancelled")
                       : absl::DeadlineExceededError(
                             "the call's deadline passed while it was queued"));
    }
    if (!next.batch) continue;
    Batch& batch = *next.batch;

    std::vector<Session*> sessions;
    std::vector<const Chunk*> chunks;
    for (size_t i = 0; i < batch.sessions.size(); ++i) {
      sessions.push_back(batch.sessions[i].get());
      chunks.push_back(&batch.tasks[i].chunk);
    }
    const absl::Time started = absl::Now();
    std::vector<absl::StatusOr<ChunkResult>> results =
        Session::ApplyBatch(sessions, chunks, workspace, options_.clock->Now());
    const absl::Duration compute = absl::Now() - started;
    int64_t steps_run = 0;
    for (const auto& r : results) {
      if (r.ok() && !r->replayed) steps_run += r->steps;
    }
    Record(batch, started, compute, steps_run);
    for (size_t i = 0; i < results.size(); ++i) {
      batch.tasks[i].done(std::move(results[i]));
    }
    {
      absl::MutexLock lock(&mu_);
      queue_.Finish(batch, absl::Now());
      work_.SignalAll();  // sessions may be ready again
    }
  }
}

void Scheduler::Record(const Batch& batch, absl::Time started,
                       absl::Duration compute, int64_t steps_run) {
  absl::MutexLock lock(&stats_mu_);
  ModelStats& s = StatsFor(*batch.model);
  s.requests += batch.tasks.size();
  s.steps += steps_run;
  ++s.batches;
  Count(s.batch_size_histogram, static_cast<int64_t>(batch.tasks.size()));
  for (const Task& t : batch.tasks) {
    const int64_t wait_us = absl::ToInt64Microseconds(started - t.enqueued);
    Count(s.queue_wait_histogram, wait_us);
    s.queue_wait_us_total += wait_us;
  }
  s.compute_us_total += absl::ToInt64Microseconds(compute);
}

ModelStats& Scheduler::StatsFor(const LoadedModel& model) {
  auto [it, inserted] = stats_.try_emplace(&model);
  ModelStats& s = it->second;
  if (inserted) {
    s.model = model.name;
    s.version = model.version;
  }
  return s;
}

int64_t Scheduler::queued_steps() const {
  absl::MutexLock lock(&mu_);
  return queue_.queued_steps();
}

std::vector<ModelStats> Scheduler::Stats() const {
  absl::MutexLock lock(&stats_mu_);
  std::vector<ModelStats> out;
  for (const auto& [key, s] : stats_) out.push_back(s);
  std::sort(
      out.begin(), out.end(), [](const ModelStats& a, const ModelStats& b) {
        return std::tie(a.model, a.version) < std::tie(b.model, b.version);
      });
  return out;
}

void Scheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    work_.SignalAll();
  }
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

}  // namespace lstmserve::server
