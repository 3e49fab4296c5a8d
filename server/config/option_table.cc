// To add an option: add its field to server::ServerOptions (server_options.h;
// or to ServerConfig when only main() uses it) and one entry below. Its flag,
// config-file key, environment variable, --help line, --print-config line
// and --help-config row follow from the entry. Then add the key to
// deploy/lstm-server.toml and paste `lstm-server --help-config` into
// docs/OPERATIONS.md (config_tests checks both).
#include "server/config/option_table.h"

#include <charconv>

#include "absl/strings/match.h"
#include "server/config/option_kinds.h"

namespace lstmserve::config {
namespace {

using server::ServerOptions;
using server::StateSync;

// "host:port" with a port from 0 to 65535, or "off".
bool IsListenAddressOrOff(absl::string_view text) {
  if (text == "off") return true;
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  const absl::string_view port = text.substr(colon + 1);
  int value = -1;
  const auto [end, error] =
      std::from_chars(port.data(), port.data() + port.size(), value);
  return error == std::errc() && end == port.data() + port.size() &&
         value >= 0 && value <= 65535;
}

std::vector<Option> MakeTable() {
  constexpr unsigned kCommandLine = kFlag;
  std::vector<Option> table = {
      StringOption("config", &ServerConfig::config_file,
                   "Read options from this TOML file (docs/OPERATIONS.md); "
                   "LSTMSERVE_* environment variables and flags override it",
                   kFlag | kEnv),
      BoolOption("print_config", &ServerConfig::print_config,
                 "Print the effective configuration (defaults, --config "
                 "file, environment and flags applied) as a config file, "
                 "and exit",
                 kCommandLine),
      BoolOption("help_config", &ServerConfig::help_config,
                 "Print every option (config key, flag, environment "
                 "variable, type, default, meaning) as a Markdown table, "
                 "and exit",
                 kCommandLine),
      StringOption("model_repo", &ServerOptions::model_repo,
                   "Model repository: <repo>/<name>/<version>/ with "
                   "config.json and model.safetensors; the versions each "
                   "model's version policy picks are served, and the "
                   "repository is scanned for changes (--repo-poll-interval)"),
      StringOption("listen", &ServerOptions::listen,
                   "Address to listen on, host:port (port 0: any free port)"),
      StringOption("port_file", &ServerConfig::port_file,
                   "Write the bound port to FILE once listening (useful with "
                   "port 0)"),
      IntOption("threads", &ServerOptions::threads, 0, 1024,
                "Worker threads running the engine, and shards per model "
                "version (0: one per CPU core); a chunk of at most 16 steps "
                "sent to an idle shard runs on the gRPC thread that read it"),
      DurationOption("session_idle_timeout",
                     &ServerOptions::session_idle_timeout, TimeUnit::kSeconds,
                     {.min = 0.001, .max = 1e9},
                     "Seconds after which an unused session is closed"),
      IntOption("max_sessions", &ServerOptions::max_sessions, 1, 100000000,
                "Sessions held at once; creating one more fails with "
                "RESOURCE_EXHAUSTED"),
      IntOption("max_steps_per_request", &ServerOptions::max_steps_per_request,
                1, 1 << 24,
                "Steps (CSV rows) in one Predict request or stream message; "
                "more is INVALID_ARGUMENT"),
      IntOption("max_message_bytes", &ServerOptions::max_message_bytes, 1024,
                1 << 30,
                "Largest request message; larger is RESOURCE_EXHAUSTED"),
      IntOption("max_stream_inflight", &ServerOptions::max_stream_inflight, 1,
                1 << 20,
                "Requests one stream may have read and not yet answered "
                "(until the response is written) before the server stops "
                "reading it (back-pressure)"),
      IntOption("max_stream_buffered_bytes",
                &ServerOptions::max_stream_buffered_bytes, 1, int64_t{1} << 34,
                "Bytes of one stream's responses waiting to be written "
                "before the server stops reading it (a client that does not "
                "read cannot make the server hold more)"),
      IntOption("max_replay_chunks", &ServerOptions::max_replay_chunks, 0, 1024,
                "Applied chunks sent with first_step that each session keeps "
                "so that their exact retries are answered, not re-applied: "
                "the pipelining window a client may use (0: none)"),
      IntOption("max_explain_values", &ServerOptions::max_explain_values, 1,
                int64_t{1} << 30,
                "Floats of explain records (gates and states) one response "
                "may carry: steps x the model's record size; a longer "
                "explained chunk is INVALID_ARGUMENT"),
      IntOption("max_forecast_horizon", &ServerOptions::max_forecast_horizon, 1,
                1 << 20,
                "Rows (steps ahead) one Forecast may ask for; more is "
                "INVALID_ARGUMENT"),
      IntOption("max_forecast_samples", &ServerOptions::max_forecast_samples, 0,
                1 << 16,
                "Noisy sample paths one Forecast may ask for besides its "
                "deterministic path; more is INVALID_ARGUMENT"),
      IntOption("max_forecast_values", &ServerOptions::max_forecast_values, 1,
                int64_t{1} << 30,
                "Floats one Forecast response may carry: horizon x (samples "
                "+ 1) x the model's output size; more is INVALID_ARGUMENT"),
      IntOption("max_batch", &ServerOptions::max_batch, 1, 1 << 16,
                "Sessions' chunks of one model run as one engine call, at "
                "most"),
      DurationOption("max_queue_delay", &ServerOptions::max_queue_delay,
                     TimeUnit::kMicroseconds, {.min = 0, .max = 1e7},
                     "Microseconds a partial batch waits for more chunks (0: "
                     "never waits)"),
      DurationOption(
          "batch_peer_window", &ServerOptions::batch_peer_window,
          TimeUnit::kMicroseconds,
          {.min = -1, .max = 1e9, .negative_is_infinite = true},
          "A partial batch waits (--max-queue-delay) only if another "
          "session of its model sent a chunk within this many "
          "microseconds, so a lone client is never delayed; stateless "
          "Predict calls over one connection count as one sender (-1: "
          "always wait)"),
      IntOption("max_queued_steps", &ServerOptions::max_queued_steps, 1,
                int64_t{1} << 40,
                "Steps waiting in the queue at most; beyond it requests fail "
                "fast with RESOURCE_EXHAUSTED"),
      BoolOption("allow_non_finite", &ServerOptions::allow_non_finite,
                 "Accept NaN/Inf inputs (rejected by default: one NaN "
                 "poisons a session's state)"),
      DurationOption("shutdown_grace", &ServerConfig::shutdown_grace,
                     TimeUnit::kSeconds, {.min = 0, .max = 3600},
                     "Seconds in-flight calls get to finish on "
                     "SIGINT/SIGTERM; the server exits as soon as they are "
                     "done"),
      ChoiceOption<std::string>("log_level", &ServerConfig::log_level,
                                {{"trace", "trace"},
                                 {"debug", "debug"},
                                 {"info", "info"},
                                 {"warn", "warn"},
                                 {"error", "error"},
                                 {"off", "off"}},
                                "trace, debug, info, warn, error or off"),
      ChoiceOption<LogFormat>(
          "log_format", &ServerConfig::log_format,
          {{"text", LogFormat::kText}, {"json", LogFormat::kJson}},
          "Log lines as text, or as json (one JSON object per line, for log "
          "collectors)"),
      StringOption("access_log", &ServerOptions::access_log,
                   "Write one line per request (method, model, session, "
                   "steps, code, duration) to this file; - for stdout; off "
                   "(or empty): none"),
      StringOption("tls_cert", &ServerOptions::tls_cert,
                   "PEM file of the server's TLS certificate chain (with "
                   "--tls-key); re-read when it changes, so certificates "
                   "rotate without a restart. Empty: plaintext"),
      StringOption("tls_key", &ServerOptions::tls_key,
                   "PEM file of the private key of --tls-cert"),
      StringOption("tls_client_ca", &ServerOptions::tls_client_ca,
                   "PEM file of the CAs whose client certificates are "
                   "accepted: set, every client must present one (mutual "
                   "TLS)"),
      BoolOption("allow_insecure", &ServerOptions::allow_insecure,
                 "Allow plaintext gRPC and metrics on an address that is not "
                 "loopback (without it such a server refuses to start)"),
      StringOption("auth_tokens", &ServerOptions::auth_tokens,
                   "File of bearer tokens, one \"TOKEN IDENTITY [admin]\" a "
                   "line, re-read when it changes: every call must then "
                   "carry \"authorization: Bearer TOKEN\" (empty: no "
                   "tokens)"),
      BoolOption("identity_from_cert", &ServerOptions::identity_from_cert,
                 "With --tls-client-ca: a caller without a token is the "
                 "identity of its client certificate (its first subject "
                 "alternative name, else its subject CN)"),
      StringOption("admin_identities", &ServerOptions::admin_identities,
                   "Certificate identities (--identity-from-cert) that have "
                   "the admin role, comma-separated"),
      DurationOption("credentials_reload_interval",
                     &ServerOptions::credentials_reload_interval,
                     TimeUnit::kSeconds, {.min = 1, .max = 86400},
                     "Seconds between checks of the TLS files and "
                     "--auth-tokens for changes"),
      IntOption("max_streams", &ServerOptions::max_streams, 1, 1 << 24,
                "Stream calls open at once, from all clients; one more is "
                "RESOURCE_EXHAUSTED"),
      IntOption("max_streams_per_connection",
                &ServerOptions::max_streams_per_connection, 1, 1 << 20,
                "Calls (HTTP/2 streams) one connection may have open at "
                "once; more wait in the client until one ends"),
      IntOption("max_sessions_per_identity",
                &ServerOptions::max_sessions_per_identity, 1, 100000000,
                "Sessions one identity may hold at once; creating one more "
                "fails with RESOURCE_EXHAUSTED"),
      IntOption("max_requests_per_second",
                &ServerOptions::max_requests_per_second, 0, int64_t{1} << 40,
                "Requests (unary calls and stream messages) a second per "
                "identity, a token bucket; over it RESOURCE_EXHAUSTED with "
                "a retry time (0: no limit)"),
      IntOption("request_burst", &ServerOptions::request_burst, 0,
                int64_t{1} << 40,
                "Requests an identity may send at once above "
                "--max-requests-per-second (0: one second's worth)"),
      StringOption("metrics_listen", &ServerOptions::metrics_listen,
                   "Address of the Prometheus metrics endpoint (/metrics), "
                   "host:port; off: none",
                   kEverywhere, "host:port or \"off\"", IsListenAddressOrOff),
      StringOption("state_dir", &ServerOptions::state_dir,
                   "Directory of the SQLite session store: sessions are "
                   "checkpointed there and restored at start (empty: "
                   "sessions live in memory only and end with the process)"),
      DurationOption("checkpoint_interval", &ServerOptions::checkpoint_interval,
                     TimeUnit::kSeconds,
                     {.min = 0, .max = 3600, .min_exclusive = true},
                     "Seconds between checkpoints of the sessions that "
                     "changed, into --state-dir"),
      ChoiceOption<StateSync>(
          "state_sync", &ServerOptions::state_sync,
          {{"normal", StateSync::kNormal}, {"full", StateSync::kFull}},
          "SQLite synchronous mode of --state-dir: normal (a checkpoint "
          "survives a crash of the process) or full (it survives power loss "
          "too; commits are slower)"),
      VersionPolicyOption(
          "version_policy", &ServerOptions::version_policy,
          "Versions served of a model that has no versions of its own in "
          "the config file: all, latest:N (the N highest) or "
          "specific:V1,V2,..."),
      DurationOption("repo_poll_interval", &ServerOptions::repo_poll_interval,
                     TimeUnit::kSeconds, {.min = 0, .max = 86400},
                     "Seconds between scans of --model-repo for new and "
                     "removed versions (0: scanned only at start)"),
      DurationOption(
          "version_drain_timeout", &ServerOptions::version_drain_timeout,
          TimeUnit::kSeconds, {.min = 0, .max = 1e9},
          "Seconds an unloaded model version keeps serving the sessions "
          "that started on it before they are closed with reason reload "
          "(0: closed at once)"),
  };
  return table;
}

}  // namespace

const std::vector<Option>& OptionTable() {
  static const std::vector<Option>* const table =
      new std::vector<Option>(MakeTable());
  return *table;
}

const Option* FindOption(absl::string_view key) {
  for (const Option& option : OptionTable()) {
    if (option.key == key) return &option;
  }
  return nullptr;
}

}  // namespace lstmserve::config
