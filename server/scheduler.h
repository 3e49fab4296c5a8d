// The worker pool that runs the engine. gRPC threads hand chunks in with
// Submit() and return at once; workers apply them and call `done`.
//
// Ordering: chunks of one session run strictly in submission order and never
// two at a time; sessions with work wait in one FIFO, so none starves.
// Stateless calls are ephemeral sessions that never enter the session store.
//
// Thread-safety: thread-safe. `done` runs on a worker thread and must not
// block (it completes a gRPC call or queues a stream write).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/clock.h"
#include "server/session.h"

namespace lstmserve::server {

class Scheduler {
 public:
  using Done = std::function<void(absl::StatusOr<ChunkResult>)>;

  struct Options {
    int threads = 1;
    std::shared_ptr<Clock> clock = std::make_shared<RealClock>();
  };

  explicit Scheduler(Options options);
  ~Scheduler();  // Stop()

  // Queues `chunk` for `session`. After Stop(), `done` gets UNAVAILABLE.
  void Submit(std::shared_ptr<Session> session, Chunk chunk, Done done);

  // Finishes queued work, then joins the workers.
  void Stop();

 private:
  struct Task {
    Chunk chunk;
    Done done;
  };
  struct SessionQueue {
    std::shared_ptr<Session> session;
    std::deque<Task> tasks;
  };

  void WorkerLoop();

  const Options options_;
  absl::Mutex mu_;
  // Sessions with queued tasks and no worker on them, oldest first.
  std::deque<Session*> ready_ ABSL_GUARDED_BY(mu_);
  // Every session with queued or running work. A session is in ready_ at
  // most once, and not while a worker runs one of its tasks.
  std::unordered_map<Session*, SessionQueue> queues_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace lstmserve::server
