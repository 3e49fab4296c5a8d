// config.json text -> ParseModelConfig; an accepted config must read back
// the same from ModelConfigToJson, and, when small, build a model with
// random weights that runs a step (Model::Create's checks on the config).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "model/model_config.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lstmserve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<model::ModelConfig> config =
      model::ParseModelConfig(text, "config.json");
  if (!config.ok()) return 0;

  const std::string json = model::ModelConfigToJson(*config);
  absl::StatusOr<model::ModelConfig> again =
      model::ParseModelConfig(json, "written config.json");
  fuzz::Check(again.ok(), "a written config parses");
  fuzz::Check(model::ModelConfigToJson(*again) == json,
              "a written config reads back the same");

  // Weights for it only when they are small: the limits allow configs of
  // gigabytes, which are not what this target is for.
  const int64_t width = int64_t{config->input_size} + config->hidden_size;
  if (int64_t{config->num_layers} * 4 * config->hidden_size * width > 4096 ||
      config->output_size() > 256) {
    return 0;
  }
  auto m = model::Model::Create(*config, model::RandomTensors(*config, 1),
                                "config.json");
  if (!m.ok()) return 0;
  const model::Model& net = **m;
  std::vector<float> inputs(net.input_size(), 0.5f);
  std::vector<float> state(net.state_size(), 0.0f);
  std::vector<float> outputs(net.output_size());
  model::Workspace workspace;
  fuzz::Check(
      net.RunChunk(inputs.data(), 1, state.data(), outputs.data(), workspace)
          .ok(),
      "a built model runs a step");
  return 0;
}
