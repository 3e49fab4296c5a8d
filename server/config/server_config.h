// ServerConfig: everything lstm-server is configured with, that is the
// Server's options plus what main() itself uses. Each field is set from the
// option table (option_table.cc), which names its flag, config-file key and
// environment variable.
//
// Thread-safety: a value; thread-compatible.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "server/server_options.h"

namespace lstmserve::config {

enum class LogFormat {
  kText,  // spdlog's default pattern
  kJson,  // one JSON object per line
};

struct ServerConfig {
  server::ServerOptions server;

  // The TOML file read (--config / LSTMSERVE_CONFIG); empty: none.
  std::string config_file;
  // Where to write the bound port once listening; empty: nowhere.
  std::string port_file;
  // Time in-flight calls get to finish on SIGINT/SIGTERM.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // spdlog level name: trace, debug, info, warn, error or off.
  std::string log_level = "info";
  LogFormat log_format = LogFormat::kText;
  // Print the effective configuration as TOML and exit (--print-config).
  bool print_config = false;
  // Print the table of every option as Markdown and exit (--help-config).
  bool help_config = false;
};

}  // namespace lstmserve::config
