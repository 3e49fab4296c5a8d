// Reads an lstm-server config file (TOML) onto a ServerConfig. Every key is
// an option's key (option_table.cc) or "models" ([models.NAME] tables,
// model_tables.h). Errors name the file and line:
//   FILE:LINE: key "max_batch": expected an integer from 1 to 65536, got ...
//   FILE:LINE: unknown key "max_sesions" (did you mean "max_sessions"?)
//   FILE:LINE:COLUMN: <toml++'s message>          (the file does not parse)
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/config/server_config.h"

namespace lstmserve::config {

// Sets every option the TOML document `text` holds; `file` names it in
// errors. Options it does not hold keep their values in `config`.
absl::Status ApplyTomlText(absl::string_view text, const std::string& file,
                           ServerConfig& config);

// ApplyTomlText on the file at `path`; an error if it cannot be read.
absl::Status ApplyTomlFile(const std::string& path, ServerConfig& config);

}  // namespace lstmserve::config
