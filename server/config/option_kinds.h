// The kinds of option the option table is made of. Each constructor returns
// an Option whose parsers, printers and checks fit its type, so a table
// entry says only what is particular to its option: key, field, range and
// help.
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/config/option.h"
#include "server/core/version_policy.h"

namespace lstmserve::config {

// An integer from `min` to `max`.
Option IntOption(std::string key, Field<int> field, int64_t min, int64_t max,
                 std::string help);
Option IntOption(std::string key, Field<int64_t> field, int64_t min,
                 int64_t max, std::string help);

// A duration, written as a number (integer or float) of `unit`s.
enum class TimeUnit { kSeconds, kMicroseconds };
struct DurationRange {
  double min = 0;
  double max = 0;
  bool min_exclusive = false;  // `min` itself is not accepted
  // Negative values (down to `min`, which should be -1) mean
  // absl::InfiniteDuration(), written back as -1.
  bool negative_is_infinite = false;
};
Option DurationOption(std::string key, Field<absl::Duration> field,
                      TimeUnit unit, DurationRange range, std::string help);

// true or false; a flag without a value when it is a flag.
Option BoolOption(std::string key, Field<bool> field, std::string help,
                  unsigned sources = kEverywhere);

// A string; if `valid` is given, only the strings it accepts, which
// `accepted` describes ("host:port or off").
Option StringOption(std::string key, Field<std::string> field, std::string help,
                    unsigned sources = kEverywhere, std::string accepted = "",
                    std::function<bool(absl::string_view)> valid = nullptr);

// A version policy: "all", "latest:N", "specific:V1,V2,..." (and the config
// file's table forms, see version_policy_text.h).
Option VersionPolicyOption(std::string key, Field<server::VersionPolicy> field,
                           std::string help);

namespace internal {
Option ChoiceOption(std::string key, std::vector<std::string> names,
                    std::function<void(size_t, ServerConfig&)> set,
                    std::function<size_t(const ServerConfig&)> get,
                    std::string help);
}  // namespace internal

// One of a few names, each standing for a value of T (a string or an enum).
template <typename T>
Option ChoiceOption(std::string key, Field<T> field,
                    std::vector<std::pair<std::string, T>> choices,
                    std::string help) {
  std::vector<std::string> names;
  std::vector<T> values;
  for (auto& [name, value] : choices) {
    names.push_back(name);
    values.push_back(value);
  }
  return internal::ChoiceOption(
      std::move(key), std::move(names),
      [field, values](size_t i, ServerConfig& config) {
        field(config) = values[i];
      },
      [field, values](const ServerConfig& config) {
        for (size_t i = 0; i < values.size(); ++i) {
          if (values[i] == field(config)) return i;
        }
        return size_t{0};
      },
      std::move(help));
}
template <typename T>
Option ChoiceOption(std::string key, T server::ServerOptions::*member,
                    std::vector<std::pair<std::string, T>> choices,
                    std::string help) {
  return ChoiceOption(std::move(key), Field<T>(member), std::move(choices),
                      std::move(help));
}
template <typename T>
Option ChoiceOption(std::string key, T ServerConfig::*member,
                    std::vector<std::pair<std::string, T>> choices,
                    std::string help) {
  return ChoiceOption(std::move(key), Field<T>(member), std::move(choices),
                      std::move(help));
}

}  // namespace lstmserve::config
