// The Registry's own families: rendering of each type, the naming rules
// enforced at registration, and what updates do to the exposition.
#include <cmath>
#include <limits>

#include "gtest/gtest.h"
#include "server/metrics/metrics.h"

namespace lstmserve::metrics {
namespace {

TEST(Registry, EmptyRendersNothing) {
  Registry registry;
  EXPECT_EQ(registry.Render(), "");
}

TEST(Registry, RendersEachTypeSortedByFamilyAndLabels) {
  Registry registry;
  CounterFamily* requests = *registry.AddCounter(
      "t_requests_total", "Requests by method and code.", {"method", "code"});
  GaugeFamily* sessions =
      *registry.AddGauge("t_sessions", "Live sessions.", {"model"});
  HistogramFamily* latency = *registry.AddHistogram(
      "t_latency_seconds", "Request latency.", {}, {0.001, 0.01, 0.1});

  requests->WithLabels({"Stream", "OK"}).Increment(5);
  requests->WithLabels({"Predict", "OK"}).Increment();
  requests->WithLabels({"Predict", "OK"}).Increment();
  requests->WithLabels({"Predict", "INVALID_ARGUMENT"}).Increment();
  sessions->WithLabels({"ecg"}).Set(3);
  sessions->WithLabels({"air"}).Add(2);
  sessions->WithLabels({"air"}).Add(-0.5);
  latency->WithLabels({}).Observe(0.001);  // le is inclusive
  latency->WithLabels({}).Observe(0.05);
  latency->WithLabels({}).Observe(2);

  EXPECT_EQ(registry.Render(),
            "# HELP t_latency_seconds Request latency.\n"
            "# TYPE t_latency_seconds histogram\n"
            "t_latency_seconds_bucket{le=\"0.001\"} 1\n"
            "t_latency_seconds_bucket{le=\"0.01\"} 1\n"
            "t_latency_seconds_bucket{le=\"0.1\"} 2\n"
            "t_latency_seconds_bucket{le=\"+Inf\"} 3\n"
            "t_latency_seconds_sum 2.051\n"
            "t_latency_seconds_count 3\n"
            "# HELP t_requests_total Requests by method and code.\n"
            "# TYPE t_requests_total counter\n"
            "t_requests_total{method=\"Predict\",code=\"INVALID_ARGUMENT\"} 1\n"
            "t_requests_total{method=\"Predict\",code=\"OK\"} 2\n"
            "t_requests_total{method=\"Stream\",code=\"OK\"} 5\n"
            "# HELP t_sessions Live sessions.\n"
            "# TYPE t_sessions gauge\n"
            "t_sessions{model=\"air\"} 1.5\n"
            "t_sessions{model=\"ecg\"} 3\n");
}

TEST(Registry, UnlabelledFamiliesRenderZeroBeforeAnyUpdate) {
  Registry registry;
  ASSERT_TRUE(registry.AddCounter("t_steps_total", "Steps.").ok());
  ASSERT_TRUE(registry.AddGauge("t_models", "Models.").ok());
  ASSERT_TRUE(
      registry.AddHistogram("t_batch_size", "Batch sizes.", {}, {1, 2}).ok());
  ASSERT_TRUE(
      registry.AddCounter("t_unused_total", "Labelled, no child.", {"a"}).ok());
  EXPECT_EQ(registry.Render(),
            "# HELP t_batch_size Batch sizes.\n"
            "# TYPE t_batch_size histogram\n"
            "t_batch_size_bucket{le=\"1\"} 0\n"
            "t_batch_size_bucket{le=\"2\"} 0\n"
            "t_batch_size_bucket{le=\"+Inf\"} 0\n"
            "t_batch_size_sum 0\n"
            "t_batch_size_count 0\n"
            "# HELP t_models Models.\n"
            "# TYPE t_models gauge\n"
            "t_models 0\n"
            "# HELP t_steps_total Steps.\n"
            "# TYPE t_steps_total counter\n"
            "t_steps_total 0\n");
}

TEST(Registry, WithLabelsReturnsTheSameChildEachTime) {
  Registry registry;
  CounterFamily* c = *registry.AddCounter("t_x_total", "X.", {"a"});
  Counter& first = c->WithLabels({"v"});
  Counter& again = c->WithLabels(std::vector<std::string>{"v"});
  EXPECT_EQ(&first, &again);
  EXPECT_NE(&first, &c->WithLabels({"w"}));
}

TEST(Registry, LabelValuesAreEscaped) {
  Registry registry;
  GaugeFamily* g =
      *registry.AddGauge("t_info", "Help with \\ and\nnewline.", {"path"});
  g->WithLabels({"C:\\dir \"x\"\nnext"}).Set(1);
  EXPECT_EQ(registry.Render(),
            "# HELP t_info Help with \\\\ and\\nnewline.\n"
            "# TYPE t_info gauge\n"
            "t_info{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
}

TEST(Counter, CountsIntegersExactlyAndFractionsAsDoubles) {
  Registry registry;
  CounterFamily* c = *registry.AddCounter("t_x_total", "X.");
  Counter& x = c->WithLabels({});
  x.Increment(uint64_t{1} << 60);
  x.Increment(3);
  EXPECT_EQ(registry.Render(),
            "# HELP t_x_total X.\n# TYPE t_x_total counter\n"
            "t_x_total 1152921504606846979\n");
  x.Increment(0.5);
  EXPECT_EQ(x.Value(), static_cast<double>((uint64_t{1} << 60) + 3) + 0.5);
}

TEST(Counter, NeverGoesDown) {
  Registry registry;
  Counter& x = (*registry.AddCounter("t_x_total", "X."))->WithLabels({});
  x.Increment(2);
  x.Increment(-1);
  x.Increment(-1.5);
  x.Increment(std::nan(""));
  x.Increment(std::numeric_limits<double>::infinity());
  x.Increment(0.25);
  EXPECT_EQ(x.Value(), 2.25);
}

TEST(Histogram, BucketBoundsAreInclusiveAndNaNIsIgnored) {
  Registry registry;
  Histogram& h =
      (*registry.AddHistogram("t_h", "H.", {}, {1, 2}))->WithLabels({});
  h.Observe(1);
  h.Observe(1.5);
  h.Observe(-5);
  h.Observe(std::nan(""));
  h.Observe(3);
  EXPECT_EQ(h.Count(), 4u);
  EXPECT_EQ(h.Sum(), 0.5);
  EXPECT_EQ(registry.Render(),
            "# HELP t_h H.\n# TYPE t_h histogram\n"
            "t_h_bucket{le=\"1\"} 2\n"
            "t_h_bucket{le=\"2\"} 3\n"
            "t_h_bucket{le=\"+Inf\"} 4\n"
            "t_h_sum 0.5\n"
            "t_h_count 4\n");
}

TEST(Histogram, TrailingInfBoundIsDropped) {
  Registry registry;
  HistogramFamily* h = *registry.AddHistogram(
      "t_h", "H.", {}, {0.5, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(h->desc().bucket_bounds, std::vector<double>{0.5});
  h->WithLabels({}).Observe(7);
  EXPECT_EQ(registry.Render(),
            "# HELP t_h H.\n# TYPE t_h histogram\n"
            "t_h_bucket{le=\"0.5\"} 0\n"
            "t_h_bucket{le=\"+Inf\"} 1\n"
            "t_h_sum 7\n"
            "t_h_count 1\n");
}

TEST(Family, WrongNumberOfLabelValuesGoesToADetachedChild) {
  Registry registry;
  CounterFamily* c = *registry.AddCounter("t_x_total", "X.", {"a", "b"});
  Counter& wrong = c->WithLabels({"only-one"});
  wrong.Increment(5);
  EXPECT_EQ(&wrong, &c->WithLabels({"1", "2", "3"}));
  EXPECT_EQ(registry.Render(), "");  // the family still has no child
  c->WithLabels({"x", "y"}).Increment();
  EXPECT_EQ(registry.Render(),
            "# HELP t_x_total X.\n# TYPE t_x_total counter\n"
            "t_x_total{a=\"x\",b=\"y\"} 1\n");
}

// --- rules checked at registration ---

void ExpectInvalid(const absl::Status& status, std::string_view fragment) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(std::string(fragment)), std::string::npos)
      << status;
}

TEST(Registry, RejectsInvalidMetricNames) {
  Registry registry;
  for (const char* name :
       {"", "9lives", "has-dash", "has space", "caf\xc3\xa9", "a.b"}) {
    ExpectInvalid(registry.AddGauge(name, "H.").status(),
                  "expected [a-zA-Z_][a-zA-Z0-9_]*");
  }
  ExpectInvalid(registry.AddGauge("job:rate5m", "H.").status(),
                "colons are reserved for recording rules");
  EXPECT_TRUE(registry.AddGauge("_Under_score9", "H.").ok());
}

TEST(Registry, RejectsInvalidLabelNames) {
  Registry registry;
  ExpectInvalid(registry.AddGauge("t_a", "H.", {"bad-label"}).status(),
                "label name \"bad-label\" is invalid");
  ExpectInvalid(registry.AddGauge("t_b", "H.", {"__name__"}).status(),
                "reserved");
  ExpectInvalid(registry.AddGauge("t_c", "H.", {"le"}).status(), "reserved");
  ExpectInvalid(registry.AddHistogram("t_d", "H.", {"quantile"}, {1}).status(),
                "reserved");
  ExpectInvalid(registry.AddGauge("t_e", "H.", {"a", "b", "a"}).status(),
                "\"a\" is repeated");
  ExpectInvalid(registry.AddGauge("t_f", "H.", {""}).status(),
                "label name \"\" is invalid");
}

TEST(Registry, EnforcesSuffixConventions) {
  Registry registry;
  ExpectInvalid(registry.AddCounter("t_requests", "H.").status(),
                "must end in \"_total\"");
  ExpectInvalid(registry.AddGauge("t_requests_total", "H.").status(),
                "only counters");
  ExpectInvalid(
      registry.AddHistogram("t_latency_total", "H.", {}, {1}).status(),
      "only counters");
  ExpectInvalid(registry.AddGauge("t_sessions_count", "H.").status(),
                "only histograms");
  ExpectInvalid(registry.AddGauge("t_weights_sum", "H.").status(),
                "only histograms");
  ExpectInvalid(registry.AddGauge("t_thing_bucket", "H.").status(),
                "only histograms");
}

TEST(Registry, RejectsEmptyHelp) {
  Registry registry;
  ExpectInvalid(registry.AddGauge("t_x", "").status(), "help text");
}

TEST(Registry, RejectsBadBucketBounds) {
  Registry registry;
  ExpectInvalid(registry.AddHistogram("t_a", "H.", {}, {1, 1}).status(),
                "strictly increasing");
  ExpectInvalid(registry.AddHistogram("t_b", "H.", {}, {2, 1}).status(),
                "bucket bound 1 (1) follows 2");
  ExpectInvalid(
      registry.AddHistogram("t_c", "H.", {}, {1, std::nan("")}).status(),
      "finite");
  ExpectInvalid(registry
                    .AddHistogram("t_d", "H.", {},
                                  {std::numeric_limits<double>::infinity(), 5})
                    .status(),
                "finite");
}

TEST(Registry, RejectsDuplicateNamesWhateverTheType) {
  Registry registry;
  ASSERT_TRUE(registry.AddGauge("t_x", "H.").ok());
  const absl::Status again = registry.AddGauge("t_x", "Again.").status();
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists) << again;
  EXPECT_NE(again.message().find("t_x"), std::string::npos) << again;
  EXPECT_EQ(registry.AddHistogram("t_x", "H.", {}, {1}).status().code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry.AddHistogram("t_lat", "H.", {}, {1}).ok());
  EXPECT_EQ(registry.AddGauge("t_lat", "H.").status().code(),
            absl::StatusCode::kAlreadyExists);
  // A failed registration reserves nothing.
  EXPECT_TRUE(registry.AddGauge("t_y", "H.").ok());
}

}  // namespace
}  // namespace lstmserve::metrics
