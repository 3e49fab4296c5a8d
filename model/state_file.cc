#include "model/state_file.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace lstmserve::model {
namespace {

constexpr char kFormat[] = "lstmserve.state/1";
constexpr uint64_t kMaxStateFileBytes = 1ull << 30;

}  // namespace

absl::Status WriteStateFile(const std::string& path, const ModelConfig& config,
                            const SavedState& saved) {
  nlohmann::json j;
  j["format"] = kFormat;
  j["cell"] = std::string(CellTypeName(config.cell));
  j["input_size"] = config.input_size;
  j["hidden_size"] = config.hidden_size;
  j["num_layers"] = config.num_layers;
  j["proj_size"] = config.proj_size;
  j["steps"] = saved.steps;
  j["state"] = saved.state;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::PermissionDeniedError(
          absl::StrCat(path, ": cannot open for writing"));
    }
    out << j.dump() << '\n';
    out.close();
    if (!out) {
      return absl::DataLossError(absl::StrCat(path, ": write failed"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot replace the file"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SavedState> ReadStateFile(const std::string& path,
                                         const ModelConfig& config,
                                         int state_size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open state file"));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  if (text.size() > kMaxStateFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": state file is larger than 1 GiB"));
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": not a JSON object; expected a state file "
                     "written by --state-out"));
  }
  auto get_string = [&](const char* key) -> std::string {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
  };
  auto get_int = [&](const char* key) -> int64_t {
    auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : -1;
  };
  if (get_string("format") != kFormat) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": \"format\" is not \"", kFormat, "\"; not a state file"));
  }
  const std::string expected_cell(CellTypeName(config.cell));
  if (get_string("cell") != expected_cell ||
      get_int("input_size") != config.input_size ||
      get_int("hidden_size") != config.hidden_size ||
      get_int("num_layers") != config.num_layers ||
      get_int("proj_size") != config.proj_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": state was saved by a ", get_string("cell"),
        " model with "
        "input_size ",
        get_int("input_size"), ", hidden_size ", get_int("hidden_size"),
        ", num_layers ", get_int("num_layers"), ", proj_size ",
        get_int("proj_size"), "; this model is ", expected_cell, " with ",
        config.input_size, ", ", config.hidden_size, ", ", config.num_layers,
        ", ", config.proj_size));
  }
  SavedState saved;
  saved.steps = get_int("steps");
  if (saved.steps < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": \"steps\" must be a non-negative integer"));
  }
  auto it = j.find("state");
  if (it == j.end() || !it->is_array() ||
      it->size() != static_cast<size_t>(state_size)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": \"state\" must be an array of ", state_size, " numbers"));
  }
  saved.state.reserve(state_size);
  for (const auto& v : *it) {
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": \"state\" holds a value that is not a finite number"));
    }
    saved.state.push_back(v.get<float>());
  }
  return saved;
}

}  // namespace lstmserve::model
