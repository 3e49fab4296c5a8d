// The option table: every option of lstm-server, declared once (in
// option_table.cc) with its key, field, range and help. Flags, the config
// file, the environment, --help, --print-config and --help-config are all
// made from it.
//
// Thread-safety: the table is built once, on first use, and never changes;
// safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/config/option.h"

namespace lstmserve::config {

// Every option, in the order --help lists them.
const std::vector<Option>& OptionTable();

// The option with this key, or nullptr.
const Option* FindOption(absl::string_view key);

}  // namespace lstmserve::config
