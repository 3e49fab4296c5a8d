#include "model/quantize.h"

#include <algorithm>
#include <cmath>

namespace lstmserve::model {

QuantizedRows QuantizeRows(const float* w, int rows, int cols, int stride) {
  QuantizedRows out;
  out.q.resize(static_cast<size_t>(rows) * cols);
  out.scales.resize(rows);
  for (int r = 0; r < rows; ++r) {
    const float* row = w + static_cast<size_t>(r) * stride;
    float amax = 0.0f;
    for (int k = 0; k < cols; ++k) amax = std::max(amax, std::abs(row[k]));
    out.scales[r] = amax / 127.0f;
    int8_t* q = out.q.data() + static_cast<size_t>(r) * cols;
    if (amax == 0.0f) {
      std::fill(q, q + cols, int8_t{0});
      continue;
    }
    const double inv = 127.0 / amax;
    for (int k = 0; k < cols; ++k) {
      const double v = std::nearbyint(row[k] * inv);  // ties to even
      q[k] = static_cast<int8_t>(std::clamp(v, -127.0, 127.0));
    }
  }
  return out;
}

}  // namespace lstmserve::model
