#include "server/config/option_kinds.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/config/toml_text.h"
#include "server/config/version_policy_text.h"

namespace lstmserve::config {
namespace {

// "expected EXPECTED, got \"TEXT\"" for a flag's or variable's text.
absl::Status TextError(absl::string_view expected, absl::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("expected ", expected, ", got ", QuoteTomlString(text)));
}

template <typename T>
Option IntOptionImpl(std::string key, Field<T> field, int64_t min, int64_t max,
                     std::string help) {
  const std::string expected =
      absl::StrCat("an integer from ", min, " to ", max);
  auto in_range = [min, max](int64_t v) { return v >= min && v <= max; };
  Option option;
  option.key = std::move(key);
  option.help = std::move(help);
  option.type = "integer";
  option.accepted = absl::StrCat(min, " to ", max);
  option.cli_type = "INT";
  option.cli_check = absl::StrCat("INT in [", min, " - ", max, "]");
  option.set_from_text = [=](absl::string_view text, ServerConfig& config) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(text, &value) || !in_range(value)) {
      return TextError(expected, text);
    }
    field(config) = static_cast<T>(value);
    return absl::OkStatus();
  };
  option.set_from_toml = [=](const toml::node& node, absl::string_view path,
                             ServerConfig& config) {
    const std::optional<int64_t> value = node.value_exact<int64_t>();
    if (!value.has_value() || !in_range(*value)) {
      return ExpectedError(node, path, expected);
    }
    field(config) = static_cast<T>(*value);
    return absl::OkStatus();
  };
  option.to_text = [field](const ServerConfig& config) {
    return absl::StrCat(field(config));
  };
  option.to_toml = option.to_text;
  return option;
}

}  // namespace

Option IntOption(std::string key, Field<int> field, int64_t min, int64_t max,
                 std::string help) {
  return IntOptionImpl(std::move(key), field, min, max, std::move(help));
}

Option IntOption(std::string key, Field<int64_t> field, int64_t min,
                 int64_t max, std::string help) {
  return IntOptionImpl(std::move(key), field, min, max, std::move(help));
}

Option DurationOption(std::string key, Field<absl::Duration> field,
                      TimeUnit unit, DurationRange range, std::string help) {
  const std::string unit_name =
      unit == TimeUnit::kSeconds ? "seconds" : "microseconds";
  const std::string min = FormatNumber(range.min);
  const std::string max = FormatNumber(range.max);
  Option option;
  option.key = std::move(key);
  option.help = std::move(help);
  option.type = "float";
  option.unit = unit_name;
  option.cli_type = "FLOAT";
  if (range.min_exclusive) {
    option.accepted = absl::StrCat("greater than ", min, ", at most ", max);
    option.cli_check = absl::StrCat("FLOAT in (", min, " - ", max, "]");
  } else {
    option.accepted = absl::StrCat(min, " to ", max);
    option.cli_check = absl::StrCat("FLOAT in [", min, " - ", max, "]");
  }
  const std::string expected =
      absl::StrCat("a number of ", unit_name, " ",
                   range.min_exclusive ? "" : "from ", option.accepted);
  auto in_range = [range](double v) {
    const bool above_min = range.min_exclusive ? v > range.min : v >= range.min;
    return above_min && v <= range.max;  // false for NaN
  };
  auto to_duration = [unit, range](double v) {
    if (range.negative_is_infinite && v < 0) return absl::InfiniteDuration();
    return unit == TimeUnit::kSeconds ? absl::Seconds(v)
                                      : absl::Microseconds(v);
  };
  auto to_number = [unit](absl::Duration d) {
    if (d == absl::InfiniteDuration()) return -1.0;
    return unit == TimeUnit::kSeconds ? absl::ToDoubleSeconds(d)
                                      : absl::ToDoubleMicroseconds(d);
  };
  option.set_from_text = [=](absl::string_view text, ServerConfig& config) {
    double value = 0;
    if (!absl::SimpleAtod(text, &value) || !in_range(value)) {
      return TextError(expected, text);
    }
    field(config) = to_duration(value);
    return absl::OkStatus();
  };
  option.set_from_toml = [=](const toml::node& node, absl::string_view path,
                             ServerConfig& config) {
    // An integer is a number of units as well as a float is.
    const std::optional<double> value =
        node.is_number() ? node.value<double>() : std::nullopt;
    if (!value.has_value() || !in_range(*value)) {
      return ExpectedError(node, path, expected);
    }
    field(config) = to_duration(*value);
    return absl::OkStatus();
  };
  option.to_text = [=](const ServerConfig& config) {
    return FormatNumber(to_number(field(config)));
  };
  option.to_toml = [=](const ServerConfig& config) {
    return FormatTomlFloat(to_number(field(config)));
  };
  return option;
}

Option BoolOption(std::string key, Field<bool> field, std::string help,
                  unsigned sources) {
  Option option;
  option.key = std::move(key);
  option.help = std::move(help);
  option.type = "boolean";
  option.accepted = "true or false";
  option.cli_type = "BOOL";
  option.sources = sources;
  option.is_switch = true;
  option.set_from_text = [field](absl::string_view text, ServerConfig& config) {
    const std::string lower = absl::AsciiStrToLower(text);
    if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") {
      field(config) = true;
    } else if (lower == "false" || lower == "0" || lower == "no" ||
               lower == "off") {
      field(config) = false;
    } else {
      return TextError("true or false (or 1/0, yes/no, on/off)", text);
    }
    return absl::OkStatus();
  };
  option.set_from_toml = [field](const toml::node& node, absl::string_view path,
                                 ServerConfig& config) {
    const std::optional<bool> value = node.value_exact<bool>();
    if (!value.has_value()) return ExpectedError(node, path, "true or false");
    field(config) = *value;
    return absl::OkStatus();
  };
  option.to_text = [field](const ServerConfig& config) {
    return std::string(field(config) ? "true" : "false");
  };
  option.to_toml = option.to_text;
  return option;
}

Option StringOption(std::string key, Field<std::string> field, std::string help,
                    unsigned sources, std::string accepted,
                    std::function<bool(absl::string_view)> valid) {
  Option option;
  option.key = std::move(key);
  option.help = std::move(help);
  option.type = "string";
  option.accepted = accepted;
  option.cli_type = "TEXT";
  option.sources = sources;
  const std::string expected = accepted.empty() ? "a string" : accepted;
  option.set_from_text = [=](absl::string_view text, ServerConfig& config) {
    if (valid && !valid(text)) return TextError(expected, text);
    field(config) = std::string(text);
    return absl::OkStatus();
  };
  option.set_from_toml = [=](const toml::node& node, absl::string_view path,
                             ServerConfig& config) {
    std::optional<std::string> value = node.value_exact<std::string>();
    if (!value.has_value() || (valid && !valid(*value))) {
      return ExpectedError(node, path, expected);
    }
    field(config) = *std::move(value);
    return absl::OkStatus();
  };
  option.to_text = [field](const ServerConfig& config) {
    return field(config);
  };
  option.to_toml = [field](const ServerConfig& config) {
    return QuoteTomlString(field(config));
  };
  return option;
}

Option VersionPolicyOption(std::string key, Field<server::VersionPolicy> field,
                           std::string help) {
  Option option;
  option.key = std::move(key);
  option.help = std::move(help);
  option.type = "version policy";
  option.accepted = R"("all", { latest = N } or { specific = [V1, ...] })";
  option.cli_type = "TEXT";
  option.set_from_text = [field](absl::string_view text, ServerConfig& config) {
    absl::StatusOr<server::VersionPolicy> policy = ParseVersionPolicy(text);
    if (!policy.ok()) return policy.status();
    field(config) = *std::move(policy);
    return absl::OkStatus();
  };
  option.set_from_toml = [field](const toml::node& node, absl::string_view path,
                                 ServerConfig& config) {
    absl::StatusOr<server::VersionPolicy> policy =
        VersionPolicyFromToml(node, path);
    if (!policy.ok()) return policy.status();
    field(config) = *std::move(policy);
    return absl::OkStatus();
  };
  option.to_text = [field](const ServerConfig& config) {
    return FormatVersionPolicy(field(config));
  };
  option.to_toml = [field](const ServerConfig& config) {
    return VersionPolicyToToml(field(config));
  };
  return option;
}

namespace internal {

Option ChoiceOption(std::string key, std::vector<std::string> names,
                    std::function<void(size_t, ServerConfig&)> set,
                    std::function<size_t(const ServerConfig&)> get,
                    std::string help) {
  std::vector<std::string> quoted;
  for (const std::string& name : names) {
    quoted.push_back(QuoteTomlString(name));
  }
  const std::string expected =
      absl::StrCat("one of ", absl::StrJoin(quoted, ", "));
  Option option;
  option.key = std::move(key);
  option.help = std::move(help);
  option.type = "string";
  option.accepted = absl::StrJoin(quoted, ", ");
  option.cli_type = "TEXT";
  option.cli_check = absl::StrCat("{", absl::StrJoin(names, ","), "}");
  auto find = [names](absl::string_view text) -> std::optional<size_t> {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == text) return i;
    }
    return std::nullopt;
  };
  option.set_from_text = [=](absl::string_view text, ServerConfig& config) {
    const std::optional<size_t> i = find(text);
    if (!i.has_value()) return TextError(expected, text);
    set(*i, config);
    return absl::OkStatus();
  };
  option.set_from_toml = [=](const toml::node& node, absl::string_view path,
                             ServerConfig& config) {
    const std::optional<std::string> text = node.value_exact<std::string>();
    const std::optional<size_t> i =
        text.has_value() ? find(*text) : std::nullopt;
    if (!i.has_value()) return ExpectedError(node, path, expected);
    set(*i, config);
    return absl::OkStatus();
  };
  option.to_text = [names, get](const ServerConfig& config) {
    return names[get(config)];
  };
  option.to_toml = [names, get](const ServerConfig& config) {
    return QuoteTomlString(names[get(config)]);
  };
  return option;
}

}  // namespace internal
}  // namespace lstmserve::config
