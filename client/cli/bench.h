// `lstm-client bench`: a load generator in the spirit of Triton's
// perf_analyzer. N concurrent sessions each send chunks of T steps, either as
// fast as their responses return (closed loop) or at a fixed rate per
// session (open loop), over one stream per session or unary calls, for a
// fixed time. Reports throughput, latency percentiles, completed steps per
// session (min, median, max) and the sessions that completed nothing, errors
// by status code (also those that arrive after the window), the client's
// thread count, and the server's batch sizes over the run (from its own
// GetServerStats; "unknown", with a warning, when that call fails). Stream
// mode multiplexes every session over the client's shared stream with no
// thread per session; unary mode runs a thread per session (at most 1000).
//
// Thread-safety: one call at a time per Client is not required; the command
// uses its Client from several threads, which Client allows.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "lstmserve/client.h"

namespace lstmserve::client::cli {

struct BenchOptions {
  std::string model{};
  int64_t version = 0;
  int sessions = 1;        // concurrent sessions
  int chunk = 1;           // steps per request
  double rate = 0;         // requests/s per session; 0: as fast as answered
  double duration_s = 10;  // measured time
  std::string mode = "stream";  // "stream" or "unary"
  // Stream mode: sessions are created by their first stream message
  // (create_model) instead of CreateSession.
  bool create_on_stream = false;
  // Seconds unanswered chunks get after the window before they are
  // cancelled (closing is bounded).
  double drain_s = 2;
  bool json = false;
};

// Runs the load and prints the report to `out` (one JSON object with
// --json); progress lines go to `progress` for runs longer than 3 s. Fails
// only if the run cannot start (unknown model, no server); request errors
// during the run are counted and reported, not returned.
absl::Status BenchCommand(Client& client, const BenchOptions& options,
                          std::ostream& out, std::ostream& progress);

}  // namespace lstmserve::client::cli
