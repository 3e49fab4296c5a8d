// lstm-server: reads its configuration (server/config/: flags, --config
// file, LSTMSERVE_* environment), sets up logging, and runs server::Server.
// SIGINT/SIGTERM stop taking new calls, let in-flight calls finish, and exit
// 0. A configuration error prints one line and exits 2.
#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/config/config.h"
#include "server/logging.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  CLI::App app{
      "lstm-server: serves LSTM/GRU models over gRPC "
      "(lstmserve.v1.LstmServe),\n"
      "keeping each session's recurrent state between calls."};
  lstmserve::config::CommandLine command_line(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  absl::StatusOr<lstmserve::config::ServerConfig> config =
      command_line.Resolve(lstmserve::config::ProcessEnvironment());
  if (!config.ok()) {
    std::cerr << "lstm-server: " << config.status().message() << '\n';
    return 2;
  }
  if (config->help_config) {
    std::cout << lstmserve::config::OptionsMarkdown();
    return 0;
  }
  if (config->print_config) {
    std::cout << lstmserve::config::FormatToml(*config);
    return 0;
  }

  lstmserve::server::LogOptions log;
  log.level = spdlog::level::from_str(config->log_level);
  log.format = config->log_format == lstmserve::config::LogFormat::kJson
                   ? lstmserve::server::LogFormat::kJson
                   : lstmserve::server::LogFormat::kText;
  log.access_log = config->server.access_log;
  if (absl::Status s = lstmserve::server::ConfigureLogging(log); !s.ok()) {
    std::cerr << "lstm-server: " << s.message() << '\n';
    return 2;
  }
  // Checkpoints allocate a round of session records (megabytes) on the
  // workers and free it on the store's thread a moment later; with glibc's
  // default trimming each round shrinks the workers' heaps and the next
  // grows them again, page fault by page fault (a fifth of the workers'
  // time at 10,000 sessions, measured). Keep freed memory for reuse.
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // Debian builds abseil with its debug-mode lock-order graph on, which
  // bookkeeps every Mutex::Lock (~1% of a loaded server's CPU in a
  // profile). The tests keep it on; the server binary does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the stop signals in every thread; one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = lstmserve::server::Server::Start(config->server);
  if (!server.ok()) {
    std::cerr << "lstm-server: " << server.status().message() << '\n';
    return 1;
  }
  if (!config->port_file.empty()) {
    const std::string tmp = config->port_file + ".tmp";
    std::ofstream(tmp) << (*server)->port() << '\n';
    // Readers never see half.
    std::rename(tmp.c_str(), config->port_file.c_str());
  }

  std::thread signal_waiter([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    spdlog::info("received {}", signal == SIGINT ? "SIGINT" : "SIGTERM");
    (*server)->Shutdown(config->shutdown_grace);
  });
  (*server)->Wait();
  signal_waiter.join();
  return 0;
}
