// lstm-server's configuration: every option declared once in the option
// table (option_table.cc) and read from, in increasing precedence,
//
//   built-in defaults < config file (--config FILE or LSTMSERVE_CONFIG, TOML)
//                     < LSTMSERVE_* environment variables < flags
//
// The public entry points for main() and tests:
//   CommandLine (command_line.h)   flags on CLI11, then Resolve(env)
//   ApplyTomlFile/ApplyTomlText    a config file onto a ServerConfig
//   ApplyEnvironment               LSTMSERVE_* variables onto a ServerConfig
//   FormatToml                     --print-config
//   OptionsMarkdown                --help-config
// This library knows no gRPC: lstm-server passes ServerConfig::server to
// server::Server::Start.
#pragma once

#include "server/config/command_line.h"   // IWYU pragma: export
#include "server/config/environment.h"    // IWYU pragma: export
#include "server/config/print_config.h"   // IWYU pragma: export
#include "server/config/server_config.h"  // IWYU pragma: export
#include "server/config/toml_file.h"      // IWYU pragma: export
