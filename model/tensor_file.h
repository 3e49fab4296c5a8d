// Reader for the Hugging Face safetensors format.
//
// Layout: an unsigned 64-bit little-endian header length N, then N bytes of
// JSON mapping tensor names to {"dtype", "shape", "data_offsets": [begin,
// end]} (offsets relative to the end of the header), an optional
// "__metadata__" object of string values, then the raw little-endian data.
//
// The file is treated as hostile input: every inconsistency (truncated file,
// header length past the end of the file, bad JSON, unknown dtype, shape that
// does not match the byte count, offsets out of range or overlapping, gaps,
// absurd sizes) is reported as an absl::Status naming the file and the
// tensor, never a crash. F32, F16 and BF16 tensors are converted to float32;
// I8 tensors (quantized weights, whose per-row scales are separate F32
// tensors named "<name>.scale": see Model::Create) keep their integer values,
// as floats.
//
// Thread-safety: free functions with no shared state; safe to call
// concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace lstmserve::model {

enum class DType { kF32, kF16, kBF16, kI8 };

// "F32", "F16", "BF16", "I8".
std::string_view DTypeName(DType dtype);

// One tensor, converted to float32, row-major as stored.
struct Tensor {
  DType stored_dtype = DType::kF32;  // the dtype in the file
  std::vector<int64_t> shape;
  std::vector<float> values;  // product(shape) elements

  int64_t num_elements() const;
};

struct SafetensorsLimits {
  // The JSON header may not exceed this (the safetensors spec uses 100 MB).
  uint64_t max_header_bytes = 100ull << 20;
  // The whole file may not exceed this.
  uint64_t max_file_bytes = 8ull << 30;
  // At most this many tensors; at most this many dimensions per tensor.
  int max_tensors = 4096;
  int max_rank = 8;
};

// Parses a safetensors image held in memory. `file_name` is used in error
// messages only. Fails with INVALID_ARGUMENT on any malformed input.
absl::StatusOr<std::map<std::string, Tensor>> ParseSafetensors(
    std::string_view bytes, std::string_view file_name,
    const SafetensorsLimits& limits = {});

// Reads and parses a safetensors file. NOT_FOUND if the file does not exist,
// INVALID_ARGUMENT if it is malformed or larger than limits.max_file_bytes.
absl::StatusOr<std::map<std::string, Tensor>> ReadSafetensors(
    const std::string& path, const SafetensorsLimits& limits = {});

// Serialises tensors as a safetensors image storing every tensor as `dtype`
// (rounding to nearest-even for F16/BF16). Used by tests and tools; names are
// written in sorted order with contiguous, non-overlapping offsets.
std::string SerializeSafetensors(const std::map<std::string, Tensor>& tensors,
                                 DType dtype = DType::kF32);
// The same, each tensor stored as its own `stored_dtype` (I8 values are
// rounded and clamped to [-128, 127]).
std::string SerializeSafetensorsAsStored(
    const std::map<std::string, Tensor>& tensors);

// Conversions used by the reader and writer (exposed for tests).
float HalfToFloat(uint16_t bits);
float BFloat16ToFloat(uint16_t bits);
uint16_t FloatToHalf(float value);
uint16_t FloatToBFloat16(float value);

}  // namespace lstmserve::model
