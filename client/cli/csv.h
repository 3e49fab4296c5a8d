// The command-line CSV convention, for lstm-client: one time step per line,
// comma-separated floats; blank lines and lines starting with '#' are
// skipped; "\r\n" line ends are accepted. Outputs likewise, each float in
// its shortest form that reads back to the same float. (The client depends
// on the wire API only, so it has its own small parser.)
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace lstmserve::client::cli {

// Parses one line into `values` (cleared first). Sets `*skip` for a blank
// or comment line. Errors name `source`:`line_number` and the column:
// `stdin:3: column 2: 'x' is not a number`.
absl::Status ParseCsvLine(std::string_view line, const std::string& source,
                          int64_t line_number, std::vector<float>* values,
                          bool* skip);

// One CSV line of `values`, without the newline.
std::string FormatCsvRow(std::span<const float> values);

}  // namespace lstmserve::client::cli
