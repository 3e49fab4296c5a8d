// Collectors: families declared up front, samples computed at scrape time,
// merged with the registry's own families; and the rules a sample must obey.
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "server/metrics/metrics.h"

namespace lstmserve::metrics {
namespace {

TEST(Collector, SamplesAreReadAtScrapeTimeAndMergedByName) {
  Registry registry;
  ASSERT_TRUE(registry.AddGauge("t_b_models", "Models loaded.").ok());
  ASSERT_TRUE(registry.AddCounter("t_z_steps_total", "Steps.").ok());

  // Kept elsewhere (a session manager, say), read when scraped.
  std::map<std::pair<std::string, std::string>, int> sessions = {
      {{"ecg", "2"}, 4}, {{"air", "1"}, 1}};
  int calls = 0;
  ASSERT_TRUE(
      registry
          .AddCollector(
              {FamilyDesc("t_m_sessions", MetricType::kGauge,
                          "Live sessions by model.", {"model", "version"})},
              [&](SampleSink& sink) {
                ++calls;
                for (const auto& [key, n] : sessions) {
                  EXPECT_TRUE(
                      sink.SetGauge("t_m_sessions", {key.first, key.second}, n)
                          .ok());
                }
              })
          .ok());
  EXPECT_EQ(registry.Render(),
            "# HELP t_b_models Models loaded.\n"
            "# TYPE t_b_models gauge\n"
            "t_b_models 0\n"
            "# HELP t_m_sessions Live sessions by model.\n"
            "# TYPE t_m_sessions gauge\n"
            "t_m_sessions{model=\"air\",version=\"1\"} 1\n"
            "t_m_sessions{model=\"ecg\",version=\"2\"} 4\n"
            "# HELP t_z_steps_total Steps.\n"
            "# TYPE t_z_steps_total counter\n"
            "t_z_steps_total 0\n");
  EXPECT_EQ(calls, 1);

  sessions.erase({"air", "1"});
  sessions[{"ecg", "3"}] = 2;
  const std::string second = registry.Render();
  EXPECT_EQ(calls, 2);
  EXPECT_NE(second.find("t_m_sessions{model=\"ecg\",version=\"2\"} 4\n"
                        "t_m_sessions{model=\"ecg\",version=\"3\"} 2\n"),
            std::string::npos)
      << second;
  EXPECT_EQ(second.find("air"), std::string::npos) << second;
}

// A histogram whose counts are kept elsewhere in log2 buckets of
// microseconds (bucket k counts durations in (2^(k-1), 2^k] us), exposed in
// seconds.
TEST(Collector, HistogramFromLog2MicrosecondBucketsInSeconds) {
  constexpr int kBuckets = 4;  // 1, 2, 4, 8 us, then above
  std::vector<double> bounds;
  for (int k = 0; k < kBuckets; ++k) bounds.push_back(std::ldexp(1e-6, k));
  const uint64_t log2_counts[kBuckets + 1] = {3, 0, 2, 1, 5};
  const double sum_us = 123.5;

  Registry registry;
  ASSERT_TRUE(
      registry
          .AddCollector(
              {FamilyDesc("t_queue_wait_seconds", MetricType::kHistogram,
                          "Time in the queue.", {"model"}, bounds)},
              [&](SampleSink& sink) {
                EXPECT_TRUE(sink.SetHistogram("t_queue_wait_seconds", {"ecg"},
                                              log2_counts, sum_us / 1e6)
                                .ok());
              })
          .ok());
  EXPECT_EQ(registry.Render(),
            "# HELP t_queue_wait_seconds Time in the queue.\n"
            "# TYPE t_queue_wait_seconds histogram\n"
            "t_queue_wait_seconds_bucket{model=\"ecg\",le=\"1e-06\"} 3\n"
            "t_queue_wait_seconds_bucket{model=\"ecg\",le=\"2e-06\"} 3\n"
            "t_queue_wait_seconds_bucket{model=\"ecg\",le=\"4e-06\"} 5\n"
            "t_queue_wait_seconds_bucket{model=\"ecg\",le=\"8e-06\"} 6\n"
            "t_queue_wait_seconds_bucket{model=\"ecg\",le=\"+Inf\"} 11\n"
            "t_queue_wait_seconds_sum{model=\"ecg\"} 0.0001235\n"
            "t_queue_wait_seconds_count{model=\"ecg\"} 11\n");
}

TEST(Collector, CountersAndFamiliesWithoutSamples) {
  Registry registry;
  ASSERT_TRUE(
      registry
          .AddCollector(
              {FamilyDesc("t_closed_total", MetricType::kCounter,
                          "Sessions closed by reason.", {"reason"}),
               FamilyDesc("t_idle", MetricType::kGauge, "Never set.")},
              [](SampleSink& sink) {
                EXPECT_TRUE(
                    sink.SetCounter("t_closed_total", {"idle"}, 7).ok());
                EXPECT_TRUE(
                    sink.SetCounter("t_closed_total", {"limit"}, 0.5).ok());
              })
          .ok());
  EXPECT_EQ(registry.Render(),
            "# HELP t_closed_total Sessions closed by reason.\n"
            "# TYPE t_closed_total counter\n"
            "t_closed_total{reason=\"idle\"} 7\n"
            "t_closed_total{reason=\"limit\"} 0.5\n");
}

TEST(Collector, BadSamplesAreDroppedWithAStatusAndTheRestRendered) {
  Registry registry;
  std::vector<absl::Status> statuses;
  ASSERT_TRUE(
      registry
          .AddCollector(
              {FamilyDesc("t_g", MetricType::kGauge, "G.", {"a"}),
               FamilyDesc("t_c_total", MetricType::kCounter, "C."),
               FamilyDesc("t_h", MetricType::kHistogram, "H.", {}, {1, 2})},
              [&](SampleSink& sink) {
                statuses = {
                    sink.SetGauge("t_g", {"ok"}, 1),
                    sink.SetGauge("t_unknown", {}, 1),
                    sink.SetCounter("t_g", {"x"}, 1),
                    sink.SetGauge("t_g", {}, 1),
                    sink.SetGauge("t_g", {"x", "y"}, 1),
                    sink.SetGauge("t_g", {"ok"}, 2),
                    sink.SetCounter("t_c_total", {}, -1),
                    sink.SetCounter("t_c_total", {}, std::nan("")),
                    sink.SetHistogram("t_h", {}, std::vector<uint64_t>{1, 2},
                                      0),
                    sink.SetHistogram("t_h", {}, std::vector<uint64_t>{1, 2, 3},
                                      4),
                };
              })
          .ok());
  EXPECT_EQ(registry.Render(),
            "# HELP t_g G.\n# TYPE t_g gauge\nt_g{a=\"ok\"} 1\n"
            "# HELP t_h H.\n# TYPE t_h histogram\n"
            "t_h_bucket{le=\"1\"} 1\n"
            "t_h_bucket{le=\"2\"} 3\n"
            "t_h_bucket{le=\"+Inf\"} 6\n"
            "t_h_sum 4\n"
            "t_h_count 6\n");
  ASSERT_EQ(statuses.size(), 10u);
  using C = absl::StatusCode;
  const C expected[] = {C::kOk,
                        C::kNotFound,         // unknown family
                        C::kInvalidArgument,  // gauge set as a counter
                        C::kInvalidArgument,  // too few label values
                        C::kInvalidArgument,  // too many
                        C::kAlreadyExists,    // same series twice
                        C::kInvalidArgument,  // negative counter
                        C::kInvalidArgument,  // NaN counter
                        C::kInvalidArgument,  // 2 counts for 2 bounds
                        C::kOk};
  for (size_t i = 0; i < statuses.size(); ++i) {
    EXPECT_EQ(statuses[i].code(), expected[i]) << i << ": " << statuses[i];
  }
  EXPECT_NE(statuses[1].message().find("t_unknown"), std::string::npos);
  EXPECT_NE(statuses[8].message().find("takes 3 bucket counts"),
            std::string::npos)
      << statuses[8];
}

TEST(Collector, RegistrationChecksTheDeclaredFamilies) {
  Registry registry;
  ASSERT_TRUE(registry.AddGauge("t_taken", "Taken.").ok());
  auto noop = [](SampleSink&) {};

  absl::Status s = registry.AddCollector(
      {FamilyDesc("t_requests", MetricType::kCounter, "No _total.")}, noop);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  s = registry.AddCollector(
      {FamilyDesc("t_new", MetricType::kGauge, "New."),
       FamilyDesc("t_taken", MetricType::kGauge, "Clash.")},
      noop);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;

  s = registry.AddCollector({FamilyDesc("t_twice", MetricType::kGauge, "A."),
                             FamilyDesc("t_twice", MetricType::kGauge, "B.")},
                            noop);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;

  s = registry.AddCollector({FamilyDesc("t_fine", MetricType::kGauge, "F.")},
                            nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;

  // None of the failed registrations took a name.
  EXPECT_TRUE(registry.AddGauge("t_new", "New.").ok());
  EXPECT_TRUE(registry.AddGauge("t_twice", "Twice.").ok());
  EXPECT_TRUE(registry.AddGauge("t_fine", "Fine.").ok());
  // And a collector's names are taken for the registry's own families.
  ASSERT_TRUE(
      registry
          .AddCollector(
              {FamilyDesc("t_c", MetricType::kGauge, "By collector.")}, noop)
          .ok());
  EXPECT_EQ(registry.AddGauge("t_c", "Again.").status().code(),
            absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace lstmserve::metrics
