// lstm-server: flag parsing, logging and signal handling around
// server::Server. SIGINT/SIGTERM stop taking new calls, let in-flight calls
// finish, and exit 0.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

namespace {

std::string DefaultModelRepo() {
  // The bundled repository, found relative to the working directory as the
  // README runs it; override with --model-repo.
  return "models";
}

}  // namespace

int main(int argc, char** argv) {
  lstmserve::server::ServerOptions options;
  options.model_repo = DefaultModelRepo();
  double idle_timeout_s = 600;
  double shutdown_grace_s = 5;
  std::string port_file;
  std::string log_level = "info";

  CLI::App app{
      "lstm-server: serves LSTM/GRU models over gRPC "
      "(lstmserve.v1.LstmServe),\n"
      "keeping each session's recurrent state between calls."};
  app.add_option("--model-repo", options.model_repo,
                 "Model repository: <repo>/<name>/<version>/ with config.json "
                 "and model.safetensors; every version is loaded at start")
      ->capture_default_str();
  app.add_option("--listen", options.listen,
                 "Address to listen on, host:port (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--port-file", port_file,
                 "Write the bound port to FILE once listening (useful with "
                 "port 0)");
  app.add_option("--threads", options.threads,
                 "Worker threads running the engine (0: one per CPU core)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--session-idle-timeout", idle_timeout_s,
                 "Seconds after which an unused session is closed")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1e9));
  app.add_option("--max-sessions", options.max_sessions,
                 "Sessions held at once; creating one more fails with "
                 "RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--max-steps-per-request", options.max_steps_per_request,
                 "Steps (CSV rows) in one Predict request or stream message; "
                 "more is INVALID_ARGUMENT")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--max-message-bytes", options.max_message_bytes,
                 "Largest request message; larger is RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(1024, 1 << 30));
  app.add_option("--max-stream-inflight", options.max_stream_inflight,
                 "Requests one stream may have read and not yet answered "
                 "(until the response is written) before the server stops "
                 "reading it (back-pressure)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-stream-buffered-bytes",
                 options.max_stream_buffered_bytes,
                 "Bytes of one stream's responses waiting to be written "
                 "before the server stops reading it (a client that does not "
                 "read cannot make the server hold more)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 34));
  app.add_option("--max-replay-chunks", options.max_replay_chunks,
                 "Applied chunks sent with first_step that each session keeps "
                 "so that their exact retries are answered, not re-applied: "
                 "the pipelining window a client may use (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  double max_queue_delay_us = 100;
  app.add_option("--max-batch", options.max_batch,
                 "Sessions' chunks of one model run as one engine call, at "
                 "most")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--max-queue-delay", max_queue_delay_us,
                 "Microseconds a partial batch waits for more chunks (0: "
                 "never waits)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  double batch_peer_window_us = 1000;
  app.add_option("--batch-peer-window", batch_peer_window_us,
                 "A partial batch waits (--max-queue-delay) only if another "
                 "session of its model sent a chunk within this many "
                 "microseconds, so a lone client is never delayed; "
                 "stateless Predict calls over one connection count as one "
                 "sender (-1: always wait)")
      ->capture_default_str()
      ->check(CLI::Range(-1.0, 1e9));
  app.add_option("--max-queued-steps", options.max_queued_steps,
                 "Steps waiting in the queue at most; beyond it requests fail "
                 "fast with RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_flag("--allow-non-finite", options.allow_non_finite,
               "Accept NaN/Inf inputs (rejected by default: one NaN poisons "
               "a session's state)");
  app.add_option("--shutdown-grace", shutdown_grace_s,
                 "Seconds in-flight calls get to finish on SIGINT/SIGTERM; "
                 "the server exits as soon as they are done")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--state-dir", options.state_dir,
                 "Keep sessions in an SQLite database in DIR, checkpointed "
                 "every --checkpoint-interval and at shutdown, and restore "
                 "them at start (default: sessions live in memory only)");
  double checkpoint_interval_s = 1;
  app.add_option("--checkpoint-interval", checkpoint_interval_s,
                 "Seconds between checkpoints of the sessions that changed "
                 "(with --state-dir; 0: only at shutdown)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--state-sync", options.state_sync,
                 "normal: a checkpoint survives the process being killed; "
                 "full: also a power loss (an fsync per commit)")
      ->capture_default_str()
      ->check(CLI::IsMember({"normal", "full"}));
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(
          CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  // Debian builds abseil with its debug-mode lock-order graph on, which
  // bookkeeps every Mutex::Lock (~1% of a loaded server's CPU in a
  // profile). The tests keep it on; the server binary does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  options.session_idle_timeout = absl::Seconds(idle_timeout_s);
  options.checkpoint_interval = absl::Seconds(checkpoint_interval_s);
  options.max_queue_delay = absl::Microseconds(max_queue_delay_us);
  options.batch_peer_window = batch_peer_window_us < 0
                                  ? absl::InfiniteDuration()
                                  : absl::Microseconds(batch_peer_window_us);

  // Block the stop signals in every thread; one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = lstmserve::server::Server::Start(options);
  if (!server.ok()) {
    std::cerr << "lstm-server: " << server.status().message() << '\n';
    return 1;
  }
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << (*server)->port() << '\n';
    std::rename(tmp.c_str(), port_file.c_str());  // readers never see half
  }

  std::thread signal_waiter([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    spdlog::info("received {}", signal == SIGINT ? "SIGINT" : "SIGTERM");
    (*server)->Shutdown(absl::Seconds(shutdown_grace_s));
  });
  (*server)->Wait();
  signal_waiter.join();
  return 0;
}
