#include "model/convert.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/repository.h"
#include "model/status_macros.h"

namespace lstmserve::model {
namespace {

bool IsWeightMatrix(const std::string& name) {
  return !absl::EndsWith(name, ".scale") &&
         (absl::StartsWith(name, "rnn.weight_ih_l") ||
          absl::StartsWith(name, "rnn.weight_hh_l") ||
          absl::StartsWith(name, "rnn.weight_hr_l"));
}

}  // namespace

std::map<std::string, Tensor> ConvertTensors(
    const std::map<std::string, Tensor>& tensors, WeightFormat format) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors) {
    if (absl::EndsWith(name, ".scale")) continue;  // goes with its matrix
    Tensor c;
    c.shape = t.shape;
    c.stored_dtype = DType::kF32;
    c.values = t.values;
    const auto scale = tensors.find(name + ".scale");
    const bool int8_source = t.stored_dtype == DType::kI8;
    if (!IsWeightMatrix(name) || t.shape.size() != 2) {
      out.emplace(name, std::move(c));
      continue;
    }
    const int rows = static_cast<int>(t.shape[0]);
    const int cols = static_cast<int>(t.shape[1]);
    if (int8_source && format == WeightFormat::kInt8) {
      c.stored_dtype = DType::kI8;
      out.emplace(name + ".scale", scale->second);
      out.emplace(name, std::move(c));
      continue;
    }
    if (int8_source) {  // dequantize: w = q * scale
      for (int r = 0; r < rows; ++r) {
        for (int k = 0; k < cols; ++k) {
          c.values[static_cast<size_t>(r) * cols + k] *=
              scale->second.values[r];
        }
      }
    }
    switch (format) {
      case WeightFormat::kF32:
        break;
      case WeightFormat::kBF16:
        c.stored_dtype = DType::kBF16;  // rounded by the serializer
        break;
      case WeightFormat::kInt8: {
        QuantizedRows q = QuantizeRows(c.values.data(), rows, cols, cols);
        c.stored_dtype = DType::kI8;
        c.values.assign(q.q.begin(), q.q.end());
        Tensor s;
        s.stored_dtype = DType::kF32;
        s.shape = {rows};
        s.values = std::move(q.scales);
        out.emplace(name + ".scale", std::move(s));
        break;
      }
    }
    out.emplace(name, std::move(c));
  }
  return out;
}

absl::Status ConvertVersionDir(const std::string& version_dir,
                               WeightFormat format,
                               const std::string& out_dir) {
  const std::string weights_in = version_dir + "/model.safetensors";
  ASSIGN_OR_RETURN(ModelConfig config,
                   ReadModelConfig(version_dir + "/config.json"));
  ASSIGN_OR_RETURN(auto tensors, ReadSafetensors(weights_in));
  // The engine's own checks on the source, before anything is written.
  RETURN_IF_ERROR(Model::Create(config, tensors, weights_in).status());
  config.weights = format;
  const std::map<std::string, Tensor> converted =
      ConvertTensors(tensors, format);

  RETURN_IF_ERROR(WriteVersionDir(out_dir, ModelConfigToJson(config),
                                  SerializeSafetensorsAsStored(converted)));
  return Model::Load(out_dir).status();
}

}  // namespace lstmserve::model
