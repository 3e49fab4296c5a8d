// The configuration written out: as a config file (--print-config) and as
// the Markdown table of every option (--help-config, docs/OPERATIONS.md).
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <string>

#include "server/config/server_config.h"

namespace lstmserve::config {

// `config` as a TOML config file: every top-level key, then the
// [models.NAME] tables. ApplyTomlText on it gives `config` back.
std::string FormatToml(const ServerConfig& config);

// A Markdown table of every option: key, flag, environment variable, type
// (with unit and accepted values), default and meaning.
std::string OptionsMarkdown();

}  // namespace lstmserve::config
