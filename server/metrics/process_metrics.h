// The standard process metrics (process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds, process_max_fds), read from
// Linux's /proc at scrape time, and the build information gauge
// lstmserve_build_info{version,commit} 1.
//
// Thread-safety: thread-safe (pure functions over files, and registration
// into a thread-safe Registry).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/metrics/metrics.h"

namespace lstmserve::metrics {

struct ProcessStats {
  double cpu_seconds = 0;            // user + system
  double resident_memory_bytes = 0;  // RSS
  double virtual_memory_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  int64_t open_fds = 0;
  int64_t max_fds = -1;  // the soft RLIMIT_NOFILE; -1 when unlimited
};

// Reads this process's stats from a procfs at `proc_root`: self/stat,
// self/fd/, self/limits and stat (for the boot time). Errors name the file
// and what was wrong with it (NOT_FOUND, DATA_LOSS for unparsable text).
absl::StatusOr<ProcessStats> ReadProcessStats(
    const std::string& proc_root = "/proc");

// Registers a collector that reads ReadProcessStats(proc_root) on each
// scrape; a failed read is logged at warn on the "metrics" logger and the
// process families are left out of that scrape. ALREADY_EXISTS if a
// registry has them already.
absl::Status RegisterProcessCollector(Registry& registry,
                                      std::string proc_root = "/proc");

// Registers the gauge lstmserve_build_info{version="...",commit="..."} 1.
absl::Status RegisterBuildInfo(Registry& registry, std::string version,
                               std::string commit);

}  // namespace lstmserve::metrics
