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
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/core/batch_queue.h"
#include "server/core/clock.h"
#include "server/core/executor.h"
#include "server/core/model_registry.h"
#include "server/core/state_store.h"
#include "server/core/store_writer.h"
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
  // Sessions one identity (owner) may hold at once; beyond it creating one
  // fails with RESOURCE_EXHAUSTED.
  int max_sessions_per_identity = 10000;
  // A session unused for this long is closed by ExpireIdle.
  absl::Duration idle_timeout = absl::Minutes(10);
  RequestLimits limits;
  BatchQueue::Options batching;
  int64_t max_queued_steps = 1 << 20;
  std::shared_ptr<Clock> clock = std::make_shared<RealClock>();
  // Where sessions are kept across restarts; null: in memory only. Must
  // outlive the manager.
  StateStore* store = nullptr;
  // How often the sessions that changed are checkpointed to the store. 0:
  // only when asked (CheckpointNow) and at Stop.
  absl::Duration checkpoint_interval = absl::Seconds(1);
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
  bool explain = false;  // Chunk::explain
};

class SessionManager {
 public:
  using ChunkDone = Task::Done;
  using StatusDone = ModelExecutor::StatusDone;
  using SnapshotDone = ModelExecutor::SnapshotDone;
  using InfoDone = absl::AnyInvocable<void(absl::StatusOr<SessionInfo>)>;
  using ForecastDone = ModelExecutor::ForecastDone;

  // Starts the workers, serving the versions in `models` (which must
  // outlive the manager; LoadVersion and UnloadVersion change it).
  static absl::StatusOr<std::unique_ptr<SessionManager>> Create(
      ModelRegistry& models, CoreOptions options);
  ~SessionManager();  // Stop()

  const ModelRegistry& models() const { return models_; }

  // Serves a version from now on: new sessions of its model (version 0)
  // get the newest one served. ALREADY_EXISTS if it is served.
  absl::Status LoadVersion(std::shared_ptr<const LoadedModel> model);
  // Stops serving a version: no new sessions or stateless calls reach it;
  // its sessions keep running on it until they end, or until `drain`
  // passes (then Maintain closes them with reason kReload). NOT_FOUND if
  // it is not served.
  absl::Status UnloadVersion(absl::string_view name, int64_t version,
                             absl::Duration drain);

  // Periodic work (the server calls it about once a second): closes idle
  // sessions and the sessions of versions whose drain time has passed, and
  // frees the executors of versions with no sessions left.
  struct Maintained {
    int expired_idle = 0;       // sessions closed: idle
    int closed_for_reload = 0;  // sessions closed: their version's drain
    std::vector<std::string> versions_freed;  // "name version"
  };
  Maintained Maintain();

  // Versions unloaded that still have sessions running.
  int draining_versions() const;
  const RequestLimits& limits() const { return options_.limits; }
  int max_sessions() const { return options_.max_sessions; }
  // Whether `owner` has a session `id` (GetSession without building its
  // info).
  bool HasSession(const std::string& owner, absl::string_view id) const;
  WorkerPool& pool() { return *pool_; }

  // Runs a chunk: checks it, finds (or creates) its session, and posts it.
  // A short chunk may run, and `done` be called, on this thread before it
  // returns (ModelExecutor::RunChunk): hold no lock that `done` takes.
  // The errors of docs/API.md: INVALID_ARGUMENT for a bad shape, value, id
  // or model/version mismatch, NOT_FOUND for a missing session or model,
  // FAILED_PRECONDITION for an unexpected first_step, RESOURCE_EXHAUSTED for
  // a full queue or session table, UNAVAILABLE while shutting down.
  void SubmitChunk(const Caller& caller, const ChunkRequest& request,
                   ChunkDone done);

  // `id` empty: a server-made id. INVALID_ARGUMENT, ALREADY_EXISTS,
  // RESOURCE_EXHAUSTED, NOT_FOUND (model); with a store, UNAVAILABLE if the
  // session cannot be stored (it is not created then). With a store, `done`
  // runs once the session is stored.
  void CreateSession(const std::string& owner, absl::string_view id,
                     absl::string_view model, int64_t version,
                     std::vector<float> initial_state, InfoDone done);
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
  // Runs the session's model ahead of its current state, on a copy, after
  // the chunks posted before (ModelExecutor::Forecast): the session does
  // not move. INVALID_ARGUMENT for an empty id or a horizon or sample count
  // past the limits (ValidateForecast), NOT_FOUND for a missing session,
  // FAILED_PRECONDITION for a model that cannot forecast (or has no sample
  // paths, with samples), RESOURCE_EXHAUSTED for a full queue, UNAVAILABLE
  // while shutting down.
  // Its steps are dropped (CANCELLED, DEADLINE_EXCEEDED) when the caller's
  // call is cancelled or its deadline passes, as a chunk's are.
  void Forecast(const Caller& caller, absl::string_view id,
                const ForecastSpec& spec, ForecastDone done);
  // ALREADY_EXISTS for a taken id; every field range-checked
  // (ValidateSnapshot). Stored before `done` runs, as CreateSession.
  void ImportSession(const std::string& owner, SessionSnapshot snapshot,
                     InfoDone done);

  // Brings back sessions read from the store at start (before serving).
  // A record whose model version is not loaded, or that does not fit its
  // model, is not restored (it stays in the store) and gets a line in the
  // result's problems.
  struct Restored {
    int sessions = 0;
    std::vector<std::string> problems;
  };
  Restored Restore(std::vector<SessionRecord> records);

  // Starts a checkpoint round now: each executor's shards hand over the
  // sessions changed since their last checkpoint, committed in one
  // transaction. No-op without a store. (The background thread does this
  // every checkpoint_interval.)
  void CheckpointNow();
  // Waits until everything handed to the store so far has been attempted;
  // the status of the last commit. OK without a store.
  absl::Status FlushStore();
  // The store writer's counters (zeros without a store).
  StoreWriter::Stats StoreStats() const;
  bool has_store() const { return writer_ != nullptr; }

  struct Page {
    std::vector<SessionInfo> sessions;  // ordered by id
    std::string next_page_token;        // empty: last page
  };
  // `owner`'s sessions (every owner's with all_owners) with ids after
  // `page_token`, at most page_size.
  Page ListSessions(const std::string& owner, bool all_owners, int page_size,
                    absl::string_view page_token) const;

  // Closes sessions idle for at least the idle timeout; returns how many.
  int ExpireIdle();

  // Sessions held now, per version ("name", version) -> count.
  std::map<std::pair<std::string, int64_t>, int> SessionsByVersion() const;

  std::vector<ModelStats> Stats() const;

  // Sessions made and ended since start, by how (for metrics).
  struct SessionCounters {
    int64_t created = 0;            // CreateSession
    int64_t created_on_stream = 0;  // a chunk's create_model
    int64_t imported = 0;           // ImportSession
    int64_t restored = 0;           // from the state store at start
    int64_t closed = 0;             // CloseSession
    int64_t expired = 0;            // idle past the timeout
    int64_t reloaded = 0;           // their version's drain time passed
    int64_t refused = 0;            // not created: the session limit
  };
  SessionCounters Counters() const;
  int sessions() const;
  int64_t queued_steps() const { return queued_steps_.load(); }
  absl::Time Now() const { return options_.clock->Now(); }

  // From now on chunks are refused with UNAVAILABLE ("the server is
  // shutting down"); work already posted completes.
  void BeginShutdown();
  bool shutting_down() const { return shutting_down_.load(); }
  // Runs what is posted, takes a last checkpoint of every changed session
  // and commits it, then joins the workers. Idempotent.
  void Stop();

 private:
  SessionManager(ModelRegistry& models, CoreOptions options);

  // How a session came to be (counted in SessionCounters).
  enum class Via { kCreate, kStream, kImport };

  // A served version and its executor, found together under versions_mu_.
  struct Served {
    std::shared_ptr<const LoadedModel> model;
    std::shared_ptr<ModelExecutor> executor;
  };
  absl::StatusOr<Served> Resolve(absl::string_view name, int64_t version) const
      ABSL_LOCKS_EXCLUDED(versions_mu_);
  std::shared_ptr<ModelExecutor> MakeExecutor(
      std::shared_ptr<const LoadedModel> model)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(versions_mu_);
  // The deleter of an executor's shared_ptr: it may run on the executor's
  // own strand, so the executor is only put aside here; Reap frees it.
  void Bury(ModelExecutor* executor);
  // Frees buried executors once their strands are quiet.
  std::vector<std::string> Reap();
  // Every executor alive: served and draining.
  std::vector<std::shared_ptr<ModelExecutor>> AllExecutors() const
      ABSL_LOCKS_EXCLUDED(versions_mu_);

  absl::StatusOr<std::shared_ptr<SessionHandle>> Find(
      const std::string& owner, absl::string_view id) const;
  // Creates and installs a session (under mu_, so that no operation can
  // reach its shard before the slot exists).
  // ALREADY_EXISTS or RESOURCE_EXHAUSTED if a session `id` cannot be made.
  absl::Status CheckCreateLocked(const std::string& owner,
                                 absl::string_view id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every change to sessions_ goes through these two, so that the count
  // of sessions per owner stays true.
  void AddLocked(std::shared_ptr<SessionHandle> session)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  using SessionMap =
      std::map<std::string, std::shared_ptr<SessionHandle>, std::less<>>;
  SessionMap::iterator EraseLocked(SessionMap::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes and installs a checked session (under mu_, so that no operation
  // can reach its shard before the slot exists). With a store its record is
  // written (a put) from its shard and `stored` runs once that is
  // committed; without, `stored` runs at once on the shard.
  std::shared_ptr<SessionHandle> InstallLocked(
      const std::string& owner, absl::string_view id, const Served& served,
      SlotInit init, StoreWriter::Done stored, Via via)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Installs a checked new session, then calls `done` with its info: at
  // once without a store, once stored with one (and a session that cannot
  // be stored is discarded and `done` gets the error).
  void InstallAndReply(const std::string& owner, absl::string_view id,
                       const Served& served, SlotInit init, Via via,
                       InfoDone done) ABSL_LOCKS_EXCLUDED(mu_);
  // A create or import that could not be stored: closes it again.
  void Discard(const std::shared_ptr<SessionHandle>& session);
  void CheckpointLoop();
  absl::Status CheckCapacityLocked(const std::string& owner) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ModelRegistry& models_;
  const CoreOptions options_;
  std::atomic<int64_t> queued_steps_{0};
  struct AtomicCounters {
    std::atomic<int64_t> created{0}, created_on_stream{0}, imported{0},
        restored{0}, closed{0}, expired{0}, reloaded{0}, refused{0};
  };
  mutable AtomicCounters counters_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> stopped_{false};
  std::unique_ptr<StoreWriter> writer_;  // null without a store
  std::unique_ptr<WorkerPool> pool_;
  std::thread checkpointer_;
  absl::Notification stop_checkpointing_;
  // Parts of the current checkpoint round not handed over yet.
  std::atomic<int> round_parts_{0};
  // Guards which versions are served: the registry's changes and the
  // executors of the served versions. Taken after mu_ when both are.
  mutable absl::Mutex versions_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::map<const LoadedModel*, std::shared_ptr<ModelExecutor>> executors_
      ABSL_GUARDED_BY(versions_mu_);
  // Unloaded versions whose sessions still run, and when they must end.
  struct Draining {
    std::shared_ptr<const LoadedModel> model;
    std::weak_ptr<ModelExecutor> executor;
    absl::Time deadline;
  };
  std::vector<Draining> draining_ ABSL_GUARDED_BY(versions_mu_);
  // Every executor made, served or draining (for checkpoints and stats).
  std::vector<std::weak_ptr<ModelExecutor>> all_executors_
      ABSL_GUARDED_BY(versions_mu_);
  ExecutorOptions executor_options_;
  absl::Mutex graveyard_mu_;
  std::vector<ModelExecutor*> graveyard_ ABSL_GUARDED_BY(graveyard_mu_);

  mutable absl::Mutex mu_;
  SessionMap sessions_ ABSL_GUARDED_BY(mu_);
  // Sessions held per owner (owners with none are not kept).
  absl::flat_hash_map<std::string, int> sessions_per_owner_
      ABSL_GUARDED_BY(mu_);
  uint64_t id_counter_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t id_salt_ = 0;
  std::mt19937_64 incarnations_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lstmserve::server
