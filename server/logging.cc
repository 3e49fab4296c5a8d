#include "server/logging.h"

#include <atomic>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/core/validation.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace lstmserve::server {
namespace {

constexpr const char* kComponents[] = {"server", "sessions", "store", "reload",
                                       "metrics"};
constexpr const char* kTextPattern = "[%Y-%m-%d %H:%M:%S.%e] [%l] [%n] %v";

std::atomic<LogFormat> g_format{LogFormat::kText};

// One JSON object a line: time (UTC, ISO 8601), level, logger, message.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    nlohmann::json line;
    line["time"] =
        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromChrono(msg.time),
                         absl::UTCTimeZone());
    line["level"] =
        std::string(spdlog::level::to_string_view(msg.level).data(),
                    spdlog::level::to_string_view(msg.level).size());
    line["logger"] =
        std::string(msg.logger_name.data(), msg.logger_name.size());
    line["message"] = std::string(msg.payload.data(), msg.payload.size());
    // Invalid UTF-8 from a client string is replaced, never an exception.
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

std::unique_ptr<spdlog::formatter> MakeFormatter(LogFormat format) {
  if (format == LogFormat::kJson) return std::make_unique<JsonFormatter>();
  return std::make_unique<spdlog::pattern_formatter>(kTextPattern);
}

}  // namespace

std::shared_ptr<spdlog::logger> Logger(const std::string& component) {
  if (std::shared_ptr<spdlog::logger> l = spdlog::get(component)) return l;
  std::shared_ptr<spdlog::logger> made =
      spdlog::default_logger()->clone(component);
  try {
    spdlog::register_logger(made);
  } catch (const spdlog::spdlog_ex&) {
    // Another thread registered it first.
    if (std::shared_ptr<spdlog::logger> l = spdlog::get(component)) return l;
  }
  return made;
}

std::shared_ptr<spdlog::logger> AccessLogger() { return spdlog::get("access"); }

LogFormat ConfiguredLogFormat() { return g_format.load(); }

absl::Status ConfigureLogging(const LogOptions& options) {
  g_format.store(options.format);
  // Every component to stderr (stdout is the access log's, with "-"); the
  // "server" logger is the default one, which code without a component of
  // its own (and libraries) logs through.
  auto stderr_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  for (const char* component : kComponents) {
    spdlog::drop(component);
    auto l = std::make_shared<spdlog::logger>(component, stderr_sink);
    l->set_formatter(MakeFormatter(options.format));
    l->set_level(options.level);
    spdlog::register_logger(l);
  }
  spdlog::set_default_logger(spdlog::get("server"));
  spdlog::drop("access");
  if (options.access_log.empty() || options.access_log == "off") {
    return absl::OkStatus();
  }
  std::shared_ptr<spdlog::logger> access;
  try {
    if (options.access_log == "-") {
      access = std::make_shared<spdlog::logger>(
          "access", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    } else {
      access = std::make_shared<spdlog::logger>(
          "access", std::make_shared<spdlog::sinks::basic_file_sink_mt>(
                        options.access_log, /*truncate=*/false));
    }
  } catch (const spdlog::spdlog_ex& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--access-log ", options.access_log, " cannot be opened: ", e.what()));
  }
  // Each line is complete in itself (AccessLine): no prefix.
  access->set_formatter(std::make_unique<spdlog::pattern_formatter>("%v"));
  access->set_level(spdlog::level::info);
  access->flush_on(spdlog::level::info);
  spdlog::register_logger(access);
  return absl::OkStatus();
}

std::string AccessLine(const RequestRecord& r, LogFormat format) {
  const std::string time = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(),
                                            absl::UTCTimeZone());
  const std::string code = absl::StatusCodeToString(r.code);
  const double ms = absl::ToDoubleMilliseconds(r.duration);
  if (format == LogFormat::kJson) {
    nlohmann::json line;
    line["time"] = time;
    line["method"] = r.method;
    line["model"] = r.model;
    line["session"] = r.session.substr(0, kMaxSessionIdChars);
    line["steps"] = r.steps;
    line["code"] = code;
    line["duration_ms"] = ms;
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return absl::StrFormat(
      "%s method=%s model=%s session=%s steps=%d code=%s "
      "duration_ms=%.3f",
      time, r.method, r.model.empty() ? "-" : r.model,
      r.session.empty() ? "-" : Quote(r.session), r.steps, code, ms);
}

}  // namespace lstmserve::server
