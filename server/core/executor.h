// A model version's executor: the one owner of its sessions' state.
//
// Each loaded model version has one ModelExecutor with K shards (K = worker
// threads, so one model still uses every core). A session lives in one shard,
// chosen by its serial; the shard is a strand on the WorkerPool, so every
// operation on a session (install, chunk, reset, close, export) runs there,
// one at a time and in the order it was posted. That is why session state
// needs no lock and why the engine reads and writes it in place: nothing
// else can touch it. A reset posted behind a chunk simply runs after it.
//
// Chunks of different sessions of one shard are batched into one engine call
// by the shard's BatchQueue (max batch, queue delay, peer window, FIFO,
// deadlines); control operations (reset, close, export, forecast) run as
// soon as the session has no chunk ahead of them.
//
// A short chunk posted to an idle shard runs at once on the posting thread
// (with whatever else the shard has ready), not on a worker: for a step or
// a few, the hand-over to a worker and back costs more than the step.
//
// Thread-safety: the posting methods are thread-safe. RunChunk and
// RunStateless may run the engine on the calling thread, as said above, so
// their caller must hold no lock that a `done` callback takes; the other
// posting methods never block on the engine. `done` callbacks run on a
// worker thread, on a thread that posted a chunk, or at once on the calling
// thread when the operation is refused, and must not block. The executor
// must outlive every operation posted to it (stop the pool first).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/batch_queue.h"
#include "server/core/clock.h"
#include "server/core/model_registry.h"
#include "server/core/session_handle.h"
#include "server/core/state_store.h"
#include "server/core/store_writer.h"
#include "server/core/types.h"
#include "server/core/worker_pool.h"

namespace lstmserve::server {

class ModelExecutor;
struct Op;  // an operation posted to a shard (executor.cc)

// Counters for one model version since the server started.
struct ModelStats {
  std::string model;
  int64_t version = 0;
  int64_t requests = 0;        // chunks completed (run, replayed or failed)
  int64_t steps = 0;           // steps run by the engine
  int64_t batches = 0;         // engine calls
  int64_t batched_chunks = 0;  // sum of the batches' sizes
  // batch_size_histogram[k]: batches of size in (2^(k-1), 2^k]; [0]: size 1.
  std::vector<int64_t> batch_size_histogram;
  // queue_wait_histogram[k]: chunks that waited in (2^(k-1), 2^k] us
  // between arrival and the engine; [0]: at most 1 us.
  std::vector<int64_t> queue_wait_histogram;
  int64_t queue_wait_us_total = 0;
  int64_t compute_us_total = 0;  // engine time
  // compute_histogram[k]: engine calls that took (2^(k-1), 2^k] us.
  std::vector<int64_t> compute_histogram;
  int64_t rejected = 0;  // refused because the queue was full
  int64_t expired = 0;   // dropped as cancelled or past deadline
};

struct ExecutorOptions {
  BatchQueue::Options batching;
  // Steps queued in all executors together, at most (--max-queued-steps).
  int64_t max_queued_steps = 1 << 20;
  // Applied chunks sent with first_step that a session keeps for exact
  // retries (--max-replay-chunks); 0 keeps none.
  int max_replay_chunks = 8;
  // Session timestamps (last use); batching delays use the real clock.
  std::shared_ptr<Clock> clock = std::make_shared<RealClock>();
  // Where resets, closes and checkpoints are written; null: sessions live
  // in memory only. Must outlive the executor.
  StoreWriter* writer = nullptr;
};

// How a session's slot starts.
struct SlotInit {
  std::vector<float> initial_state;  // what a reset returns to; empty: zeros
  std::vector<float> state;          // empty: the initial state
  int64_t next_step = 0;
  std::vector<ReplayChunk> replay;
  // With a store: write the new session's record (a put) from its shard,
  // ahead of anything else written for it, and run `stored` once that is
  // committed (or failed). Without a store, `stored` runs at once.
  bool put = false;
  StoreWriter::Done stored;
};

class ModelExecutor : public std::enable_shared_from_this<ModelExecutor> {
 public:
  using StatusDone = absl::AnyInvocable<void(absl::Status)>;
  using SnapshotDone =
      absl::AnyInvocable<void(absl::StatusOr<SessionSnapshot>)>;
  using ForecastDone = absl::AnyInvocable<void(absl::StatusOr<ForecastResult>)>;

  // `queued_steps` is the server-wide count of queued steps; it and `pool`
  // must outlive the executor.
  ModelExecutor(std::shared_ptr<const LoadedModel> model, WorkerPool& pool,
                ExecutorOptions options, std::atomic<int64_t>* queued_steps);
  ~ModelExecutor();

  const std::shared_ptr<const LoadedModel>& model() const { return model_; }

  // Creates the session's slot. Checked by the caller; cannot fail.
  void Install(std::shared_ptr<SessionHandle> session, SlotInit init);

  // Applies a chunk under the exactly-once rules: with first_step unset, or
  // equal to the next expected step, the chunk runs; an exact retry of a
  // chunk in the replay record (same first_step and inputs) returns its
  // outputs again without running; anything else is FAILED_PRECONDITION
  // naming the expected step. A chunk that would take the session past step
  // 2^62 is INVALID_ARGUMENT; a closed session NOT_FOUND. Fails at once with
  // RESOURCE_EXHAUSTED when the server's queue is full.
  void RunChunk(std::shared_ptr<SessionHandle> session, Task task);
  // Completes a chunk that was refused before it could run (a bad shape,
  // say) with `error`, in order with the session's other operations, so
  // that a session's answers keep the order of its requests.
  void FailChunk(std::shared_ptr<SessionHandle> session, Task::Done done,
                 absl::Status error);
  // A stateless chunk: from the zero state, nothing kept.
  void RunStateless(Task task);

  // Back to the initial state and step 0; forgets the replay record. With
  // a store, `done` runs once the reset is committed.
  void Reset(std::shared_ptr<SessionHandle> session, StatusDone done);
  // Removes the session's slot once the chunks ahead of it have run. With a
  // store, its record is deleted, and `done` runs once that is committed.
  void Close(std::shared_ptr<SessionHandle> session, StatusDone done);
  void Export(std::shared_ptr<SessionHandle> session, SnapshotDone done);
  // Runs the model ahead of the session's state (model/forecast.h), on a
  // copy of it, once the chunks posted before have run: the session's
  // state, next step, replay record and checkpoints are untouched (its
  // last-used time moves, as for any use). The forecast's engine steps,
  // (horizon - 1) x (samples + 1), count in the server's queue while it
  // waits; RESOURCE_EXHAUSTED at once when they do not fit. The model must
  // be able to forecast (model::CheckForecast; checked by the caller).
  // `cancelled` and `deadline` (the call's) drop its queued steps as a
  // chunk's are dropped.
  void Forecast(std::shared_ptr<SessionHandle> session, ForecastSpec spec,
                std::function<bool()> cancelled, absl::Time deadline,
                ForecastDone done);

  // A checkpoint: each shard, between two operations, takes the records of
  // its sessions that changed since its last checkpoint and hands them to
  // `taken` (once per shard, on that shard's thread; maybe with none).
  using RecordsTaken =
      std::function<void(std::vector<StoreWriter::Item> records)>;
  void Checkpoint(RecordsTaken taken);
  // How many times Checkpoint calls `taken`.
  int shards() const { return static_cast<int>(shards_.size()); }

  ModelStats Stats() const;

  // The shards, for WorkerPool::Quiesce before the executor is destroyed.
  std::vector<Strand*> strands() const;
  // Drops every session's slot. Only with the pool stopped (at shutdown:
  // slots hold their sessions, which hold the executor).
  void DropSlots();

 private:
  class Shard;
  friend class Shard;
  Shard& ShardOf(uint64_t serial);
  // Posts to the shard that owns op.session.
  void PostToSession(Op op, bool run_here = false);
  // Counts the task's steps in the server-wide queue, or refuses it.
  absl::Status Admit(const Task& task);
  absl::Status AdmitSteps(int64_t steps);
  void RecordRejected();
  void CountExpired();
  void RecordBatch(const Batch& batch, absl::Time started,
                   absl::Duration compute, int64_t steps_run);

  const std::shared_ptr<const LoadedModel> model_;
  WorkerPool& pool_;
  const ExecutorOptions options_;
  std::atomic<int64_t>* const queued_steps_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> stateless_counter_{0};

  mutable absl::Mutex stats_mu_;
  ModelStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

}  // namespace lstmserve::server
