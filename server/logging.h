// lstm-server's logs: one named spdlog logger per component ("server",
// "sessions", "store", "reload", "metrics", "access"), all writing to
// stderr in one format (text, or one JSON object per line), and the access
// log (one line per answered request) to its own file or stdout.
//
// Never logged: tensor contents, tokens. Client strings (session ids) are
// quoted and cut (server/core/validation.h Quote) in text lines, and
// escaped in JSON.
//
// Thread-safety: Logger() and the loggers are thread-safe;
// ConfigureLogging is called once, at start, before the server runs.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "server/service.h"
#include "spdlog/spdlog.h"

namespace lstmserve::server {

enum class LogFormat { kText, kJson };

struct LogOptions {
  spdlog::level::level_enum level = spdlog::level::info;
  LogFormat format = LogFormat::kText;
  // "off" (or empty): no access log; "-": stdout; else a file, appended to.
  std::string access_log = "off";
};

// Sets the level and format of every component logger (made now, so that
// later ones inherit them) and opens the access log. INVALID_ARGUMENT if
// the access log file cannot be opened.
absl::Status ConfigureLogging(const LogOptions& options);

// The logger of a component, made on first use like the default logger.
std::shared_ptr<spdlog::logger> Logger(const std::string& component);

// The access log, or null when it is off.
std::shared_ptr<spdlog::logger> AccessLogger();

// One access-log line for `record`, in the configured format.
std::string AccessLine(const RequestRecord& record, LogFormat format);
LogFormat ConfiguredLogFormat();

}  // namespace lstmserve::server
