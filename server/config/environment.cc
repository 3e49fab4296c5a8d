#include "server/config/environment.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/config/option_table.h"

extern char** environ;

namespace lstmserve::config {

Environment ProcessEnvironment() {
  Environment env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const size_t equals = text.find('=');
    if (equals == std::string::npos) continue;
    std::string name = text.substr(0, equals);
    if (absl::StartsWith(name, "LSTMSERVE_")) {
      env[std::move(name)] = text.substr(equals + 1);
    }
  }
  return env;
}

absl::Status ApplyEnvironment(const Environment& env, ServerConfig& config) {
  for (const Option& option : OptionTable()) {
    if (!(option.sources & kEnv)) continue;
    const std::string name = option.EnvVar();
    const auto it = env.find(name);
    if (it == env.end()) continue;
    if (absl::Status status = option.set_from_text(it->second, config);
        !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment variable ", name, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace lstmserve::config
