#include "server/metrics/desc.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "server/metrics/exposition.h"

namespace lstmserve::metrics {
namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

// [a-zA-Z_][a-zA-Z0-9_]*: the metric name rule without colons, and the label
// name rule.
bool IsIdentifier(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

absl::Status ValidateMetricName(std::string_view name) {
  if (IsIdentifier(name)) return absl::OkStatus();
  std::string why =
      name.find(':') != std::string_view::npos
          ? "colons are reserved for recording rules"
          : "expected [a-zA-Z_][a-zA-Z0-9_]*: letters, digits and "
            "underscores, not starting with a digit";
  return absl::InvalidArgumentError(absl::StrCat(
      "metric name \"", std::string(name), "\" is invalid: ", why));
}

absl::Status ValidateLabelName(std::string_view name) {
  if (!IsIdentifier(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "label name \"", std::string(name),
        "\" is invalid: expected [a-zA-Z_][a-zA-Z0-9_]*: letters, digits and "
        "underscores, not starting with a digit"));
  }
  if (name.substr(0, 2) == "__") {
    return absl::InvalidArgumentError(
        absl::StrCat("label name \"", std::string(name),
                     "\" is invalid: names starting with \"__\" are reserved "
                     "for Prometheus's internal use"));
  }
  return absl::OkStatus();
}

absl::StatusOr<FamilyDesc> NormalizeFamilyDesc(FamilyDesc desc) {
  if (absl::Status s = ValidateMetricName(desc.name); !s.ok()) return s;
  const std::string& name = desc.name;
  const std::string type(MetricTypeName(desc.type));
  auto invalid = [&](std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(type, " \"", name, "\": ", std::string(what)));
  };
  const bool counter = desc.type == MetricType::kCounter;
  const bool histogram = desc.type == MetricType::kHistogram;
  if (counter && !EndsWith(name, "_total")) {
    return invalid("a counter's name must end in \"_total\"");
  }
  if (!counter && EndsWith(name, "_total")) {
    return invalid("only counters' names may end in \"_total\"");
  }
  if (!histogram) {
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (EndsWith(name, suffix)) {
        return invalid(absl::StrCat(
            "only histograms may write names ending in \"", std::string(suffix),
            "\" (call it something else, such as ",
            "a name ending in a unit or \"_total\" for a counter)"));
      }
    }
  }
  if (desc.help.empty()) return invalid("the help text must not be empty");

  absl::flat_hash_set<std::string_view> seen;
  for (const std::string& label : desc.label_names) {
    if (absl::Status s = ValidateLabelName(label); !s.ok()) {
      return invalid(std::string(s.message()));
    }
    if (label == "le" || label == "quantile") {
      return invalid(absl::StrCat("label name \"", label,
                                  "\" is reserved for histogram and summary "
                                  "buckets"));
    }
    if (!seen.insert(label).second) {
      return invalid(absl::StrCat("label name \"", label, "\" is repeated"));
    }
  }

  std::vector<double>& bounds = desc.bucket_bounds;
  if (!histogram) {
    if (!bounds.empty()) {
      return invalid("only histograms have bucket bounds");
    }
    return desc;
  }
  if (!bounds.empty() &&
      bounds.back() == std::numeric_limits<double>::infinity())
    bounds.pop_back();
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return invalid(absl::StrCat(
          "bucket bound ", i, " is ", FormatDouble(bounds[i]),
          "; expected finite bounds (+Inf is implicit, and only allowed "
          "last)"));
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      return invalid(absl::StrCat("bucket bound ", i, " (",
                                  FormatDouble(bounds[i]), ") follows ",
                                  FormatDouble(bounds[i - 1]),
                                  "; expected strictly increasing bounds"));
    }
  }
  return desc;
}

std::vector<std::string> SampleNames(const FamilyDesc& desc) {
  if (desc.type != MetricType::kHistogram) return {desc.name};
  return {desc.name + "_bucket", desc.name + "_sum", desc.name + "_count"};
}

}  // namespace lstmserve::metrics
