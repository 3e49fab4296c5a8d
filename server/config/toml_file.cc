#include "server/config/toml_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/config/model_tables.h"
#include "server/config/option_table.h"
#include "server/config/toml_text.h"

namespace lstmserve::config {
namespace {

constexpr char kModels[] = "models";

// The keys a config file may hold at the top level.
std::vector<std::string> FileKeys() {
  std::vector<std::string> keys;
  for (const Option& option : OptionTable()) {
    if (option.sources & kFile) keys.push_back(option.key);
  }
  keys.push_back(kModels);
  return keys;
}

}  // namespace

absl::Status ApplyTomlText(absl::string_view text, const std::string& file,
                           ServerConfig& config) {
  toml::table root;
  try {
    root = toml::parse(std::string_view(text.data(), text.size()), file);
  } catch (const toml::parse_error& error) {
    const toml::source_position& at = error.source().begin;
    return absl::InvalidArgumentError(
        absl::StrCat(file, ":", at.line, ":", at.column, ": ",
                     std::string(error.description())));
  }
  for (const auto& [key, value] : InFileOrder(root)) {
    const std::string name(key->str());
    if (name == kModels) {
      if (absl::Status status = ApplyModelTables(*value, config.server.models);
          !status.ok()) {
        return status;
      }
      continue;
    }
    const Option* option = FindOption(name);
    if (option == nullptr || !(option->sources & kFile)) {
      return UnknownKeyError(*key, "", FileKeys());
    }
    if (absl::Status status = option->set_from_toml(*value, name, config);
        !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyTomlFile(const std::string& path, ServerConfig& config) {
  const auto cannot_read = [&path](int error) {
    return absl::NotFoundError(absl::StrCat("cannot read config file \"", path,
                                            "\": ", std::strerror(error)));
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return cannot_read(errno);
  std::string text;
  char buffer[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    text.append(buffer, n);
  }
  const int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error != 0) return cannot_read(error);
  return ApplyTomlText(text, path, config);
}

}  // namespace lstmserve::config
