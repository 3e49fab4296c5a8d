// The config file's per-model tables:
//
//   [models.ecg]
//   versions = { latest = 2 }   # or "all", or { specific = [1, 3] }
//   weights = "bf16"            # "f32" | "bf16" | "int8"
//
// NAME is a model's directory name in the repository (not empty, not "." or
// "..", no "/"); a table may name a model the repository does not hold yet.
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "server/server_options.h"
#include "toml++/toml.h"

namespace lstmserve::config {

// Reads the value of the top-level key "models" into `models` (a model's
// settings replace any it had). Errors are whole: "FILE:LINE: ...".
absl::Status ApplyModelTables(
    const toml::node& value,
    std::map<std::string, server::ModelOptions>& models);

// The [models.NAME] tables that ApplyModelTables reads back as `models`.
std::string FormatModelTables(
    const std::map<std::string, server::ModelOptions>& models);

// "f32", "bf16", "int8".
std::string WeightFormatName(server::WeightFormat format);

}  // namespace lstmserve::config
