// Process metrics from a procfs: a made-up one with known numbers, then this
// process's real /proc; and the build information gauge.
#include "server/metrics/process_metrics.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace lstmserve::metrics {
namespace {

namespace fs = std::filesystem;

class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (fs::temp_directory_path() / "metrics_proc_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::create_directories(root_ / "self" / "fd");
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const fs::path& relative, const std::string& text) {
    std::ofstream(root_ / relative) << text;
  }
  // A self/stat line with the given values in proc(5)'s field numbers and
  // 0 elsewhere, after a command name full of spaces and parentheses.
  void WriteStat(uint64_t utime, uint64_t stime, uint64_t starttime,
                 uint64_t vsize, uint64_t rss) {
    std::vector<std::string> fields(52 - 2, "0");  // fields 3..52
    fields[0] = "S";
    fields[14 - 3] = std::to_string(utime);
    fields[15 - 3] = std::to_string(stime);
    fields[22 - 3] = std::to_string(starttime);
    fields[23 - 3] = std::to_string(vsize);
    fields[24 - 3] = std::to_string(rss);
    Write("self/stat",
          "4242 (lstm server (x) 1) " + absl::StrJoin(fields, " ") + "\n");
  }
  void WriteAll() {
    WriteStat(250, 50, 360000, 123456789, 2048);
    Write("stat", "cpu  1 2 3 4\nintr 5\nbtime 1700000000\nprocesses 9\n");
    Write("self/limits",
          "Limit                     Soft Limit           Hard Limit      "
          "     Units     \n"
          "Max cpu time              unlimited            unlimited       "
          "     seconds   \n"
          "Max open files            1024                 524288          "
          "     files     \n");
    for (const char* fd : {"0", "1", "2", "7"})
      Write(fs::path("self/fd") / fd, "");
  }

  fs::path root_;
};

TEST_F(FakeProc, ReadsEveryNumber) {
  WriteAll();
  absl::StatusOr<ProcessStats> stats = ReadProcessStats(root_.string());
  ASSERT_TRUE(stats.ok()) << stats.status();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  EXPECT_EQ(stats->cpu_seconds, 300 / ticks);
  EXPECT_EQ(stats->virtual_memory_bytes, 123456789);
  EXPECT_EQ(stats->resident_memory_bytes, 2048 * page);
  EXPECT_EQ(stats->start_time_seconds, 1700000000 + 360000 / ticks);
  EXPECT_EQ(stats->open_fds, 4);
  EXPECT_EQ(stats->max_fds, 1024);
}

TEST_F(FakeProc, UnlimitedOpenFiles) {
  WriteAll();
  Write("self/limits",
        "Max open files            unlimited            unlimited    files\n");
  absl::StatusOr<ProcessStats> stats = ReadProcessStats(root_.string());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->max_fds, -1);
}

TEST_F(FakeProc, MissingOrGarbledFilesAreNamed) {
  absl::StatusOr<ProcessStats> stats = ReadProcessStats(root_.string());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(stats.status().message().find("self/stat"), std::string::npos)
      << stats.status();

  WriteAll();
  Write("self/stat", "4242 (truncated) S 1 2 3\n");
  stats = ReadProcessStats(root_.string());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(stats.status().message().find("utime"), std::string::npos)
      << stats.status();

  WriteAll();
  Write("stat", "cpu 1 2 3\n");
  stats = ReadProcessStats(root_.string());
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(stats.status().message().find("btime"), std::string::npos)
      << stats.status();
}

TEST_F(FakeProc, CollectorRendersTheStandardFamilies) {
  WriteAll();
  Registry registry;
  ASSERT_TRUE(RegisterProcessCollector(registry, root_.string()).ok());
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  EXPECT_EQ(
      registry.Render(),
      "# HELP process_cpu_seconds_total Total user and system CPU time spent "
      "in seconds.\n"
      "# TYPE process_cpu_seconds_total counter\n"
      "process_cpu_seconds_total " +
          FormatDouble(300 / ticks) +
          "\n"
          "# HELP process_max_fds Maximum number of open file descriptors.\n"
          "# TYPE process_max_fds gauge\n"
          "process_max_fds 1024\n"
          "# HELP process_open_fds Number of open file descriptors.\n"
          "# TYPE process_open_fds gauge\n"
          "process_open_fds 4\n"
          "# HELP process_resident_memory_bytes Resident memory size in "
          "bytes.\n"
          "# TYPE process_resident_memory_bytes gauge\n"
          "process_resident_memory_bytes " +
          FormatDouble(2048 * page) +
          "\n"
          "# HELP process_start_time_seconds Start time of the process since "
          "unix epoch in seconds.\n"
          "# TYPE process_start_time_seconds gauge\n"
          "process_start_time_seconds " +
          FormatDouble(1700000000 + 360000 / ticks) +
          "\n"
          "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
          "# TYPE process_virtual_memory_bytes gauge\n"
          "process_virtual_memory_bytes 123456789\n");

  // A procfs that cannot be read leaves the families out of the scrape.
  fs::remove(root_ / "self" / "stat");
  EXPECT_EQ(registry.Render(), "");
  // Registered once per registry.
  EXPECT_EQ(RegisterProcessCollector(registry, root_.string()).code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(ProcessStats, ThisProcess) {
  absl::StatusOr<ProcessStats> before = ReadProcessStats();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_GT(before->resident_memory_bytes, 0);
  EXPECT_GE(before->virtual_memory_bytes, before->resident_memory_bytes);
  EXPECT_GE(before->cpu_seconds, 0);
  EXPECT_GT(before->start_time_seconds, 1.5e9);
  EXPECT_LE(before->start_time_seconds, static_cast<double>(time(nullptr)) + 1);
  rlimit limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur == RLIM_INFINITY) {
    EXPECT_EQ(before->max_fds, -1);
  } else {
    EXPECT_EQ(before->max_fds, static_cast<int64_t>(limit.rlim_cur));
  }

  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) fds.push_back(open("/dev/null", O_RDONLY));
  absl::StatusOr<ProcessStats> after = ReadProcessStats();
  for (int fd : fds) close(fd);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->open_fds, before->open_fds + 3);
}

TEST(BuildInfo, OneGaugeWithVersionAndCommit) {
  Registry registry;
  ASSERT_TRUE(RegisterBuildInfo(registry, "0.1.0", "fd4f852").ok());
  EXPECT_EQ(registry.Render(),
            "# HELP lstmserve_build_info The version and git commit "
            "lstm-server was built from; always 1.\n"
            "# TYPE lstmserve_build_info gauge\n"
            "lstmserve_build_info{version=\"0.1.0\",commit=\"fd4f852\"} 1\n");
  EXPECT_EQ(RegisterBuildInfo(registry, "0.1.0", "fd4f852").code(),
            absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace lstmserve::metrics
