#include "server/service.h"

#include <cmath>
#include <deque>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/grpc_status.h"
#include "spdlog/spdlog.h"

namespace lstmserve::server {
namespace {

// Sessions belong to the identity that created them. Until authentication
// exists every caller is the same anonymous identity.
std::string OwnerOf(const grpc::CallbackServerContext*) { return ""; }

// The call's deadline; InfiniteFuture when the client set none.
absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() -
                      std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

std::string ShapeString(const v1::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.shape(), ", "), "]");
}

void FillModelInfo(const LoadedModel& loaded, std::vector<int64_t> versions,
                   v1::ModelInfo* info) {
  const model::ModelConfig& c = loaded.model->config();
  info->set_name(loaded.name);
  info->set_version(loaded.version);
  for (int64_t v : versions) info->add_versions(v);
  info->set_cell(std::string(model::CellTypeName(c.cell)));
  info->set_input_size(c.input_size);
  info->set_output_size(c.output_size());
  info->set_hidden_size(c.hidden_size);
  info->set_num_layers(c.num_layers);
  info->set_proj_size(c.proj_size);
  if (c.head) {
    info->set_head_activation(
        std::string(model::ActivationName(c.head->activation)));
  }
  info->set_state_size(loaded.model->state_size());
  for (const std::string& n : c.input_names) info->add_input_names(n);
  for (const std::string& n : c.output_names) info->add_output_names(n);
  info->set_description(c.description);
}

void FillSessionInfo(const SessionInfo& s, v1::SessionInfo* info) {
  info->set_session_id(s.id);
  info->set_model(s.model);
  info->set_version(s.version);
  info->set_next_step(s.next_step);
  info->set_created_unix_ms(absl::ToUnixMillis(s.created));
  info->set_last_used_unix_ms(absl::ToUnixMillis(s.last_used));
  info->set_state_size(s.state_size);
}

void FillTensor(const std::vector<float>& values, int rows, int cols,
                v1::Tensor* t) {
  t->add_shape(rows);
  t->add_shape(cols);
  t->mutable_values()->Assign(values.begin(), values.end());
}

// Finishes a unary call with an absl::Status.
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx,
                                const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

LstmServeService::LstmServeService(const ModelRegistry& models,
                                   SessionStore& sessions, Scheduler& scheduler,
                                   ServiceOptions options)
    : models_(models),
      sessions_(sessions),
      scheduler_(scheduler),
      options_(options) {}

absl::StatusOr<Chunk> LstmServeService::MakeChunk(
    const v1::Tensor& inputs, const LoadedModel& loaded) const {
  const int width = loaded.model->input_size();
  const auto expected = [&] {
    return absl::StrCat("; model \"", loaded.name, "\" expects [T, ", width,
                        "]");
  };
  if (inputs.shape_size() != 2 || inputs.shape(1) != width ||
      inputs.shape(0) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("inputs has shape ", ShapeString(inputs), expected()));
  }
  const int64_t steps = inputs.shape(0);
  if (steps == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("inputs has no steps (shape ", ShapeString(inputs),
                     "); expected at least one"));
  }
  if (steps > options_.max_steps_per_request) {
    return absl::InvalidArgumentError(
        absl::StrCat("inputs has ", steps, " steps; at most ",
                     options_.max_steps_per_request,
                     " per request (--max-steps-per-request)"));
  }
  if (inputs.values_size() != steps * width) {
    return absl::InvalidArgumentError(absl::StrCat(
        "inputs has shape ", ShapeString(inputs), " but ", inputs.values_size(),
        " values; expected ", steps * width));
  }
  Chunk chunk;
  chunk.steps = static_cast<int>(steps);
  chunk.inputs.assign(inputs.values().begin(), inputs.values().end());
  if (!options_.allow_non_finite) {
    for (size_t i = 0; i < chunk.inputs.size(); ++i) {
      if (!std::isfinite(chunk.inputs[i])) {
        return absl::InvalidArgumentError(absl::StrCat(
            "inputs[", i / width, ", ", i % width, "] is ", chunk.inputs[i],
            "; inputs must be finite (one NaN would poison the session's "
            "state)"));
      }
    }
  }
  return chunk;
}

absl::StatusOr<std::shared_ptr<Session>> LstmServeService::FindSession(
    const std::string& id, const std::string& owner,
    const std::string& create_model, int64_t create_version) {
  if (id.empty()) {
    return absl::InvalidArgumentError("session_id is empty");
  }
  absl::StatusOr<std::shared_ptr<Session>> session = sessions_.Get(id, owner);
  if (session.ok() || create_model.empty() ||
      !absl::IsNotFound(session.status())) {
    return session;
  }
  absl::StatusOr<std::shared_ptr<const LoadedModel>> model =
      models_.Get(create_model, create_version);
  if (!model.ok()) return model.status();
  session = sessions_.Create(id, owner, *model);
  if (absl::IsAlreadyExists(session.status())) {
    return sessions_.Get(id, owner);  // another message created it first
  }
  return session;
}

grpc::ServerUnaryReactor* LstmServeService::ListModels(
    grpc::CallbackServerContext* ctx, const v1::ListModelsRequest*,
    v1::ListModelsResponse* response) {
  for (const std::string& name : models_.Names()) {
    absl::StatusOr<std::shared_ptr<const LoadedModel>> m = models_.Get(name);
    if (m.ok())
      FillModelInfo(**m, models_.Versions(name), response->add_models());
  }
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* LstmServeService::GetModel(
    grpc::CallbackServerContext* ctx, const v1::GetModelRequest* request,
    v1::ModelInfo* response) {
  absl::StatusOr<std::shared_ptr<const LoadedModel>> m =
      models_.Get(request->name(), request->version());
  if (m.ok()) FillModelInfo(**m, models_.Versions(request->name()), response);
  return Reply(ctx, m.status());
}

grpc::ServerUnaryReactor* LstmServeService::Predict(
    grpc::CallbackServerContext* ctx, const v1::PredictRequest* request,
    v1::PredictResponse* response) {
  std::shared_ptr<Session> session;
  if (request->session_id().empty()) {
    // Stateless: an ephemeral session from the zero state, never stored.
    absl::StatusOr<std::shared_ptr<const LoadedModel>> m =
        models_.Get(request->model(), request->version());
    if (!m.ok()) return Reply(ctx, m.status());
    absl::StatusOr<std::shared_ptr<Session>> s =
        Session::Create("", OwnerOf(ctx), *m, {}, sessions_.Now());
    if (!s.ok()) return Reply(ctx, s.status());
    session = *std::move(s);
  } else {
    absl::StatusOr<std::shared_ptr<Session>> s =
        sessions_.Get(request->session_id(), OwnerOf(ctx));
    if (!s.ok()) return Reply(ctx, s.status());
    session = *std::move(s);
    const LoadedModel& m = session->model();
    if ((!request->model().empty() && request->model() != m.name) ||
        (request->version() != 0 && request->version() != m.version)) {
      return Reply(ctx,
                   absl::InvalidArgumentError(absl::StrCat(
                       "session \"", session->id(), "\" runs model \"", m.name,
                       "\" version ", m.version, "; the request names \"",
                       request->model(), "\" version ", request->version())));
    }
  }
  absl::StatusOr<Chunk> chunk = MakeChunk(request->inputs(), session->model());
  if (!chunk.ok()) return Reply(ctx, chunk.status());
  if (request->has_first_step()) chunk->first_step = request->first_step();

  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const LoadedModel* model = &session->model();  // kept alive by the session
  const std::string id = request->session_id();
  Task task;
  task.chunk = *std::move(chunk);
  task.cancelled = [ctx] { return ctx->IsCancelled(); };
  task.deadline = DeadlineOf(ctx);
  // A stateless call's session is new every time: its connection says who
  // sent it, so one client's calls do not wait for each other.
  if (id.empty()) task.sender = StatelessSender(ctx->peer());
  task.done = [reactor, response, model, id,
               session](absl::StatusOr<ChunkResult> r) {
    if (r.ok()) {
      FillTensor(r->outputs, r->steps, r->output_size,
                 response->mutable_outputs());
      response->set_model(model->name);
      response->set_version(model->version);
      response->set_session_id(id);
      response->set_next_step(r->next_step);
      response->set_replayed(r->replayed);
    }
    reactor->Finish(ToGrpcStatus(r.status()));
  };
  scheduler_.Submit(session, std::move(task));
  return reactor;
}

grpc::ServerUnaryReactor* LstmServeService::CreateSession(
    grpc::CallbackServerContext* ctx, const v1::CreateSessionRequest* request,
    v1::SessionInfo* response) {
  absl::StatusOr<std::shared_ptr<const LoadedModel>> m =
      models_.Get(request->model(), request->version());
  if (!m.ok()) return Reply(ctx, m.status());
  std::vector<float> state(request->initial_state().begin(),
                           request->initial_state().end());
  absl::StatusOr<std::shared_ptr<Session>> s = sessions_.Create(
      request->session_id(), OwnerOf(ctx), *m, std::move(state));
  if (!s.ok()) return Reply(ctx, s.status());
  FillSessionInfo((*s)->Info(), response);
  spdlog::debug("session={} created model={} version={}", (*s)->id(),
                (*m)->name, (*m)->version);
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* LstmServeService::GetSession(
    grpc::CallbackServerContext* ctx, const v1::GetSessionRequest* request,
    v1::SessionInfo* response) {
  absl::StatusOr<std::shared_ptr<Session>> s =
      sessions_.Get(request->session_id(), OwnerOf(ctx));
  if (s.ok()) FillSessionInfo((*s)->Info(), response);
  return Reply(ctx, s.status());
}

grpc::ServerUnaryReactor* LstmServeService::ResetSession(
    grpc::CallbackServerContext* ctx, const v1::ResetSessionRequest* request,
    v1::SessionInfo* response) {
  absl::StatusOr<std::shared_ptr<Session>> s =
      sessions_.Get(request->session_id(), OwnerOf(ctx));
  if (s.ok()) {
    (*s)->Reset(sessions_.Now());
    FillSessionInfo((*s)->Info(), response);
  }
  return Reply(ctx, s.status());
}

grpc::ServerUnaryReactor* LstmServeService::CloseSession(
    grpc::CallbackServerContext* ctx, const v1::CloseSessionRequest* request,
    v1::CloseSessionResponse*) {
  return Reply(ctx, sessions_.Close(request->session_id(), OwnerOf(ctx)));
}

grpc::ServerUnaryReactor* LstmServeService::ListSessions(
    grpc::CallbackServerContext* ctx, const v1::ListSessionsRequest* request,
    v1::ListSessionsResponse* response) {
  if (request->page_size() < 0) {
    return Reply(ctx, absl::InvalidArgumentError(
                          absl::StrCat("page_size is ", request->page_size(),
                                       "; expected 0 (default 100) to 1000")));
  }
  const int page_size =
      request->page_size() == 0 ? 100 : std::min(request->page_size(), 1000);
  SessionStore::Page page =
      sessions_.List(OwnerOf(ctx), page_size, request->page_token());
  for (const SessionInfo& s : page.sessions) {
    FillSessionInfo(s, response->add_sessions());
  }
  response->set_next_page_token(page.next_page_token);
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* LstmServeService::ExportSession(
    grpc::CallbackServerContext* ctx, const v1::ExportSessionRequest* request,
    v1::SessionSnapshot* response) {
  absl::StatusOr<std::shared_ptr<Session>> s =
      sessions_.Get(request->session_id(), OwnerOf(ctx));
  if (!s.ok()) return Reply(ctx, s.status());
  const SessionSnapshot snap = (*s)->Snapshot();
  const model::Model& m = *(*s)->model().model;
  response->set_session_id(snap.id);
  response->set_model(snap.model);
  response->set_version(snap.version);
  response->set_next_step(snap.next_step);
  response->mutable_state()->Assign(snap.state.begin(), snap.state.end());
  if (snap.last_steps > 0) {
    response->set_last_first_step(snap.last_first_step);
    FillTensor(snap.last_inputs, snap.last_steps, m.input_size(),
               response->mutable_last_inputs());
    FillTensor(snap.last_outputs, snap.last_steps, m.output_size(),
               response->mutable_last_outputs());
  }
  return Reply(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* LstmServeService::ImportSession(
    grpc::CallbackServerContext* ctx, const v1::ImportSessionRequest* request,
    v1::SessionInfo* response) {
  const v1::SessionSnapshot& p = request->snapshot();
  if (p.version() <= 0) {
    return Reply(ctx, absl::InvalidArgumentError(absl::StrCat(
                          "snapshot.version is ", p.version(),
                          "; a snapshot names the exact version it ran on")));
  }
  absl::StatusOr<std::shared_ptr<const LoadedModel>> m =
      models_.Get(p.model(), p.version());
  if (!m.ok()) return Reply(ctx, m.status());
  SessionSnapshot snap;
  snap.id = p.session_id();
  snap.model = p.model();
  snap.version = p.version();
  snap.next_step = p.next_step();
  snap.state.assign(p.state().begin(), p.state().end());
  snap.last_first_step = p.last_first_step();
  snap.last_steps = p.last_inputs().shape_size() > 0
                        ? static_cast<int>(p.last_inputs().shape(0))
                        : 0;
  snap.last_inputs.assign(p.last_inputs().values().begin(),
                          p.last_inputs().values().end());
  snap.last_outputs.assign(p.last_outputs().values().begin(),
                           p.last_outputs().values().end());
  absl::StatusOr<std::shared_ptr<Session>> s =
      sessions_.Import(snap, OwnerOf(ctx), *m);
  if (s.ok()) FillSessionInfo((*s)->Info(), response);
  return Reply(ctx, s.status());
}

grpc::ServerUnaryReactor* LstmServeService::GetServerStats(
    grpc::CallbackServerContext* ctx, const v1::GetServerStatsRequest*,
    v1::ServerStats* response) {
  for (const ModelStats& m : scheduler_.Stats()) {
    v1::ModelStats* out = response->add_models();
    out->set_model(m.model);
    out->set_version(m.version);
    out->set_requests(m.requests);
    out->set_steps(m.steps);
    out->set_batches(m.batches);
    out->mutable_batch_size_histogram()->Assign(m.batch_size_histogram.begin(),
                                                m.batch_size_histogram.end());
    out->mutable_queue_wait_us_histogram()->Assign(
        m.queue_wait_histogram.begin(), m.queue_wait_histogram.end());
    out->set_queue_wait_us_total(m.queue_wait_us_total);
    out->set_compute_us_total(m.compute_us_total);
    out->set_rejected(m.rejected);
    out->set_expired(m.expired);
  }
  response->set_sessions(sessions_.size());
  response->set_queued_steps(scheduler_.queued_steps());
  response->set_uptime_ms(absl::ToInt64Milliseconds(absl::Now() - started_));
  return Reply(ctx, absl::OkStatus());
}

// One bidirectional stream. Reads one request at a time; each valid request
// goes to the scheduler and its response is queued for writing when the
// worker finishes, so several sessions' chunks are in flight at once. Writes
// go out one at a time, in completion order. The stream finishes once the
// client has half-closed and every response is written.
class LstmServeService::StreamReactor final
    : public grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  StreamReactor(LstmServeService* service, grpc::CallbackServerContext* ctx)
      : service_(service), ctx_(ctx), owner_(OwnerOf(ctx)) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // client half-closed, or the call is gone
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
      }
      MaybeFinish();
      return;
    }
    Handle(request_);
    bool read_more;
    {
      absl::MutexLock lock(&mu_);
      // Back-pressure: stop reading while too many requests are in flight;
      // the completion that brings the count down resumes reading.
      read_more = inflight_ < service_->options_.max_stream_inflight;
      read_paused_ = !read_more;
    }
    if (read_more) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    const v1::StreamResponse* next = nullptr;
    {
      absl::MutexLock lock(&mu_);
      writes_.pop_front();
      if (!ok) {
        write_failed_ = true;  // the client is gone; drop what is left
        writes_.clear();
      }
      writing_ = !writes_.empty();
      if (writing_) next = &writes_.front();
    }
    if (next) {
      StartWrite(next);
    } else {
      MaybeFinish();
    }
  }

  void OnDone() override { delete this; }

 private:
  void Handle(const v1::StreamRequest& request) {
    v1::StreamResponse error_response;
    error_response.set_request_id(request.request_id());
    error_response.set_session_id(request.session_id());
    auto fail = [&](const absl::Status& status) {
      error_response.mutable_error()->set_code(static_cast<int>(status.code()));
      error_response.mutable_error()->set_message(
          std::string(status.message()));
      Enqueue(std::move(error_response));
    };
    absl::StatusOr<std::shared_ptr<Session>> session =
        service_->FindSession(request.session_id(), owner_,
                              request.create_model(), request.create_version());
    if (!session.ok()) return fail(session.status());
    absl::StatusOr<Chunk> chunk =
        service_->MakeChunk(request.inputs(), (*session)->model());
    if (!chunk.ok()) return fail(chunk.status());
    if (request.has_first_step()) chunk->first_step = request.first_step();
    (*session)->Touch(service_->sessions_.Now());
    {
      absl::MutexLock lock(&mu_);
      ++inflight_;
    }
    const uint64_t request_id = request.request_id();
    const std::string session_id = request.session_id();
    Task task;
    task.chunk = *std::move(chunk);
    // Queued messages of a cancelled stream are dropped, not run.
    task.cancelled = [ctx = ctx_] { return ctx->IsCancelled(); };
    task.done = [this, request_id, session_id](absl::StatusOr<ChunkResult> r) {
      v1::StreamResponse response;
      response.set_request_id(request_id);
      response.set_session_id(session_id);
      if (r.ok()) {
        FillTensor(r->outputs, r->steps, r->output_size,
                   response.mutable_outputs());
        response.set_next_step(r->next_step);
        response.set_replayed(r->replayed);
      } else {
        response.mutable_error()->set_code(static_cast<int>(r.status().code()));
        response.mutable_error()->set_message(
            std::string(r.status().message()));
      }
      Complete(std::move(response));
    };
    service_->scheduler_.Submit(*session, std::move(task));
  }

  // A scheduled request finished (on a worker thread): queue its response
  // and resume reading if back-pressure had paused it. This request still
  // counts in inflight_ until the very end, which keeps the stream from
  // finishing (and the reactor from being deleted) while this thread still
  // uses it; the decrement is its last touch, and finishes the stream if
  // that was all that held it open.
  void Complete(v1::StreamResponse response) {
    bool resume_read = false;
    {
      absl::MutexLock lock(&mu_);
      if (read_paused_ && !reads_done_ &&
          inflight_ - 1 < service_->options_.max_stream_inflight) {
        read_paused_ = false;
        resume_read = true;
      }
    }
    if (resume_read) StartRead(&request_);
    Enqueue(std::move(response));
    {
      absl::MutexLock lock(&mu_);
      --inflight_;
      if (!ReadyToFinishLocked()) return;
      finished_ = true;
    }
    Finish(grpc::Status::OK);
  }

  void Enqueue(v1::StreamResponse response) {
    const v1::StreamResponse* to_write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (write_failed_ || finished_) return;
      writes_.push_back(std::move(response));
      if (!writing_) {
        writing_ = true;
        to_write = &writes_.front();
      }
    }
    if (to_write) StartWrite(to_write);
  }

  // Finishes the stream once the client has half-closed, no request is in
  // flight and every response is written. Call only as a thread's last use
  // of the reactor: after Finish it may be deleted at any moment.
  void MaybeFinish() {
    {
      absl::MutexLock lock(&mu_);
      if (!ReadyToFinishLocked()) return;
      finished_ = true;
    }
    Finish(grpc::Status::OK);
  }

  bool ReadyToFinishLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !finished_ && reads_done_ && inflight_ == 0 && !writing_;
  }

  LstmServeService* const service_;
  grpc::CallbackServerContext* const ctx_;  // outlives the reactor's work
  const std::string owner_;
  v1::StreamRequest
      request_;  // written by gRPC between StartRead and OnReadDone

  absl::Mutex mu_;
  std::deque<v1::StreamResponse> writes_
      ABSL_GUARDED_BY(mu_);  // front: in flight
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;
};

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>*
LstmServeService::Stream(grpc::CallbackServerContext* ctx) {
  return new StreamReactor(this, ctx);
}

}  // namespace lstmserve::server
