#include "server/core/executor.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "model/forecast.h"
#include "model/model.h"
#include "server/core/record_codec.h"
#include "server/core/validation.h"

namespace lstmserve::server {
namespace {

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

// A chunk this short runs on the posting thread when its shard is idle
// (Shard::Post): for a step or a few, handing it to a worker and its answer
// back costs more than the step (two wake-ups and context switches). A
// longer chunk goes to a worker, which keeps gRPC's threads free for I/O.
constexpr int kRunHereMaxSteps = 16;

bool RunsHere(const Task& task) { return task.chunk.steps <= kRunHereMaxSteps; }

// A chunk as a session keeps it, with a serial no other chunk of this
// process has (ReplayChunk::serial).
std::shared_ptr<const ReplayChunk> Keep(ReplayChunk chunk) {
  static std::atomic<uint64_t> last_serial{0};
  chunk.serial = last_serial.fetch_add(1, std::memory_order_relaxed) + 1;
  return std::make_shared<const ReplayChunk>(std::move(chunk));
}

absl::Status SessionGone(const SessionHandle& s) {
  // The same words as a lookup that finds nothing (session_manager.cc).
  return absl::NotFoundError(
      absl::StrCat("session ", Quote(s.id),
                   " not found (closed, expired, or never created)"));
}

}  // namespace

SessionInfo SessionHandle::Info() const {
  SessionInfo info;
  info.id = id;
  info.owner = owner;
  info.model = model->name;
  info.version = model->version;
  info.next_step = next_step.load(std::memory_order_acquire);
  info.created = created;
  info.last_used =
      absl::FromUnixMicros(last_used_unix_us.load(std::memory_order_relaxed));
  info.state_size = model->model->state_size();
  info.durable_step = Durable();
  return info;
}

void SessionHandle::AddToSummary(const float* records, int steps) {
  absl::MutexLock lock(&summary_mu_);
  if (summary_ == nullptr) {
    summary_ = std::make_unique<model::GateSummary>(*model->model);
  }
  summary_->Add(records, steps);
}

void SessionHandle::ResetSummary() {
  absl::MutexLock lock(&summary_mu_);
  summary_.reset();
}

void SessionHandle::ReadSummary(SessionInfo& info) const {
  absl::MutexLock lock(&summary_mu_);
  if (summary_ == nullptr) {
    info.explained_steps = 0;
    info.gate_summary.clear();
    return;
  }
  info.explained_steps = summary_->steps();
  info.gate_summary = summary_->Layers();
}

std::optional<int64_t> SessionHandle::Durable() const {
  if (!stored) return std::nullopt;
  return durable_step.load(std::memory_order_acquire);
}

// One operation posted to a shard.
struct Op {
  enum class Kind {
    kInstall,
    kChunk,
    kStateless,
    kReset,
    kClose,
    kExport,
    kFailChunk,
    kForecast,
    kCheckpoint,  // not about one session: session is null
  };
  Kind kind = Kind::kChunk;
  std::shared_ptr<SessionHandle> session;     // null for kStateless
  Task task;                                  // kChunk, kStateless
  SlotInit init;                              // kInstall
  ModelExecutor::RecordsTaken taken;          // kCheckpoint
  ModelExecutor::StatusDone status_done;      // kReset, kClose
  ModelExecutor::SnapshotDone snapshot_done;  // kExport
  ForecastSpec forecast;                      // kForecast
  ModelExecutor::ForecastDone forecast_done;  // kForecast
  absl::Status error;                         // kFailChunk
  // kStateless: keeps the executor alive until the call is done (a
  // session's operations are kept alive by the session).
  std::shared_ptr<ModelExecutor> keep_alive;
};

// A session's state, owned by its shard. A Slot is also the session's entry
// in the shard's BatchQueue.
struct Slot : QueueEntry {
  std::shared_ptr<SessionHandle> session;  // null: a stateless call's
  std::vector<float> state;                // the engine updates it in place
  std::vector<float> initial_state;        // empty: zeros
  int64_t next_step = 0;
  // Oldest first, ends at next_step. A chunk never changes once applied,
  // so a checkpoint's record shares it instead of copying it.
  std::vector<std::shared_ptr<const ReplayChunk>> replay;
  // Changed since the shard's last checkpoint (in its dirty list).
  bool dirty = false;
  // A stateless call's slot keeps the executor alive until it is freed.
  std::shared_ptr<ModelExecutor> keep_alive;
  // Operations that must wait for the chunks queued ahead of them: a
  // control operation, and everything posted after it.
  std::vector<Op> deferred;
};

// A forecast in flight (Shard::RunForecast): its paths, stepped on
// ephemeral slots through the batch queue, and what it answers. Touched only
// by its shard.
struct ForecastRun {
  std::vector<model::ForecastPath> paths;
  std::vector<int> pushed;  // steps queued so far, per path
  int steps_per_path = 0;   // horizon - 1
  int unfinished = 0;       // paths not done yet
  bool failed = false;      // a step failed: the rest is dropped
  absl::Status error;       // the first failure, answered at the end
  ModelExecutor::ForecastDone done;
  ForecastResult result;
  // The call's, given to every step's task.
  std::function<bool()> cancelled;
  absl::Time deadline = absl::InfiniteFuture();
  // The session: keeps the executor alive while the paths run.
  std::shared_ptr<SessionHandle> session;
};

class ModelExecutor::Shard final : public Strand {
 public:
  Shard(ModelExecutor& executor)
      : executor_(executor),
        queue_(executor.options_.batching, executor.queued_steps_) {}

  ~Shard() override {
    // The pool has stopped: nothing is queued or running. Ephemeral slots
    // are freed when their batch finishes.
  }

  // With `run_here`, an idle shard runs on the calling thread (see
  // WorkerPool::RunHere); the caller must hold no lock.
  void Post(Op op, bool run_here = false) {
    bool schedule;
    {
      absl::MutexLock lock(&mu_);
      inbox_.push_back(std::move(op));
      schedule = !scheduled_;
      scheduled_ = true;
    }
    if (!schedule) return;
    if (run_here && executor_.pool_.RunHere(this)) return;
    executor_.pool_.Schedule(this);
  }

  bool Wake() override {
    absl::MutexLock lock(&mu_);
    timer_ = absl::InfiniteFuture();  // at worst, a later run asks again
    if (scheduled_) return false;
    scheduled_ = true;
    return true;
  }

  Next Run(model::Workspace& workspace) override {
    workspace_ = &workspace;  // for the control operations that compute
    {
      absl::MutexLock lock(&mu_);
      ops_.swap(inbox_);
    }
    for (Op& op : ops_) Accept(std::move(op));
    ops_.clear();

    const absl::Time wake = RunOneBatch(workspace);
    // A checkpoint is taken a slice at a time between batches, so that its
    // sessions' chunks do not wait for all of it.
    const bool checkpointing = TakeCheckpointSlice();
    const absl::Time now = absl::Now();
    bool again;
    bool ask_timer = false;
    {
      absl::MutexLock lock(&mu_);
      again = !inbox_.empty() || wake <= now || checkpointing;
      if (!again) {
        scheduled_ = false;
        // A partial batch waiting for partners is looked at by every run
        // until it goes; a timer is asked only when none is pending as
        // early, so that the pool's workers are not woken by one stale
        // timer a run.
        if (wake < timer_) {
          timer_ = wake;
          ask_timer = true;
        }
      }
    }
    if (again) return Next{true};
    return Next{false, ask_timer ? wake : absl::InfiniteFuture()};
  }

 private:
  absl::Time Now() const { return executor_.options_.clock->Now(); }

  // Makes the slot's step index readable without posting; a use (a chunk
  // or a reset) also moves its last-used time, which idle expiry reads.
  void Publish(const Slot& slot, bool used) {
    slot.session->next_step.store(slot.next_step, std::memory_order_release);
    if (used) {
      slot.session->last_used_unix_us.store(absl::ToUnixMicros(Now()),
                                            std::memory_order_relaxed);
    }
  }

  void Accept(Op op) {
    if (op.kind == Op::Kind::kInstall) return Install(std::move(op));
    if (op.kind == Op::Kind::kCheckpoint) return Checkpoint(std::move(op));
    if (op.kind == Op::Kind::kStateless) {
      auto slot = std::make_unique<Slot>();
      slot->state.assign(executor_.model_->model->state_size(), 0.0f);
      slot->keep_alive = std::move(op.keep_alive);
      Slot* raw = slot.get();
      ephemeral_.push_back(std::move(slot));  // freed once idle
      queue_.Push(raw, std::move(op.task), absl::Now());
      return;
    }
    auto it = slots_.find(op.session->serial);
    if (it == slots_.end()) return Fail(op, SessionGone(*op.session));
    Slot* slot = it->second.get();
    if (!slot->deferred.empty()) {
      slot->deferred.push_back(std::move(op));
    } else if (op.kind == Op::Kind::kChunk) {
      queue_.Push(slot, std::move(op.task), absl::Now());
    } else if (BatchQueue::Idle(*slot)) {
      Execute(slot, std::move(op));
    } else {
      slot->deferred.push_back(std::move(op));
    }
  }

  void Install(Op op) {
    auto slot = std::make_unique<Slot>();
    const int size = executor_.model_->model->state_size();
    slot->session = std::move(op.session);
    slot->initial_state = std::move(op.init.initial_state);
    if (!op.init.state.empty()) {
      slot->state = std::move(op.init.state);
    } else if (!slot->initial_state.empty()) {
      slot->state = slot->initial_state;
    } else {
      slot->state.assign(size, 0.0f);
    }
    slot->next_step = op.init.next_step;
    slot->replay.reserve(op.init.replay.size());
    for (ReplayChunk& c : op.init.replay) {
      slot->replay.push_back(Keep(std::move(c)));
    }
    Publish(*slot, /*used=*/false);
    StoreWriter* writer = executor_.options_.writer;
    if (writer != nullptr && op.init.put) {
      std::vector<StoreWriter::Item> items;
      items.push_back(StoreWriter::Item{
          StoreWrite{StoreWrite::Kind::kPut, RecordOf(*slot)}, slot->session});
      writer->Submit(std::move(items), std::move(op.init.stored));
    } else if (op.init.stored) {
      op.init.stored(absl::OkStatus());
    }
    const uint64_t serial = slot->session->serial;
    slots_[serial] = std::move(slot);
  }

  // Completes an operation that will not run.
  void Fail(Op& op, const absl::Status& status) {
    switch (op.kind) {
      case Op::Kind::kChunk:
      case Op::Kind::kStateless:
        executor_.queued_steps_->fetch_sub(op.task.chunk.steps);
        op.task.done(status);
        break;
      case Op::Kind::kFailChunk:
        op.task.done(status);
        break;
      case Op::Kind::kReset:
      case Op::Kind::kClose:
        op.status_done(status);
        break;
      case Op::Kind::kExport:
        op.snapshot_done(status);
        break;
      case Op::Kind::kForecast:
        executor_.queued_steps_->fetch_sub(
            model::ForecastSteps(op.forecast.horizon, op.forecast.samples));
        op.forecast_done(status);
        break;
      case Op::Kind::kInstall:
      case Op::Kind::kCheckpoint:
        break;
    }
  }

  // What the store keeps of a session, as it is now. The state is copied
  // into `spare` (a buffer of an earlier record, from the writer) when
  // given, so that a checkpoint allocates nothing; the replay chunks are
  // shared, and encoded by the writer thread, not here.
  SessionRecord RecordOf(const Slot& slot,
                         std::vector<float>* spare = nullptr) const {
    const SessionHandle& s = *slot.session;
    SessionRecord r;
    r.id = s.id;
    r.owner = s.owner;
    r.incarnation = s.incarnation;
    r.model = executor_.model_->name;
    r.version = executor_.model_->version;
    r.next_step = slot.next_step;
    if (spare != nullptr) r.state = std::move(*spare);
    r.state.assign(slot.state.begin(), slot.state.end());
    r.initial_state = slot.initial_state;
    r.replay_chunks = slot.replay;
    r.created_unix_us = absl::ToUnixMicros(s.created);
    r.last_used_unix_us = s.last_used_unix_us.load(std::memory_order_relaxed);
    return r;
  }

  void MarkDirty(Slot& slot) {
    if (executor_.options_.writer == nullptr || slot.dirty) return;
    slot.dirty = true;
    dirty_.push_back(slot.session->serial);
  }

  // Hands the records of the sessions changed since the last checkpoint to
  // the checkpoint's callback. Runs between operations, so every record is
  // a state the session was in: never half a chunk.
  // Starts a checkpoint of the sessions changed since the last one. Their
  // records are taken by TakeCheckpointSlice, a slice between two batches;
  // each record is a state its session was in between two operations, so
  // never half a chunk. A session that changes again before its record is
  // taken is simply recorded as it is then.
  void Checkpoint(Op op) {
    if (checkpoint_) {  // one at a time: the new round takes this one's rest
      op.taken({});
      return;
    }
    // Not emplace(): clang 14 finds a nested struct with member
    // initializers not default-constructible inside its enclosing class.
    checkpoint_.emplace(PendingCheckpoint{});
    checkpoint_->taken = std::move(op.taken);
    checkpoint_->serials.swap(dirty_);
    checkpoint_->records.reserve(checkpoint_->serials.size());
  }

  // Takes the next slice of the checkpoint in progress; hands the records
  // over when done. Returns whether more remains.
  bool TakeCheckpointSlice() {
    if (!checkpoint_) return false;
    constexpr size_t kSlice = 256;
    PendingCheckpoint& c = *checkpoint_;
    const size_t end = std::min(c.serials.size(), c.next + kSlice);
    executor_.options_.writer->TakeSpareStates(end - c.next, spares_);
    for (; c.next < end; ++c.next) {
      auto it = slots_.find(c.serials[c.next]);
      if (it == slots_.end()) continue;  // closed since: its delete is queued
      Slot& slot = *it->second;
      if (!slot.dirty) continue;  // taken already (closed and reinstalled?)
      slot.dirty = false;
      std::vector<float>* spare = nullptr;
      if (!spares_.empty()) spare = &spares_.back();
      c.records.push_back(StoreWriter::Item{
          StoreWrite{StoreWrite::Kind::kUpdate, RecordOf(slot, spare)},
          slot.session});
      if (spare != nullptr) spares_.pop_back();
    }
    if (c.next < c.serials.size()) return true;
    ModelExecutor::RecordsTaken taken = std::move(c.taken);
    std::vector<StoreWriter::Item> records = std::move(c.records);
    checkpoint_.reset();
    taken(std::move(records));
    return false;
  }

  // Writes a control operation's effect through the store (when there is
  // one) before completing it.
  void WriteThrough(StoreWrite write, std::shared_ptr<SessionHandle> session,
                    ModelExecutor::StatusDone done) {
    StoreWriter* writer = executor_.options_.writer;
    if (writer == nullptr) return done(absl::OkStatus());
    std::vector<StoreWriter::Item> items;
    items.push_back(StoreWriter::Item{std::move(write), std::move(session)});
    // The operation has taken effect in memory; a failed commit is retried
    // by the writer, so the caller hears OK either way.
    writer->Submit(std::move(items),
                   [done = std::move(done)](absl::Status) mutable {
                     done(absl::OkStatus());
                   });
  }

  // Runs a control operation; the session has no chunk queued or running.
  // Returns false if it closed the session (the slot is gone).
  bool Execute(Slot* slot, Op op) {
    switch (op.kind) {
      case Op::Kind::kReset:
        if (slot->initial_state.empty()) {
          std::fill(slot->state.begin(), slot->state.end(), 0.0f);
        } else {
          slot->state = slot->initial_state;
        }
        slot->next_step = 0;
        slot->replay.clear();
        slot->replay.shrink_to_fit();
        slot->session->ResetSummary();
        Publish(*slot, /*used=*/true);
        if (executor_.options_.writer != nullptr) {
          // Written now, not at the next checkpoint: a reset is durable
          // when it is acknowledged.
          WriteThrough(StoreWrite{StoreWrite::Kind::kUpdate, RecordOf(*slot)},
                       slot->session, std::move(op.status_done));
        } else {
          op.status_done(absl::OkStatus());
        }
        return true;
      case Op::Kind::kFailChunk:
        op.task.done(std::move(op.error));
        return true;
      case Op::Kind::kExport: {
        SessionSnapshot snap;
        snap.id = slot->session->id;
        snap.model = executor_.model_->name;
        snap.version = executor_.model_->version;
        snap.next_step = slot->next_step;
        snap.state = slot->state;
        snap.replay.reserve(slot->replay.size());
        for (const auto& c : slot->replay) snap.replay.push_back(*c);
        snap.ran_on = executor_.model_;
        op.snapshot_done(std::move(snap));
        return true;
      }
      case Op::Kind::kForecast:
        RunForecast(*slot, op);
        return true;
      case Op::Kind::kClose: {
        std::vector<Op> after = std::move(slot->deferred);
        const std::shared_ptr<SessionHandle> session = slot->session;
        slots_.erase(session->serial);
        if (executor_.options_.writer != nullptr) {
          SessionRecord gone;
          gone.id = session->id;
          gone.incarnation = session->incarnation;
          WriteThrough(StoreWrite{StoreWrite::Kind::kDelete, std::move(gone)},
                       nullptr, std::move(op.status_done));
        } else {
          op.status_done(absl::OkStatus());
        }
        for (Op& rest : after) Fail(rest, SessionGone(*session));
        return false;
      }
      default:
        return true;
    }
  }

  // A forecast from the slot's state, on copies: nothing of the slot
  // changes but the session's last-used time. Each path steps on an
  // ephemeral slot of its own through the batch queue, one step a task,
  // batched with the shard's other work like any chunk; the answer goes
  // out when the last path is done. The steps were admitted by Forecast.
  void RunForecast(Slot& slot, Op& op) {
    const model::Model& m = *executor_.model_->model;
    const int paths = op.forecast.samples + 1;
    const int64_t steps =
        model::ForecastSteps(op.forecast.horizon, op.forecast.samples);
    Publish(slot, /*used=*/true);
    std::vector<float> first(m.output_size());
    absl::Status ok = model::CheckForecast(m.config(), op.forecast.samples,
                                           executor_.model_->name);
    if (ok.ok())
      ok = m.StateOutput(slot.state.data(), first.data(), *workspace_);
    if (!ok.ok()) {
      executor_.queued_steps_->fetch_sub(steps);
      return op.forecast_done(ok);
    }
    auto run = std::make_shared<ForecastRun>();
    const model::ForecastOptions options{op.forecast.horizon,
                                         op.forecast.samples, op.forecast.seed};
    run->paths.reserve(paths);
    for (int p = 0; p < paths; ++p)
      run->paths.emplace_back(m, options, p, first);
    run->pushed.assign(paths, 0);
    run->unfinished = paths;
    run->steps_per_path = op.forecast.horizon - 1;
    run->done = std::move(op.forecast_done);
    run->result.horizon = op.forecast.horizon;
    run->result.output_size = m.output_size();
    run->result.from_step = slot.next_step;
    run->result.model = executor_.model_.get();
    run->session = op.session;
    run->cancelled = op.task.cancelled;
    run->deadline = op.task.deadline;
    if (run->steps_per_path == 0) return FinishForecast(*run);
    for (int p = 0; p < paths; ++p) {
      auto path_slot = std::make_unique<Slot>();
      path_slot->state = slot.state;
      Slot* raw = path_slot.get();
      ephemeral_.push_back(std::move(path_slot));  // freed once idle
      QueueForecastStep(run, p, raw);
    }
  }

  // Queues path p's next step on its slot.
  void QueueForecastStep(const std::shared_ptr<ForecastRun>& run, int p,
                         Slot* slot) {
    Task task;
    task.chunk.inputs = run->paths[p].input();
    task.chunk.steps = 1;
    task.sender = run->session->serial;
    task.cancelled = run->cancelled;
    task.deadline = run->deadline;
    // Answered once every path has stopped, even after an error: until
    // then a path's queued step may still ask the call's `cancelled`.
    task.done = [this, run, p, slot](absl::StatusOr<ChunkResult> step) {
      model::ForecastPath& path = run->paths[p];
      if (!run->failed && step.ok()) {
        path.Accept(step->outputs);
        if (!path.done()) return QueueForecastStep(run, p, slot);
      } else {
        if (!run->failed) {
          run->failed = true;
          run->error = step.status();
        }
        // Its steps not queued yet leave the count now.
        executor_.queued_steps_->fetch_sub(run->steps_per_path -
                                           run->pushed[p]);
      }
      if (--run->unfinished > 0) return;
      if (run->failed) return run->done(run->error);
      FinishForecast(*run);
    };
    ++run->pushed[p];
    queue_.Push(slot, std::move(task), absl::Now());
  }

  static void FinishForecast(ForecastRun& run) {
    run.result.forecast = std::move(run.paths[0].rows());
    for (size_t p = 1; p < run.paths.size(); ++p) {
      run.result.samples.push_back(std::move(run.paths[p].rows()));
    }
    run.done(std::move(run.result));
  }

  // The session's chunks ahead have run: run what waited behind them, in
  // order, up to the next control operation that must wait again.
  void DrainDeferred(Slot* slot) {
    const std::shared_ptr<SessionHandle> session = slot->session;
    std::vector<Op> ops = std::move(slot->deferred);
    slot->deferred.clear();
    for (size_t i = 0; i < ops.size(); ++i) {
      Op& op = ops[i];
      if (op.kind == Op::Kind::kChunk) {
        queue_.Push(slot, std::move(op.task), absl::Now());
        continue;
      }
      if (!BatchQueue::Idle(*slot)) {  // wait for the chunks just queued
        for (size_t j = i; j < ops.size(); ++j) {
          slot->deferred.push_back(std::move(ops[j]));
        }
        return;
      }
      if (!Execute(slot, std::move(op))) {  // closed: fail the rest
        for (size_t j = i + 1; j < ops.size(); ++j) {
          Fail(ops[j], SessionGone(*session));
        }
        return;
      }
    }
  }

  // The exactly-once decision for a queued chunk: the result to answer
  // without running (a replay or an error), or nullopt to run it.
  std::optional<absl::StatusOr<ChunkResult>> Decide(const Slot& slot,
                                                    const Chunk& chunk) const {
    const int out = executor_.model_->model->output_size();
    if (slot.session == nullptr) return std::nullopt;  // stateless
    if (!chunk.first_step || *chunk.first_step == slot.next_step) {
      if (slot.next_step + chunk.steps > kMaxStepIndex) {
        return absl::InvalidArgumentError(absl::StrCat(
            "session ", Quote(slot.session->id), " is at step ", slot.next_step,
            "; ", chunk.steps,
            " more steps would pass the largest step index, 2^62"));
      }
      return std::nullopt;
    }
    for (const auto& recorded : slot.replay) {
      const ReplayChunk& r = *recorded;
      if (r.first_step != *chunk.first_step) continue;
      if (r.steps == chunk.steps && r.inputs == chunk.inputs) {
        ChunkResult result;
        result.steps = chunk.steps;
        result.output_size = out;
        result.outputs = r.outputs;
        result.next_step = slot.next_step;
        result.replayed = true;
        return result;
      }
      return WithExpectedStep(
          absl::FailedPreconditionError(absl::StrCat(
              "chunk starts at step ", *chunk.first_step, " but session ",
              Quote(slot.session->id), " expects step ", slot.next_step,
              " (a retry of an applied chunk must repeat its inputs "
              "exactly)")),
          slot.next_step);
    }
    return WithExpectedStep(
        absl::FailedPreconditionError(absl::StrCat(
            "chunk starts at step ", *chunk.first_step, " but session ",
            Quote(slot.session->id), " expects step ", slot.next_step)),
        slot.next_step);
  }

  void Commit(Slot& slot, Task& task, const std::vector<float>& outputs) {
    const int64_t first = slot.next_step;
    slot.next_step += task.chunk.steps;
    const int keep = executor_.options_.max_replay_chunks;
    if (task.chunk.first_step && keep > 0) {
      if (static_cast<int>(slot.replay.size()) >= keep) {
        slot.replay.erase(slot.replay.begin());
      }
      slot.replay.push_back(
          Keep(ReplayChunk{.first_step = first,
                           .steps = task.chunk.steps,
                           .inputs = std::move(task.chunk.inputs),
                           .outputs = outputs}));
    } else if (!slot.replay.empty()) {
      // Not retryable by index: a record before it would no longer end at
      // next_step.
      slot.replay.clear();
      slot.replay.shrink_to_fit();
    }
    Publish(slot, /*used=*/true);
    MarkDirty(slot);
  }

  // Takes one batch and runs it. Returns when to run again: now if more may
  // be ready, a partial batch's due time, or InfiniteFuture when idle.
  absl::Time RunOneBatch(model::Workspace& workspace) {
    const absl::Time taken_at = absl::Now();
    const absl::Time wake = queue_.TakeBatch(
        taken_at, executor_.pool_.flushing(), batch_, expired_);
    for (Task& t : expired_) {
      const bool cancelled = t.cancelled && t.cancelled();
      executor_.CountExpired();
      t.done(cancelled ? absl::CancelledError("the call was cancelled")
                       : absl::DeadlineExceededError(
                             "the call's deadline passed while it was queued"));
    }
    expired_.clear();
    FreeIdleEphemeral();  // a stateless call may have expired in the queue
    if (batch_.entries.empty()) return wake;

    const model::Model& m = *executor_.model_->model;
    const size_t n = batch_.entries.size();
    results_.clear();
    refs_.clear();
    ran_.clear();
    for (size_t i = 0; i < n; ++i) {
      Slot& slot = *static_cast<Slot*>(batch_.entries[i]);
      const Chunk& chunk = batch_.tasks[i].chunk;
      if (auto decided = Decide(slot, chunk)) {
        results_.push_back(*std::move(decided));
        continue;
      }
      ChunkResult r;
      r.steps = chunk.steps;
      r.output_size = m.output_size();
      r.outputs.resize(static_cast<size_t>(chunk.steps) * m.output_size());
      if (chunk.explain) {
        r.explain.resize(static_cast<size_t>(chunk.steps) * m.explain_size());
      }
      results_.push_back(std::move(r));
      ran_.push_back(i);
    }
    for (size_t i : ran_) {
      Slot& slot = *static_cast<Slot*>(batch_.entries[i]);
      refs_.push_back(model::SequenceRef{
          batch_.tasks[i].chunk.inputs.data(), batch_.tasks[i].chunk.steps,
          slot.state.data(), results_[i]->outputs.data(),
          batch_.tasks[i].chunk.explain ? results_[i]->explain.data()
                                        : nullptr});
    }
    const absl::Time started = absl::Now();
    // The state is updated in place: the shard is its only owner.
    const absl::Status status =
        refs_.empty() ? absl::OkStatus() : m.RunBatch(refs_, workspace);
    const absl::Duration compute = absl::Now() - started;
    int64_t steps_run = 0;
    for (size_t i : ran_) {
      Slot& slot = *static_cast<Slot*>(batch_.entries[i]);
      if (!status.ok()) {
        results_[i] = status;
        continue;
      }
      steps_run += batch_.tasks[i].chunk.steps;
      if (slot.session && batch_.tasks[i].chunk.explain) {
        slot.session->AddToSummary(results_[i]->explain.data(),
                                   batch_.tasks[i].chunk.steps);
      }
      if (slot.session) {
        Commit(slot, batch_.tasks[i], results_[i]->outputs);
        results_[i]->next_step = slot.next_step;
      }
    }
    executor_.RecordBatch(batch_, started, compute, steps_run);
    for (size_t i = 0; i < n; ++i) {
      if (results_[i].ok()) {
        results_[i]->model = executor_.model_.get();
        const Slot& slot = *static_cast<Slot*>(batch_.entries[i]);
        if (slot.session) results_[i]->durable_step = slot.session->Durable();
      }
      batch_.tasks[i].done(std::move(results_[i]));
    }
    const absl::Time finished = absl::Now();
    queue_.Finish(batch_, finished);
    for (QueueEntry* e : batch_.entries) {
      Slot* slot = static_cast<Slot*>(e);
      if (slot->session != nullptr && BatchQueue::Idle(*slot) &&
          !slot->deferred.empty()) {
        DrainDeferred(slot);
      }
    }
    batch_.clear();
    FreeIdleEphemeral();
    return queue_.empty() ? absl::InfiniteFuture() : finished;
  }

  // Stateless calls' slots whose chunk has run or left the queue.
  void FreeIdleEphemeral() {
    ephemeral_.erase(std::remove_if(ephemeral_.begin(), ephemeral_.end(),
                                    [](const std::unique_ptr<Slot>& s) {
                                      return BatchQueue::Idle(*s);
                                    }),
                     ephemeral_.end());
  }

  friend class ModelExecutor;
  ModelExecutor& executor_;
  // Stateless calls' slots, until their chunk is done.
  std::vector<std::unique_ptr<Slot>> ephemeral_;

  absl::Mutex mu_;
  std::vector<Op> inbox_ ABSL_GUARDED_BY(mu_);
  // In the pool's run queue or running; cleared only by Run when idle.
  bool scheduled_ ABSL_GUARDED_BY(mu_) = false;
  // The earliest timer asked of the pool and not yet come (InfiniteFuture:
  // none).
  absl::Time timer_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();

  // Owned by the strand: touched only inside Run.
  model::Workspace* workspace_ = nullptr;  // Run's
  std::vector<Op> ops_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Slot>> slots_;
  // Serials of the slots changed since the last checkpoint began.
  std::vector<uint64_t> dirty_;
  // State buffers of committed records, from the writer, for the next
  // records taken (at most a slice's worth is held here).
  std::vector<std::vector<float>> spares_;
  struct PendingCheckpoint {
    ModelExecutor::RecordsTaken taken;
    std::vector<uint64_t> serials;  // to take, from `next` on
    size_t next = 0;
    std::vector<StoreWriter::Item> records;
  };
  std::optional<PendingCheckpoint> checkpoint_;
  BatchQueue queue_;
  Batch batch_;
  std::vector<Task> expired_;
  std::vector<absl::StatusOr<ChunkResult>> results_;
  std::vector<model::SequenceRef> refs_;
  std::vector<size_t> ran_;
};

ModelExecutor::ModelExecutor(std::shared_ptr<const LoadedModel> model,
                             WorkerPool& pool, ExecutorOptions options,
                             std::atomic<int64_t>* queued_steps)
    : model_(std::move(model)),
      pool_(pool),
      options_(std::move(options)),
      queued_steps_(queued_steps) {
  for (int i = 0; i < pool_.shards(); ++i) {
    shards_.push_back(std::make_unique<Shard>(*this));
  }
  stats_.model = model_->name;
  stats_.version = model_->version;
}

ModelExecutor::~ModelExecutor() = default;

ModelExecutor::Shard& ModelExecutor::ShardOf(uint64_t serial) {
  return *shards_[serial % shards_.size()];
}

void ModelExecutor::PostToSession(Op op, bool run_here) {
  Shard& shard = ShardOf(op.session->serial);
  shard.Post(std::move(op), run_here);
}

absl::Status ModelExecutor::Admit(const Task& task) {
  return AdmitSteps(task.chunk.steps);
}

absl::Status ModelExecutor::AdmitSteps(int64_t steps) {
  const int64_t before = queued_steps_->fetch_add(steps);
  if (before + steps <= options_.max_queued_steps) return absl::OkStatus();
  queued_steps_->fetch_sub(steps);
  RecordRejected();
  return absl::ResourceExhaustedError(
      absl::StrCat("the server's queue holds ", before, " steps; ", steps,
                   " more would pass its limit of ", options_.max_queued_steps,
                   " (--max-queued-steps); retry later"));
}

void ModelExecutor::Install(std::shared_ptr<SessionHandle> session,
                            SlotInit init) {
  Op op;
  op.kind = Op::Kind::kInstall;
  op.session = std::move(session);
  op.init = std::move(init);
  PostToSession(std::move(op));
}

void ModelExecutor::Checkpoint(RecordsTaken taken) {
  for (const std::unique_ptr<Shard>& shard : shards_) {
    Op op;
    op.kind = Op::Kind::kCheckpoint;
    op.taken = taken;
    shard->Post(std::move(op));
  }
}

void ModelExecutor::RunChunk(std::shared_ptr<SessionHandle> session,
                             Task task) {
  if (absl::Status s = Admit(task); !s.ok()) return task.done(s);
  if (task.sender == 0) task.sender = session->serial;
  Op op;
  op.kind = Op::Kind::kChunk;
  op.session = std::move(session);
  const bool run_here = RunsHere(task);
  op.task = std::move(task);
  PostToSession(std::move(op), run_here);
}

void ModelExecutor::RunStateless(Task task) {
  if (absl::Status s = Admit(task); !s.ok()) return task.done(s);
  Op op;
  op.kind = Op::Kind::kStateless;
  const bool run_here = RunsHere(task);
  op.task = std::move(task);
  op.keep_alive = shared_from_this();
  // Spread stateless calls over the shards; they share no state.
  ShardOf(stateless_counter_.fetch_add(1, std::memory_order_relaxed))
      .Post(std::move(op), run_here);
}

void ModelExecutor::FailChunk(std::shared_ptr<SessionHandle> session,
                              Task::Done done, absl::Status error) {
  Op op;
  op.kind = Op::Kind::kFailChunk;
  op.session = std::move(session);
  op.task.done = std::move(done);
  op.error = std::move(error);
  PostToSession(std::move(op));
}

void ModelExecutor::Reset(std::shared_ptr<SessionHandle> session,
                          StatusDone done) {
  Op op;
  op.kind = Op::Kind::kReset;
  op.session = std::move(session);
  op.status_done = std::move(done);
  PostToSession(std::move(op));
}

void ModelExecutor::Close(std::shared_ptr<SessionHandle> session,
                          StatusDone done) {
  Op op;
  op.kind = Op::Kind::kClose;
  op.session = std::move(session);
  op.status_done = std::move(done);
  PostToSession(std::move(op));
}

void ModelExecutor::Export(std::shared_ptr<SessionHandle> session,
                           SnapshotDone done) {
  Op op;
  op.kind = Op::Kind::kExport;
  op.session = std::move(session);
  op.snapshot_done = std::move(done);
  PostToSession(std::move(op));
}

void ModelExecutor::Forecast(std::shared_ptr<SessionHandle> session,
                             ForecastSpec spec, std::function<bool()> cancelled,
                             absl::Time deadline, ForecastDone done) {
  const int64_t steps = model::ForecastSteps(spec.horizon, spec.samples);
  if (absl::Status s = AdmitSteps(steps); !s.ok()) return done(s);
  Op op;
  op.kind = Op::Kind::kForecast;
  op.session = std::move(session);
  op.forecast = spec;
  op.forecast_done = std::move(done);
  op.task.cancelled = std::move(cancelled);  // for its steps' tasks
  op.task.deadline = deadline;
  PostToSession(std::move(op));
}

void ModelExecutor::RecordRejected() {
  absl::MutexLock lock(&stats_mu_);
  ++stats_.rejected;
}

void ModelExecutor::CountExpired() {
  absl::MutexLock lock(&stats_mu_);
  ++stats_.requests;
  ++stats_.expired;
}

void ModelExecutor::RecordBatch(const Batch& batch, absl::Time started,
                                absl::Duration compute, int64_t steps_run) {
  absl::MutexLock lock(&stats_mu_);
  stats_.requests += batch.tasks.size();
  stats_.steps += steps_run;
  ++stats_.batches;
  stats_.batched_chunks += static_cast<int64_t>(batch.tasks.size());
  Count(stats_.batch_size_histogram, static_cast<int64_t>(batch.tasks.size()));
  for (const Task& t : batch.tasks) {
    const int64_t wait_us = absl::ToInt64Microseconds(started - t.enqueued);
    Count(stats_.queue_wait_histogram, wait_us);
    stats_.queue_wait_us_total += wait_us;
  }
  stats_.compute_us_total += absl::ToInt64Microseconds(compute);
  Count(stats_.compute_histogram, absl::ToInt64Microseconds(compute));
}

ModelStats ModelExecutor::Stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

std::vector<Strand*> ModelExecutor::strands() const {
  std::vector<Strand*> out;
  for (const std::unique_ptr<Shard>& shard : shards_)
    out.push_back(shard.get());
  return out;
}

void ModelExecutor::DropSlots() {
  for (const std::unique_ptr<Shard>& shard : shards_) {
    // Moved out first: a slot's session may hold the last reference to
    // this executor.
    auto slots = std::move(shard->slots_);
    shard->slots_.clear();
    auto ephemeral = std::move(shard->ephemeral_);
    shard->ephemeral_.clear();
    shard->dirty_.clear();
    shard->checkpoint_.reset();
  }
}

}  // namespace lstmserve::server
