#include "server/config/command_line.h"

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "server/config/option_table.h"
#include "server/config/toml_file.h"

namespace lstmserve::config {

CommandLine::CommandLine(CLI::App& app) {
  const ServerConfig defaults;
  for (const Option& option : OptionTable()) {
    if (!(option.sources & kFlag)) continue;
    Flag& flag = flags_.emplace_back();
    flag.option = &option;
    if (option.is_switch) {
      flag.cli = app.add_flag(option.Flag(), flag.on, option.help);
      continue;
    }
    flag.cli = app.add_option(option.Flag(), flag.text, option.help)
                   ->type_name(option.cli_type);
    const std::string default_text = option.to_text(defaults);
    if (!default_text.empty()) flag.cli->default_str(default_text);
    const Option* checked = &option;
    flag.cli->check(CLI::Validator(
        [checked](std::string& text) -> std::string {
          ServerConfig scratch;
          const absl::Status status = checked->set_from_text(text, scratch);
          return status.ok() ? "" : std::string(status.message());
        },
        option.cli_check));
  }
  app.footer(
      "Each option can also be set in the config file (--config FILE, "
      "TOML: the option's name with _ for -, e.g. max_sessions = 100) or in "
      "the environment (LSTMSERVE_ and the name in capitals, e.g. "
      "LSTMSERVE_MAX_SESSIONS=100). A flag overrides the environment, which "
      "overrides the file, which overrides the defaults shown. Durations are "
      "in the unit each option names. --help-config lists every option; "
      "docs/OPERATIONS.md explains them.");
}

const CommandLine::Flag* CommandLine::Find(const std::string& key) const {
  for (const Flag& flag : flags_) {
    if (flag.option->key == key) return &flag;
  }
  return nullptr;
}

absl::StatusOr<ServerConfig> CommandLine::Resolve(
    const Environment& env) const {
  ServerConfig config;
  std::string file;
  const Flag* config_flag = Find("config");
  if (config_flag != nullptr && config_flag->cli->count() > 0) {
    file = config_flag->text;
  } else if (const auto it = env.find(FindOption("config")->EnvVar());
             it != env.end()) {
    file = it->second;
  }
  if (!file.empty()) {
    if (absl::Status status = ApplyTomlFile(file, config); !status.ok()) {
      return status;
    }
  }
  if (absl::Status status = ApplyEnvironment(env, config); !status.ok()) {
    return status;
  }
  for (const Flag& flag : flags_) {
    if (flag.cli->count() == 0) continue;
    const std::string text =
        flag.option->is_switch ? (flag.on ? "true" : "false") : flag.text;
    if (absl::Status status = flag.option->set_from_text(text, config);
        !status.ok()) {
      // Not reached: the validator added above has checked the value.
      return absl::InvalidArgumentError(
          absl::StrCat(flag.option->Flag(), ": ", status.message()));
    }
  }
  config.config_file = file;
  return config;
}

}  // namespace lstmserve::config
