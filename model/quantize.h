// The weight conversions of the reduced-precision formats, shared by model
// loading and `lstm-model convert` so that a converted file loads to
// exactly the model the original converts to at load.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

namespace lstmserve::model {

// Symmetric int8 per row: s[r] = max_k |w[r][k]| / 127 (float32), and
// q[r][k] = round_to_nearest_even(w[r][k] * 127 / max_k |w[r][k]|)
// (computed in double), in [-127, 127]. A row of zeros has s = 0, q = 0.
// w is rows x cols, rows `stride` floats apart; weights must be finite.
struct QuantizedRows {
  std::vector<int8_t> q;      // rows x cols, row-major
  std::vector<float> scales;  // rows
};
QuantizedRows QuantizeRows(const float* w, int rows, int cols, int stride);

}  // namespace lstmserve::model
