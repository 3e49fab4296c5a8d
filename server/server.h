// The lstmserve gRPC server: the LstmServe service (callback API) over a
// model registry, a session store and a worker pool. lstm-server's main()
// parses flags into Options and calls Start.
//
// Thread-safety: Start/Shutdown/Wait may be called from any thread; Shutdown
// is idempotent. The accessors are safe to call while serving.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/clock.h"

namespace lstmserve::server {

class ModelRegistry;
class SessionManager;

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
  // Time source for session timestamps and expiry (tests inject FakeClock).
  std::shared_ptr<Clock> clock = std::make_shared<RealClock>();
  // How often idle sessions are looked for; 0 disables the background sweep
  // (tests then call SessionManager::ExpireIdle themselves).
  absl::Duration expiry_sweep_interval = absl::Seconds(1);
  // Durable sessions: a directory for the SQLite session store (empty:
  // sessions live in memory only and a restart loses them).
  std::string state_dir;
  // How often the sessions that changed are checkpointed (0: only at
  // shutdown).
  absl::Duration checkpoint_interval = absl::Seconds(1);
  // SQLite's synchronous mode: "normal" (a commit survives the process
  // being killed) or "full" (also a power loss, at an fsync per commit).
  std::string state_sync = "normal";
};

class Server {
 public:
  // Loads every model version in the repository (a version that does not
  // load is logged and skipped), binds, and starts serving. NOT_FOUND when
  // no version loads, INVALID_ARGUMENT for bad options, UNAVAILABLE if the
  // address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options);

  ~Server();  // Shutdown() and Wait()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The port actually bound (useful with port 0).
  int port() const;
  // "host:port" with the bound port.
  std::string address() const;

  // Stops taking new calls; messages on open streams get an in-band
  // UNAVAILABLE; in-flight work completes and each stream is finished as
  // soon as it is idle; calls still open after `grace` are cancelled. Then
  // stops the workers. Returns as soon as all of that is done.
  void Shutdown(absl::Duration grace = absl::Seconds(5));
  // Blocks until the server has shut down.
  void Wait();

  SessionManager& core();
  const ModelRegistry& models() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lstmserve::server
