#include "server/config/print_config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "server/config/model_tables.h"
#include "server/config/option_table.h"

namespace lstmserve::config {

std::string FormatToml(const ServerConfig& config) {
  std::string text =
      "# lstm-server configuration (lstm-server --print-config); read it "
      "back with\n# lstm-server --config FILE. Keys: docs/OPERATIONS.md.\n";
  for (const Option& option : OptionTable()) {
    if (!(option.sources & kFile)) continue;
    absl::StrAppend(&text, option.key, " = ", option.to_toml(config));
    if (!option.unit.empty()) absl::StrAppend(&text, "  # ", option.unit);
    text += '\n';
  }
  text += FormatModelTables(config.server.models);
  return text;
}

std::string OptionsMarkdown() {
  const ServerConfig defaults;
  auto cell = [](const std::string& text) {
    return absl::StrReplaceAll(text, {{"|", "\\|"}});
  };
  std::string text =
      "| key | flag | environment | type | default | meaning |\n"
      "|---|---|---|---|---|---|\n";
  for (const Option& option : OptionTable()) {
    std::string type = option.type;
    if (!option.unit.empty()) absl::StrAppend(&type, ", ", option.unit);
    if (!option.accepted.empty()) {
      absl::StrAppend(&type, ": ", option.accepted);
    }
    const bool in_file = option.sources & kFile;
    const std::string default_value =
        in_file ? option.to_toml(defaults) : option.to_text(defaults);
    absl::StrAppend(
        &text, "| ", in_file ? absl::StrCat("`", option.key, "`") : "—", " | `",
        option.Flag(), "` | ",
        option.sources & kEnv ? absl::StrCat("`", option.EnvVar(), "`") : "—",
        " | ", cell(type), " | ",
        default_value.empty() ? "—" : absl::StrCat("`", default_value, "`"),
        " | ", cell(option.help), " |\n");
  }
  return text;
}

}  // namespace lstmserve::config
