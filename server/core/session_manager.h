// The server's core below the RPC layer: session policy (ids, owners,
// create-on-stream, limits, exactly-once, idle expiry), request validation,
// and the executors that run the engine. It knows no gRPC and no protobuf;
// the service converts messages into these calls and results back.
//
// Sessions: a directory maps ids to SessionHandles; each session's state is
// owned by its model version's executor (executor.h), which runs every
// operation on it in order. Calls that only read what the executor publishes
// (GetSession, ListSessions) answer at once; everything else is posted and
// completes through a callback.
//
// Thread-safety: thread-safe. Callbacks run on a worker thread, or on the
// calling thread when a call is refused before it is posted; they must not
// block.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/batch_queue.h"
#include "server/core/clock.h"
#include "server/core/executor.h"
#include "server/core/model_registry.h"
#include "server/core/types.h"
#include "server/core/validation.h"
#include "server/core/worker_pool.h"

namespace lstmserve::server {

struct CoreOptions {
  // Engine workers (and shards per model version). 0: no worker threads;
  // the caller runs the work with pool().RunUntilIdle() (unit tests).
  int threads = 1;
  // Creating a session beyond this many fails with RESOURCE_EXHAUSTED.
  int max_sessions = 10000;
  // A session unused for this long is closed by ExpireIdle.
  absl::Duration idle_timeout = absl::Minutes(10);
  RequestLimits limits;
  BatchQueue::Options batching;
  int64_t max_queued_steps = 1 << 20;
  std::shared_ptr<Clock> clock = std::make_shared<RealClock>();
};

// Who is calling, and the call's own bounds.
struct Caller {
  std::string owner;  // the identity sessions belong to ("": anonymous)
  absl::Time deadline = absl::InfiniteFuture();
  std::function<bool()> cancelled;  // null: never
  // Stateless calls: who sent them, for the batch peer window
  // (StatelessSender of the connection).
  uint64_t stateless_sender = 0;
};

// One chunk addressed to a session, or stateless.
struct ChunkRequest {
  absl::string_view session_id;  // empty: stateless
  // Stateless: the model to run (version 0: the highest). Session calls: if
  // set, must name the session's model and version (INVALID_ARGUMENT
  // otherwise); with create_if_missing, a missing session is created on it.
  absl::string_view model;
  int64_t version = 0;
  bool create_if_missing = false;
  std::span<const int64_t> shape;
  std::span<const float> values;
  std::optional<int64_t> first_step;
};

class SessionManager {
 public:
  using ChunkDone = Task::Done;
  using StatusDone = ModelExecutor::StatusDone;
  using SnapshotDone = ModelExecutor::SnapshotDone;
  using InfoDone = absl::AnyInvocable<void(absl::StatusOr<SessionInfo>)>;

  // Starts the workers and one executor per model version of `models`,
  // which must outlive the manager.
  static absl::StatusOr<std::unique_ptr<SessionManager>> Create(
      const ModelRegistry& models, CoreOptions options);
  ~SessionManager();  // Stop()

  const ModelRegistry& models() const { return models_; }
  const RequestLimits& limits() const { return options_.limits; }
  WorkerPool& pool() { return *pool_; }

  // Runs a chunk: checks it, finds (or creates) its session, and posts it.
  // The errors of docs/API.md: INVALID_ARGUMENT for a bad shape, value, id
  // or model/version mismatch, NOT_FOUND for a missing session or model,
  // FAILED_PRECONDITION for an unexpected first_step, RESOURCE_EXHAUSTED for
  // a full queue or session table, UNAVAILABLE while shutting down.
  void SubmitChunk(const Caller& caller, const ChunkRequest& request,
                   ChunkDone done);

  // `id` empty: a server-made id. INVALID_ARGUMENT, ALREADY_EXISTS,
  // RESOURCE_EXHAUSTED, NOT_FOUND (model).
  absl::StatusOr<SessionInfo> CreateSession(const std::string& owner,
                                            absl::string_view id,
                                            absl::string_view model,
                                            int64_t version,
                                            std::vector<float> initial_state);
  // NOT_FOUND unless the session exists and belongs to `owner` (another
  // owner's session is indistinguishable from a missing one).
  absl::StatusOr<SessionInfo> GetSession(const std::string& owner,
                                         absl::string_view id) const;
  void ResetSession(const std::string& owner, absl::string_view id,
                    InfoDone done);
  void CloseSession(const std::string& owner, absl::string_view id,
                    StatusDone done);
  void ExportSession(const std::string& owner, absl::string_view id,
                     SnapshotDone done);
  // ALREADY_EXISTS for a taken id; every field range-checked
  // (ValidateSnapshot).
  absl::StatusOr<SessionInfo> ImportSession(const std::string& owner,
                                            SessionSnapshot snapshot);

  struct Page {
    std::vector<SessionInfo> sessions;  // ordered by id
    std::string next_page_token;        // empty: last page
  };
  // `owner`'s sessions with ids after `page_token`, at most page_size.
  Page ListSessions(const std::string& owner, int page_size,
                    absl::string_view page_token) const;

  // Closes sessions idle for at least the idle timeout; returns how many.
  int ExpireIdle();

  std::vector<ModelStats> Stats() const;
  int sessions() const;
  int64_t queued_steps() const { return queued_steps_.load(); }
  absl::Time Now() const { return options_.clock->Now(); }

  // From now on chunks are refused with UNAVAILABLE ("the server is
  // shutting down"); work already posted completes.
  void BeginShutdown();
  bool shutting_down() const { return shutting_down_.load(); }
  // Runs what is posted, then joins the workers. Idempotent.
  void Stop();

 private:
  SessionManager(const ModelRegistry& models, CoreOptions options);

  absl::StatusOr<std::shared_ptr<SessionHandle>> Find(
      const std::string& owner, absl::string_view id) const;
  // Creates and installs a session (under mu_, so that no operation can
  // reach its shard before the slot exists).
  absl::StatusOr<std::shared_ptr<SessionHandle>> CreateLocked(
      const std::string& owner, absl::string_view id,
      const std::shared_ptr<const LoadedModel>& model,
      std::vector<float> initial_state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckCapacityLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ModelExecutor& ExecutorFor(const LoadedModel& model) const;

  const ModelRegistry& models_;
  const CoreOptions options_;
  std::atomic<int64_t> queued_steps_{0};
  std::atomic<bool> shutting_down_{false};
  std::unique_ptr<WorkerPool> pool_;
  // One per model version; fixed after Create.
  std::map<const LoadedModel*, std::unique_ptr<ModelExecutor>> executors_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<SessionHandle>, std::less<>> sessions_
      ABSL_GUARDED_BY(mu_);
  uint64_t id_counter_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t id_salt_ = 0;
};

}  // namespace lstmserve::server
