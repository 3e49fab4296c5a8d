// Many threads updating the same children, creating children and rendering
// at once: totals come out exact, and a scrape taken in the middle is
// consistent (each histogram's +Inf bucket equals its _count).
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "server/metrics/metrics.h"

namespace lstmserve::metrics {
namespace {

constexpr int kThreads = 8;
constexpr int kPerThread = 20000;

// The value of the sample line that starts with `prefix` ("name{...} ").
double SampleValue(const std::string& text, absl::string_view prefix) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, prefix)) {
      double v;
      if (absl::SimpleAtod(line, &v)) return v;
    }
  }
  ADD_FAILURE() << "no sample " << prefix << " in\n" << text;
  return -1;
}

TEST(Concurrency, ManyThreadsIncrementingGiveExactTotals) {
  Registry registry;
  CounterFamily* requests =
      *registry.AddCounter("t_requests_total", "R.", {"method"});
  GaugeFamily* level = *registry.AddGauge("t_level", "L.");
  HistogramFamily* sizes =
      *registry.AddHistogram("t_size_bytes", "S.", {"kind"}, {1, 10, 100});

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Every thread looks the children up itself, racing to create them.
      Counter& shared = requests->WithLabels({"Predict"});
      Counter& own = requests->WithLabels({absl::StrCat("T", t)});
      Gauge& g = level->WithLabels({});
      Histogram& h = sizes->WithLabels({"all"});
      for (int i = 0; i < kPerThread; ++i) {
        shared.Increment();
        own.Increment(2);
        g.Add(i % 2 == 0 ? 1.5 : -0.5);  // +1 per pair, exact in binary
        h.Observe(i % 200);              // 0..199
      }
    });
  }
  // Scrapes while the updates run.
  std::thread scraper([&] {
    for (int i = 0; i < 50; ++i) {
      const std::string text = registry.Render();
      if (text.find("t_size_bytes_count") == std::string::npos) continue;
      EXPECT_EQ(
          SampleValue(text, "t_size_bytes_bucket{kind=\"all\",le=\"+Inf\"} "),
          SampleValue(text, "t_size_bytes_count{kind=\"all\"} "));
    }
  });
  for (std::thread& t : threads) t.join();
  scraper.join();

  const double n = static_cast<double>(kThreads) * kPerThread;
  EXPECT_EQ(requests->WithLabels({"Predict"}).Value(), n);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(requests->WithLabels({absl::StrCat("T", t)}).Value(),
              2.0 * kPerThread);
  }
  EXPECT_EQ(level->WithLabels({}).Value(), n / 2);
  Histogram& h = sizes->WithLabels({"all"});
  EXPECT_EQ(h.Count(), static_cast<uint64_t>(n));
  // Each thread observes 0..199 kPerThread/200 times: sum 19900 each round.
  EXPECT_EQ(h.Sum(), 19900.0 * (n / 200));

  const std::string text = registry.Render();
  EXPECT_EQ(SampleValue(text, "t_requests_total{method=\"Predict\"} "), n);
  // <= 1: 0 and 1; <= 10: 0..10; <= 100: 0..100; of every 200 observations.
  EXPECT_EQ(SampleValue(text, "t_size_bytes_bucket{kind=\"all\",le=\"1\"} "),
            2 * n / 200);
  EXPECT_EQ(SampleValue(text, "t_size_bytes_bucket{kind=\"all\",le=\"10\"} "),
            11 * n / 200);
  EXPECT_EQ(SampleValue(text, "t_size_bytes_bucket{kind=\"all\",le=\"100\"} "),
            101 * n / 200);
  EXPECT_EQ(SampleValue(text, "t_size_bytes_bucket{kind=\"all\",le=\"+Inf\"} "),
            n);
}

TEST(Concurrency, FamiliesAndCollectorsAddedWhileRendering) {
  Registry registry;
  std::thread scraper([&] {
    for (int i = 0; i < 200; ++i) registry.Render();
  });
  for (int i = 0; i < 50; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_TRUE(registry.AddGauge("t_g" + n, "G.").ok());
    ASSERT_TRUE(
        registry
            .AddCollector({FamilyDesc("t_c" + n, MetricType::kGauge, "C.")},
                          [name = "t_c" + n](SampleSink& sink) {
                            EXPECT_TRUE(sink.SetGauge(name, {}, 1).ok());
                          })
            .ok());
  }
  scraper.join();
  const std::string text = registry.Render();
  EXPECT_NE(text.find("t_g49 0\n"), std::string::npos);
  EXPECT_NE(text.find("t_c49 1\n"), std::string::npos);
}

}  // namespace
}  // namespace lstmserve::metrics
