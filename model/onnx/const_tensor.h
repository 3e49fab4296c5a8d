// Constant tensors of an ONNX graph (initializers, Constant nodes) and the
// shape operators the importer evaluates on them: the Slice / Concat /
// Reshape / Transpose / Squeeze / Unsqueeze / Gather glue torch.onnx.export
// wraps around weights and shape arithmetic.
//
// Thread-safety: plain values and free functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace onnx {
class TensorProto;
}

namespace lstmserve::model::onnx_import {

// A constant: floating-point types are held as float, integer types as
// int64 (exactly one of the two vectors is filled, in row-major order).
struct ConstTensor {
  std::vector<int64_t> dims;
  bool is_int = false;
  std::vector<float> floats;
  std::vector<int64_t> ints;

  int64_t size() const;
  int rank() const { return static_cast<int>(dims.size()); }
  // Element i as a double / int64 whatever the storage.
  double At(int64_t i) const;
  int64_t IntAt(int64_t i) const;
  bool AllZero() const;
  // "[2, 3] float"
  std::string Describe() const;
};

// Constants the importer builds or decodes hold at most this many elements
// (2^28 floats = 1 GiB): an .onnx file cannot make it allocate more.
inline constexpr int64_t kMaxConstElements = int64_t{1} << 28;

// Whether dims are non-negative and multiply to at most kMaxConstElements.
bool DimsWithinLimit(const std::vector<int64_t>& dims);

// Decodes FLOAT, DOUBLE, FLOAT16, BFLOAT16, INT8..INT64, UINT8..UINT64 and
// BOOL tensors from raw_data or the typed fields. Errors (external data,
// strings, a byte count that does not match the dims) name `what`.
absl::StatusOr<ConstTensor> FromProto(const onnx::TensorProto& proto,
                                      const std::string& what);

// Resolves a possibly negative axis against `rank`; error if out of range.
absl::StatusOr<int> NormalizeAxis(int64_t axis, int rank,
                                  const std::string& what);

// The operators, as the ONNX specification defines them.
ConstTensor Reshaped(const ConstTensor& t, std::vector<int64_t> dims);
absl::StatusOr<ConstTensor> Reshape(const ConstTensor& t,
                                    const ConstTensor& shape, bool allowzero,
                                    const std::string& what);
absl::StatusOr<ConstTensor> Transpose(const ConstTensor& t,
                                      std::vector<int64_t> perm,
                                      const std::string& what);
absl::StatusOr<ConstTensor> Squeeze(const ConstTensor& t,
                                    const std::vector<int64_t>& axes,
                                    const std::string& what);
absl::StatusOr<ConstTensor> Unsqueeze(const ConstTensor& t,
                                      const std::vector<int64_t>& axes,
                                      const std::string& what);
absl::StatusOr<ConstTensor> Concat(absl::Span<const ConstTensor* const> parts,
                                   int64_t axis, const std::string& what);
// starts/ends/axes/steps as ONNX Slice (axes empty: 0..n-1; steps empty: 1).
absl::StatusOr<ConstTensor> Slice(const ConstTensor& t,
                                  const std::vector<int64_t>& starts,
                                  const std::vector<int64_t>& ends,
                                  std::vector<int64_t> axes,
                                  std::vector<int64_t> steps,
                                  const std::string& what);
absl::StatusOr<ConstTensor> Gather(const ConstTensor& t,
                                   const ConstTensor& indices, int64_t axis,
                                   const std::string& what);
// Cast to a float (to_float) or integer type.
ConstTensor Cast(const ConstTensor& t, bool to_float);

}  // namespace lstmserve::model::onnx_import
