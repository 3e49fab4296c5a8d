#include "server/config/version_policy_text.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/config/toml_text.h"

namespace lstmserve::config {
namespace {

using server::VersionPolicy;

constexpr char kTextForms[] = R"("all", "latest:N" or "specific:V1,V2,...")";
constexpr char kTomlForms[] =
    R"("all", { latest = N } or { specific = [V1, V2, ...] })";

// Sorts `versions`; false if one is repeated.
bool SortUnique(std::vector<int64_t>& versions, int64_t& repeated) {
  std::sort(versions.begin(), versions.end());
  const auto it = std::adjacent_find(versions.begin(), versions.end());
  if (it == versions.end()) return true;
  repeated = *it;
  return false;
}

absl::StatusOr<VersionPolicy> FromTomlTable(const toml::table& table,
                                            absl::string_view key_path) {
  const std::string path(key_path);
  for (const auto& [key, value] : table) {
    if (key != "latest" && key != "specific") {
      return UnknownKeyError(key, path, {"latest", "specific"});
    }
  }
  const toml::node* latest = table.get("latest");
  const toml::node* specific = table.get("specific");
  if ((latest == nullptr) == (specific == nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Location(table), ": key \"", path, "\": expected ",
                     kTomlForms, ", got a table with ",
                     latest == nullptr ? "neither latest nor specific"
                                       : "both latest and specific"));
  }
  VersionPolicy policy;
  if (latest != nullptr) {
    const std::optional<int64_t> n = latest->value_exact<int64_t>();
    if (!latest->is_integer() || *n < 1) {
      return ExpectedError(*latest, absl::StrCat(path, ".latest"),
                           "an integer >= 1");
    }
    policy.kind = VersionPolicy::Kind::kLatest;
    policy.latest = *n;
    return policy;
  }
  const std::string specific_path = absl::StrCat(path, ".specific");
  const toml::array* array = specific->as_array();
  if (array == nullptr || array->empty()) {
    return ExpectedError(*specific, specific_path,
                         "a non-empty array of versions [V1, V2, ...]");
  }
  policy.kind = VersionPolicy::Kind::kSpecific;
  for (const toml::node& element : *array) {
    if (!element.is_integer() || *element.value<int64_t>() < 1) {
      return ExpectedError(element, specific_path,
                           "versions that are integers >= 1");
    }
    policy.specific.push_back(*element.value<int64_t>());
  }
  int64_t repeated = 0;
  if (!SortUnique(policy.specific, repeated)) {
    return absl::InvalidArgumentError(absl::StrCat(
        Location(*specific), ": key \"", specific_path,
        "\": expected each version once, got ", repeated, " twice"));
  }
  return policy;
}

}  // namespace

absl::StatusOr<VersionPolicy> ParseVersionPolicy(absl::string_view text) {
  const std::string got = QuoteTomlString(text);
  VersionPolicy policy;
  if (text == "all") {
    policy.kind = VersionPolicy::Kind::kAll;
    return policy;
  }
  if (absl::ConsumePrefix(&text, "latest:")) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(text, &n) || n < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "expected \"latest:N\" with N an integer >= 1, got ", got));
    }
    policy.kind = VersionPolicy::Kind::kLatest;
    policy.latest = n;
    return policy;
  }
  if (absl::ConsumePrefix(&text, "specific:")) {
    policy.kind = VersionPolicy::Kind::kSpecific;
    for (absl::string_view part : absl::StrSplit(text, ',')) {
      int64_t version = 0;
      if (!absl::SimpleAtoi(part, &version) || version < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "expected \"specific:V1,V2,...\" with versions integers >= 1, "
            "got ",
            got));
      }
      policy.specific.push_back(version);
    }
    int64_t repeated = 0;
    if (!SortUnique(policy.specific, repeated)) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected \"specific:V1,V2,...\" with each version "
                       "once, got ",
                       got));
    }
    return policy;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("expected ", kTextForms, ", got ", got));
}

std::string FormatVersionPolicy(const VersionPolicy& policy) {
  switch (policy.kind) {
    case VersionPolicy::Kind::kAll:
      return "all";
    case VersionPolicy::Kind::kLatest:
      return absl::StrCat("latest:", policy.latest);
    case VersionPolicy::Kind::kSpecific:
      return absl::StrCat("specific:", absl::StrJoin(policy.specific, ","));
  }
  return "";
}

absl::StatusOr<VersionPolicy> VersionPolicyFromToml(
    const toml::node& value, absl::string_view key_path) {
  if (const toml::table* table = value.as_table()) {
    return FromTomlTable(*table, key_path);
  }
  if (const std::optional<std::string> text =
          value.value_exact<std::string>()) {
    absl::StatusOr<VersionPolicy> policy = ParseVersionPolicy(*text);
    if (policy.ok()) return policy;
    // "latest:0" gets the message about its own form.
    if (absl::StartsWith(*text, "latest:") ||
        absl::StartsWith(*text, "specific:")) {
      return absl::InvalidArgumentError(
          absl::StrCat(Location(value), ": key \"", key_path,
                       "\": ", policy.status().message()));
    }
  }
  return ExpectedError(value, key_path, kTomlForms);
}

std::string VersionPolicyToToml(const VersionPolicy& policy) {
  switch (policy.kind) {
    case VersionPolicy::Kind::kAll:
      return "\"all\"";
    case VersionPolicy::Kind::kLatest:
      return absl::StrCat("{ latest = ", policy.latest, " }");
    case VersionPolicy::Kind::kSpecific:
      return absl::StrCat("{ specific = [",
                          absl::StrJoin(policy.specific, ", "), "] }");
  }
  return "";
}

}  // namespace lstmserve::config
