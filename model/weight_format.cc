#include "model/weight_format.h"

namespace lstmserve::model {

std::string_view WeightFormatName(WeightFormat format) {
  switch (format) {
    case WeightFormat::kF32:
      return "f32";
    case WeightFormat::kBF16:
      return "bf16";
    case WeightFormat::kInt8:
      return "int8";
  }
  return "unknown";
}

std::optional<WeightFormat> ParseWeightFormat(std::string_view name) {
  for (WeightFormat f :
       {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kInt8}) {
    if (WeightFormatName(f) == name) return f;
  }
  return std::nullopt;
}

int WeightFormatBytes(WeightFormat format) {
  switch (format) {
    case WeightFormat::kF32:
      return 4;
    case WeightFormat::kBF16:
      return 2;
    case WeightFormat::kInt8:
      return 1;
  }
  return 4;
}

}  // namespace lstmserve::model
