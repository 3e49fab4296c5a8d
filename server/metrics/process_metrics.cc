#include "server/metrics/process_metrics.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "server/metrics/logger.h"

namespace lstmserve::metrics {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status Unparsable(const std::string& path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(path, ": ", what));
}

// self/stat: "pid (comm) state ppid ...", where comm may hold spaces and
// parentheses, so fields are counted from the last ')'. Field numbers are
// those of proc(5).
absl::Status ParseSelfStat(const std::string& path, absl::string_view text,
                           ProcessStats& out, uint64_t& start_ticks) {
  const size_t close = text.rfind(')');
  if (close == absl::string_view::npos) {
    return Unparsable(path, "no \")\" after the command name");
  }
  const std::vector<absl::string_view> fields = absl::StrSplit(
      text.substr(close + 1), absl::ByAnyChar(" \n"), absl::SkipEmpty());
  // fields[0] is field 3 (state).
  auto field = [&](int number, uint64_t& value) {
    const size_t i = static_cast<size_t>(number - 3);
    return i < fields.size() && absl::SimpleAtoi(fields[i], &value);
  };
  uint64_t utime, stime, vsize, rss;
  if (!field(14, utime) || !field(15, stime) || !field(22, start_ticks) ||
      !field(23, vsize) || !field(24, rss)) {
    return Unparsable(path,
                      "expected numbers in fields 14, 15, 22, 23 and 24 "
                      "(utime, stime, starttime, vsize, rss)");
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  out.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  out.virtual_memory_bytes = static_cast<double>(vsize);
  out.resident_memory_bytes = static_cast<double>(rss) * page;
  return absl::OkStatus();
}

// stat: the line "btime <seconds since the epoch>".
absl::StatusOr<uint64_t> ParseBootTime(const std::string& path,
                                       absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      uint64_t btime;
      if (absl::SimpleAtoi(line, &btime)) return btime;
      break;
    }
  }
  return Unparsable(path, "expected a line \"btime <seconds>\"");
}

// self/limits: "Max open files   <soft>   <hard>   files".
absl::StatusOr<int64_t> ParseMaxFds(const std::string& path,
                                    absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "Max open files")) continue;
    const std::vector<absl::string_view> columns =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t soft;
    if (!columns.empty() && columns[0] == "unlimited") return -1;
    if (!columns.empty() && absl::SimpleAtoi(columns[0], &soft)) return soft;
    break;
  }
  return Unparsable(path,
                    "expected a line \"Max open files <soft> <hard> files\"");
}

absl::StatusOr<int64_t> CountOpenFds(const std::string& path) {
  std::error_code error;
  std::filesystem::directory_iterator it(path, error);
  if (error) {
    return absl::NotFoundError(
        absl::StrCat("cannot list ", path, ": ", error.message()));
  }
  int64_t n = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) break;
    ++n;
  }
  if (error) {
    return absl::NotFoundError(
        absl::StrCat("cannot list ", path, ": ", error.message()));
  }
  return n;
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc_root) {
  ProcessStats stats;
  const std::string stat_path = proc_root + "/self/stat";
  absl::StatusOr<std::string> stat = ReadFile(stat_path);
  if (!stat.ok()) return stat.status();
  uint64_t start_ticks = 0;
  if (absl::Status s = ParseSelfStat(stat_path, *stat, stats, start_ticks);
      !s.ok()) {
    return s;
  }

  const std::string boot_path = proc_root + "/stat";
  absl::StatusOr<std::string> boot = ReadFile(boot_path);
  if (!boot.ok()) return boot.status();
  absl::StatusOr<uint64_t> btime = ParseBootTime(boot_path, *boot);
  if (!btime.ok()) return btime.status();
  stats.start_time_seconds = static_cast<double>(*btime) +
                             static_cast<double>(start_ticks) /
                                 static_cast<double>(sysconf(_SC_CLK_TCK));

  const std::string limits_path = proc_root + "/self/limits";
  absl::StatusOr<std::string> limits = ReadFile(limits_path);
  if (!limits.ok()) return limits.status();
  absl::StatusOr<int64_t> max_fds = ParseMaxFds(limits_path, *limits);
  if (!max_fds.ok()) return max_fds.status();
  stats.max_fds = *max_fds;

  absl::StatusOr<int64_t> open_fds = CountOpenFds(proc_root + "/self/fd");
  if (!open_fds.ok()) return open_fds.status();
  stats.open_fds = *open_fds;
  return stats;
}

absl::Status RegisterProcessCollector(Registry& registry,
                                      std::string proc_root) {
  auto gauge = [](std::string name, std::string help) {
    return FamilyDesc(std::move(name), MetricType::kGauge, std::move(help));
  };
  std::vector<FamilyDesc> families = {
      FamilyDesc("process_cpu_seconds_total", MetricType::kCounter,
                 "Total user and system CPU time spent in seconds."),
      gauge("process_resident_memory_bytes", "Resident memory size in bytes."),
      gauge("process_virtual_memory_bytes", "Virtual memory size in bytes."),
      gauge("process_start_time_seconds",
            "Start time of the process since unix epoch in seconds."),
      gauge("process_open_fds", "Number of open file descriptors."),
      gauge("process_max_fds", "Maximum number of open file descriptors."),
  };
  return registry.AddCollector(std::move(families), [proc_root =
                                                         std::move(proc_root)](
                                                        SampleSink& sink) {
    absl::StatusOr<ProcessStats> stats = ReadProcessStats(proc_root);
    if (!stats.ok()) {
      Logger()->warn("process metrics left out of this scrape: {}",
                     std::string(stats.status().message()));
      return;
    }
    // The families are declared above, so these calls cannot fail.
    sink.SetCounter("process_cpu_seconds_total", {}, stats->cpu_seconds)
        .IgnoreError();
    sink.SetGauge("process_resident_memory_bytes", {},
                  stats->resident_memory_bytes)
        .IgnoreError();
    sink.SetGauge("process_virtual_memory_bytes", {},
                  stats->virtual_memory_bytes)
        .IgnoreError();
    sink.SetGauge("process_start_time_seconds", {}, stats->start_time_seconds)
        .IgnoreError();
    sink.SetGauge("process_open_fds", {}, static_cast<double>(stats->open_fds))
        .IgnoreError();
    if (stats->max_fds >= 0) {
      sink.SetGauge("process_max_fds", {}, static_cast<double>(stats->max_fds))
          .IgnoreError();
    }
  });
}

absl::Status RegisterBuildInfo(Registry& registry, std::string version,
                               std::string commit) {
  absl::StatusOr<GaugeFamily*> info = registry.AddGauge(
      "lstmserve_build_info",
      "The version and git commit lstm-server was built from; always 1.",
      {"version", "commit"});
  if (!info.ok()) return info.status();
  (*info)->WithLabels({version, commit}).Set(1);
  return absl::OkStatus();
}

}  // namespace lstmserve::metrics
