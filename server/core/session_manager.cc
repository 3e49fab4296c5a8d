#include "server/core/session_manager.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/forecast.h"

namespace lstmserve::server {
namespace {

uint64_t NextSerial() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

absl::Status NotFound(absl::string_view id) {
  // The same words for a missing session and another owner's, so that ids
  // cannot be probed (and the same as the executor's for a closed one).
  return absl::NotFoundError(absl::StrCat(
      "session ", Quote(id), " not found (closed, expired, or never created)"));
}

absl::Status ShuttingDown() {
  return absl::UnavailableError("the server is shutting down");
}

}  // namespace

SessionManager::SessionManager(ModelRegistry& models, CoreOptions options)
    : models_(models), options_(std::move(options)) {
  std::random_device rd;
  id_salt_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  incarnations_.seed((static_cast<uint64_t>(rd()) << 32) ^ rd());
}

absl::StatusOr<std::unique_ptr<SessionManager>> SessionManager::Create(
    ModelRegistry& models, CoreOptions options) {
  if (options.max_sessions < 1 || options.threads < 0 ||
      options.limits.max_steps_per_request < 1 ||
      options.limits.max_replay_chunks < 0 || options.max_queued_steps < 1 ||
      options.batching.max_batch < 1 ||
      options.idle_timeout <= absl::ZeroDuration() ||
      options.checkpoint_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "core options: threads at least 0; max_sessions, "
        "max_steps_per_request, "
        "max_batch and max_queued_steps must be at least 1, "
        "max_replay_chunks and checkpoint_interval at least 0, "
        "idle_timeout positive");
  }
  auto manager = std::unique_ptr<SessionManager>(
      new SessionManager(models, std::move(options)));
  SessionManager& m = *manager;
  m.pool_ = std::make_unique<WorkerPool>(m.options_.threads);
  ExecutorOptions& exec = m.executor_options_;
  if (m.options_.store != nullptr) {
    m.writer_ = std::make_unique<StoreWriter>(*m.options_.store);
    exec.writer = m.writer_.get();
  }
  exec.batching = m.options_.batching;
  exec.max_queued_steps = m.options_.max_queued_steps;
  exec.max_replay_chunks = m.options_.limits.max_replay_chunks;
  exec.clock = m.options_.clock;
  {
    absl::MutexLock lock(&m.versions_mu_);
    for (const std::shared_ptr<const LoadedModel>& model : models.All()) {
      m.executors_[model.get()] = m.MakeExecutor(model);
    }
  }
  if (m.writer_ && m.options_.threads > 0 &&
      m.options_.checkpoint_interval > absl::ZeroDuration()) {
    m.checkpointer_ = std::thread([&m] {
      pthread_setname_np(pthread_self(), "lstm-checkpoint");
      m.CheckpointLoop();
    });
  }
  return manager;
}

SessionManager::~SessionManager() { Stop(); }

void SessionManager::BeginShutdown() {
  shutting_down_.store(true);
  if (pool_) pool_->Flush();  // queued chunks run now, without partners
}

void SessionManager::Stop() {
  shutting_down_.store(true);
  if (stopped_.exchange(true)) return;
  if (checkpointer_.joinable()) {
    stop_checkpointing_.Notify();
    checkpointer_.join();
  }
  // The last checkpoint: the pool runs it before it stops, then the writer
  // commits it before it stops.
  if (writer_) CheckpointNow();
  if (pool_) pool_->Stop();
  if (writer_) writer_->Stop();
  // Sessions hold their executors and the executors' slots hold the
  // sessions: drop both, then free every executor.
  {
    absl::MutexLock lock(&mu_);
    sessions_.clear();
  }
  for (const std::shared_ptr<ModelExecutor>& e : AllExecutors()) e->DropSlots();
  {
    absl::MutexLock lock(&versions_mu_);
    executors_.clear();
    draining_.clear();
  }
  Reap();
}

std::shared_ptr<ModelExecutor> SessionManager::MakeExecutor(
    std::shared_ptr<const LoadedModel> model) {
  std::shared_ptr<ModelExecutor> executor(
      new ModelExecutor(std::move(model), *pool_, executor_options_,
                        &queued_steps_),
      [this](ModelExecutor* e) { Bury(e); });
  all_executors_.push_back(executor);
  return executor;
}

void SessionManager::Bury(ModelExecutor* executor) {
  absl::MutexLock lock(&graveyard_mu_);
  graveyard_.push_back(executor);
}

std::vector<std::string> SessionManager::Reap() {
  std::vector<ModelExecutor*> dead;
  {
    absl::MutexLock lock(&graveyard_mu_);
    dead.swap(graveyard_);
  }
  std::vector<std::string> freed;
  for (ModelExecutor* e : dead) {
    // Nothing can post to it any more; its strand may still be finishing
    // the operation that dropped the last reference.
    pool_->Quiesce(e->strands());
    freed.push_back(absl::StrCat(e->model()->name, " ", e->model()->version));
    delete e;
  }
  if (!dead.empty()) {
    absl::MutexLock lock(&versions_mu_);
    all_executors_.erase(
        std::remove_if(
            all_executors_.begin(), all_executors_.end(),
            [](const std::weak_ptr<ModelExecutor>& w) { return w.expired(); }),
        all_executors_.end());
  }
  return freed;
}

std::vector<std::shared_ptr<ModelExecutor>> SessionManager::AllExecutors()
    const {
  absl::MutexLock lock(&versions_mu_);
  std::vector<std::shared_ptr<ModelExecutor>> all;
  for (const std::weak_ptr<ModelExecutor>& w : all_executors_) {
    if (std::shared_ptr<ModelExecutor> e = w.lock())
      all.push_back(std::move(e));
  }
  return all;
}

absl::StatusOr<SessionManager::Served> SessionManager::Resolve(
    absl::string_view name, int64_t version) const {
  absl::MutexLock lock(&versions_mu_);
  absl::StatusOr<std::shared_ptr<const LoadedModel>> model =
      models_.Get(name, version);
  if (!model.ok()) return model.status();
  auto it = executors_.find(model->get());
  if (it == executors_.end()) {
    return absl::InternalError("a served version has no executor");
  }
  return Served{*std::move(model), it->second};
}

absl::Status SessionManager::LoadVersion(
    std::shared_ptr<const LoadedModel> model) {
  absl::MutexLock lock(&versions_mu_);
  if (absl::Status s = models_.Add(model); !s.ok()) return s;
  executors_[model.get()] = MakeExecutor(model);
  return absl::OkStatus();
}

absl::Status SessionManager::UnloadVersion(absl::string_view name,
                                           int64_t version,
                                           absl::Duration drain) {
  absl::MutexLock lock(&versions_mu_);
  std::shared_ptr<const LoadedModel> model = models_.Remove(name, version);
  if (model == nullptr) {
    return absl::NotFoundError(absl::StrCat("model ", Quote(name), " version ",
                                            version, " is not served"));
  }
  auto it = executors_.find(model.get());
  std::weak_ptr<ModelExecutor> executor = it->second;
  executors_.erase(it);  // its sessions keep it alive while they run
  draining_.push_back(
      Draining{std::move(model), std::move(executor), Now() + drain});
  return absl::OkStatus();
}

int SessionManager::draining_versions() const {
  absl::MutexLock lock(&versions_mu_);
  int n = 0;
  for (const Draining& d : draining_) n += d.executor.expired() ? 0 : 1;
  return n;
}

SessionManager::Maintained SessionManager::Maintain() {
  Maintained done;
  done.expired_idle = ExpireIdle();
  // Versions past their drain time: their sessions are closed.
  std::vector<const LoadedModel*> due;
  {
    absl::MutexLock lock(&versions_mu_);
    const absl::Time now = Now();
    for (auto it = draining_.begin(); it != draining_.end();) {
      if (it->executor.expired()) {
        it = draining_.erase(it);
      } else {
        if (now >= it->deadline) due.push_back(it->model.get());
        ++it;
      }
    }
  }
  if (!due.empty()) {
    std::vector<std::shared_ptr<SessionHandle>> closing;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (std::find(due.begin(), due.end(), it->second->model.get()) !=
            due.end()) {
          closing.push_back(it->second);
          it = EraseLocked(it);
        } else {
          ++it;
        }
      }
    }
    for (std::shared_ptr<SessionHandle>& session : closing) {
      ModelExecutor* executor = session->executor.get();
      executor->Close(std::move(session), [](absl::Status) {});
    }
    done.closed_for_reload = static_cast<int>(closing.size());
    counters_.reloaded += done.closed_for_reload;
  }
  done.versions_freed = Reap();
  return done;
}

std::map<std::pair<std::string, int64_t>, int>
SessionManager::SessionsByVersion() const {
  std::map<std::pair<std::string, int64_t>, int> counts;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, s] : sessions_) {
    ++counts[{s->model->name, s->model->version}];
  }
  return counts;
}

void SessionManager::CheckpointLoop() {
  while (!stop_checkpointing_.WaitForNotificationWithTimeout(
      options_.checkpoint_interval)) {
    // A round still being handed over, or a store still busy with the
    // last one: the changed sessions stay marked and go in the next round.
    if (round_parts_.load() > 0 || writer_->stats().pending > 0) continue;
    CheckpointNow();
  }
}

void SessionManager::CheckpointNow() {
  if (!writer_) return;
  const std::vector<std::shared_ptr<ModelExecutor>> executors = AllExecutors();
  int parts = 0;
  for (const auto& executor : executors) parts += executor->shards();
  round_parts_.store(parts);
  writer_->BeginRound(parts);
  for (const auto& executor : executors) {
    executor->Checkpoint([this](std::vector<StoreWriter::Item> records) {
      writer_->SubmitRoundPart(std::move(records));
      round_parts_.fetch_sub(1);
    });
  }
}

absl::Status SessionManager::FlushStore() {
  return writer_ ? writer_->Flush() : absl::OkStatus();
}

StoreWriter::Stats SessionManager::StoreStats() const {
  return writer_ ? writer_->stats() : StoreWriter::Stats{};
}

absl::StatusOr<std::shared_ptr<SessionHandle>> SessionManager::Find(
    const std::string& owner, absl::string_view id) const {
  if (id.empty()) return absl::InvalidArgumentError("session_id is empty");
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second->owner != owner) return NotFound(id);
  return it->second;
}

absl::Status SessionManager::CheckCapacityLocked(
    const std::string& owner) const {
  if (static_cast<int>(sessions_.size()) >= options_.max_sessions) {
    counters_.refused.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrCat(
        "the server holds ", sessions_.size(),
        " sessions, its limit (--max-sessions); close sessions or retry "
        "later"));
  }
  auto owned = sessions_per_owner_.find(owner);
  if (owned != sessions_per_owner_.end() &&
      owned->second >= options_.max_sessions_per_identity) {
    counters_.refused.fetch_add(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrCat(
        "your identity holds ", owned->second,
        " sessions, the limit per identity (--max-sessions-per-identity); "
        "close sessions or retry later"));
  }
  return absl::OkStatus();
}

void SessionManager::AddLocked(std::shared_ptr<SessionHandle> session) {
  ++sessions_per_owner_[session->owner];
  const std::string id = session->id;
  sessions_[id] = std::move(session);
}

SessionManager::SessionMap::iterator SessionManager::EraseLocked(
    SessionMap::iterator it) {
  auto owned = sessions_per_owner_.find(it->second->owner);
  if (owned != sessions_per_owner_.end() && --owned->second <= 0) {
    sessions_per_owner_.erase(owned);
  }
  return sessions_.erase(it);
}

std::string SessionManager::NewIdLocked() {
  // Unique within this process, and unlikely to collide with other servers'
  // ids (sessions move between servers by export/import).
  std::string id;
  do {
    id = absl::StrFormat("s-%016x-%x", id_salt_, ++id_counter_);
  } while (sessions_.count(id));
  return id;
}

absl::Status SessionManager::CheckCreateLocked(const std::string& owner,
                                               absl::string_view id) const {
  if (sessions_.count(id)) {
    // Another owner's id is "already exists" too: create cannot take it
    // (ids are one namespace; docs/SECURITY.md).
    return absl::AlreadyExistsError(
        absl::StrCat("session ", Quote(id), " already exists"));
  }
  return CheckCapacityLocked(owner);
}

std::shared_ptr<SessionHandle> SessionManager::InstallLocked(
    const std::string& owner, absl::string_view id, const Served& served,
    SlotInit init, StoreWriter::Done stored, Via via) {
  std::atomic<int64_t>& counter = via == Via::kCreate ? counters_.created
                                  : via == Via::kStream
                                      ? counters_.created_on_stream
                                      : counters_.imported;
  counter.fetch_add(1, std::memory_order_relaxed);
  auto handle = std::make_shared<SessionHandle>();
  handle->id = id.empty() ? NewIdLocked() : std::string(id);
  handle->owner = owner;
  handle->serial = NextSerial();
  handle->model = served.model;
  handle->executor = served.executor;
  handle->created = Now();
  handle->incarnation = incarnations_() >> 1;  // fits SQLite's INTEGER
  handle->stored = writer_ != nullptr;
  handle->next_step.store(init.next_step);
  handle->last_used_unix_us.store(absl::ToUnixMicros(handle->created));
  AddLocked(handle);
  init.put = true;
  init.stored = std::move(stored);
  handle->executor->Install(handle, std::move(init));
  return handle;
}

void SessionManager::Discard(const std::shared_ptr<SessionHandle>& session) {
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(session->id);
    if (it == sessions_.end() || it->second != session) return;
    EraseLocked(it);
  }
  session->executor->Close(session, [](absl::Status) {});
}

void SessionManager::SubmitChunk(const Caller& caller,
                                 const ChunkRequest& request, ChunkDone done) {
  if (shutting_down()) return done(ShuttingDown());
  Task task;
  task.cancelled = caller.cancelled;
  task.deadline = caller.deadline;

  if (request.session_id.empty()) {  // stateless
    if (request.first_step) {
      return done(absl::InvalidArgumentError(
          "first_step is set on a stateless call (no session_id); "
          "exactly-once steps need a session"));
    }
    absl::StatusOr<Served> served = Resolve(request.model, request.version);
    if (!served.ok()) return done(served.status());
    absl::StatusOr<Chunk> chunk =
        MakeChunk(request.shape, request.values, std::nullopt, request.explain,
                  *served->model, options_.limits);
    if (!chunk.ok()) return done(chunk.status());
    task.chunk = *std::move(chunk);
    task.sender = caller.stateless_sender;
    task.done = std::move(done);
    return served->executor->RunStateless(std::move(task));
  }

  std::shared_ptr<SessionHandle> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(request.session_id);
    if (it != sessions_.end() && it->second->owner == caller.owner) {
      session = it->second;
    } else if (it == sessions_.end() && request.create_if_missing) {
      if (absl::Status s = ValidateSessionId(request.session_id); !s.ok()) {
        return done(s);
      }
      absl::StatusOr<Served> served = Resolve(request.model, request.version);
      if (!served.ok()) return done(served.status());
      if (absl::Status s = CheckCreateLocked(caller.owner, request.session_id);
          !s.ok()) {
        return done(s);
      }
      // Not waited for: the chunk's answer says how durable it is.
      session = InstallLocked(caller.owner, request.session_id, *served,
                              SlotInit{}, nullptr, Via::kStream);
    } else {
      return done(NotFound(request.session_id));
    }
  }
  const LoadedModel& m = *session->model;
  ModelExecutor* executor = session->executor.get();
  // A refused chunk is answered in order with the session's other requests.
  if ((!request.model.empty() && request.model != m.name) ||
      (request.version != 0 && request.version != m.version)) {
    absl::Status mismatch = absl::InvalidArgumentError(absl::StrCat(
        "session ", Quote(session->id), " runs model ", Quote(m.name),
        " version ", m.version, "; the request names ", Quote(request.model),
        " version ", request.version));
    return executor->FailChunk(std::move(session), std::move(done),
                               std::move(mismatch));
  }
  absl::StatusOr<Chunk> chunk =
      MakeChunk(request.shape, request.values, request.first_step,
                request.explain, m, options_.limits);
  if (!chunk.ok()) {
    return executor->FailChunk(std::move(session), std::move(done),
                               chunk.status());
  }
  session->last_used_unix_us.store(absl::ToUnixMicros(Now()),
                                   std::memory_order_relaxed);
  task.chunk = *std::move(chunk);
  task.done = std::move(done);
  executor->RunChunk(std::move(session), std::move(task));
}

void SessionManager::CreateSession(const std::string& owner,
                                   absl::string_view id,
                                   absl::string_view model_name,
                                   int64_t version,
                                   std::vector<float> initial_state,
                                   InfoDone done) {
  if (shutting_down()) return done(ShuttingDown());
  if (!id.empty()) {
    if (absl::Status s = ValidateSessionId(id); !s.ok()) return done(s);
  }
  absl::StatusOr<Served> served = Resolve(model_name, version);
  if (!served.ok()) return done(served.status());
  if (!initial_state.empty()) {
    if (absl::Status s = ValidateState(
            initial_state, served->model->model->state_size(), "initial_state");
        !s.ok()) {
      return done(s);
    }
  }
  SlotInit init;
  init.initial_state = std::move(initial_state);
  InstallAndReply(owner, id, *served, std::move(init), Via::kCreate,
                  std::move(done));
}

void SessionManager::InstallAndReply(const std::string& owner,
                                     absl::string_view id, const Served& served,
                                     SlotInit init, Via via, InfoDone done) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckCreateLocked(owner, id); !s.ok()) {
    mu_.Unlock();
    done(s);
    mu_.Lock();
    return;
  }
  if (!writer_) {
    std::shared_ptr<SessionHandle> session =
        InstallLocked(owner, id, served, std::move(init), nullptr, via);
    SessionInfo info = session->Info();
    mu_.Unlock();
    done(std::move(info));
    mu_.Lock();
    return;
  }
  // Replied to once the session is stored. `created` is set before `stored`
  // can read it: the writer runs it after the shard has run the install,
  // which is posted under mu_, and `stored` takes mu_ first.
  auto created = std::make_shared<std::shared_ptr<SessionHandle>>();
  auto stored = [this, created,
                 done = std::move(done)](absl::Status status) mutable {
    std::shared_ptr<SessionHandle> session;
    {
      absl::MutexLock relock(&mu_);
      session = *created;
    }
    if (!status.ok()) {
      Discard(session);
      return done(status);
    }
    done(session->Info());
  };
  *created =
      InstallLocked(owner, id, served, std::move(init), std::move(stored), via);
}

bool SessionManager::HasSession(const std::string& owner,
                                absl::string_view id) const {
  return Find(owner, id).ok();
}

absl::StatusOr<SessionInfo> SessionManager::GetSession(
    const std::string& owner, absl::string_view id) const {
  absl::StatusOr<std::shared_ptr<SessionHandle>> s = Find(owner, id);
  if (!s.ok()) return s.status();
  SessionInfo info = (*s)->Info();
  (*s)->ReadSummary(info);
  return info;
}

void SessionManager::ResetSession(const std::string& owner,
                                  absl::string_view id, InfoDone done) {
  absl::StatusOr<std::shared_ptr<SessionHandle>> s = Find(owner, id);
  if (!s.ok()) return done(s.status());
  std::shared_ptr<SessionHandle> session = *s;
  ModelExecutor* executor = session->executor.get();
  executor->Reset(
      session, [session, done = std::move(done)](absl::Status status) mutable {
        if (!status.ok()) return done(status);
        done(session->Info());
      });
}

void SessionManager::CloseSession(const std::string& owner,
                                  absl::string_view id, StatusDone done) {
  if (id.empty()) {
    return done(absl::InvalidArgumentError("session_id is empty"));
  }
  std::shared_ptr<SessionHandle> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second->owner != owner) {
      return done(NotFound(id));
    }
    session = it->second;
    EraseLocked(it);
  }
  counters_.closed.fetch_add(1, std::memory_order_relaxed);
  ModelExecutor* executor = session->executor.get();
  executor->Close(std::move(session), std::move(done));
}

void SessionManager::ExportSession(const std::string& owner,
                                   absl::string_view id, SnapshotDone done) {
  absl::StatusOr<std::shared_ptr<SessionHandle>> s = Find(owner, id);
  if (!s.ok()) return done(s.status());
  ModelExecutor* executor = (*s)->executor.get();
  executor->Export(*std::move(s), std::move(done));
}

void SessionManager::Forecast(const Caller& caller, absl::string_view id,
                              const ForecastSpec& spec, ForecastDone done) {
  if (shutting_down()) return done(ShuttingDown());
  if (id.empty()) {
    return done(absl::InvalidArgumentError(
        "session_id is empty; Forecast runs from a session's state"));
  }
  absl::StatusOr<std::shared_ptr<SessionHandle>> s = Find(caller.owner, id);
  if (!s.ok()) return done(s.status());
  const LoadedModel& m = *(*s)->model;
  if (absl::Status v = ValidateForecast(spec, m, options_.limits); !v.ok()) {
    return done(v);
  }
  if (absl::Status v =
          model::CheckForecast(m.model->config(), spec.samples, m.name);
      !v.ok()) {
    return done(v);
  }
  ModelExecutor* executor = (*s)->executor.get();
  executor->Forecast(*std::move(s), spec, caller.cancelled, caller.deadline,
                     std::move(done));
}

void SessionManager::ImportSession(const std::string& owner,
                                   SessionSnapshot snap, InfoDone done) {
  if (shutting_down()) return done(ShuttingDown());
  if (absl::Status s = ValidateSessionId(snap.id); !s.ok()) return done(s);
  if (snap.version <= 0) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("snapshot.version is ", snap.version,
                     "; a snapshot names the exact version it ran on")));
  }
  absl::StatusOr<Served> served = Resolve(snap.model, snap.version);
  if (!served.ok()) return done(served.status());
  if (absl::Status s = ValidateSnapshot(snap, *served->model, options_.limits);
      !s.ok()) {
    return done(s);
  }
  // A reset returns to the zero state: the snapshot's origin is unknown.
  SlotInit init;
  init.state = std::move(snap.state);
  init.next_step = snap.next_step;
  init.replay = std::move(snap.replay);
  InstallAndReply(owner, snap.id, *served, std::move(init), Via::kImport,
                  std::move(done));
}

SessionManager::Restored SessionManager::Restore(
    std::vector<SessionRecord> records) {
  Restored result;
  for (SessionRecord& r : records) {
    auto problem = [&](absl::string_view why) {
      result.problems.push_back(absl::StrCat(
          "session ", Quote(r.id), " (model ", Quote(r.model), " version ",
          r.version, ", step ", r.next_step, ") not restored: ", why));
    };
    absl::StatusOr<Served> served =
        r.version > 0 ? Resolve(r.model, r.version)
                      : absl::InvalidArgumentError("its version is not > 0");
    if (!served.ok()) {
      problem(served.status().message());
      continue;
    }
    const std::shared_ptr<const LoadedModel>* model = &served->model;
    if (absl::Status s = ValidateRecord(r, **model, options_.limits); !s.ok()) {
      problem(s.message());
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (sessions_.count(r.id)) {
      problem("a session with its id exists already");
      continue;
    }
    auto handle = std::make_shared<SessionHandle>();
    handle->id = r.id;
    handle->owner = r.owner;
    handle->serial = NextSerial();
    handle->model = *model;
    handle->executor = served->executor;
    handle->created = absl::FromUnixMicros(r.created_unix_us);
    handle->incarnation = r.incarnation;
    handle->stored = writer_ != nullptr;
    handle->next_step.store(r.next_step);
    handle->durable_step.store(r.next_step);
    // Time the server was down is not idle time: clients could not reach
    // their sessions then.
    handle->last_used_unix_us.store(absl::ToUnixMicros(Now()));
    AddLocked(handle);
    SlotInit init;
    init.initial_state = std::move(r.initial_state);
    init.state = std::move(r.state);
    init.next_step = r.next_step;
    init.replay = std::move(r.replay);
    handle->executor->Install(handle, std::move(init));  // already stored
    ++result.sessions;
    counters_.restored.fetch_add(1, std::memory_order_relaxed);
  }
  return result;
}

SessionManager::Page SessionManager::ListSessions(
    const std::string& owner, bool all_owners, int page_size,
    absl::string_view page_token) const {
  Page page;
  absl::MutexLock lock(&mu_);
  auto it = page_token.empty() ? sessions_.begin()
                               : sessions_.upper_bound(page_token);
  for (; it != sessions_.end(); ++it) {
    if (!all_owners && it->second->owner != owner) continue;
    if (static_cast<int>(page.sessions.size()) == page_size) {
      page.next_page_token = page.sessions.back().id;
      break;
    }
    page.sessions.push_back(it->second->Info());
  }
  return page;
}

int SessionManager::ExpireIdle() {
  const int64_t cutoff_us = absl::ToUnixMicros(Now() - options_.idle_timeout);
  std::vector<std::shared_ptr<SessionHandle>> expired;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second->last_used_unix_us.load(std::memory_order_relaxed) <=
          cutoff_us) {
        expired.push_back(it->second);
        it = EraseLocked(it);
      } else {
        ++it;
      }
    }
  }
  for (std::shared_ptr<SessionHandle>& s : expired) {
    ModelExecutor* executor = s->executor.get();
    executor->Close(std::move(s), [](absl::Status) {});
  }
  counters_.expired.fetch_add(static_cast<int64_t>(expired.size()),
                              std::memory_order_relaxed);
  return static_cast<int>(expired.size());
}

SessionManager::SessionCounters SessionManager::Counters() const {
  SessionCounters c;
  c.created = counters_.created.load(std::memory_order_relaxed);
  c.created_on_stream =
      counters_.created_on_stream.load(std::memory_order_relaxed);
  c.imported = counters_.imported.load(std::memory_order_relaxed);
  c.restored = counters_.restored.load(std::memory_order_relaxed);
  c.closed = counters_.closed.load(std::memory_order_relaxed);
  c.expired = counters_.expired.load(std::memory_order_relaxed);
  c.reloaded = counters_.reloaded.load(std::memory_order_relaxed);
  c.refused = counters_.refused.load(std::memory_order_relaxed);
  return c;
}

std::vector<ModelStats> SessionManager::Stats() const {
  std::vector<ModelStats> out;
  for (const std::shared_ptr<ModelExecutor>& executor : AllExecutors()) {
    ModelStats s = executor->Stats();
    if (s.requests > 0 || s.rejected > 0) out.push_back(std::move(s));
  }
  std::sort(
      out.begin(), out.end(), [](const ModelStats& a, const ModelStats& b) {
        return std::tie(a.model, a.version) < std::tie(b.model, b.version);
      });
  return out;
}

int SessionManager::sessions() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(sessions_.size());
}

}  // namespace lstmserve::server
