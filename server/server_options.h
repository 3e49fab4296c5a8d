// ServerOptions: everything Server::Start needs to know, with the documented
// defaults. lstm-server fills it from its flags, config file and environment
// (server/config/option_table.cc declares each option once); tests and
// embedders fill it directly.
//
// Thread-safety: a value; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "server/core/clock.h"
#include "server/core/version_policy.h"

namespace lstmserve::server {

// SQLite's synchronous mode for the session store (--state-sync).
enum class StateSync {
  kNormal,  // WAL + synchronous=NORMAL: survives a process crash
  kFull,    // synchronous=FULL: also survives power loss, slower commits
};

// A weight format a model may be converted to when it is loaded.
enum class WeightFormat { kF32, kBf16, kInt8 };

// Settings of one model of the repository ([models.NAME] in the config file).
struct ModelOptions {
  // Versions served; unset: ServerOptions::version_policy.
  std::optional<VersionPolicy> versions;
  // Weight format to run the model in; unset: as stored in its files.
  std::optional<WeightFormat> weights;

  bool operator==(const ModelOptions&) const = default;
};

struct ServerOptions {
  // Model repository: <repo>/<name>/<version>/{config.json,model.safetensors}.
  std::string model_repo = "models";
  // host:port to listen on; port 0 picks a free port (see Server::port()).
  std::string listen = "127.0.0.1:50051";
  // Worker threads that run the engine; 0 means one per CPU core.
  int threads = 0;
  // A session unused for this long is closed.
  absl::Duration session_idle_timeout = absl::Minutes(10);
  // Creating a session beyond this many fails with RESOURCE_EXHAUSTED.
  int max_sessions = 10000;
  // Steps (rows) per Predict request or stream message.
  int max_steps_per_request = 4096;
  // Largest request message accepted (gRPC answers RESOURCE_EXHAUSTED).
  int max_message_bytes = 16 << 20;
  // Requests a stream may have read and not yet answered (response written)
  // before the server stops reading from it (back-pressure).
  int max_stream_inflight = 256;
  // Bytes of one stream's responses waiting to be written before the server
  // stops reading from it.
  int64_t max_stream_buffered_bytes = 4 << 20;
  // Applied chunks sent with first_step that a session keeps, so that a
  // client pipelining that many chunks can retry all of them exactly once.
  int max_replay_chunks = 8;
  // Floats of explain records one response may carry (steps x the model's
  // explain record size); more is INVALID_ARGUMENT.
  int64_t max_explain_values = 1 << 20;
  // Forecast: rows per path, noisy sample paths, and floats per response
  // (horizon x (samples + 1) x the model's output size); more is
  // INVALID_ARGUMENT.
  int max_forecast_horizon = 4096;
  int max_forecast_samples = 64;
  int64_t max_forecast_values = 1 << 20;
  // Cross-session micro-batching: chunks of up to max_batch sessions of one
  // model version run as one engine call; a partial batch waits at most
  // max_queue_delay for more (0: never waits).
  int max_batch = 64;
  absl::Duration max_queue_delay = absl::Microseconds(100);
  // A partial batch waits only if another session of its model sent a chunk
  // within this window, so a lone client never waits for partners that do
  // not come; stateless calls over one connection count as one sender
  // (InfiniteDuration: always waits).
  absl::Duration batch_peer_window = absl::Milliseconds(1);
  // Steps waiting in the scheduler's queue at most; beyond it requests fail
  // fast with RESOURCE_EXHAUSTED instead of queueing without end.
  int64_t max_queued_steps = 1 << 20;
  // Accept NaN/Inf inputs. Off by default: one NaN poisons a session's state
  // for good.
  bool allow_non_finite = false;
  // Durability: the directory of the SQLite session store; empty keeps
  // sessions in memory only (lost when the process ends).
  std::string state_dir;
  // How often the sessions that changed are checkpointed to the store.
  absl::Duration checkpoint_interval = absl::Seconds(1);
  StateSync state_sync = StateSync::kNormal;
  // How often the model repository is scanned for new or removed versions;
  // ZeroDuration: only at start (and on LoadModel/UnloadModel).
  absl::Duration repo_poll_interval = absl::Seconds(2);
  // An unloaded version's sessions keep running this long before they are
  // closed with reason "reload"; ZeroDuration: closed at once.
  absl::Duration version_drain_timeout = absl::Hours(1);
  // Versions served of a model that `models` does not set a policy for.
  VersionPolicy version_policy;
  // Per-model settings, by model (directory) name.
  std::map<std::string, ModelOptions> models;
  // Security (docs/SECURITY.md). TLS: PEM files of the server's
  // certificate chain and private key, both or neither; re-read when they
  // change, so certificates rotate without a restart.
  std::string tls_cert;
  std::string tls_key;
  // PEM bundle of the CAs whose client certificates are accepted; set, a
  // client must present one (mutual TLS).
  std::string tls_client_ca;
  // Listen without TLS on an address that is not loopback (gRPC and
  // metrics). Off: such a server refuses to start.
  bool allow_insecure = false;
  // Bearer tokens: `TOKEN IDENTITY [admin]` a line; empty: none.
  std::string auth_tokens;
  // With mutual TLS, a caller without a token is its certificate's
  // identity (first SAN, else subject CN).
  bool identity_from_cert = false;
  // Certificate identities with the admin role, comma-separated.
  std::string admin_identities;
  // How often the TLS files and the tokens file are checked for changes.
  absl::Duration credentials_reload_interval = absl::Seconds(5);
  // Stream calls open at once in all, and concurrent calls per connection
  // (HTTP/2 streams: more wait in the client until one ends).
  int max_streams = 10000;
  int max_streams_per_connection = 100;
  // Sessions one identity may hold at once.
  int max_sessions_per_identity = 10000;
  // Requests (unary calls and stream messages) a second per identity, and
  // the burst allowed above it; 0: no limit.
  int64_t max_requests_per_second = 0;
  int64_t request_burst = 0;  // 0: one second's worth
  // host:port of the Prometheus /metrics endpoint; "off": none.
  std::string metrics_listen = "127.0.0.1:9464";
  // One line per request: a file path, "-" for stdout, "off" or "": none.
  std::string access_log = "off";
  // Time source for session timestamps and expiry (tests inject FakeClock).
  std::shared_ptr<Clock> clock = std::make_shared<RealClock>();
  // How often idle sessions are looked for; 0 disables the background sweep
  // (tests then call SessionManager::ExpireIdle themselves).
  absl::Duration expiry_sweep_interval = absl::Seconds(1);
};

}  // namespace lstmserve::server
