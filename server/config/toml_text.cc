#include "server/config/toml_text.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/config/suggest.h"

namespace lstmserve::config {

std::string FormatNumber(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string FormatTomlFloat(double value) {
  std::string text = FormatNumber(value);
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

std::string QuoteTomlString(absl::string_view text) {
  std::string quoted = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\b':
        quoted += "\\b";
        break;
      case '\t':
        quoted += "\\t";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\f':
        quoted += "\\f";
        break;
      case '\r':
        quoted += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04X",
                        static_cast<unsigned>(c));
          quoted += escaped;
        } else {
          quoted += c;
        }
    }
  }
  quoted += '"';
  return quoted;
}

std::string FormatTomlKey(absl::string_view key) {
  bool bare = !key.empty();
  for (const char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-') {
      bare = false;
    }
  }
  return bare ? std::string(key) : QuoteTomlString(key);
}

std::string DescribeNode(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return absl::StrCat("string ",
                          QuoteTomlString(*node.value<std::string>()));
    case toml::node_type::integer:
      return absl::StrCat("integer ", *node.value<int64_t>());
    case toml::node_type::floating_point:
      return absl::StrCat("float ", FormatTomlFloat(*node.value<double>()));
    case toml::node_type::boolean:
      return *node.value<bool>() ? "boolean true" : "boolean false";
    case toml::node_type::array:
      return "array";
    case toml::node_type::table:
      return "table";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string Location(const toml::source_region& source) {
  const std::string file =
      source.path != nullptr ? *source.path : std::string("<config>");
  return absl::StrCat(file, ":", source.begin.line);
}

std::string Location(const toml::node& node) { return Location(node.source()); }

absl::Status ExpectedError(const toml::node& node, absl::string_view key_path,
                           absl::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(Location(node), ": key \"", key_path, "\": expected ",
                   expected, ", got ", DescribeNode(node)));
}

std::vector<std::pair<const toml::key*, const toml::node*>> InFileOrder(
    const toml::table& table) {
  std::vector<std::pair<const toml::key*, const toml::node*>> entries;
  for (const auto& [key, value] : table) entries.push_back({&key, &value});
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const toml::source_position& pa = a.first->source().begin;
    const toml::source_position& pb = b.first->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  return entries;
}

absl::Status UnknownKeyError(const toml::key& key, absl::string_view prefix,
                             const std::vector<std::string>& known) {
  const std::string dot = prefix.empty() ? "" : ".";
  const std::string name(key.str());
  std::string message = absl::StrCat(Location(key.source()), ": unknown key \"",
                                     prefix, dot, name, "\"");
  const std::string closest = ClosestMatch(name, known);
  if (!closest.empty()) {
    absl::StrAppend(&message, " (did you mean \"", prefix, dot, closest,
                    "\"?)");
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace lstmserve::config
