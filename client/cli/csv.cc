#include "client/cli/csv.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace lstmserve::client::cli {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

absl::Status ParseCsvLine(std::string_view line, const std::string& source,
                          int64_t line_number, std::vector<float>* values,
                          bool* skip) {
  values->clear();
  line = Trim(line);
  *skip = line.empty() || line.front() == '#';
  if (*skip) return absl::OkStatus();
  const std::string where = absl::StrCat(source, ":", line_number);
  for (int column = 1;; ++column) {
    const size_t comma = line.find(',');
    const std::string field(Trim(line.substr(0, comma)));
    if (field.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": column ", column, ": empty field; expected a number"));
    }
    const char* begin = field.data();
    const char* end = field.data() + field.size();
    if (*begin == '+') ++begin;  // from_chars does not accept a leading '+'
    float value = 0;
    const auto [ptr, ec] = std::from_chars(begin, end, value);
    if (ec == std::errc::result_out_of_range) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": column ", column, ": '", field, "' is out of float range"));
    }
    if (ec != std::errc() || ptr != end) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": column ", column, ": '", field, "' is not a number"));
    }
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": column ", column, ": '", field,
                       "' is not finite; expected a finite number"));
    }
    values->push_back(value);
    if (comma == std::string_view::npos) break;
    line.remove_prefix(comma + 1);
  }
  return absl::OkStatus();
}

std::string FormatCsvRow(std::span<const float> values) {
  std::string out;
  out.reserve(values.size() * 12);
  char buffer[32];
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    const auto [ptr, ec] =
        std::to_chars(buffer, buffer + sizeof(buffer), values[i]);
    out.append(buffer, ec == std::errc() ? ptr : buffer);
  }
  return out;
}

}  // namespace lstmserve::client::cli
