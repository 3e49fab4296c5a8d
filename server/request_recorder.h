// What the server does with every answered request: counts it in the
// metrics and, when --access-log is set, writes its access-log line.
//
// Thread-safety: thread-safe (RequestObserver).
#pragma once

#include <memory>

#include "server/logging.h"
#include "server/server_metrics.h"
#include "server/service.h"

namespace lstmserve::server {

class RequestRecorder final : public RequestObserver {
 public:
  // `metrics` (may be null) must outlive the recorder.
  explicit RequestRecorder(ServerMetrics* metrics)
      : metrics_(metrics),
        access_(AccessLogger()),
        format_(ConfiguredLogFormat()) {}

  void Record(const RequestRecord& record) override {
    if (metrics_ != nullptr) {
      metrics_->RecordRequest(record.method, record.model, record.code,
                              record.duration);
    }
    if (access_) access_->info(AccessLine(record, format_));
  }

 private:
  ServerMetrics* const metrics_;
  const std::shared_ptr<spdlog::logger> access_;
  const LogFormat format_;
};

}  // namespace lstmserve::server
