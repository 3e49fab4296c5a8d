#include "server/server.h"

#include <unistd.h>

#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "model/status_macros.h"
#include "server/core/model_registry.h"
#include "server/core/repository_watcher.h"
#include "server/core/session_manager.h"
#include "server/logging.h"
#include "server/maintenance.h"
#include "server/metrics/http_endpoint.h"
#include "server/request_recorder.h"
#include "server/server_metrics.h"
#include "server/service.h"
#include "server/store/sqlite_state_store.h"
#include "spdlog/spdlog.h"

namespace lstmserve::server {

namespace {
constexpr char kService[] = "lstmserve.v1.LstmServe";
}  // namespace

struct Server::Impl {
  ServerOptions options;
  std::unique_ptr<Authenticator> auth;        // null: no authentication
  std::unique_ptr<RateLimiter> rate_limiter;  // null: no rate limit
  std::unique_ptr<ModelRegistry> registry;
  std::unique_ptr<StateStore> store;  // null without --state-dir
  std::unique_ptr<SessionManager> core;
  std::unique_ptr<RepositoryWatcher> watcher;
  std::unique_ptr<Maintenance> maintenance;
  std::unique_ptr<ServerMetrics> metrics;
  std::unique_ptr<RequestRecorder> recorder;
  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint;  // null: off
  std::unique_ptr<LstmServeService> service;
  std::unique_ptr<grpc::Server> grpc_server;
  int port = 0;
  std::string host;

  // grpc.health.v1: "" and kService SERVING while serving (NOT_SERVING from
  // the start of shutdown), and "lstmserve.v1.LstmServe/<model>" SERVING
  // while the model has a version served.
  absl::Mutex health_mu;
  std::set<std::string> health_models ABSL_GUARDED_BY(health_mu);
  void UpdateModelHealth() {
    grpc::HealthCheckServiceInterface* health =
        grpc_server ? grpc_server->GetHealthCheckService() : nullptr;
    if (health == nullptr) return;
    absl::MutexLock lock(&health_mu);
    const std::vector<std::string> served = registry->Names();
    health_models.insert(served.begin(), served.end());
    for (const std::string& name : health_models) {
      health->SetServingStatus(absl::StrCat(kService, "/", name),
                               !registry->Versions(name).empty());
    }
  }

  absl::Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;
  absl::Notification done;
};

namespace {

// Splits "host:port" (host may be "[::1]"). Port must be 0..65535.
absl::Status SplitAddress(const std::string& address, std::string& host,
                          int& port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", address, "\" is not host:port"));
  }
  host = address.substr(0, colon);
  const std::string p = address.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("listen address \"", address,
                                                   "\" has port \"", p,
                                                   "\"; expected 0 to 65535"));
  }
  port = std::stoi(p);
  return absl::OkStatus();
}

// Whether `host` (from SplitAddress) names a loopback address, where only
// this machine can connect.
bool IsLoopbackHost(absl::string_view host) {
  return host == "localhost" || host == "[::1]" || host == "::1" ||
         absl::StartsWith(host, "127.");
}

std::string HostOf(const std::string& address) {
  return address.substr(0, address.rfind(':'));
}

// The security options, checked together: TLS files in pairs, the
// plaintext rule, identities from certificates only with mutual TLS.
absl::Status CheckSecurityOptions(const ServerOptions& o,
                                  absl::string_view host) {
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: set both or neither");
  }
  const bool tls = !o.tls_cert.empty();
  if (!o.tls_client_ca.empty() && !tls) {
    return absl::InvalidArgumentError(
        "--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)");
  }
  if (o.identity_from_cert && o.tls_client_ca.empty()) {
    return absl::InvalidArgumentError(
        "--identity-from-cert needs --tls-client-ca: without client "
        "certificates there is no identity to take");
  }
  for (const std::string* file : {&o.tls_cert, &o.tls_key, &o.tls_client_ca}) {
    if (!file->empty() && ::access(file->c_str(), R_OK) != 0) {
      return absl::NotFoundError(
          absl::StrCat("cannot read the TLS file \"", *file, "\""));
    }
  }
  if (!tls && !o.allow_insecure && !IsLoopbackHost(host)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", o.listen,
        " without TLS: only loopback addresses may be plaintext. Set "
        "--tls-cert and --tls-key, or --allow-insecure on a network you "
        "trust (docs/SECURITY.md)"));
  }
  if (!o.metrics_listen.empty() && o.metrics_listen != "off" &&
      !o.allow_insecure && !IsLoopbackHost(HostOf(o.metrics_listen))) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve metrics on ", o.metrics_listen,
        " over plain HTTP: the metrics endpoint has no TLS, so it may only "
        "listen on a loopback address, unless --allow-insecure is set "
        "(docs/SECURITY.md)"));
  }
  return absl::OkStatus();
}

// The listening port's credentials: TLS from files watched by gRPC (a
// rotated certificate is used for new connections within the reload
// interval), requiring and verifying client certificates with
// --tls-client-ca; else plaintext.
std::shared_ptr<grpc::ServerCredentials> MakeCredentials(
    const ServerOptions& o) {
  if (o.tls_cert.empty()) return grpc::InsecureServerCredentials();
  const unsigned refresh = static_cast<unsigned>(std::max<int64_t>(
      1, absl::ToInt64Seconds(o.credentials_reload_interval)));
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          o.tls_key, o.tls_cert, o.tls_client_ca, refresh);
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (!o.tls_client_ca.empty()) {
    tls.watch_root_certs();
    tls.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(tls);
}

// The config file's per-model weight format, for the engine. (The config
// library keeps its own enum so that it links no engine.)
model::WeightFormat ToModelWeights(WeightFormat format) {
  switch (format) {
    case WeightFormat::kF32:
      return model::WeightFormat::kF32;
    case WeightFormat::kBf16:
      return model::WeightFormat::kBF16;
    case WeightFormat::kInt8:
      return model::WeightFormat::kInt8;
  }
  return model::WeightFormat::kF32;
}

}  // namespace

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  int requested_port = 0;
  RETURN_IF_ERROR(SplitAddress(options.listen, impl->host, requested_port));
  if (options.max_sessions < 1 || options.max_steps_per_request < 1 ||
      options.max_message_bytes < 1024 || options.max_stream_inflight < 1 ||
      options.max_batch < 1 || options.max_queued_steps < 1 ||
      options.max_stream_buffered_bytes < 1 || options.max_replay_chunks < 0 ||
      options.max_explain_values < 1 || options.max_forecast_horizon < 1 ||
      options.max_forecast_samples < 0 || options.max_forecast_values < 1 ||
      options.max_queue_delay < absl::ZeroDuration() ||
      options.batch_peer_window < absl::ZeroDuration() || options.threads < 0 ||
      options.session_idle_timeout <= absl::ZeroDuration() ||
      options.checkpoint_interval < absl::ZeroDuration() ||
      options.max_streams < 1 || options.max_streams_per_connection < 1 ||
      options.max_sessions_per_identity < 1 ||
      options.max_requests_per_second < 0 || options.request_burst < 0 ||
      options.credentials_reload_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        "--max-sessions, --max-steps-per-request, --max-stream-inflight, "
        "--max-stream-buffered-bytes, --max-batch, --max-queued-steps, "
        "--max-explain-values, --max-forecast-horizon and "
        "--max-forecast-values must be at least 1, --max-replay-chunks and "
        "--max-forecast-samples at least 0, "
        "--max-message-bytes at least 1024, --threads, --max-queue-delay "
        "and --batch-peer-window at least 0, --session-idle-timeout "
        "positive and --checkpoint-interval at least 0; --max-streams, "
        "--max-streams-per-connection and --max-sessions-per-identity at "
        "least 1, --max-requests-per-second and --request-burst at least 0, "
        "--credentials-reload-interval at least 1 s");
  }
  RETURN_IF_ERROR(CheckSecurityOptions(options, impl->host));
  if (!options.auth_tokens.empty() || options.identity_from_cert) {
    Authenticator::Options auth;
    auth.tokens_file = options.auth_tokens;
    auth.identity_from_cert = options.identity_from_cert;
    for (absl::string_view name :
         absl::StrSplit(options.admin_identities, ',', absl::SkipEmpty())) {
      auth.admin_identities.insert(
          std::string(absl::StripAsciiWhitespace(name)));
    }
    auth.reload_interval = options.credentials_reload_interval;
    auth.report = [](bool error, const std::string& message) {
      if (error) {
        Logger("auth")->warn("{}", message);
      } else {
        Logger("auth")->info("{}", message);
      }
    };
    ASSIGN_OR_RETURN(impl->auth, Authenticator::Create(std::move(auth)));
  }
  if (options.max_requests_per_second > 0) {
    RateLimiter::Options limit;
    limit.rate = static_cast<double>(options.max_requests_per_second);
    limit.burst = static_cast<double>(options.request_burst > 0
                                          ? options.request_burst
                                          : options.max_requests_per_second);
    limit.clock = options.clock;
    impl->rate_limiter = std::make_unique<RateLimiter>(limit);
  }

  impl->registry = std::make_unique<ModelRegistry>();

  if (!options.state_dir.empty()) {
    store::SqliteStateStore::Report report;
    store::SqliteStateStore::Options store_options;
    store_options.dir = options.state_dir;
    store_options.sync_full = options.state_sync == StateSync::kFull;
    absl::StatusOr<std::unique_ptr<store::SqliteStateStore>> opened =
        store::SqliteStateStore::Open(store_options, &report);
    for (const std::string& w : report.warnings) {
      Logger("store")->warn("{}", w);
    }
    if (!opened.ok()) return opened.status();
    if (report.created) {
      Logger("store")->info("created {}", (*opened)->Describe());
    }
    impl->store = *std::move(opened);
  }

  CoreOptions core_options;
  core_options.threads =
      options.threads > 0
          ? options.threads
          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  core_options.max_sessions = options.max_sessions;
  core_options.max_sessions_per_identity = options.max_sessions_per_identity;
  core_options.idle_timeout = options.session_idle_timeout;
  core_options.limits.max_steps_per_request = options.max_steps_per_request;
  core_options.limits.allow_non_finite = options.allow_non_finite;
  core_options.limits.max_replay_chunks = options.max_replay_chunks;
  core_options.limits.max_explain_values = options.max_explain_values;
  core_options.limits.max_forecast_horizon = options.max_forecast_horizon;
  core_options.limits.max_forecast_samples = options.max_forecast_samples;
  core_options.limits.max_forecast_values = options.max_forecast_values;
  core_options.batching.max_batch = options.max_batch;
  core_options.batching.max_queue_delay = options.max_queue_delay;
  core_options.batching.peer_window = options.batch_peer_window;
  core_options.max_queued_steps = options.max_queued_steps;
  core_options.clock = options.clock;
  core_options.store = impl->store.get();
  core_options.checkpoint_interval = options.checkpoint_interval;
  const int threads = core_options.threads;
  ASSIGN_OR_RETURN(impl->core,
                   SessionManager::Create(*impl->registry, core_options));

  // The versions to serve, by the version policies; a version that does not
  // load is logged and skipped, and the server serves the rest.
  WatcherOptions watch;
  watch.repo = options.model_repo;
  watch.default_policy = options.version_policy;
  for (const auto& [name, model_options] : options.models) {
    if (model_options.versions) watch.policies[name] = *model_options.versions;
  }
  watch.drain = options.version_drain_timeout;
  watch.load = [models = options.models](const std::string& name,
                                         const std::string& dir) {
    model::Model::Options load;
    auto it = models.find(name);
    if (it != models.end() && it->second.weights) {
      load.weights = ToModelWeights(*it->second.weights);
    }
    return model::Model::Load(dir, load);
  };
  impl->watcher = std::make_unique<RepositoryWatcher>(*impl->core, watch);
  absl::StatusOr<std::vector<RepositoryWatcher::Event>> loaded =
      impl->watcher->Poll(/*start=*/true);
  if (!loaded.ok()) {
    impl->core->Stop();
    return loaded.status();
  }
  std::string refused;
  for (const RepositoryWatcher::Event& e : *loaded) {
    Maintenance::Log(e, *impl->core);
    if (e.kind == RepositoryWatcher::Event::Kind::kRefused) {
      absl::StrAppend(&refused, "; ", e.ToString());
    }
  }
  if (impl->registry->num_versions() == 0) {
    impl->core->Stop();
    return absl::NotFoundError(absl::StrCat(
        options.model_repo, ": no model version loads", refused,
        refused.empty() ? "; expected <repo>/<name>/<version>/config.json"
                        : ""));
  }
  if (impl->store) {
    absl::StatusOr<StateStore::Contents> contents = impl->store->LoadAll();
    if (!contents.ok()) {
      impl->core->Stop();
      return contents.status();
    }
    for (const std::string& p : contents->problems) {
      Logger("store")->error("{}; it stays in the store", p);
    }
    const size_t stored = contents->records.size();
    SessionManager::Restored restored =
        impl->core->Restore(std::move(contents->records));
    for (const std::string& p : restored.problems) {
      Logger("store")->warn("{}; it stays in the store", p);
    }
    Logger("store")->info("{}: {} sessions restored of {} stored",
                          impl->store->Describe(), restored.sessions,
                          stored + contents->problems.size());
  }

  ASSIGN_OR_RETURN(impl->metrics, ServerMetrics::Create(*impl->core));
  impl->recorder = std::make_unique<RequestRecorder>(impl->metrics.get());
  if (!options.metrics_listen.empty() && options.metrics_listen != "off") {
    metrics::MetricsEndpoint::Options endpoint;
    endpoint.listen_address = options.metrics_listen;
    endpoint.registry = &impl->metrics->registry();
    absl::StatusOr<std::unique_ptr<metrics::MetricsEndpoint>> started =
        metrics::MetricsEndpoint::Start(endpoint);
    if (!started.ok()) {
      impl->core->Stop();
      return absl::Status(
          started.status().code(),
          absl::StrCat("--metrics-listen: ", started.status().message()));
    }
    impl->metrics_endpoint = *std::move(started);
  }

  ServiceOptions service_options;
  service_options.observer = impl->recorder.get();
  service_options.max_stream_inflight = options.max_stream_inflight;
  service_options.max_stream_buffered_bytes = options.max_stream_buffered_bytes;
  service_options.auth = impl->auth.get();
  service_options.rate_limiter = impl->rate_limiter.get();
  service_options.max_streams = options.max_streams;
  Impl* raw = impl.get();
  impl->maintenance = std::make_unique<Maintenance>(
      *impl->core, *impl->watcher, options.expiry_sweep_interval,
      options.repo_poll_interval, [raw] { raw->UpdateModelHealth(); });
  impl->service = std::make_unique<LstmServeService>(
      *impl->core, *impl->maintenance, service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, so a second server on a port in use
  // would start and silently take half the connections, and with them the
  // sessions. One server per port: the second fails with "address in use".
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_streams_per_connection);
  builder.AddListeningPort(options.listen, MakeCredentials(options),
                           &impl->port);
  builder.RegisterService(impl->service.get());
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(std::max(options.max_message_bytes, 64 << 20));
  impl->grpc_server = builder.BuildAndStart();
  if (!impl->grpc_server || impl->port == 0) {
    impl->core->Stop();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen,
                     " (address in use, or not a local address?)"));
  }

  if (grpc::HealthCheckServiceInterface* health =
          impl->grpc_server->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus(kService, true);
  }
  impl->UpdateModelHealth();
  const bool tls = !options.tls_cert.empty();
  spdlog::info(
      "lstm-server listening on {}:{} ({}; {} model versions, {} worker "
      "threads)",
      impl->host, impl->port,
      !tls                            ? "plaintext"
      : options.tls_client_ca.empty() ? "TLS"
                                      : "mutual TLS",
      impl->registry->num_versions(), threads);
  if (!tls && !IsLoopbackHost(impl->host)) {
    spdlog::warn(
        "listening on {} WITHOUT TLS (--allow-insecure): anyone who can "
        "reach this port can read and steer sessions in transit",
        options.listen);
  }
  spdlog::info(
      "authentication: {}",
      impl->auth == nullptr
          ? "none (every caller is the anonymous identity, with the "
            "admin role)"
          : absl::StrCat(
                options.auth_tokens.empty() ? "" : "bearer tokens",
                !options.auth_tokens.empty() && options.identity_from_cert
                    ? " or "
                    : "",
                options.identity_from_cert ? "client certificates" : ""));
  if (impl->metrics_endpoint) {
    // The endpoint's own host (it may differ from the gRPC one).
    spdlog::info("metrics on http://{}:{}/metrics",
                 HostOf(options.metrics_listen),
                 impl->metrics_endpoint->port());
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::~Server() {
  Shutdown();
  Wait();
}

int Server::port() const { return impl_->port; }

int Server::metrics_port() const {
  return impl_->metrics_endpoint ? impl_->metrics_endpoint->port() : 0;
}

std::string Server::address() const {
  return absl::StrCat(impl_->host, ":", impl_->port);
}

void Server::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&impl_->shutdown_mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  spdlog::info("lstm-server stopping: no new calls, finishing in-flight ones");
  const auto deadline =
      std::chrono::system_clock::now() +
      std::chrono::microseconds(absl::ToInt64Microseconds(grace));
  // Streams finish as soon as they are idle, so gRPC's Shutdown returns as
  // soon as the last call is done; what is still open at the deadline is
  // cancelled. The workers keep running meanwhile: in-flight chunks
  // complete.
  // Probes see NOT_SERVING (for "" and every service) from now on.
  if (grpc::HealthCheckServiceInterface* health =
          impl_->grpc_server->GetHealthCheckService()) {
    health->Shutdown();
  }
  impl_->service->BeginShutdown();
  impl_->grpc_server->Shutdown(deadline);
  impl_->grpc_server->Wait();
  // After the calls: an admin call in flight waits for this thread.
  impl_->maintenance->Stop();
  impl_->core->Stop();
  spdlog::info("lstm-server stopped");
  impl_->done.Notify();
}

void Server::Wait() { impl_->done.WaitForNotification(); }

SessionManager& Server::core() { return *impl_->core; }
const ModelRegistry& Server::models() const { return *impl_->registry; }

}  // namespace lstmserve::server
