// The server's one background thread for slow work, so that neither gRPC's
// threads nor the engine's workers ever wait on it: every tick it runs the
// core's Maintain (idle expiry, draining versions, freeing executors) and,
// every --repo-poll-interval, the repository watcher's poll; in between it
// runs the admin calls (LoadModel, UnloadModel), which load models from
// disk. Everything it does is logged.
//
// Thread-safety: thread-safe. Done callbacks run on the maintenance thread.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/repository_watcher.h"
#include "server/core/session_manager.h"

namespace lstmserve::server {

class Maintenance {
 public:
  using Events = std::vector<RepositoryWatcher::Event>;
  using EventsDone = std::function<void(absl::StatusOr<Events>)>;

  // `tick` 0: no thread; Maintain and Poll run only when asked (tests).
  // `poll` 0: the repository is not polled. `versions_changed` (may be
  // null) runs after a poll or admin call loaded or unloaded a version.
  Maintenance(SessionManager& core, RepositoryWatcher& watcher,
              absl::Duration tick, absl::Duration poll,
              std::function<void()> versions_changed = nullptr);
  ~Maintenance();  // Stop()

  // Admin calls, run on the maintenance thread (at once without one).
  void LoadModel(std::string name, EventsDone done);
  void UnloadModel(std::string name, int64_t version, EventsDone done);

  // Ends the thread (an admin call queued then gets UNAVAILABLE).
  void Stop();

  // Logs a watcher event as lstm-server does.
  static void Log(const RepositoryWatcher::Event& event,
                  const SessionManager& core);
  // Logs the events; runs versions_changed_ if any loaded or unloaded.
  void Report(const Events& events);

 private:
  void Run();
  void Tick(bool poll);
  void Post(std::function<void()> job, EventsDone done);

  SessionManager& core_;
  RepositoryWatcher& watcher_;
  const absl::Duration tick_;
  const absl::Duration poll_;
  const std::function<void()> versions_changed_;

  absl::Mutex mu_;
  absl::CondVar cv_;
  struct Job {
    std::function<void()> run;
    EventsDone done;  // called with UNAVAILABLE if the job never runs
  };
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace lstmserve::server
