#include "server/config/model_tables.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/config/toml_text.h"
#include "server/config/version_policy_text.h"

namespace lstmserve::config {
namespace {

using server::ModelOptions;
using server::WeightFormat;

constexpr std::pair<const char*, WeightFormat> kWeightFormats[] = {
    {"f32", WeightFormat::kF32},
    {"bf16", WeightFormat::kBf16},
    {"int8", WeightFormat::kInt8},
};

bool IsModelName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string::npos;
}

absl::Status ApplyModelTable(const toml::table& table, const std::string& path,
                             ModelOptions& model) {
  for (const auto& [key, value] : InFileOrder(table)) {
    if (key->str() == "versions") {
      absl::StatusOr<server::VersionPolicy> policy =
          VersionPolicyFromToml(*value, absl::StrCat(path, ".versions"));
      if (!policy.ok()) return policy.status();
      model.versions = *std::move(policy);
    } else if (key->str() == "weights") {
      const std::optional<std::string> name = value->value_exact<std::string>();
      bool found = false;
      for (const auto& [format_name, format] : kWeightFormats) {
        if (name.has_value() && *name == format_name) {
          model.weights = format;
          found = true;
        }
      }
      if (!found) {
        return ExpectedError(*value, absl::StrCat(path, ".weights"),
                             R"(one of "f32", "bf16", "int8")");
      }
    } else {
      return UnknownKeyError(*key, path, {"versions", "weights"});
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyModelTables(const toml::node& value,
                              std::map<std::string, ModelOptions>& models) {
  const toml::table* tables = value.as_table();
  if (tables == nullptr) {
    return ExpectedError(value, "models",
                         "a table of model tables ([models.NAME])");
  }
  for (const auto& [key, model_value] : InFileOrder(*tables)) {
    const std::string name(key->str());
    const std::string path = absl::StrCat("models.", FormatTomlKey(name));
    if (!IsModelName(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          Location(key->source()), ": model name ", QuoteTomlString(name),
          " in [models] is not valid; expected a model directory name (not "
          "empty, not \".\" or \"..\", no \"/\")"));
    }
    const toml::table* table = model_value->as_table();
    if (table == nullptr) {
      return ExpectedError(*model_value, path,
                           "a table of the model's settings (versions, "
                           "weights)");
    }
    ModelOptions model;
    if (absl::Status status = ApplyModelTable(*table, path, model);
        !status.ok()) {
      return status;
    }
    models[name] = std::move(model);
  }
  return absl::OkStatus();
}

std::string WeightFormatName(WeightFormat format) {
  for (const auto& [name, value] : kWeightFormats) {
    if (value == format) return name;
  }
  return "";
}

std::string FormatModelTables(
    const std::map<std::string, ModelOptions>& models) {
  std::string text;
  for (const auto& [name, model] : models) {
    absl::StrAppend(&text, "\n[models.", FormatTomlKey(name), "]\n");
    if (model.versions.has_value()) {
      absl::StrAppend(
          &text, "versions = ", VersionPolicyToToml(*model.versions), "\n");
    }
    if (model.weights.has_value()) {
      absl::StrAppend(&text, "weights = ",
                      QuoteTomlString(WeightFormatName(*model.weights)), "\n");
    }
  }
  return text;
}

}  // namespace lstmserve::config
