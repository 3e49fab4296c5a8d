// lstm-server's command line, made from the option table: registers a CLI11
// flag for every option (with its help, default and check), then, once CLI11
// has parsed argv, resolves the configuration:
//
//   built-in default < config file < LSTMSERVE_* environment < flag
//
// The config file is the one --config names, else LSTMSERVE_CONFIG's.
//
// Thread-safety: thread-compatible; use from one thread (main()).
#pragma once

#include <deque>
#include <string>

#include "absl/status/statusor.h"
#include "server/config/environment.h"
#include "server/config/option.h"
#include "server/config/server_config.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace lstmserve::config {

class CommandLine {
 public:
  // Adds every option's flag to `app`, which must outlive this object, and
  // a footer on where else options come from. A bad flag value makes
  // app.parse() throw CLI11's ValidationError, naming the flag.
  explicit CommandLine(CLI::App& app);
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // After app.parse(): the defaults, then the config file, then `env`, then
  // the flags given. Errors say which file line or variable is wrong.
  absl::StatusOr<ServerConfig> Resolve(const Environment& env) const;

 private:
  struct Flag {
    const Option* option = nullptr;
    CLI::Option* cli = nullptr;
    std::string text;  // the value given, if the option takes one
    bool on = false;   // the value given, if it is a switch
  };
  const Flag* Find(const std::string& key) const;

  std::deque<Flag> flags_;  // CLI11 holds pointers to text and on
};

}  // namespace lstmserve::config
