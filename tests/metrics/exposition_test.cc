// The text exposition format's rules on their own: number spelling,
// escaping, and the layout of each family type from hand-made snapshots.
#include "server/metrics/exposition.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "gtest/gtest.h"

namespace lstmserve::metrics {
namespace {

TEST(FormatDouble, SpecialValuesAreSpelledAsPrometheusParsesThem) {
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatDouble(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatDouble(std::nan("")), "NaN");
}

TEST(FormatDouble, IntegersHaveNoExponentOrFraction) {
  EXPECT_EQ(FormatDouble(0), "0");
  EXPECT_EQ(FormatDouble(-0.0), "0");
  EXPECT_EQ(FormatDouble(1), "1");
  EXPECT_EQ(FormatDouble(-42), "-42");
  EXPECT_EQ(FormatDouble(1e6), "1000000");
  EXPECT_EQ(FormatDouble(9007199254740991.0), "9007199254740991");  // 2^53-1
}

TEST(FormatDouble, FractionsAreShortestAndRoundTrip) {
  EXPECT_EQ(FormatDouble(0.1), "0.1");
  EXPECT_EQ(FormatDouble(0.25), "0.25");
  EXPECT_EQ(FormatDouble(-2.5), "-2.5");
  EXPECT_EQ(FormatDouble(1e-7), "1e-07");
  EXPECT_EQ(FormatDouble(1e300), "1e+300");
  for (double v :
       {0.1 + 0.2, 1.0 / 3, 123456.789e-20, 6.02214076e23,
        std::numeric_limits<double>::min(), std::numeric_limits<double>::max(),
        std::numeric_limits<double>::denorm_min()}) {
    const std::string text = FormatDouble(v);
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), v) << text;
  }
}

TEST(FormatValue, IntegerCountsStayExactPast2To53) {
  EXPECT_EQ(FormatValue(18446744073709551615u, 0), "18446744073709551615");
  EXPECT_EQ(FormatValue(9007199254740993u, 0), "9007199254740993");
  EXPECT_EQ(FormatValue(3, 0.5), "3.5");
  EXPECT_EQ(FormatValue(0, -1.25), "-1.25");
}

TEST(Escape, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue(R"(a\b"c)"
                             "\n"
                             "d"),
            R"(a\\b\"c\nd)");
  // Other control characters and UTF-8 pass as they are.
  EXPECT_EQ(EscapeLabelValue("tab\there, caf\xc3\xa9"),
            "tab\there, caf\xc3\xa9");
}

TEST(Escape, BytesThatAreNotUtf8BecomeTheReplacementCharacter) {
  const std::string kReplacement = "\xEF\xBF\xBD";
  // Well-formed: 2, 3 and 4 byte sequences, at the edges of their ranges.
  const std::string good =
      "\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xED\x9F\xBF "
      "\xEF\xBF\xBF \xF0\x90\x80\x80 \xF4\x8F\xBF\xBF";
  EXPECT_EQ(EscapeLabelValue(good), good);
  EXPECT_EQ(EscapeHelp(good), good);
  // A stray continuation byte, an overlong form, a surrogate, past U+10FFFF,
  // a truncated sequence at the end, and a byte that never occurs.
  EXPECT_EQ(EscapeLabelValue("a\x80"
                             "b"),
            "a" + kReplacement + "b");
  EXPECT_EQ(EscapeLabelValue("\xC0\xAF"), kReplacement + kReplacement);
  EXPECT_EQ(EscapeLabelValue("\xED\xA0\x80"),
            kReplacement + kReplacement + kReplacement);
  EXPECT_EQ(EscapeLabelValue("\xF4\x90\x80\x80"),
            kReplacement + kReplacement + kReplacement + kReplacement);
  EXPECT_EQ(EscapeLabelValue("ok\xE2\x82"), "ok" + kReplacement + kReplacement);
  EXPECT_EQ(EscapeHelp("\xFF\"\n"), kReplacement + "\"\\n");
}

TEST(Escape, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(EscapeHelp(R"(a "quoted" \ path)"
                       "\nsecond line"),
            R"(a "quoted" \\ path\nsecond line)");
}

TEST(AppendFamily, CounterWithLabelsSortedByLabelValues) {
  FamilyDesc desc("x_requests_total", MetricType::kCounter, "Requests.",
                  {"method", "code"});
  FamilySnapshot family{&desc, {}};
  family.series.push_back({{"Stream", "OK"}, 7, 0, {}, 0});
  family.series.push_back({{"Predict", "OK"}, 3, 0, {}, 0});
  family.series.push_back({{"Predict", "NOT_FOUND"}, 1, 0, {}, 0});
  std::string out;
  AppendFamily(family, out);
  EXPECT_EQ(out,
            "# HELP x_requests_total Requests.\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total{method=\"Predict\",code=\"NOT_FOUND\"} 1\n"
            "x_requests_total{method=\"Predict\",code=\"OK\"} 3\n"
            "x_requests_total{method=\"Stream\",code=\"OK\"} 7\n");
}

TEST(AppendFamily, GaugeWithoutLabelsAndEscapedHelpAndValues) {
  FamilyDesc desc("x_temperature_celsius", MetricType::kGauge,
                  "Line one\nback\\slash.", {"where"});
  FamilySnapshot family{&desc, {}};
  family.series.push_back({{"a \"b\"\nc\\"}, 0, -3.5, {}, 0});
  std::string out;
  AppendFamily(family, out);
  EXPECT_EQ(out,
            "# HELP x_temperature_celsius Line one\\nback\\\\slash.\n"
            "# TYPE x_temperature_celsius gauge\n"
            "x_temperature_celsius{where=\"a \\\"b\\\"\\nc\\\\\"} -3.5\n");

  FamilyDesc bare("x_up", MetricType::kGauge, "Up.");
  FamilySnapshot unlabelled{&bare, {}};
  unlabelled.series.push_back({{}, 0, 1, {}, 0});
  out.clear();
  AppendFamily(unlabelled, out);
  EXPECT_EQ(out, "# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n");
}

TEST(AppendFamily, HistogramBucketsAreCumulativeAndEndWithInfEqualToCount) {
  FamilyDesc desc("x_latency_seconds", MetricType::kHistogram, "Latency.",
                  {"model"}, {0.005, 0.1, 1});
  FamilySnapshot family{&desc, {}};
  // Per bucket: 2 at <= 0.005, 0 in (0.005, 0.1], 3 in (0.1, 1], 1 above.
  family.series.push_back({{"ecg"}, 0, 0, {2, 0, 3, 1}, 4.75});
  family.series.push_back({{"air"}, 0, 0, {0, 0, 0, 0}, 0});
  std::string out;
  AppendFamily(family, out);
  EXPECT_EQ(out,
            "# HELP x_latency_seconds Latency.\n"
            "# TYPE x_latency_seconds histogram\n"
            "x_latency_seconds_bucket{model=\"air\",le=\"0.005\"} 0\n"
            "x_latency_seconds_bucket{model=\"air\",le=\"0.1\"} 0\n"
            "x_latency_seconds_bucket{model=\"air\",le=\"1\"} 0\n"
            "x_latency_seconds_bucket{model=\"air\",le=\"+Inf\"} 0\n"
            "x_latency_seconds_sum{model=\"air\"} 0\n"
            "x_latency_seconds_count{model=\"air\"} 0\n"
            "x_latency_seconds_bucket{model=\"ecg\",le=\"0.005\"} 2\n"
            "x_latency_seconds_bucket{model=\"ecg\",le=\"0.1\"} 2\n"
            "x_latency_seconds_bucket{model=\"ecg\",le=\"1\"} 5\n"
            "x_latency_seconds_bucket{model=\"ecg\",le=\"+Inf\"} 6\n"
            "x_latency_seconds_sum{model=\"ecg\"} 4.75\n"
            "x_latency_seconds_count{model=\"ecg\"} 6\n");
}

TEST(AppendFamily, HistogramWithoutLabelsOrBounds) {
  FamilyDesc desc("x_size_bytes", MetricType::kHistogram, "Sizes.", {}, {});
  FamilySnapshot family{&desc, {}};
  family.series.push_back({{}, 0, 0, {4}, 100});
  std::string out;
  AppendFamily(family, out);
  EXPECT_EQ(out,
            "# HELP x_size_bytes Sizes.\n"
            "# TYPE x_size_bytes histogram\n"
            "x_size_bytes_bucket{le=\"+Inf\"} 4\n"
            "x_size_bytes_sum 100\n"
            "x_size_bytes_count 4\n");
}

TEST(AppendFamily, NothingForAFamilyWithoutSeries) {
  FamilyDesc desc("x_up", MetricType::kGauge, "Up.");
  FamilySnapshot family{&desc, {}};
  std::string out = "before\n";
  AppendFamily(family, out);
  EXPECT_EQ(out, "before\n");
}

TEST(RenderFamilies, SortsFamiliesByName) {
  FamilyDesc b("b_value", MetricType::kGauge, "B.");
  FamilyDesc a("a_value", MetricType::kGauge, "A.");
  std::vector<FamilySnapshot> families(2);
  families[0] = {&b, {{{}, 2, 0, {}, 0}}};
  families[1] = {&a, {{{}, 1, 0, {}, 0}}};
  EXPECT_EQ(RenderFamilies(families),
            "# HELP a_value A.\n# TYPE a_value gauge\na_value 1\n"
            "# HELP b_value B.\n# TYPE b_value gauge\nb_value 2\n");
}

}  // namespace
}  // namespace lstmserve::metrics
