// The command-line CSV convention: one time step per line, comma-separated
// floats; outputs likewise. Blank lines and lines starting with '#' are
// skipped; "\r\n" line ends are accepted.
//
// Thread-safety: CsvReader is thread-compatible (one reader per stream).
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lstmserve::model {

class CsvReader {
 public:
  // `source` names the stream in error messages ("stdin", a file name).
  // Every row must have `width` values; non-finite values are rejected.
  CsvReader(std::istream& in, std::string source, int width);

  // Appends the next row's `width` floats to `row`. Returns false at end of
  // input; an error names the line and column that is wrong and what was
  // expected.
  absl::StatusOr<bool> Next(std::vector<float>& row);

 private:
  std::istream& in_;
  std::string source_;
  int width_;
  int64_t line_number_ = 0;
  std::string line_;
};

// Parses one CSV line of floats (any count). Errors name `where`.
absl::StatusOr<std::vector<float>> ParseCsvLine(std::string_view line,
                                                std::string_view where);

// Writes `values` as one CSV line, each float in its shortest form that
// reads back to the same float.
void WriteCsvRow(std::ostream& out, std::span<const float> values);

// The same as text, without the newline.
std::string FormatCsvRow(std::span<const float> values);

}  // namespace lstmserve::model
