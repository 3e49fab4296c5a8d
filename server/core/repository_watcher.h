// Keeps the versions the server serves in line with its model repository
// and the version policies: polled (--repo-poll-interval), and driven by
// the admin calls LoadModel and UnloadModel.
//
// The rules (docs/OPERATIONS.md, "Model versions and reload"):
//   - A version directory is complete when it holds a READY file, or when
//     its config.json and model.safetensors exist and their sizes and
//     modification times are the same at two polls in a row. At start
//     (and on LoadModel) every version present is taken as complete.
//   - The policy (latest N, all, a list) picks among the complete versions
//     that load; a version that does not load is refused, logged, and not
//     tried again until its files change; the versions served meanwhile
//     stay.
//   - A served version the policy no longer picks, or whose directory is
//     gone, is unloaded: its sessions keep running on it until they end or
//     until the drain time passes (SessionManager::UnloadVersion).
//   - UnloadModel keeps a model (or one version) unloaded until LoadModel.
//
// Thread-safety: thread-safe; calls run one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/model.h"
#include "server/core/session_manager.h"
#include "server/core/version_policy.h"

namespace lstmserve::server {

struct WatcherOptions {
  std::string repo;
  VersionPolicy default_policy;
  std::map<std::string, VersionPolicy> policies;  // by model name
  // How long an unloaded version's sessions may keep running.
  absl::Duration drain = absl::Hours(1);
  // Loads one version directory (default: model::Model::Load). The server
  // passes the model's weight format here.
  std::function<absl::StatusOr<std::unique_ptr<model::Model>>(
      const std::string& name, const std::string& version_dir)>
      load;
};

class RepositoryWatcher {
 public:
  // What a scan did, a line of the log each.
  struct Event {
    enum class Kind {
      kLoaded,    // now served
      kUnloaded,  // no longer served (its sessions drain)
      kRefused,   // did not load; the served versions stay
      kWaiting,   // its files are still changing (not complete yet)
    };
    Kind kind;
    std::string model;
    int64_t version = 0;
    std::string detail;  // the error, or why it was unloaded
    std::string ToString() const;
  };

  // `core` must outlive the watcher.
  RepositoryWatcher(SessionManager& core, WatcherOptions options);

  // Scans the repository and loads and unloads versions. `start`: every
  // version present is complete (the first scan). NOT_FOUND if the
  // repository directory is missing.
  absl::StatusOr<std::vector<Event>> Poll(bool start = false);

  // Loads a model's versions now, by its policy, taking every version
  // present as complete and trying refused ones again; clears an
  // UnloadModel. NOT_FOUND if the repository has no such model;
  // FAILED_PRECONDITION if afterwards no version of it is served (the
  // events say why).
  absl::StatusOr<std::vector<Event>> LoadModel(const std::string& name);

  // Unloads one version (or, with version 0, every version) of a served
  // model and keeps it unloaded until LoadModel. NOT_FOUND if not served.
  absl::StatusOr<std::vector<Event>> UnloadModel(const std::string& name,
                                                 int64_t version);

 private:
  // What a version directory's files looked like at the last scan.
  struct Files {
    bool ready_marker = false;
    bool complete = false;  // both files present
    int64_t config_size = -1, config_mtime_ns = -1;
    int64_t weights_size = -1, weights_mtime_ns = -1;
    bool operator==(const Files&) const = default;
  };
  using Key = std::pair<std::string, int64_t>;

  static Files Look(const std::string& version_dir);
  // Brings one model in line. `start`: all present versions complete.
  void Reconcile(const std::string& name, const std::string& model_dir,
                 const std::vector<int64_t>& on_disk, bool start,
                 std::vector<Event>& events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unload(const std::string& name, int64_t version, const std::string& why,
              std::vector<Event>& events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const VersionPolicy& PolicyOf(const std::string& name) const;

  SessionManager& core_;
  const WatcherOptions options_;

  absl::Mutex mu_;
  std::map<Key, Files> last_seen_ ABSL_GUARDED_BY(mu_);
  // Versions that did not load, with their files then.
  std::map<Key, Files> refused_ ABSL_GUARDED_BY(mu_);
  std::set<Key> waiting_reported_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> unloaded_models_ ABSL_GUARDED_BY(mu_);
  std::set<Key> unloaded_versions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lstmserve::server
