// What a metric family is: its name, type, help text, label names and (for a
// histogram) bucket bounds, and the naming rules of the Prometheus text
// exposition format 0.0.4 that it must follow.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lstmserve::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// "counter", "gauge" or "histogram", as written on a # TYPE line.
std::string_view MetricTypeName(MetricType type);

struct FamilyDesc {
  FamilyDesc() = default;
  FamilyDesc(std::string metric_name, MetricType metric_type,
             std::string help_text, std::vector<std::string> labels = {},
             std::vector<double> bounds = {})
      : name(std::move(metric_name)),
        type(metric_type),
        help(std::move(help_text)),
        label_names(std::move(labels)),
        bucket_bounds(std::move(bounds)) {}

  // [a-zA-Z_][a-zA-Z0-9_]*. Counters end in "_total"; gauges and histograms
  // do not, and only histograms may end in "_bucket", "_sum" or "_count"
  // (the names a histogram writes). Colons are rejected: Prometheus
  // reserves them for recording rules.
  std::string name;
  MetricType type = MetricType::kGauge;
  // Non-empty; any text (backslashes and newlines are escaped on output).
  std::string help;
  // Each [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved), not
  // "le" or "quantile" (reserved for histograms and summaries), no repeats.
  std::vector<std::string> label_names;
  // Histograms only (must be empty otherwise): the finite, strictly
  // increasing upper bounds of the buckets ("le", inclusive). The +Inf
  // bucket is always there; a trailing +Inf given here is dropped.
  std::vector<double> bucket_bounds;
};

// OK, or INVALID_ARGUMENT saying what is wrong with the name.
absl::Status ValidateMetricName(std::string_view name);
absl::Status ValidateLabelName(std::string_view name);

// Checks every rule above and returns the description with a trailing +Inf
// bucket bound dropped; INVALID_ARGUMENT naming the family and the rule
// otherwise.
absl::StatusOr<FamilyDesc> NormalizeFamilyDesc(FamilyDesc desc);

// The sample names a family writes: its name, or for a histogram
// name_bucket, name_sum and name_count. Two families of one exposition must
// not share any.
std::vector<std::string> SampleNames(const FamilyDesc& desc);

}  // namespace lstmserve::metrics
