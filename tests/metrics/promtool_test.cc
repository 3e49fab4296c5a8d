// Prometheus's own checker on what we render: `promtool check metrics`
// (Debian package prometheus) parses the exposition and applies its lint
// rules; it must accept a registry holding every type, labels, escapes, a
// collector and the process metrics, with no warnings.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "server/metrics/metrics.h"
#include "server/metrics/process_metrics.h"

namespace lstmserve::metrics {
namespace {

constexpr char kPromtool[] = "/usr/bin/promtool";

struct Verdict {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `promtool check metrics` on `exposition`.
Verdict Check(const std::string& exposition) {
  std::string path =
      (std::filesystem::temp_directory_path() / "metrics_promtool_XXXXXX")
          .string();
  const int fd = mkstemp(path.data());
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path, std::ios::binary) << exposition;
  Verdict verdict;
  const std::string command =
      std::string(kPromtool) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (pipe != nullptr) {
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
      verdict.output.append(buffer, n);
    }
    const int status = pclose(pipe);
    if (WIFEXITED(status)) verdict.exit_code = WEXITSTATUS(status);
  }
  std::filesystem::remove(path);
  return verdict;
}

class Promtool : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kPromtool)) {
      GTEST_SKIP() << kPromtool
                   << " is not installed (Debian package prometheus; "
                      "tools/install-deps.sh installs it)";
    }
  }
};

// The checker itself catches problems: otherwise the test below could not
// fail.
TEST_F(Promtool, FlagsABadExposition) {
  const Verdict lint = Check(
      "# HELP requests Requests.\n"
      "# TYPE requests counter\n"
      "requests 1\n");
  EXPECT_NE(lint.exit_code, 0) << lint.output;
  EXPECT_NE(lint.output.find("_total"), std::string::npos) << lint.output;

  const Verdict parse = Check("# TYPE x gauge\nx{a=\"unterminated} 1\n");
  EXPECT_NE(parse.exit_code, 0) << parse.output;
}

TEST_F(Promtool, AcceptsEveryTypeLabelsCollectorsAndProcessMetrics) {
  Registry registry;
  CounterFamily* requests = *registry.AddCounter(
      "lstmserve_requests_total", "Requests by method, model and code.",
      {"method", "model", "code"});
  requests->WithLabels({"Predict", "ecg", "OK"}).Increment(12);
  requests->WithLabels({"Stream", "air \"quality\"\nv2\\x", "NOT_FOUND"})
      .Increment();
  // Not UTF-8 (a model directory named in Latin-1, say).
  requests->WithLabels({"Predict", "caf\xe9", "OK"}).Increment();
  CounterFamily* cpu = *registry.AddCounter("lstmserve_compute_seconds_total",
                                            "Time spent computing.");
  cpu->WithLabels({}).Increment(0.125);
  GaugeFamily* sessions = *registry.AddGauge(
      "lstmserve_session_state_bytes",
      "Bytes of recurrent state held,\nby model (with a \\ in the help).",
      {"model"});
  sessions->WithLabels({"ecg"}).Set(4096);
  sessions->WithLabels({"air"}).Set(-0.5);
  GaugeFamily* odd = *registry.AddGauge("lstmserve_odd_values_ratio",
                                        "Special values.", {"kind"});
  odd->WithLabels({"nan"}).Set(std::nan(""));
  odd->WithLabels({"inf"}).Set(std::numeric_limits<double>::infinity());
  odd->WithLabels({"ninf"}).Set(-std::numeric_limits<double>::infinity());
  odd->WithLabels({"tiny"}).Set(1e-300);
  HistogramFamily* latency = *registry.AddHistogram(
      "lstmserve_request_duration_seconds", "Request latency.", {"method"},
      {0.0005, 0.001, 0.01, 0.1, 1, 10});
  for (double v : {0.0001, 0.003, 0.003, 0.2, 50.0}) {
    latency->WithLabels({"Predict"}).Observe(v);
  }
  latency->WithLabels({"Stream"});
  ASSERT_TRUE(registry
                  .AddHistogram("lstmserve_batch_size", "Batch sizes.", {},
                                {1, 2, 4, 8})
                  .ok());
  ASSERT_TRUE(
      registry
          .AddCollector(
              {FamilyDesc("lstmserve_sessions", MetricType::kGauge,
                          "Live sessions by model and version.",
                          {"model", "version"}),
               FamilyDesc("lstmserve_queue_wait_seconds",
                          MetricType::kHistogram, "Time in the queue.",
                          {"model"}, {1e-6, 2e-6, 4e-6, 8e-6}),
               FamilyDesc("lstmserve_sessions_closed_total",
                          MetricType::kCounter, "Sessions closed by reason.",
                          {"reason"})},
              [](SampleSink& sink) {
                EXPECT_TRUE(
                    sink.SetGauge("lstmserve_sessions", {"ecg", "2"}, 3).ok());
                const uint64_t counts[] = {1, 2, 3, 4, 5};
                EXPECT_TRUE(sink.SetHistogram("lstmserve_queue_wait_seconds",
                                              {"ecg"}, counts, 0.001)
                                .ok());
                EXPECT_TRUE(sink.SetCounter("lstmserve_sessions_closed_total",
                                            {"idle"}, 9)
                                .ok());
              })
          .ok());
  ASSERT_TRUE(RegisterProcessCollector(registry).ok());
  ASSERT_TRUE(RegisterBuildInfo(registry, "0.1.0", "abc1234").ok());

  const std::string exposition = registry.Render();
  for (const char* name :
       {"process_cpu_seconds_total", "process_open_fds", "lstmserve_build_info",
        "lstmserve_queue_wait_seconds_bucket", "NaN", "+Inf", "-Inf"}) {
    EXPECT_NE(exposition.find(name), std::string::npos) << name;
  }
  const Verdict verdict = Check(exposition);
  EXPECT_EQ(verdict.exit_code, 0) << verdict.output << "\n" << exposition;
  EXPECT_EQ(verdict.output, "") << exposition;
}

}  // namespace
}  // namespace lstmserve::metrics
