// The worker pool that runs the engine, with cross-session micro-batching.
// gRPC threads hand chunks in with Submit() and return at once; workers
// gather ready chunks of different sessions of one model version into one
// engine call (Model::RunBatch) and complete each chunk's `done`.
//
// The queueing rules (per-session order, FIFO across sessions, max batch,
// max queue delay, queue bound, cancellation) live in BatchQueue; see
// batch_queue.h. Statistics per model version are kept for the API.
//
// Thread-safety: thread-safe. `done` runs on a worker thread (or inline in
// Submit when the chunk is refused) and must not block.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/batch_queue.h"
#include "server/clock.h"
#include "server/session.h"

namespace lstmserve::server {

// Counters for one model version since the server started.
struct ModelStats {
  std::string model;
  int64_t version = 0;
  int64_t requests = 0;  // chunks completed (run, replayed or failed)
  int64_t steps = 0;     // steps run by the engine
  int64_t batches = 0;   // engine calls
  // batch_size_histogram[k]: batches of size in (2^(k-1), 2^k]; [0]: size 1.
  std::vector<int64_t> batch_size_histogram;
  // queue_wait_histogram[k]: chunks that waited in (2^(k-1), 2^k] µs
  // between arrival and the engine; [0]: at most 1 µs.
  std::vector<int64_t> queue_wait_histogram;
  int64_t queue_wait_us_total = 0;
  int64_t compute_us_total = 0;  // engine time
  int64_t rejected = 0;          // refused because the queue was full
  int64_t expired = 0;           // dropped as cancelled or past deadline
};

class Scheduler {
 public:
  using Done = Task::Done;

  struct Options {
    int threads = 1;
    BatchQueue::Options batching;
    // Session timestamps (last use) come from this clock; batching delays
    // always use the real clock, since workers wait on them.
    std::shared_ptr<Clock> clock = std::make_shared<RealClock>();
  };

  explicit Scheduler(Options options);
  ~Scheduler();  // Stop()

  // Queues a chunk. Fails fast through task.done: RESOURCE_EXHAUSTED when
  // the queue is full, UNAVAILABLE after Stop().
  void Submit(std::shared_ptr<Session> session, Task task);
  // Shorthand with no cancellation or deadline.
  void Submit(std::shared_ptr<Session> session, Chunk chunk, Done done);

  // Finishes queued work, then joins the workers.
  void Stop();

  std::vector<ModelStats> Stats() const;
  // Steps waiting in the queue now.
  int64_t queued_steps() const;

 private:
  void WorkerLoop();
  void Record(const Batch& batch, absl::Time started, absl::Duration compute,
              int64_t steps_run);
  ModelStats& StatsFor(const LoadedModel& model)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(stats_mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  absl::CondVar work_;  // signalled on Submit and when a batch finishes
  BatchQueue queue_ ABSL_GUARDED_BY(mu_);
  // Second halves of split batches, for the next free worker.
  std::deque<Batch> handoff_ ABSL_GUARDED_BY(mu_);
  int idle_workers_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;

  mutable absl::Mutex stats_mu_;
  // Keyed by the registry's models, which outlive the scheduler.
  std::map<const LoadedModel*, ModelStats> stats_ ABSL_GUARDED_BY(stats_mu_);
};

}  // namespace lstmserve::server
