// lstm-server's Prometheus metrics (every name is listed, with its labels
// and unit, in docs/OPERATIONS.md). Request counts and latencies are
// recorded by the service as calls finish; everything the core already
// counts (steps, batches, queue waits, sessions, checkpoints) is read from
// it at scrape time, so the hot path pays nothing for them.
//
// Thread-safety: thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/session_manager.h"
#include "server/metrics/metrics.h"

namespace lstmserve::server {

class ServerMetrics {
 public:
  // Registers every family; `core` must outlive the metrics.
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(
      SessionManager& core);

  metrics::Registry& registry() { return registry_; }

  // A unary call, or one stream message, answered with `code` after
  // `latency`. `model` is the model that served it, or "" when the call
  // named none that is served (client strings never become labels).
  void RecordRequest(absl::string_view method, absl::string_view model,
                     absl::StatusCode code, absl::Duration latency);

 private:
  explicit ServerMetrics(SessionManager& core) : core_(core) {}
  absl::Status RegisterCoreCollector();

  SessionManager& core_;
  metrics::Registry registry_;
  metrics::CounterFamily* requests_ = nullptr;
  metrics::HistogramFamily* latency_ = nullptr;
};

}  // namespace lstmserve::server
