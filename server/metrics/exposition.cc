#include "server/metrics/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace lstmserve::metrics {
namespace {

// Appends {name="value",...,extra_name="extra_value"}, or nothing when there
// are no labels.
void AppendLabels(const FamilyDesc& desc, const SeriesSnapshot& series,
                  std::string_view extra_name, std::string_view extra_value,
                  std::string& out) {
  const size_t n = desc.label_names.size();
  if (n == 0 && extra_name.empty()) return;
  out += '{';
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    absl::StrAppend(&out, desc.label_names[i], "=\"",
                    EscapeLabelValue(series.label_values[i]), "\"");
  }
  if (!extra_name.empty()) {
    if (n > 0) out += ',';
    absl::StrAppend(&out, std::string(extra_name), "=\"",
                    std::string(extra_value), "\"");
  }
  out += '}';
}

void AppendSample(std::string_view name, const FamilyDesc& desc,
                  const SeriesSnapshot& series, std::string_view extra_name,
                  std::string_view extra_value, std::string_view value,
                  std::string& out) {
  out += name;
  AppendLabels(desc, series, extra_name, extra_value, out);
  out += ' ';
  out += value;
  out += '\n';
}

bool Matches(const FamilyDesc& desc, const SeriesSnapshot& series) {
  if (series.label_values.size() != desc.label_names.size()) return false;
  return desc.type != MetricType::kHistogram ||
         series.bucket_counts.size() == desc.bucket_bounds.size() + 1;
}

// The length of the well-formed UTF-8 sequence at the start of `s`, or 0.
size_t Utf8Length(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto continuation = [&](size_t i, unsigned char lo = 0x80,
                          unsigned char hi = 0xBF) {
    return i < s.size() && byte(i) >= lo && byte(i) <= hi;
  };
  const unsigned char c = byte(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return continuation(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return continuation(1, lo, hi) && continuation(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return continuation(1, lo, hi) && continuation(2) && continuation(3) ? 4
                                                                         : 0;
  }
  return 0;
}

// Escapes `text` for a label value (quote too) or a HELP line; bytes that
// are not UTF-8 become U+FFFD, since Prometheus rejects the whole scrape
// otherwise.
std::string Escape(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else if (const size_t n = Utf8Length(text.substr(i)); n > 0) {
      out.append(text.substr(i, n));
      i += n;
      continue;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
    }
    ++i;
  }
  return out;
}

}  // namespace

std::string FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  constexpr double kExactIntegers = 9007199254740992.0;  // 2^53
  if (std::trunc(value) == value && std::fabs(value) < kExactIntegers) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buffer[32];
  const std::to_chars_result r =
      std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, r.ptr);
}

std::string FormatValue(uint64_t integer, double real) {
  if (real == 0) return absl::StrCat(integer);
  return FormatDouble(static_cast<double>(integer) + real);
}

std::string EscapeLabelValue(std::string_view value) {
  return Escape(value, /*quote=*/true);
}

std::string EscapeHelp(std::string_view help) {
  return Escape(help, /*quote=*/false);
}

void AppendFamily(FamilySnapshot& family, std::string& out) {
  const FamilyDesc& desc = *family.desc;
  std::vector<SeriesSnapshot>& series = family.series;
  series.erase(std::remove_if(
                   series.begin(), series.end(),
                   [&](const SeriesSnapshot& s) { return !Matches(desc, s); }),
               series.end());
  if (series.empty()) return;
  std::sort(series.begin(), series.end(),
            [](const SeriesSnapshot& a, const SeriesSnapshot& b) {
              return a.label_values < b.label_values;
            });

  absl::StrAppend(&out, "# HELP ", desc.name, " ", EscapeHelp(desc.help),
                  "\n# TYPE ", desc.name, " ",
                  std::string(MetricTypeName(desc.type)), "\n");
  if (desc.type != MetricType::kHistogram) {
    for (const SeriesSnapshot& s : series) {
      AppendSample(desc.name, desc, s, "", "", FormatValue(s.integer, s.real),
                   out);
    }
    return;
  }
  const std::string bucket = desc.name + "_bucket";
  for (const SeriesSnapshot& s : series) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < s.bucket_counts.size(); ++i) {
      cumulative += s.bucket_counts[i];
      const std::string le = i < desc.bucket_bounds.size()
                                 ? FormatDouble(desc.bucket_bounds[i])
                                 : "+Inf";
      AppendSample(bucket, desc, s, "le", le, absl::StrCat(cumulative), out);
    }
    AppendSample(desc.name + "_sum", desc, s, "", "", FormatDouble(s.sum), out);
    AppendSample(desc.name + "_count", desc, s, "", "",
                 absl::StrCat(cumulative), out);
  }
}

std::string RenderFamilies(std::vector<FamilySnapshot>& families) {
  std::sort(families.begin(), families.end(),
            [](const FamilySnapshot& a, const FamilySnapshot& b) {
              return a.desc->name < b.desc->name;
            });
  std::string out;
  for (FamilySnapshot& family : families) AppendFamily(family, out);
  return out;
}

}  // namespace lstmserve::metrics
