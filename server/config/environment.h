// LSTMSERVE_* environment variables: each option that may be set from the
// environment reads the variable named "LSTMSERVE_" + its key in capitals
// (LSTMSERVE_MAX_SESSIONS), with the same rules as its flag.
//
// Thread-safety: ProcessEnvironment reads the process's environment, which
// must not change meanwhile; ApplyEnvironment is a pure function.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "server/config/server_config.h"

namespace lstmserve::config {

// Environment variables by name.
using Environment = std::map<std::string, std::string>;

// The process's environment variables whose names start with "LSTMSERVE_".
Environment ProcessEnvironment();

// Sets each option whose variable `env` holds (set to anything, even empty).
// Errors name the variable:
//   environment variable LSTMSERVE_MAX_SESSIONS: expected an integer from 1
//   to 100000000, got "lots"
absl::Status ApplyEnvironment(const Environment& env, ServerConfig& config);

}  // namespace lstmserve::config
