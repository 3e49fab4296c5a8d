#include "model/csv.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace lstmserve::model {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

absl::StatusOr<std::vector<float>> ParseCsvLine(std::string_view line,
                                                std::string_view where_view) {
  // Debian's abseil keeps absl::string_view distinct from std::string_view,
  // so StrCat takes std::string here.
  const std::string where(where_view);
  std::vector<float> values;
  size_t column = 1;
  while (true) {
    const size_t comma = line.find(',');
    const std::string field(Trim(line.substr(0, comma)));
    if (field.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ", column ", column, ": empty field; expected a number"));
    }
    float value = 0;
    const char* begin = field.data();
    const char* end = field.data() + field.size();
    if (*begin == '+') ++begin;  // from_chars does not accept a leading '+'
    auto [ptr, ec] = std::from_chars(begin, end, value);
    if (ec == std::errc::result_out_of_range) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ", column ", column, ": '", field, "' is out of float range"));
    }
    if (ec != std::errc() || ptr != end) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ", column ", column, ": '", field, "' is not a number"));
    }
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ", column ", column, ": '", field,
                       "' is not finite; expected a finite number"));
    }
    values.push_back(value);
    if (comma == std::string_view::npos) break;
    line.remove_prefix(comma + 1);
    ++column;
  }
  return values;
}

CsvReader::CsvReader(std::istream& in, std::string source, int width)
    : in_(in), source_(std::move(source)), width_(width) {}

absl::StatusOr<bool> CsvReader::Next(std::vector<float>& row) {
  while (std::getline(in_, line_)) {
    ++line_number_;
    std::string_view text = Trim(line_);
    if (text.empty() || text.front() == '#') continue;
    const std::string where = absl::StrCat(source_, ":", line_number_);
    absl::StatusOr<std::vector<float>> values = ParseCsvLine(text, where);
    if (!values.ok()) return values.status();
    if (static_cast<int>(values->size()) != width_) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": row has ", values->size(), " value",
                       values->size() == 1 ? "" : "s", "; expected ", width_,
                       " (the model's input size)"));
    }
    row.insert(row.end(), values->begin(), values->end());
    return true;
  }
  if (in_.bad()) {
    return absl::DataLossError(absl::StrCat(source_, ": read error"));
  }
  return false;
}

std::string FormatCsvRow(std::span<const float> values) {
  std::string line;
  char buf[32];
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) line.push_back(',');
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), values[i]);
    line.append(buf, ptr);
  }
  return line;
}

void WriteCsvRow(std::ostream& out, std::span<const float> values) {
  out << FormatCsvRow(values) << '\n';
}

}  // namespace lstmserve::model
