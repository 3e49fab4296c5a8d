// Client and Session: unary calls with deadline, retry and backoff, and the
// conversions between the public structs and the wire messages.
#include "lstmserve/client.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/internal.h"
#include "client/resend_log.h"
#include "grpcpp/generic/generic_stub.h"

namespace lstmserve::client {
namespace internal {

void PrepareContext(const ClientOptions& options,
                    grpc::ClientContext* context) {
  if (!options.token.empty()) {
    context->AddMetadata("authorization",
                         absl::StrCat("Bearer ", options.token));
  }
}

namespace {
absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, " \"", path, "\""));
  }
  return text.str();
}
}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientOptions& options) {
  const bool tls = options.tls || !options.tls_ca.empty() ||
                   !options.tls_cert.empty() || !options.tls_key.empty() ||
                   !options.tls_server_name.empty();
  if (!tls) return grpc::InsecureChannelCredentials();
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert and tls_key go together: set both or neither");
  }
  grpc::SslCredentialsOptions ssl;
  struct File {
    const std::string& path;
    const char* what;
    std::string* pem;
  };
  for (const File& f :
       {File{options.tls_ca, "tls_ca", &ssl.pem_root_certs},
        File{options.tls_cert, "tls_cert", &ssl.pem_cert_chain},
        File{options.tls_key, "tls_key", &ssl.pem_private_key}}) {
    if (f.path.empty()) continue;
    absl::StatusOr<std::string> pem = ReadPem(f.path, f.what);
    if (!pem.ok()) return pem.status();
    *f.pem = *std::move(pem);
  }
  return grpc::SslCredentials(ssl);
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

std::chrono::milliseconds Backoff(const ClientOptions& options, int retry) {
  double ms = static_cast<double>(options.initial_backoff.count());
  const double cap = static_cast<double>(options.max_backoff.count());
  for (int i = 1; i < retry && ms < cap; ++i) ms *= 2;
  ms = std::min(ms, cap);
  thread_local std::minstd_rand rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return std::chrono::milliseconds(
      std::max<int64_t>(1, static_cast<int64_t>(ms * jitter(rng))));
}

absl::Status CheckChunk(const std::vector<float>& inputs, int steps) {
  if (steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("steps is ", steps, "; expected at least 1"));
  }
  if (inputs.empty() || inputs.size() % static_cast<size_t>(steps) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("inputs has ", inputs.size(), " values for ", steps,
                     " steps; expected a positive multiple of ", steps,
                     " (steps * input_size)"));
  }
  return absl::OkStatus();
}

void ToProto(const std::vector<float>& values, int steps, pb::Tensor* out) {
  out->Clear();
  out->add_shape(steps);
  out->add_shape(steps > 0 ? static_cast<int64_t>(values.size()) / steps
                           : static_cast<int64_t>(values.size()));
  out->mutable_values()->Add(values.begin(), values.end());
}

absl::Status OutputsFromProto(pb::Tensor* tensor, int steps,
                              std::vector<float>* outputs, int* output_size) {
  const auto& shape = tensor->shape();
  const int64_t count = tensor->values_size();
  if (shape.size() != 2 || shape[0] != steps || shape[1] < 0 ||
      shape[0] * shape[1] != count) {
    std::string dims;
    for (int64_t d : shape) absl::StrAppend(&dims, dims.empty() ? "" : ", ", d);
    return absl::InternalError(
        absl::StrCat("server answered outputs of shape [", dims, "] with ",
                     count, " values; expected [", steps, ", output_size]"));
  }
  *output_size = static_cast<int>(shape[1]);
  outputs->assign(tensor->values().begin(), tensor->values().end());
  return absl::OkStatus();
}

absl::Status SessionLost(const absl::Status& status,
                         const std::string& session_id, int64_t expected_step) {
  if (!absl::IsNotFound(status) || expected_step == 0) return status;
  return absl::NotFoundError(absl::StrCat(
      status.message(), "; this client had taken session \"", session_id,
      "\" to step ", expected_step,
      " (the server lost it: restarted without its state, or it expired), "
      "and does not start it again at step 0"));
}

SessionInfo FromProto(const pb::SessionInfo& info) {
  SessionInfo out;
  out.session_id = info.session_id();
  out.model = info.model();
  out.version = info.version();
  out.next_step = info.next_step();
  out.created_unix_ms = info.created_unix_ms();
  out.last_used_unix_ms = info.last_used_unix_ms();
  out.state_size = info.state_size();
  if (info.has_durable_step()) out.durable_step = info.durable_step();
  out.explained_steps = info.explained_steps();
  out.owner = info.owner();
  for (const pb::LayerGateSummary& l : info.gate_summary()) {
    LayerGateSummary& layer = out.gate_summary.emplace_back();
    layer.layer = l.layer();
    layer.units = l.units();
    if (l.has_mean_forget()) layer.mean_forget = l.mean_forget();
    if (l.has_memory_horizon_steps()) {
      layer.memory_horizon_steps = l.memory_horizon_steps();
    }
    for (const pb::GateStats& g : l.gates()) {
      layer.gates.push_back(GateStats{g.name(), g.mean(), g.saturation()});
    }
  }
  return out;
}

absl::StatusOr<std::vector<ExplainField>> ExplainFromProto(pb::Explain* explain,
                                                           int steps) {
  std::vector<ExplainField> fields;
  fields.reserve(explain->fields_size());
  for (pb::ExplainField& f : *explain->mutable_fields()) {
    const auto& shape = f.values().shape();
    if (shape.size() != 2 || shape[0] != steps || shape[1] < 0 ||
        shape[0] * shape[1] != f.values().values_size()) {
      return absl::InternalError(absl::StrCat(
          "server answered explain field \"", f.name(), "\" of layer ",
          f.layer(), " with ", f.values().values_size(),
          " values of a shape other than [", steps, ", units]"));
    }
    ExplainField& field = fields.emplace_back();
    field.layer = f.layer();
    field.name = f.name();
    field.units = static_cast<int>(shape[1]);
    field.values.assign(f.values().values().begin(), f.values().values().end());
  }
  return fields;
}

namespace {

// Protobuf wire types (the low three bits of a field's key).
constexpr uint64_t kWireVarint = 0;
constexpr uint64_t kWireFixed64 = 1;
constexpr uint64_t kWireLengthDelimited = 2;
constexpr uint64_t kWireFixed32 = 5;

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Reads a varint at `*pos`, advancing it; false if it runs past the end or
// is longer than 10 bytes.
bool ReadVarint(const std::string& bytes, size_t* pos, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= bytes.size()) return false;
    const auto byte = static_cast<uint8_t>(bytes[(*pos)++]);
    *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

std::string EncodeHealthCheckRequest(const std::string& service) {
  std::string out;
  if (service.empty()) return out;  // proto3: a default field is not sent
  out.push_back(static_cast<char>((1 << 3) | kWireLengthDelimited));
  AppendVarint(service.size(), &out);
  out += service;
  return out;
}

absl::StatusOr<int> DecodeHealthCheckResponse(const std::string& bytes) {
  int status = 0;  // UNKNOWN when the field is absent
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t field_start = pos;
    auto malformed = [&](const char* what) {
      return absl::InternalError(absl::StrCat(
          "malformed grpc.health.v1.HealthCheckResponse (", bytes.size(),
          " bytes): ", what, " at byte ", field_start));
    };
    uint64_t key = 0;
    if (!ReadVarint(bytes, &pos, &key)) return malformed("truncated key");
    const uint64_t field = key >> 3;
    const uint64_t wire_type = key & 7;
    if (field == 0) return malformed("field number 0");
    uint64_t value = 0;
    switch (wire_type) {
      case kWireVarint:
        if (!ReadVarint(bytes, &pos, &value)) {
          return malformed("truncated varint");
        }
        // An enum is an int32: the low 32 bits, two's complement.
        if (field == 1) {
          status = static_cast<int32_t>(static_cast<uint32_t>(value));
        }
        break;
      case kWireFixed64:
      case kWireFixed32: {
        const size_t size = wire_type == kWireFixed64 ? 8 : 4;
        if (bytes.size() - pos < size) return malformed("truncated fixed");
        pos += size;
        break;
      }
      case kWireLengthDelimited:
        if (!ReadVarint(bytes, &pos, &value)) {
          return malformed("truncated length");
        }
        if (value > bytes.size() - pos) {
          return malformed("length past the end");
        }
        pos += static_cast<size_t>(value);
        break;
      default:  // groups (3, 4) have no place here; 6 and 7 do not exist
        return malformed("unexpected wire type");
    }
  }
  return status;
}

}  // namespace internal

namespace {

using internal::FromGrpc;
using internal::FromProto;

ModelInfo FromProto(const pb::ModelInfo& m) {
  ModelInfo out;
  out.name = m.name();
  out.version = m.version();
  out.versions.assign(m.versions().begin(), m.versions().end());
  out.cell = m.cell();
  out.input_size = m.input_size();
  out.output_size = m.output_size();
  out.hidden_size = m.hidden_size();
  out.num_layers = m.num_layers();
  out.proj_size = m.proj_size();
  out.head_activation = m.head_activation();
  out.state_size = m.state_size();
  out.input_names.assign(m.input_names().begin(), m.input_names().end());
  out.output_names.assign(m.output_names().begin(), m.output_names().end());
  out.description = m.description();
  out.weights = m.weights();
  for (const pb::ExplainFieldInfo& f : m.explain_fields()) {
    out.explain_fields.push_back(
        ExplainFieldInfo{f.layer(), f.name(), f.units()});
  }
  return out;
}

// Runs one unary call, retrying on UNAVAILABLE when `retry_safe`, within
// one overall deadline. `rpc(context, response)` performs one attempt.
// `session_id`, when not empty, is sent as the x-session-id metadata, by
// which a front proxy keeps a session's calls on the server that holds it
// (docs/DEPLOY.md).
template <typename Response, typename Rpc>
absl::Status CallUnary(const Client::Shared& shared, bool retry_safe,
                       Response* response, Rpc rpc,
                       const std::string& session_id = "") {
  const ClientOptions& options = shared.options;
  const auto deadline = std::chrono::system_clock::now() + options.deadline;
  for (int retry = 0;; ++retry) {
    grpc::ClientContext context;
    context.set_deadline(deadline);
    internal::PrepareContext(options, &context);
    if (!session_id.empty()) context.AddMetadata("x-session-id", session_id);
    response->Clear();
    const grpc::Status status = rpc(&context, response);
    if (status.ok()) return absl::OkStatus();
    if (!retry_safe || status.error_code() != grpc::StatusCode::UNAVAILABLE ||
        retry >= options.max_retries) {
      return FromGrpc(status);
    }
    const auto pause = internal::Backoff(options, retry + 1);
    if (std::chrono::system_clock::now() + pause >= deadline) {
      return FromGrpc(status);  // no time left for another attempt
    }
    std::this_thread::sleep_for(pause);
  }
}

// The session a request addresses ("" for none): its session_id, or its
// snapshot's.
template <typename Request>
std::string SessionOf(const Request& request) {
  if constexpr (requires { request.session_id(); }) {
    return request.session_id();
  } else if constexpr (requires { request.snapshot().session_id(); }) {
    return request.snapshot().session_id();
  } else {
    return "";
  }
}

// One call of a LstmServe method, e.g. &Stub::GetSession, with
// CallUnary's deadline and retries; a call on a session carries its id as
// x-session-id.
template <typename Request, typename Response>
absl::StatusOr<Response> CallStub(
    const Client::Shared& shared, bool retry_safe,
    grpc::Status (pb::LstmServe::Stub::*method)(grpc::ClientContext*,
                                                const Request&, Response*),
    const Request& request) {
  Response response;
  absl::Status status = CallUnary(
      shared, retry_safe, &response,
      [&](grpc::ClientContext* context, Response* out) {
        return (shared.stub.get()->*method)(context, request, out);
      },
      SessionOf(request));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<PredictResult> RunPredict(const Client::Shared& shared,
                                         const PredictRequest& request) {
  if (absl::Status s = internal::CheckChunk(request.inputs, request.steps);
      !s.ok()) {
    return s;
  }
  pb::PredictRequest wire;
  wire.set_model(request.model);
  wire.set_version(request.version);
  wire.set_session_id(request.session_id);
  internal::ToProto(request.inputs, request.steps, wire.mutable_inputs());
  if (request.first_step.has_value()) wire.set_first_step(*request.first_step);
  wire.set_explain(request.explain);
  // Safe to resend: a stateless call (it changes nothing), or a chunk with
  // first_step (the server recognises the retry). A session's chunk
  // without it would be applied twice if its answer was lost.
  const bool retry_safe =
      request.session_id.empty() || request.first_step.has_value();
  absl::StatusOr<pb::PredictResponse> response =
      CallStub(shared, retry_safe, &pb::LstmServe::Stub::Predict, wire);
  if (!response.ok()) return response.status();
  PredictResult result;
  result.steps = request.steps;
  if (absl::Status s =
          internal::OutputsFromProto(response->mutable_outputs(), request.steps,
                                     &result.outputs, &result.output_size);
      !s.ok()) {
    return s;
  }
  result.model = response->model();
  result.version = response->version();
  result.session_id = response->session_id();
  result.next_step = response->next_step();
  result.replayed = response->replayed();
  if (response->has_durable_step()) {
    result.durable_step = response->durable_step();
  }
  absl::StatusOr<std::vector<ExplainField>> explain =
      internal::ExplainFromProto(response->mutable_explain(), request.steps);
  if (!explain.ok()) return explain.status();
  result.explain = *std::move(explain);
  return result;
}

absl::Status RunCloseSession(const Client::Shared& shared,
                             const std::string& session_id) {
  pb::CloseSessionRequest request;
  request.set_session_id(session_id);
  return CallStub(shared, /*retry_safe=*/false,
                  &pb::LstmServe::Stub::CloseSession, request)
      .status();
}

}  // namespace

// ---------------------------------------------------------------------------
// Client

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const ClientOptions& options) {
  if (options.target.empty()) {
    return absl::InvalidArgumentError("target is empty; expected host:port");
  }
  if (options.deadline.count() <= 0 || options.max_retries < 0 ||
      options.initial_backoff.count() <= 0 ||
      options.max_backoff < options.initial_backoff ||
      options.max_message_bytes <= 0 || options.streams < 1 ||
      options.max_inflight_chunks < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid client options: deadline ", options.deadline.count(),
        " ms, max_retries ", options.max_retries, ", backoff ",
        options.initial_backoff.count(), "..", options.max_backoff.count(),
        " ms, max_message_bytes ", options.max_message_bytes, ", streams ",
        options.streams, ", max_inflight_chunks ", options.max_inflight_chunks,
        "; expected positive values and initial_backoff <= max_backoff"));
  }
  auto shared = std::make_shared<Shared>();
  shared->options = options;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // Reconnect after a lost server on the same schedule as our retries, so
  // a restarted server is found again within a retry or two.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(options.initial_backoff.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(options.max_backoff.count()));
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      internal::ChannelCredentials(options);
  if (!credentials.ok()) return credentials.status();
  shared->channel =
      grpc::CreateCustomChannel(options.target, *credentials, args);
  if (shared->channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create a channel to \"", options.target, "\""));
  }
  shared->stub = pb::LstmServe::NewStub(shared->channel);
  return std::unique_ptr<Client>(new Client(std::move(shared)));
}

Client::Client(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
Client::~Client() = default;

const ClientOptions& Client::options() const { return shared_->options; }

absl::StatusOr<std::vector<ModelInfo>> Client::ListModels() {
  pb::ListModelsRequest request;
  absl::StatusOr<pb::ListModelsResponse> response = CallStub(
      *shared_, /*retry_safe=*/true, &pb::LstmServe::Stub::ListModels, request);
  if (!response.ok()) return response.status();
  std::vector<ModelInfo> models;
  models.reserve(response->models_size());
  for (const pb::ModelInfo& m : response->models()) {
    models.push_back(FromProto(m));
  }
  return models;
}

absl::StatusOr<ModelInfo> Client::GetModel(const std::string& name,
                                           int64_t version) {
  pb::GetModelRequest request;
  request.set_name(name);
  request.set_version(version);
  absl::StatusOr<pb::ModelInfo> response = CallStub(
      *shared_, /*retry_safe=*/true, &pb::LstmServe::Stub::GetModel, request);
  if (!response.ok()) return response.status();
  return FromProto(*response);
}

absl::StatusOr<PredictResult> Client::Predict(const PredictRequest& request) {
  return RunPredict(*shared_, request);
}

absl::StatusOr<SessionInfo> Client::CreateSession(
    const CreateSessionRequest& request) {
  pb::CreateSessionRequest wire;
  wire.set_session_id(request.session_id);
  wire.set_model(request.model);
  wire.set_version(request.version);
  wire.mutable_initial_state()->Add(request.initial_state.begin(),
                                    request.initial_state.end());
  absl::StatusOr<pb::SessionInfo> response =
      CallStub(*shared_, /*retry_safe=*/false,
               &pb::LstmServe::Stub::CreateSession, wire);
  if (!response.ok()) return response.status();
  return FromProto(*response);
}

absl::StatusOr<SessionInfo> Client::GetSession(const std::string& session_id) {
  pb::GetSessionRequest request;
  request.set_session_id(session_id);
  absl::StatusOr<pb::SessionInfo> response = CallStub(
      *shared_, /*retry_safe=*/true, &pb::LstmServe::Stub::GetSession, request);
  if (!response.ok()) return response.status();
  return FromProto(*response);
}

absl::StatusOr<SessionInfo> Client::ResetSession(
    const std::string& session_id) {
  pb::ResetSessionRequest request;
  request.set_session_id(session_id);
  absl::StatusOr<pb::SessionInfo> response =
      CallStub(*shared_, /*retry_safe=*/false,
               &pb::LstmServe::Stub::ResetSession, request);
  if (!response.ok()) return response.status();
  return FromProto(*response);
}

absl::Status Client::CloseSession(const std::string& session_id) {
  return RunCloseSession(*shared_, session_id);
}

absl::StatusOr<SessionPage> Client::ListSessions(
    int page_size, const std::string& page_token) {
  pb::ListSessionsRequest request;
  request.set_page_size(page_size);
  request.set_page_token(page_token);
  absl::StatusOr<pb::ListSessionsResponse> response =
      CallStub(*shared_, /*retry_safe=*/true,
               &pb::LstmServe::Stub::ListSessions, request);
  if (!response.ok()) return response.status();
  SessionPage page;
  for (const pb::SessionInfo& info : response->sessions()) {
    page.sessions.push_back(FromProto(info));
  }
  page.next_page_token = response->next_page_token();
  return page;
}

absl::StatusOr<ServerStats> Client::GetServerStats() {
  pb::GetServerStatsRequest request;
  absl::StatusOr<pb::ServerStats> response =
      CallStub(*shared_, /*retry_safe=*/true,
               &pb::LstmServe::Stub::GetServerStats, request);
  if (!response.ok()) return response.status();
  ServerStats stats;
  for (const pb::ModelStats& m : response->models()) {
    ModelStats out;
    out.model = m.model();
    out.version = m.version();
    out.requests = m.requests();
    out.steps = m.steps();
    out.batches = m.batches();
    out.batch_size_histogram.assign(m.batch_size_histogram().begin(),
                                    m.batch_size_histogram().end());
    out.queue_wait_us_histogram.assign(m.queue_wait_us_histogram().begin(),
                                       m.queue_wait_us_histogram().end());
    out.queue_wait_us_total = m.queue_wait_us_total();
    out.compute_us_total = m.compute_us_total();
    out.rejected = m.rejected();
    out.expired = m.expired();
    stats.models.push_back(std::move(out));
  }
  stats.sessions = response->sessions();
  stats.uptime_ms = response->uptime_ms();
  stats.queued_steps = response->queued_steps();
  return stats;
}

absl::StatusOr<bool> Client::CheckHealth(const std::string& service) {
  // grpc.health.v1 is not compiled into this library: the call goes through
  // a generic stub with the (one-field) messages encoded by hand.
  static constexpr char kMethod[] = "/grpc.health.v1.Health/Check";
  const std::string encoded = internal::EncodeHealthCheckRequest(service);
  grpc::Slice slice(encoded);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::GenericStub stub(shared_->channel);
  grpc::ByteBuffer response;
  absl::Status status = CallUnary(
      *shared_, /*retry_safe=*/true, &response,
      [&](grpc::ClientContext* context, grpc::ByteBuffer* out) {
        // The callback owns the promise, so it may still be returning from
        // set_value after get() has returned here.
        auto done = std::make_shared<std::promise<grpc::Status>>();
        std::future<grpc::Status> result = done->get_future();
        // Completes by the context's deadline at the latest.
        stub.UnaryCall(
            context, kMethod, grpc::StubOptions(), &request, out,
            [done](grpc::Status s) { done->set_value(std::move(s)); });
        return result.get();
      });
  if (!status.ok()) return status;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) {
    return absl::InternalError("cannot read the health check response");
  }
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  absl::StatusOr<int> serving = internal::DecodeHealthCheckResponse(bytes);
  if (!serving.ok()) return serving.status();
  switch (*serving) {
    case 1:  // SERVING
      return true;
    case 3:  // SERVICE_UNKNOWN
      return absl::NotFoundError(
          absl::StrCat("the server's health service does not know service \"",
                       service, "\" (SERVICE_UNKNOWN)"));
    default:  // NOT_SERVING (2), UNKNOWN (0) or a value newer than this code
      return false;
  }
}

absl::StatusOr<Snapshot> Client::ExportSession(const std::string& session_id) {
  pb::ExportSessionRequest request;
  request.set_session_id(session_id);
  absl::StatusOr<pb::SessionSnapshot> response =
      CallStub(*shared_, /*retry_safe=*/true,
               &pb::LstmServe::Stub::ExportSession, request);
  if (!response.ok()) return response.status();
  Snapshot s;
  s.session_id = response->session_id();
  s.model = response->model();
  s.version = response->version();
  s.next_step = response->next_step();
  s.state.assign(response->state().begin(), response->state().end());
  s.last_first_step = response->last_first_step();
  s.last_inputs.assign(response->last_inputs().values().begin(),
                       response->last_inputs().values().end());
  s.last_inputs_shape.assign(response->last_inputs().shape().begin(),
                             response->last_inputs().shape().end());
  s.last_outputs.assign(response->last_outputs().values().begin(),
                        response->last_outputs().values().end());
  s.last_outputs_shape.assign(response->last_outputs().shape().begin(),
                              response->last_outputs().shape().end());
  for (const pb::ReplayChunk& r : response->replay()) {
    SnapshotChunk& c = s.replay.emplace_back();
    c.first_step = r.first_step();
    c.inputs.assign(r.inputs().values().begin(), r.inputs().values().end());
    c.inputs_shape.assign(r.inputs().shape().begin(), r.inputs().shape().end());
    c.outputs.assign(r.outputs().values().begin(), r.outputs().values().end());
    c.outputs_shape.assign(r.outputs().shape().begin(),
                           r.outputs().shape().end());
  }
  return s;
}

absl::StatusOr<SessionInfo> Client::ImportSession(const Snapshot& snapshot) {
  pb::ImportSessionRequest request;
  pb::SessionSnapshot* s = request.mutable_snapshot();
  s->set_session_id(snapshot.session_id);
  s->set_model(snapshot.model);
  s->set_version(snapshot.version);
  s->set_next_step(snapshot.next_step);
  s->mutable_state()->Add(snapshot.state.begin(), snapshot.state.end());
  s->set_last_first_step(snapshot.last_first_step);
  if (!snapshot.last_inputs_shape.empty() || !snapshot.last_inputs.empty()) {
    s->mutable_last_inputs()->mutable_shape()->Add(
        snapshot.last_inputs_shape.begin(), snapshot.last_inputs_shape.end());
    s->mutable_last_inputs()->mutable_values()->Add(
        snapshot.last_inputs.begin(), snapshot.last_inputs.end());
  }
  if (!snapshot.last_outputs_shape.empty() || !snapshot.last_outputs.empty()) {
    s->mutable_last_outputs()->mutable_shape()->Add(
        snapshot.last_outputs_shape.begin(), snapshot.last_outputs_shape.end());
    s->mutable_last_outputs()->mutable_values()->Add(
        snapshot.last_outputs.begin(), snapshot.last_outputs.end());
  }
  for (const SnapshotChunk& c : snapshot.replay) {
    pb::ReplayChunk* r = s->add_replay();
    r->set_first_step(c.first_step);
    r->mutable_inputs()->mutable_shape()->Add(c.inputs_shape.begin(),
                                              c.inputs_shape.end());
    r->mutable_inputs()->mutable_values()->Add(c.inputs.begin(),
                                               c.inputs.end());
    r->mutable_outputs()->mutable_shape()->Add(c.outputs_shape.begin(),
                                               c.outputs_shape.end());
    r->mutable_outputs()->mutable_values()->Add(c.outputs.begin(),
                                                c.outputs.end());
  }
  absl::StatusOr<pb::SessionInfo> response =
      CallStub(*shared_, /*retry_safe=*/false,
               &pb::LstmServe::Stub::ImportSession, request);
  if (!response.ok()) return response.status();
  return FromProto(*response);
}

absl::StatusOr<ForecastResult> Client::Forecast(
    const ForecastRequest& request) {
  pb::ForecastRequest pb_request;
  pb_request.set_session_id(request.session_id);
  pb_request.set_horizon(request.horizon);
  pb_request.set_samples(request.samples);
  pb_request.set_seed(request.seed);
  absl::StatusOr<pb::ForecastResponse> response =
      CallStub(*shared_, /*retry_safe=*/true, &pb::LstmServe::Stub::Forecast,
               pb_request);
  if (!response.ok()) return response.status();
  ForecastResult r;
  const pb::Tensor& f = response->forecast();
  if (f.shape_size() != 2) {
    return absl::InternalError(absl::StrCat("the server's forecast has ",
                                            f.shape_size(),
                                            " dimensions; expected 2"));
  }
  r.horizon = static_cast<int>(f.shape(0));
  r.output_size = static_cast<int>(f.shape(1));
  r.forecast.assign(f.values().begin(), f.values().end());
  for (const pb::Tensor& t : response->samples()) {
    r.samples.emplace_back(t.values().begin(), t.values().end());
  }
  r.model = response->model();
  r.version = response->version();
  r.session_id = response->session_id();
  r.from_step = response->from_step();
  return r;
}

// The session named by `options` as it stands on the server: created (with
// a server-made id when none is given), or found. `created_by_stream` is set
// when the session is missing and may be created by the first stream
// message instead (OpenStream); then the returned info has next_step 0.
absl::StatusOr<SessionInfo> internal::FindOrCreate(
    Client& client, const OpenSessionOptions& options, bool create_lazily,
    bool* created_by_stream) {
  *created_by_stream = false;
  auto create = [&]() -> absl::StatusOr<SessionInfo> {
    if (options.model.empty()) {
      return absl::InvalidArgumentError(
          "model is empty; a new session needs the model to run");
    }
    CreateSessionRequest request;
    request.session_id = options.session_id;
    request.model = options.model;
    request.version = options.version;
    return client.CreateSession(request);
  };
  if (options.session_id.empty()) return create();

  absl::StatusOr<SessionInfo> info = client.GetSession(options.session_id);
  if (info.ok()) {
    if (!options.model.empty() && info->model != options.model) {
      return absl::FailedPreconditionError(
          absl::StrCat("session \"", options.session_id, "\" runs model \"",
                       info->model, "\", not \"", options.model, "\""));
    }
    if (options.version != 0 && info->version != options.version) {
      return absl::FailedPreconditionError(absl::StrCat(
          "session \"", options.session_id, "\" runs version ", info->version,
          " of model \"", info->model, "\", not version ", options.version));
    }
    return info;
  }
  if (!absl::IsNotFound(info.status()) || !options.create_if_missing) {
    return info.status();
  }
  if (create_lazily) {
    if (options.model.empty()) {
      return absl::InvalidArgumentError(
          "model is empty; a new session needs the model to run");
    }
    *created_by_stream = true;
    SessionInfo fresh;
    fresh.session_id = options.session_id;
    fresh.model = options.model;
    fresh.version = options.version;
    return fresh;
  }
  absl::StatusOr<SessionInfo> created = create();
  if (absl::IsAlreadyExists(created.status())) {
    return client.GetSession(options.session_id);  // created concurrently
  }
  return created;
}

absl::StatusOr<std::unique_ptr<Session>> Client::OpenSession(
    const OpenSessionOptions& options) {
  bool unused = false;
  absl::StatusOr<SessionInfo> info =
      internal::FindOrCreate(*this, options, /*create_lazily=*/false, &unused);
  if (!info.ok()) return info.status();
  return std::unique_ptr<Session>(
      new Session(shared_, info->session_id, info->model, info->version,
                  info->next_step, options.explain));
}

// ---------------------------------------------------------------------------
// Session

struct Session::State {
  // Held for a whole Step or Close: one chunk of this object at a time.
  absl::Mutex call_mu;
  // Guards the fields; never held across a call, so next_step() does not
  // wait for a Step in progress.
  mutable absl::Mutex mu ABSL_ACQUIRED_AFTER(call_mu);
  int64_t next_step ABSL_GUARDED_BY(mu) = 0;
  bool closed ABSL_GUARDED_BY(mu) = false;
  // Answered inputs since the server's durable_step; only Step touches it
  // (under call_mu).
  std::unique_ptr<internal::ResendLog> log ABSL_GUARDED_BY(call_mu);
};

Session::Session(std::shared_ptr<Client::Shared> shared, std::string id,
                 std::string model, int64_t version, int64_t next_step,
                 bool explain)
    : shared_(std::move(shared)),
      id_(std::move(id)),
      model_(std::move(model)),
      version_(version),
      explain_(explain),
      state_(std::make_unique<State>()) {
  {
    absl::MutexLock lock(&state_->call_mu);
    state_->log = std::make_unique<internal::ResendLog>(
        shared_->options.max_resend_steps);
  }
  absl::MutexLock lock(&state_->mu);
  state_->next_step = next_step;
}

Session::~Session() = default;

int64_t Session::next_step() const {
  absl::MutexLock lock(&state_->mu);
  return state_->next_step;
}

absl::StatusOr<StepResult> Session::Step(const std::vector<float>& inputs,
                                         int steps) {
  absl::MutexLock call_lock(&state_->call_mu);
  PredictRequest request;
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->closed) {
      return absl::FailedPreconditionError(
          absl::StrCat("session \"", id_, "\" was closed"));
    }
    request.first_step = state_->next_step;
  }
  request.session_id = id_;
  request.inputs = inputs;
  request.steps = steps;
  request.explain = explain_;
  const int64_t first_step = *request.first_step;
  // Retried on UNAVAILABLE because first_step is set.
  absl::StatusOr<PredictResult> predicted = RunPredict(*shared_, request);
  // A server that came back from its last checkpoint is behind this chunk:
  // resend the steps it lost, then the chunk again. A crash during that
  // starts it over (a few times at most).
  constexpr int kMaxRecoveries = 8;
  for (int recovery = 0;
       recovery < kMaxRecoveries && !predicted.ok() &&
       predicted.status().code() == absl::StatusCode::kFailedPrecondition &&
       state_->log->active();
       ++recovery) {
    pb::GetSessionRequest where;
    where.set_session_id(id_);
    absl::StatusOr<pb::SessionInfo> info = CallStub(
        *shared_, /*retry_safe=*/true, &pb::LstmServe::Stub::GetSession, where);
    if (!info.ok() || info->next_step() >= first_step) break;
    absl::StatusOr<std::vector<internal::ResendLog::Chunk>> lost =
        state_->log->Between(info->next_step(), first_step);
    if (!lost.ok()) return lost.status();
    absl::Status resent;
    for (internal::ResendLog::Chunk& c : *lost) {
      PredictRequest resend;
      resend.session_id = id_;
      resend.first_step = c.first_step;
      resend.steps = c.steps;
      resend.inputs = std::move(c.inputs);
      resend.explain = explain_;
      resent = RunPredict(*shared_, resend).status();
      if (!resent.ok()) break;
    }
    if (resent.code() == absl::StatusCode::kFailedPrecondition) {
      predicted = resent;  // it moved back again: start over
      continue;
    }
    if (!resent.ok()) {
      return absl::Status(
          resent.code(),
          absl::StrCat("resending the steps the server lost failed: ",
                       resent.message()));
    }
    predicted = RunPredict(*shared_, request);
  }
  if (!predicted.ok()) {
    return internal::SessionLost(predicted.status(), id_, first_step);
  }
  state_->log->Answered(first_step, steps, inputs, predicted->durable_step);
  StepResult result;
  result.outputs = std::move(predicted->outputs);
  result.steps = predicted->steps;
  result.output_size = predicted->output_size;
  result.first_step = first_step;
  result.next_step = first_step + steps;  // this chunk's end
  result.replayed = predicted->replayed;
  result.durable_step = predicted->durable_step;
  result.explain = std::move(predicted->explain);
  absl::MutexLock lock(&state_->mu);
  state_->next_step = first_step + steps;
  return result;
}

absl::Status Session::Close() {
  absl::MutexLock call_lock(&state_->call_mu);
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->closed) return absl::OkStatus();
  }
  absl::Status status = RunCloseSession(*shared_, id_);
  if (status.ok()) {
    absl::MutexLock lock(&state_->mu);
    state_->closed = true;
  }
  return status;
}

}  // namespace lstmserve::client
