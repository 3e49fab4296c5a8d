// How a model's weight matrices are stored and multiplied: float32, bfloat16
// or int8 with per-row scales (docs/MODEL_FORMAT.md, "Weight formats").
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <optional>
#include <string_view>

namespace lstmserve::model {

enum class WeightFormat {
  kF32,   // float32, as trained
  kBF16,  // bfloat16 (round to nearest even), float32 accumulation
  // int8, symmetric, one float32 scale per output row; activations quantized
  // per column on the fly; int32 accumulation, then scaled to float32
  kInt8,
};

// "f32", "bf16", "int8".
std::string_view WeightFormatName(WeightFormat format);
// The inverse of WeightFormatName; nullopt for any other text.
std::optional<WeightFormat> ParseWeightFormat(std::string_view name);
// Bytes one weight takes in the format: 4, 2, 1.
int WeightFormatBytes(WeightFormat format);

}  // namespace lstmserve::model
