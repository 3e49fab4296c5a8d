#include "server/service.h"

#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "model/status_macros.h"
#include "server/grpc_status.h"
#include "server/snapshot_proto.h"
#include "spdlog/spdlog.h"

namespace lstmserve::server {
namespace {

// Sessions belong to the identity that created them. Until authentication
// exists every caller is the same anonymous identity.

// The call's deadline; InfiniteFuture when the client set none.
absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() -
                      std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// A unary call as the core sees it: owner, deadline and cancellation. The
// context outlives everything the core does for the call: the core asks
// `cancelled` only of work the call still waits for.
Caller UnaryCaller(grpc::CallbackServerContext* ctx, const Identity& who) {
  Caller caller;
  caller.owner = who.name;
  caller.deadline = DeadlineOf(ctx);
  caller.cancelled = [ctx] { return ctx->IsCancelled(); };
  return caller;
}

// The identity of the caller's verified client certificate: its first DNS
// or URI subject alternative name, else its subject's common name; "" with
// no certificate (plaintext, or TLS without client certificates).
std::string CertificateIdentity(const grpc::CallbackServerContext& ctx) {
  const std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return "";
  for (const char* property :
       {"x509_subject_alternative_name", "x509_common_name"}) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
      if (value.size() > 0) return std::string(value.data(), value.size());
    }
  }
  return "";
}

template <typename Message>
bool Parse(const grpc::ByteBuffer& raw, Message* message) {
  grpc::ByteBuffer copy(raw);  // Deserialize consumes its buffer
  return grpc::SerializationTraits<Message>::Deserialize(&copy, message).ok();
}

template <typename Message>
absl::Status NotParsed() {
  return absl::InvalidArgumentError(
      absl::StrCat("the request is not a valid ",
                   Message::descriptor()->full_name(), " message"));
}

template <typename Message>
grpc::ByteBuffer Serialize(const Message& message) {
  grpc::ByteBuffer raw;
  bool own = false;
  // Serializing a message we built cannot fail short of running out of
  // memory; gRPC aborts then anyway.
  (void)grpc::SerializationTraits<Message>::Serialize(message, &raw, &own);
  return raw;
}

// One unary call: the parsed request, the response being built, and the
// reactor to finish. Deleted when finished.
template <typename Request, typename Response>
struct UnaryCall {
  grpc::ServerUnaryReactor* reactor = nullptr;
  grpc::ByteBuffer* raw_response = nullptr;
  Request request;
  Response response;
  // What the observer is told when the call finishes; handlers fill in
  // what they learn (the served model, the session, the steps run).
  RequestObserver* observer = nullptr;
  RequestRecord record;
  absl::Time started;
  Identity identity;  // who called, once admitted

  void Finish(const absl::Status& status) {
    if (status.ok()) *raw_response = Serialize(response);
    if (observer != nullptr) {
      record.code = status.code();
      record.duration = absl::Now() - started;
      observer->Record(record);
    }
    grpc::ServerUnaryReactor* r = reactor;
    delete this;
    r->Finish(ToGrpcStatus(status));
  }
};

// Parses the request and hands the call to `handler`, which finishes it,
// now or later from a worker.
template <typename Request, typename Response, typename Handler>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx,
                                const grpc::ByteBuffer* raw_request,
                                grpc::ByteBuffer* raw_response,
                                const char* method, RequestObserver* observer,
                                absl::StatusOr<Identity> admitted,
                                Handler handler) {
  auto* call = new UnaryCall<Request, Response>;
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  call->reactor = reactor;
  call->raw_response = raw_response;
  call->observer = observer;
  call->record.method = method;
  call->started = absl::Now();
  if (!admitted.ok()) {
    call->Finish(admitted.status());
  } else if (call->identity = *std::move(admitted);
             !Parse(*raw_request, &call->request)) {
    call->Finish(NotParsed<Request>());
  } else {
    handler(call);
  }
  return reactor;
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
  info->set_weights(std::string(model::WeightFormatName(c.weights)));
  for (const model::ExplainField& f : loaded.model->explain_layout()) {
    v1::ExplainFieldInfo* field = info->add_explain_fields();
    field->set_layer(f.layer);
    field->set_name(f.name);
    field->set_units(f.size);
  }
}

void FillSessionInfo(const SessionInfo& s, v1::SessionInfo* info) {
  info->set_session_id(s.id);
  info->set_owner(s.owner);
  info->set_model(s.model);
  info->set_version(s.version);
  info->set_next_step(s.next_step);
  info->set_created_unix_ms(absl::ToUnixMillis(s.created));
  info->set_last_used_unix_ms(absl::ToUnixMillis(s.last_used));
  info->set_state_size(s.state_size);
  if (s.durable_step) info->set_durable_step(*s.durable_step);
  info->set_explained_steps(s.explained_steps);
  for (const model::GateSummary::Layer& l : s.gate_summary) {
    v1::LayerGateSummary* layer = info->add_gate_summary();
    layer->set_layer(l.layer);
    layer->set_units(l.units);
    if (l.mean_forget) layer->set_mean_forget(*l.mean_forget);
    if (l.memory_horizon) layer->set_memory_horizon_steps(*l.memory_horizon);
    for (const model::GateSummary::Gate& g : l.gates) {
      v1::GateStats* gate = layer->add_gates();
      gate->set_name(g.name);
      gate->set_mean(g.mean);
      gate->set_saturation(g.saturation);
    }
  }
}

// The completion of a call that answers with a session's info.
template <typename Call>
auto AnswerWithSessionInfo(Call* call) {
  return [call](absl::StatusOr<SessionInfo> info) {
    if (info.ok()) {
      call->record.model = info->model;
      call->record.session = info->id;
      FillSessionInfo(*info, &call->response);
    }
    call->Finish(info.status());
  };
}

// A chunk's explain records (steps x explain_size, as the engine wrote
// them) as one [T, units] tensor per field.
void FillExplain(const ChunkResult& result, v1::Explain* out) {
  const model::Model& m = *result.model->model;
  const int record = m.explain_size();
  for (const model::ExplainField& f : m.explain_layout()) {
    v1::ExplainField* field = out->add_fields();
    field->set_layer(f.layer);
    field->set_name(f.name);
    v1::Tensor* t = field->mutable_values();
    t->add_shape(result.steps);
    t->add_shape(f.size);
    auto* values = t->mutable_values();
    values->Reserve(result.steps * f.size);
    for (int s = 0; s < result.steps; ++s) {
      const float* begin =
          result.explain.data() + static_cast<size_t>(s) * record + f.offset;
      values->Add(begin, begin + f.size);
    }
  }
}

void FillTensor(const std::vector<float>& values, int rows, int cols,
                v1::Tensor* t) {
  t->add_shape(rows);
  t->add_shape(cols);
  t->mutable_values()->Assign(values.begin(), values.end());
}

std::span<const int64_t> ShapeOf(const v1::Tensor& t) {
  return {t.shape().data(), static_cast<size_t>(t.shape_size())};
}
std::span<const float> ValuesOf(const v1::Tensor& t) {
  return {t.values().data(), static_cast<size_t>(t.values_size())};
}

void SetError(const absl::Status& status, v1::StreamResponse* response) {
  response->mutable_error()->set_code(static_cast<int>(status.code()));
  response->mutable_error()->set_message(std::string(status.message()));
}

}  // namespace

LstmServeService::LstmServeService(SessionManager& core, Maintenance& admin,
                                   ServiceOptions options)
    : core_(core),
      admin_(admin),
      options_(options),
      observer_(options.observer) {}

LstmServeService::~LstmServeService() = default;

absl::StatusOr<Identity> LstmServeService::Admit(
    grpc::CallbackServerContext* ctx, Access access) {
  Identity who{.name = "", .admin = true};
  if (options_.auth != nullptr) {
    std::optional<absl::string_view> authorization;
    const auto& metadata = ctx->client_metadata();
    if (auto it = metadata.find("authorization"); it != metadata.end()) {
      authorization = absl::string_view(it->second.data(), it->second.size());
    }
    ASSIGN_OR_RETURN(who, options_.auth->Authenticate(
                              authorization, CertificateIdentity(*ctx)));
  }
  if (access == Access::kAdmin && !who.admin) {
    return absl::PermissionDeniedError(
        "this method needs the admin role; the caller's identity does not "
        "have it (docs/SECURITY.md)");
  }
  RETURN_IF_ERROR(RateLimit(who.name));
  return who;
}

absl::Status LstmServeService::RateLimit(const std::string& identity) {
  if (options_.rate_limiter == nullptr) return absl::OkStatus();
  return options_.rate_limiter->Admit(identity);
}

grpc::ServerUnaryReactor* LstmServeService::ListModels(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::ListModelsRequest, v1::ListModelsResponse>;
  return Unary<v1::ListModelsRequest, v1::ListModelsResponse>(
      ctx, request, response, "ListModels", observer_,
      Admit(ctx, Access::kUser), [this](Call* call) {
        const ModelRegistry& models = core_.models();
        for (const std::string& name : models.Names()) {
          auto m = models.Get(name);
          if (m.ok()) {
            FillModelInfo(**m, models.Versions(name),
                          call->response.add_models());
          }
        }
        call->Finish(absl::OkStatus());
      });
}

grpc::ServerUnaryReactor* LstmServeService::GetModel(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::GetModelRequest, v1::ModelInfo>;
  return Unary<v1::GetModelRequest, v1::ModelInfo>(
      ctx, request, response, "GetModel", observer_, Admit(ctx, Access::kUser),
      [this](Call* call) {
        const ModelRegistry& models = core_.models();
        auto m = models.Get(call->request.name(), call->request.version());
        if (m.ok()) {
          FillModelInfo(**m, models.Versions(call->request.name()),
                        &call->response);
        }
        call->Finish(m.status());
      });
}

grpc::ServerUnaryReactor* LstmServeService::Predict(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::PredictRequest, v1::PredictResponse>;
  return Unary<v1::PredictRequest, v1::PredictResponse>(
      ctx, request, response, "Predict", observer_, Admit(ctx, Access::kUser),
      [this, ctx](Call* call) {
        const v1::PredictRequest& r = call->request;
        Caller caller = UnaryCaller(ctx, call->identity);
        if (r.session_id().empty()) {
          caller.stateless_sender = StatelessSender(ctx->peer());
        }
        ChunkRequest chunk;
        chunk.session_id = r.session_id();
        chunk.model = r.model();
        chunk.version = r.version();
        chunk.shape = ShapeOf(r.inputs());
        chunk.values = ValuesOf(r.inputs());
        if (r.has_first_step()) chunk.first_step = r.first_step();
        chunk.explain = r.explain();
        core_.SubmitChunk(
            caller, chunk, [call](absl::StatusOr<ChunkResult> result) {
              call->record.session = call->request.session_id();
              if (result.ok()) {
                call->record.model = result->model->name;
                call->record.steps = result->steps;
                v1::PredictResponse& out = call->response;
                FillTensor(result->outputs, result->steps, result->output_size,
                           out.mutable_outputs());
                out.set_session_id(call->request.session_id());
                out.set_next_step(result->next_step);
                out.set_replayed(result->replayed);
                out.set_model(result->model->name);
                out.set_version(result->model->version);
                if (result->durable_step) {
                  out.set_durable_step(*result->durable_step);
                }
                if (!result->explain.empty()) {
                  FillExplain(*result, out.mutable_explain());
                }
              }
              call->Finish(result.status());
            });
      });
}

grpc::ServerUnaryReactor* LstmServeService::CreateSession(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::CreateSessionRequest, v1::SessionInfo>;
  return Unary<v1::CreateSessionRequest, v1::SessionInfo>(
      ctx, request, response, "CreateSession", observer_,
      Admit(ctx, Access::kUser), [this](Call* call) {
        const v1::CreateSessionRequest& r = call->request;
        core_.CreateSession(
            call->identity.name, r.session_id(), r.model(), r.version(),
            std::vector<float>(r.initial_state().begin(),
                               r.initial_state().end()),
            [call](absl::StatusOr<SessionInfo> info) {
              if (info.ok()) {
                call->record.model = info->model;
                call->record.session = info->id;
                FillSessionInfo(*info, &call->response);
                spdlog::debug("session={} created model={} version={}",
                              info->id, info->model, info->version);
              }
              call->Finish(info.status());
            });
      });
}

grpc::ServerUnaryReactor* LstmServeService::GetSession(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::GetSessionRequest, v1::SessionInfo>;
  return Unary<v1::GetSessionRequest, v1::SessionInfo>(
      ctx, request, response, "GetSession", observer_,
      Admit(ctx, Access::kUser), [this](Call* call) {
        call->record.session = call->request.session_id();
        absl::StatusOr<SessionInfo> info =
            core_.GetSession(call->identity.name, call->request.session_id());
        if (info.ok()) {
          call->record.model = info->model;
          FillSessionInfo(*info, &call->response);
        }
        call->Finish(info.status());
      });
}

grpc::ServerUnaryReactor* LstmServeService::ResetSession(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::ResetSessionRequest, v1::SessionInfo>;
  return Unary<v1::ResetSessionRequest, v1::SessionInfo>(
      ctx, request, response, "ResetSession", observer_,
      Admit(ctx, Access::kUser), [this](Call* call) {
        call->record.session = call->request.session_id();
        core_.ResetSession(call->identity.name, call->request.session_id(),
                           AnswerWithSessionInfo(call));
      });
}

grpc::ServerUnaryReactor* LstmServeService::CloseSession(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::CloseSessionRequest, v1::CloseSessionResponse>;
  return Unary<v1::CloseSessionRequest, v1::CloseSessionResponse>(
      ctx, request, response, "CloseSession", observer_,
      Admit(ctx, Access::kUser), [this](Call* call) {
        call->record.session = call->request.session_id();
        core_.CloseSession(call->identity.name, call->request.session_id(),
                           [call](absl::Status s) { call->Finish(s); });
      });
}

grpc::ServerUnaryReactor* LstmServeService::ListSessions(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::ListSessionsRequest, v1::ListSessionsResponse>;
  return Unary<v1::ListSessionsRequest, v1::ListSessionsResponse>(
      ctx, request, response, "ListSessions", observer_,
      Admit(ctx, Access::kUser), [this](Call* call) {
        const int size = call->request.page_size();
        if (size < 0) {
          return call->Finish(absl::InvalidArgumentError(absl::StrCat(
              "page_size is ", size, "; expected 0 (default 100) to 1000")));
        }
        const int page_size = size == 0 ? 100 : std::min(size, 1000);
        // An admin sees every identity's sessions (SessionInfo.owner).
        SessionManager::Page page = core_.ListSessions(
            call->identity.name, /*all_owners=*/call->identity.admin, page_size,
            call->request.page_token());
        for (const SessionInfo& s : page.sessions) {
          FillSessionInfo(s, call->response.add_sessions());
        }
        call->response.set_next_page_token(page.next_page_token);
        call->Finish(absl::OkStatus());
      });
}

grpc::ServerUnaryReactor* LstmServeService::ExportSession(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::ExportSessionRequest, v1::SessionSnapshot>;
  return Unary<v1::ExportSessionRequest, v1::SessionSnapshot>(
      ctx, request, response, "ExportSession", observer_,
      Admit(ctx, Access::kUser), [this](Call* call) {
        call->record.session = call->request.session_id();
        core_.ExportSession(call->identity.name, call->request.session_id(),
                            [call](absl::StatusOr<SessionSnapshot> snap) {
                              if (snap.ok()) {
                                call->record.model = snap->model;
                                SnapshotToProto(*snap, *snap->ran_on->model,
                                                &call->response);
                              }
                              call->Finish(snap.status());
                            });
      });
}

grpc::ServerUnaryReactor* LstmServeService::ImportSession(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::ImportSessionRequest, v1::SessionInfo>;
  return Unary<v1::ImportSessionRequest, v1::SessionInfo>(
      ctx, request, response, "ImportSession", observer_,
      Admit(ctx, Access::kUser), [this](Call* call) {
        absl::StatusOr<SessionSnapshot> snap =
            SnapshotFromProto(call->request.snapshot());
        if (!snap.ok()) return call->Finish(snap.status());
        core_.ImportSession(call->identity.name, *std::move(snap),
                            AnswerWithSessionInfo(call));
      });
}

grpc::ServerUnaryReactor* LstmServeService::Forecast(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::ForecastRequest, v1::ForecastResponse>;
  return Unary<v1::ForecastRequest, v1::ForecastResponse>(
      ctx, request, response, "Forecast", observer_, Admit(ctx, Access::kUser),
      [this, ctx](Call* call) {
        const v1::ForecastRequest& r = call->request;
        call->record.session = r.session_id();
        ForecastSpec spec;
        spec.horizon = r.horizon();
        spec.samples = r.samples();
        spec.seed = r.seed();
        core_.Forecast(
            UnaryCaller(ctx, call->identity), r.session_id(), spec,
            [call](absl::StatusOr<ForecastResult> result) {
              if (result.ok()) {
                call->record.model = result->model->name;
                call->record.steps =
                    static_cast<int64_t>(result->horizon - 1) *
                    (static_cast<int64_t>(result->samples.size()) + 1);
                v1::ForecastResponse& out = call->response;
                FillTensor(result->forecast, result->horizon,
                           result->output_size, out.mutable_forecast());
                for (const std::vector<float>& path : result->samples) {
                  FillTensor(path, result->horizon, result->output_size,
                             out.add_samples());
                }
                out.set_model(result->model->name);
                out.set_version(result->model->version);
                out.set_session_id(call->request.session_id());
                out.set_from_step(result->from_step);
              }
              call->Finish(result.status());
            });
      });
}

grpc::ServerUnaryReactor* LstmServeService::GetServerStats(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::GetServerStatsRequest, v1::ServerStats>;
  return Unary<v1::GetServerStatsRequest, v1::ServerStats>(
      ctx, request, response, "GetServerStats", observer_,
      Admit(ctx, Access::kUser), [this](Call* call) {
        v1::ServerStats& r = call->response;
        for (const ModelStats& m : core_.Stats()) {
          v1::ModelStats* out = r.add_models();
          out->set_model(m.model);
          out->set_version(m.version);
          out->set_requests(m.requests);
          out->set_steps(m.steps);
          out->set_batches(m.batches);
          out->mutable_batch_size_histogram()->Assign(
              m.batch_size_histogram.begin(), m.batch_size_histogram.end());
          out->mutable_queue_wait_us_histogram()->Assign(
              m.queue_wait_histogram.begin(), m.queue_wait_histogram.end());
          out->set_queue_wait_us_total(m.queue_wait_us_total);
          out->set_compute_us_total(m.compute_us_total);
          out->set_rejected(m.rejected);
          out->set_expired(m.expired);
        }
        r.set_sessions(core_.sessions());
        r.set_queued_steps(core_.queued_steps());
        r.set_uptime_ms(absl::ToInt64Milliseconds(absl::Now() - started_));
        call->Finish(absl::OkStatus());
      });
}

namespace {

template <typename Response>
void AddEvents(const Maintenance::Events& events, Response* out) {
  for (const RepositoryWatcher::Event& e : events)
    out->add_events(e.ToString());
}

}  // namespace

grpc::ServerUnaryReactor* LstmServeService::LoadModel(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::LoadModelRequest, v1::LoadModelResponse>;
  return Unary<v1::LoadModelRequest, v1::LoadModelResponse>(
      ctx, request, response, "LoadModel", observer_,
      Admit(ctx, Access::kAdmin), [this](Call* call) {
        admin_.LoadModel(
            call->request.name(),
            [this, call](absl::StatusOr<Maintenance::Events> events) {
              if (events.ok()) {
                AddEvents(*events, &call->response);
                for (int64_t v :
                     core_.models().Versions(call->request.name())) {
                  call->response.add_versions(v);
                }
              }
              call->Finish(events.status());
            });
      });
}

grpc::ServerUnaryReactor* LstmServeService::UnloadModel(
    grpc::CallbackServerContext* ctx, const Raw* request, Raw* response) {
  using Call = UnaryCall<v1::UnloadModelRequest, v1::UnloadModelResponse>;
  return Unary<v1::UnloadModelRequest, v1::UnloadModelResponse>(
      ctx, request, response, "UnloadModel", observer_,
      Admit(ctx, Access::kAdmin), [this](Call* call) {
        admin_.UnloadModel(
            call->request.name(), call->request.version(),
            [call](absl::StatusOr<Maintenance::Events> events) {
              if (events.ok()) {
                AddEvents(*events, &call->response);
                for (const RepositoryWatcher::Event& e : *events) {
                  if (e.kind == RepositoryWatcher::Event::Kind::kUnloaded) {
                    call->response.add_unloaded(e.version);
                  }
                }
              }
              call->Finish(events.status());
            });
      });
}

// One bidirectional stream.
//
// Reads one request at a time and posts it to the core; the core's callback
// queues the response, and writes go out one at a time in completion order.
// Every counter and flag is under mu_, changed and checked in one critical
// section:
// - inflight_: requests read whose response has not been written yet.
//   Reading pauses while it is at --max-stream-inflight, or while the
//   queued responses hold --max-stream-buffered-bytes; the write that
//   brings it under both resumes reading. A client that never reads thus
//   holds at most that much of the server's memory.
// - pending_: core callbacks not yet run, plus pins taken by shutdown. The
//   reactor is deleted when gRPC is done with it (OnDone) and pending_ is
//   zero, whichever comes last.
// The stream is finished (once) when the client has half-closed and nothing
// is in flight, when it is cancelled, when a message does not parse, or at
// shutdown once idle.
class LstmServeService::StreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamReactor(LstmServeService* service, grpc::CallbackServerContext* ctx)
      : service_(service) {
    absl::StatusOr<Identity> who = service_->Admit(ctx, Access::kUser);
    // Not ctx->IsCancelled(): gRPC destroys the context after OnDone while
    // this reactor (and so a queued chunk's check) may live on.
    caller_.cancelled = [this] {
      return call_gone_.load(std::memory_order_relaxed);
    };
    bool shutting_down;
    size_t open_streams;
    {
      absl::MutexLock lock(&service_->streams_mu_);
      open_streams = service_->streams_.size();
      service_->streams_.insert(this);
      shutting_down = service_->shutting_down_;
    }
    const int max_streams = service_->options_.max_streams;
    if (who.ok() && static_cast<int64_t>(open_streams) >= max_streams) {
      who = absl::ResourceExhaustedError(
          absl::StrCat("the server has ", open_streams,
                       " streams open, its limit "
                       "(--max-streams); retry later"));
    }
    if (!who.ok()) {
      {
        absl::MutexLock lock(&mu_);
        finished_ = true;
        reads_done_ = true;
      }
      Finish(ToGrpcStatus(who.status()));
      return;
    }
    caller_.owner = who->name;
    if (shutting_down) {
      absl::MutexLock lock(&mu_);
      shutting_down_ = true;
    }
    StartRead(&read_buffer_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed, or the call is gone
      std::optional<grpc::Status> finish;
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
        finish = FinishIfIdleLocked();
      }
      if (finish) Finish(*finish);
      return;
    }
    ++messages_read_;
    if (!Parse(read_buffer_, &request_)) {
      std::optional<grpc::Status> finish;
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
        finish = FinishLocked(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("stream message ", messages_read_,
                         " is not a valid lstmserve.v1.StreamRequest")));
      }
      if (finish) Finish(*finish);
      return;
    }
    Handle();
    bool read_more;
    {
      absl::MutexLock lock(&mu_);
      read_more = !finished_ && UnderLimitsLocked();
      read_paused_ = !read_more && !finished_;
    }
    if (read_more) StartRead(&read_buffer_);
  }

  void OnWriteDone(bool ok) override {
    const grpc::ByteBuffer* next = nullptr;
    grpc::WriteOptions next_options;
    bool resume_read = false;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      buffered_bytes_ -= writes_.front().Length();
      writes_.pop_front();
      --inflight_;
      if (!ok) {  // the client is gone
        inflight_ -= static_cast<int>(writes_.size());
        writes_.clear();
        buffered_bytes_ = 0;
        writing_ = false;
        finish = FinishLocked(
            grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      } else {
        writing_ = !writes_.empty() && !finished_;
        if (writing_) {
          next = &writes_.front();
          next_options = WriteOptionsLocked();
        }
        if (read_paused_ && !reads_done_ && !finished_ && UnderLimitsLocked()) {
          read_paused_ = false;
          resume_read = true;
        }
        if (!writing_) finish = FinishIfIdleLocked();
      }
    }
    if (next) StartWrite(next, next_options);
    if (resume_read) StartRead(&read_buffer_);
    if (finish) Finish(*finish);
  }

  void OnCancel() override {
    call_gone_.store(true, std::memory_order_relaxed);
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      finish = FinishLocked(
          grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled"));
    }
    if (finish) Finish(*finish);
  }

  void OnDone() override {
    call_gone_.store(true, std::memory_order_relaxed);
    {
      absl::MutexLock lock(&service_->streams_mu_);
      service_->streams_.erase(this);
    }
    bool last;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      last = pending_ == 0;
    }
    if (last) delete this;
  }

  // Shutdown: keeps the reactor alive until Unpin.
  void Pin() {
    absl::MutexLock lock(&mu_);
    ++pending_;
  }
  // Shutdown has begun: finish now if idle, else when idle; then Unpin.
  void ShutdownAndUnpin() {
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      shutting_down_ = true;
      finish = FinishIfIdleLocked();
    }
    if (finish) Finish(*finish);
    Unpin();
  }

 private:
  void Unpin() {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      last = --pending_ == 0 && done_;
    }
    if (last) delete this;
  }

  bool UnderLimitsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return inflight_ < service_->options_.max_stream_inflight &&
           buffered_bytes_ < service_->options_.max_stream_buffered_bytes;
  }

  // The status to Finish with, once; nullopt if already finished.
  std::optional<grpc::Status> FinishLocked(grpc::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return std::nullopt;
    finished_ = true;
    return status;
  }

  // Finishes an idle stream: the client half-closed, or the server is
  // shutting down.
  std::optional<grpc::Status> FinishIfIdleLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (inflight_ > 0 || writing_) return std::nullopt;
    if (reads_done_) return FinishLocked(grpc::Status::OK);
    if (shutting_down_) {
      return FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "the server is shutting down"));
    }
    return std::nullopt;
  }

  // The front response is about to be written. With more queued behind it,
  // gRPC may hold it in the stream's buffer (the write still completes), so
  // a batch's responses leave in one send instead of one each; the last
  // response queued is written without the hint and flushes them all.
  grpc::WriteOptions WriteOptionsLocked() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    grpc::WriteOptions options;
    if (writes_.size() > 1) options.set_buffer_hint();
    return options;
  }

  // Queues a response for writing (any thread). Dropped once finished.
  void Enqueue(const v1::StreamResponse& response) {
    grpc::ByteBuffer raw = Serialize(response);
    const grpc::ByteBuffer* to_write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) {
        --inflight_;
        return;
      }
      buffered_bytes_ += raw.Length();
      writes_.push_back(std::move(raw));
      if (!writing_) {
        writing_ = true;
        to_write = &writes_.front();
      }
    }
    if (to_write) StartWrite(to_write);
  }

  // Whether this message's chunk runs with explain: its own setting, which
  // also becomes the stream's setting for its session, else the stream's
  // current one. Remembered for sessions that exist (a NOT_FOUND answer
  // forgets one), so at most --max-sessions of them.
  bool ExplainFor(const v1::StreamRequest& r) {
    absl::MutexLock lock(&mu_);
    const std::string& id = r.session_id();
    if (!r.has_explain()) return explain_sessions_.contains(id);
    if (!r.explain()) {
      explain_sessions_.erase(id);
      return false;
    }
    if (!explain_sessions_.contains(id) &&
        static_cast<int>(explain_sessions_.size()) >=
            service_->core_.max_sessions()) {
      absl::erase_if(explain_sessions_, [this](const std::string& s) {
        return !service_->core_.HasSession(caller_.owner, s);
      });
    }
    explain_sessions_.insert(id);
    return true;
  }

  void Handle() {
    const v1::StreamRequest& r = request_;
    const uint64_t request_id = r.request_id();
    const absl::Time read_at = absl::Now();
    v1::StreamResponse error;
    error.set_request_id(request_id);
    error.set_session_id(r.session_id());
    {
      absl::MutexLock lock(&mu_);
      ++inflight_;
      if (!inflight_ids_.insert(request_id).second) {
        SetError(absl::InvalidArgumentError(absl::StrCat(
                     "request_id ", request_id,
                     " is already in flight on this stream; request ids "
                     "must be unique among unanswered requests")),
                 &error);
      } else {
        ++pending_;
      }
    }
    if (error.has_error()) {
      Observe(r.session_id(), nullptr, absl::StatusCode::kInvalidArgument,
              read_at);
      return Enqueue(error);
    }

    ChunkRequest chunk;
    chunk.session_id = r.session_id();
    chunk.model = r.create_model();
    chunk.version = r.create_version();
    chunk.create_if_missing = !r.create_model().empty();
    chunk.shape = ShapeOf(r.inputs());
    chunk.values = ValuesOf(r.inputs());
    if (r.has_first_step()) chunk.first_step = r.first_step();
    chunk.explain = ExplainFor(r);
    if (r.session_id().empty()) {
      Complete(request_id, r.session_id(), read_at,
               absl::InvalidArgumentError(
                   "session_id is empty; every stream message names its "
                   "session"));
      return;
    }
    if (absl::Status admitted = service_->RateLimit(caller_.owner);
        !admitted.ok()) {
      Complete(request_id, r.session_id(), read_at, std::move(admitted));
      return;
    }
    service_->core_.SubmitChunk(caller_, chunk,
                                [this, request_id, session_id = r.session_id(),
                                 read_at](absl::StatusOr<ChunkResult> result) {
                                  Complete(request_id, session_id, read_at,
                                           std::move(result));
                                });
  }

  // Tells the service's observer of an answered message.
  void Observe(const std::string& session_id, const ChunkResult* result,
               absl::StatusCode code, absl::Time read_at) {
    RequestObserver* observer = service_->observer_;
    if (observer == nullptr) return;
    RequestRecord record;
    record.method = "Stream";
    record.session = session_id;
    if (result != nullptr) {
      record.model = result->model->name;
      record.steps = result->steps;
    }
    record.code = code;
    record.duration = absl::Now() - read_at;
    observer->Record(record);
  }

  // A posted request finished (on a worker thread, or inline when refused).
  void Complete(uint64_t request_id, const std::string& session_id,
                absl::Time read_at, absl::StatusOr<ChunkResult> result) {
    Observe(session_id, result.ok() ? &*result : nullptr,
            result.status().code(), read_at);
    v1::StreamResponse response;
    response.set_request_id(request_id);
    response.set_session_id(session_id);
    if (result.ok()) {
      FillTensor(result->outputs, result->steps, result->output_size,
                 response.mutable_outputs());
      response.set_next_step(result->next_step);
      response.set_replayed(result->replayed);
      if (result->durable_step)
        response.set_durable_step(*result->durable_step);
      if (!result->explain.empty()) {
        FillExplain(*result, response.mutable_explain());
      }
    } else {
      SetError(result.status(), &response);
      // Where the session is, so the client can resend from there.
      if (std::optional<int64_t> expected = ExpectedStepOf(result.status())) {
        response.set_next_step(*expected);
      }
    }
    {
      absl::MutexLock lock(&mu_);
      inflight_ids_.erase(request_id);
      if (result.status().code() == absl::StatusCode::kNotFound) {
        explain_sessions_.erase(session_id);
      }
    }
    Enqueue(response);
    Unpin();
  }

  LstmServeService* const service_;
  Caller caller_;
  // Written by gRPC between StartRead and OnReadDone; parsed into request_.
  grpc::ByteBuffer read_buffer_;
  v1::StreamRequest request_;
  int64_t messages_read_ = 0;  // only OnReadDone touches it
  // The call was cancelled or is over: chunks still queued for it are
  // dropped (read by the workers through caller_.cancelled).
  std::atomic<bool> call_gone_{false};

  absl::Mutex mu_;
  std::deque<grpc::ByteBuffer> writes_ ABSL_GUARDED_BY(mu_);  // front: writing
  int64_t buffered_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_set<uint64_t> inflight_ids_ ABSL_GUARDED_BY(mu_);
  // The sessions this stream runs with explain on (StreamRequest.explain).
  absl::flat_hash_set<std::string> explain_sessions_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
LstmServeService::Stream(grpc::CallbackServerContext* ctx) {
  return new StreamReactor(this, ctx);
}

void LstmServeService::BeginShutdown() {
  core_.BeginShutdown();
  std::vector<StreamReactor*> open;
  {
    absl::MutexLock lock(&streams_mu_);
    shutting_down_ = true;
    for (StreamReactor* r : streams_) {
      r->Pin();
      open.push_back(r);
    }
  }
  for (StreamReactor* r : open) r->ShutdownAndUnpin();
}

}  // namespace lstmserve::server
