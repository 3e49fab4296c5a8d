// The Prometheus text exposition format 0.0.4: escaping, number formatting,
// and the writing of whole families from snapshots of their values. Used by
// Registry::Render(); public so that its rules are tested on their own.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/metrics/desc.h"

namespace lstmserve::metrics {

// One series (one set of label values) of a family, at one moment.
struct SeriesSnapshot {
  // In the order of the family's label names.
  std::vector<std::string> label_values;
  // Counters and gauges: the value is integer + real. Integer counts are
  // kept apart so that they print exactly past 2^53.
  uint64_t integer = 0;
  double real = 0;
  // Histograms: bucket_bounds.size() + 1 counts, per bucket (not
  // cumulative), the last one for observations above every bound; and the
  // sum of the observations.
  std::vector<uint64_t> bucket_counts;
  double sum = 0;
};

struct FamilySnapshot {
  const FamilyDesc* desc = nullptr;  // not owned
  std::vector<SeriesSnapshot> series;
};

// Shortest text that parses back to the same double: "NaN", "+Inf", "-Inf",
// integers below 2^53 in magnitude without exponent or fraction ("3", not
// "3e+00"), otherwise std::to_chars's shortest round-trip form ("0.25",
// "1e+300").
std::string FormatDouble(double value);
// integer + real: the integer alone, exactly, when real is 0.
std::string FormatValue(uint64_t integer, double real);

// A label value between double quotes: \ " and newline as \\ \" \n.
// Bytes that are not well-formed UTF-8 become U+FFFD: Prometheus refuses a
// whole scrape over one invalid label value.
std::string EscapeLabelValue(std::string_view value);
// A # HELP text: \ and newline as \\ \n; not UTF-8 as above.
std::string EscapeHelp(std::string_view help);

// Appends # HELP, # TYPE and the family's samples to `out`, its series
// sorted by label values; a histogram's buckets are written cumulative, with
// a last le="+Inf" bucket equal to _count, then _sum and _count. Appends
// nothing for a family without series. Series whose label values or bucket
// counts do not match the family's description are skipped (the registry
// never makes such series).
void AppendFamily(FamilySnapshot& family, std::string& out);

// Sorts the families by name and appends each one.
std::string RenderFamilies(std::vector<FamilySnapshot>& families);

}  // namespace lstmserve::metrics
