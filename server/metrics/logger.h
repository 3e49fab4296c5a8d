// The "metrics" spdlog logger, shared by the registry and the HTTP endpoint.
//
// Thread-safety: thread-safe.
#pragma once

#include <memory>

#include "spdlog/logger.h"

namespace lstmserve::metrics {

// spdlog's registered "metrics" logger; created on first use as a clone of
// the default logger (same sinks and level) if nobody registered it before.
std::shared_ptr<spdlog::logger> Logger();

}  // namespace lstmserve::metrics
