#include "server/metrics/logger.h"

#include "spdlog/spdlog.h"

namespace lstmserve::metrics {

std::shared_ptr<spdlog::logger> Logger() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("metrics")) return existing;
    auto created = spdlog::default_logger()->clone("metrics");
    try {
      spdlog::register_logger(created);
    } catch (const spdlog::spdlog_ex&) {
      // Registered by another thread in between: use that one.
      if (auto existing = spdlog::get("metrics")) return existing;
    }
    return created;
  }();
  return logger;
}

}  // namespace lstmserve::metrics
