// One lstm-server option as the option table declares it: its key (from
// which its flag and environment variable are derived), its help, the values
// it accepts, and the field of ServerConfig it sets. The typed constructors
// (IntOption, DurationOption, ...) are in option_kinds.h.
//
// Thread-safety: immutable once built; safe to share between threads.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/config/server_config.h"
#include "toml++/toml.h"

namespace lstmserve::config {

// Where an option may be set (a bit set).
enum Source : unsigned {
  kFlag = 1,  // --max-sessions 10
  kEnv = 2,   // LSTMSERVE_MAX_SESSIONS=10
  kFile = 4,  // max_sessions = 10 in the --config file
  kEverywhere = kFlag | kEnv | kFile,
};

struct Option {
  // The config-file key, lower_snake_case: "max_sessions". The flag is
  // "--" + key with '-' for '_', the environment variable "LSTMSERVE_" + key
  // in capitals.
  std::string key;
  // What the option does, as --help shows it; names the unit.
  std::string help;
  // The value's type for people: "integer", "float", "string", "boolean".
  std::string type;
  // "seconds", "microseconds", "bytes", or "" when there is no unit.
  std::string unit;
  // The values accepted, e.g. "1 to 100000000"; "" for any value of `type`.
  std::string accepted;
  // How CLI11 shows the value in --help: "INT", "FLOAT", "TEXT".
  std::string cli_type;
  // CLI11's description of the check, e.g. "INT in [1 - 100000000]".
  std::string cli_check;
  unsigned sources = kEverywhere;
  // A flag that takes no value (--allow-non-finite); its value is a boolean.
  bool is_switch = false;

  // Sets the field from a flag's or environment variable's text. The error
  // says "expected ..., got ..." without naming the option; callers prefix
  // where the value came from.
  std::function<absl::Status(absl::string_view text, ServerConfig&)>
      set_from_text;
  // Sets the field from a config-file value found at `key_path` ("max_batch",
  // "models.ecg.versions"). The error is whole: "FILE:LINE: key ...".
  std::function<absl::Status(const toml::node& value,
                             absl::string_view key_path, ServerConfig&)>
      set_from_toml;
  // The field's value as set_from_text reads it (--help shows the default so).
  std::function<std::string(const ServerConfig&)> to_text;
  // The field's value as a TOML value that set_from_toml reads back exactly.
  std::function<std::string(const ServerConfig&)> to_toml;

  std::string Flag() const;    // "--max-sessions"
  std::string EnvVar() const;  // "LSTMSERVE_MAX_SESSIONS"
};

// A field of ServerConfig (or of its ServerOptions) that an option sets.
// Implicit, so that a table entry names the field as &ServerOptions::x.
template <typename T>
class Field {
 public:
  Field(T server::ServerOptions::*member) : server_member_(member) {}
  Field(T ServerConfig::*member) : config_member_(member) {}

  T& operator()(ServerConfig& config) const {
    return server_member_ != nullptr ? config.server.*server_member_
                                     : config.*config_member_;
  }
  const T& operator()(const ServerConfig& config) const {
    return server_member_ != nullptr ? config.server.*server_member_
                                     : config.*config_member_;
  }

 private:
  T server::ServerOptions::*server_member_ = nullptr;
  T ServerConfig::*config_member_ = nullptr;
};

}  // namespace lstmserve::config
