// The bf16 and int8 product kernels alone (model/kernels.h), on every path
// this CPU has: out = W x [+ bias] [+ out] against a float64 reference of
// the rounded or quantized weights and the kernel's own activation
// rounding, for shapes that fill the SIMD panels and tiles partly and
// wholly (up to the benchmark shape at 64 columns), with guards around
// every buffer the kernel writes.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/kernels.h"
#include "model/quantize.h"
#include "model/tensor_file.h"

namespace lstmserve::model::kernels {

// tests/model/portable_kernels.cc
namespace portable_for_test {
void PackBf16(const uint16_t* w, int rows, int width, int row_stride,
              void* out);
void ProductBf16(const ProductArgs& args);
void PackInt8(const int8_t* w, int rows, int width, int row_stride, void* out);
void ProductInt8(const ProductArgs& args);
}  // namespace portable_for_test

namespace {

struct Param {
  KernelPath path;
  WeightFormat format;
};

std::string Name(const Param& p) {
  return std::string(WeightFormatName(p.format)) + "_" +
         std::string(KernelPathName(p.path));
}

// A 64-byte aligned buffer with 64 guard bytes after `bytes`.
class Guarded {
 public:
  explicit Guarded(size_t bytes) : bytes_(bytes) {
    data_ = static_cast<unsigned char*>(
        std::aligned_alloc(64, (bytes + 64 + 63) / 64 * 64));
    std::memset(data_, 0x5a, bytes + 64);
  }
  ~Guarded() { std::free(data_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  void* data() const { return data_; }
  bool GuardIntact() const {
    for (size_t i = 0; i < 64; ++i) {
      if (data_[bytes_ + i] != 0x5a) return false;
    }
    return true;
  }

 private:
  unsigned char* data_;
  size_t bytes_;
};

// W packed for the parameter's kernel, and what the reference needs.
struct Packed {
  std::unique_ptr<Guarded> data;
  std::vector<float> scales;  // int8, padded to 16 rows
  PackedMatrix m;
  std::vector<double> w;  // effective weights (rounded / q * s)
  std::vector<int> q;     // int8
};

Packed Pack(const Param& p, const std::vector<float>& w, int rows, int width) {
  Packed out;
  out.data = std::make_unique<Guarded>(PackedBytes(p.format, rows, width));
  out.w.resize(w.size());
  if (p.format == WeightFormat::kBF16) {
    std::vector<uint16_t> b(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      b[i] = FloatToBFloat16(w[i]);
      out.w[i] = BFloat16ToFloat(b[i]);
    }
    PackBf16(p.path, b.data(), rows, width, width, out.data->data());
  } else {
    QuantizedRows q = QuantizeRows(w.data(), rows, width, width);
    out.q.assign(q.q.begin(), q.q.end());
    for (size_t i = 0; i < w.size(); ++i) {
      out.w[i] = static_cast<double>(out.q[i]) * q.scales[i / width];
    }
    out.scales = q.scales;
    out.scales.resize((rows + 15) / 16 * 16, 0.0f);
    PackInt8(p.path, q.q.data(), rows, width, width, out.data->data());
  }
  out.m.data = out.data->data();
  out.m.rows = rows;
  out.m.width = width;
  out.m.format = p.format;
  out.m.scales = out.scales.empty() ? nullptr : out.scales.data();
  out.m.product = LowpProduct(p.path, p.format);
  return out;
}

// The kernel's product of column x, in float64 (see kernels_bf16.inc and
// kernels_int8.inc for the rounding documented there).
std::vector<double> Reference(const Param& p, const Packed& w, int rows,
                              int width, const float* x, int depth = -1) {
  if (depth < 0) depth = width;
  std::vector<double> out(rows, 0.0);
  if (p.format == WeightFormat::kInt8) {
    float amax = 0;
    for (int k = 0; k < width; ++k) amax = std::max(amax, std::abs(x[k]));
    if (amax == 0) return out;
    const float inv = 127.0f / amax, sx = amax / 127.0f;
    for (int r = 0; r < rows; ++r) {
      int64_t sum = 0;
      for (int k = 0; k < width; ++k) {
        sum += static_cast<int64_t>(w.q[static_cast<size_t>(r) * width + k]) *
               static_cast<int>(std::nearbyint(x[k] * inv));
      }
      out[r] = static_cast<double>(sum) * w.scales[r] * sx;
    }
    return out;
  }
  const bool round_x = p.path == KernelPath::kAvx512Bf16;
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < depth; ++k) {
      const double xv = round_x ? BFloat16ToFloat(FloatToBFloat16(x[k])) : x[k];
      out[r] += w.w[static_cast<size_t>(r) * width + k] * xv;
    }
  }
  return out;
}

class LowpProductTest : public testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    std::string why;
    if (!KernelPathAvailable(GetParam().path, &why)) GTEST_SKIP() << why;
  }

  // Runs one product and checks every output against the reference;
  // depth < width multiplies the first `depth` columns of W only (bf16).
  void Check(int rows, int width, int cols, bool bias, bool accumulate,
             bool reverse, uint32_t seed, int depth = -1) {
    if (depth < 0) depth = width;
    SCOPED_TRACE(testing::Message()
                 << rows << "x" << width << " (depth " << depth << ") by "
                 << cols << " columns, bias " << bias << ", accumulate "
                 << accumulate << ", reverse " << reverse);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::normal_distribution<float> normal;
    const float scale = 1.0f / std::sqrt(static_cast<float>(width));
    std::vector<float> w(static_cast<size_t>(rows) * width);
    for (float& v : w) v = uniform(rng) * scale;
    std::vector<float> x(static_cast<size_t>(depth) * cols);
    for (float& v : x) v = normal(rng);
    std::vector<float> b(rows);
    for (float& v : b) v = uniform(rng);
    Packed packed = Pack(GetParam(), w, rows, width);
    ASSERT_TRUE(packed.data->GuardIntact()) << "packing overran its buffer";

    Guarded out(sizeof(float) * rows * cols);
    float* o = static_cast<float*>(out.data());
    std::vector<float> prior(static_cast<size_t>(rows) * cols);
    for (float& v : prior) v = uniform(rng);
    std::memcpy(o, prior.data(), sizeof(float) * prior.size());
    Guarded scratch(LowpScratchBytes(depth, cols));
    ProductArgs a;
    a.w = &packed.m;
    a.depth = depth;
    a.x = x.data();
    a.cols = cols;
    a.out = o;
    a.bias = bias ? b.data() : nullptr;
    a.accumulate = accumulate;
    a.reverse = reverse;
    a.scratch = scratch.data();
    packed.m.product(a);
    EXPECT_TRUE(out.GuardIntact()) << "wrote past the output";
    EXPECT_TRUE(scratch.GuardIntact()) << "wrote past the scratch";

    int bad = 0;
    for (int j = 0; j < cols && bad < 5; ++j) {
      const std::vector<double> want =
          Reference(GetParam(), packed, rows, width,
                    x.data() + static_cast<size_t>(j) * depth, depth);
      for (int r = 0; r < rows && bad < 5; ++r) {
        const size_t i = static_cast<size_t>(j) * rows + r;
        const double expected =
            want[r] + (bias ? b[r] : 0.0) + (accumulate ? prior[i] : 0.0);
        if (!(std::abs(o[i] - expected) <=
              1e-4 * std::max(1.0, std::abs(expected)))) {
          ++bad;
          ADD_FAILURE() << "row " << r << " column " << j << ": " << o[i]
                        << ", reference " << expected;
        }
      }
    }
  }
};

TEST_P(LowpProductTest, MatrixVectorMatchesTheReference) {
  uint32_t seed = 1;
  for (int rows : {1, 5, 16, 17, 40}) {
    for (int width : {1, 2, 3, 4, 7, 31, 32, 33, 64, 65}) {
      Check(rows, width, 1, false, false, false, seed++);
    }
  }
  // Bias, accumulate and the reversed sweep, on the benchmark shape's
  // W_hh (1024 x 256) and a layer-0 [W_ih] (1024 x 64).
  Check(1024, 256, 1, true, true, true, seed++);
  Check(1024, 64, 1, true, false, false, seed++);
  Check(100, 300, 1, false, true, true, seed++);
}

TEST_P(LowpProductTest, TilesMatchTheReference) {
  uint32_t seed = 100;
  for (int cols : {2, 3, 4, 5, 6, 7, 9, 11, 19}) {
    Check(37, 13, cols, cols % 2 == 0, cols % 3 == 0, false, seed++);
    Check(80, 66, cols, true, false, false, seed++);
  }
  Check(1024, 320, 64, true, false, false, seed++);
  Check(1024, 256, 64, false, true, false, seed++);
  Check(48, 255, 23, true, true, false, seed++);
}

// bf16 multiplies the W_ih part of [W_ih | W_hh] for a chunk's input
// projection: the first `depth` columns, an odd depth ending mid-pair.
// (int8 multiplies whole matrices only.)
class Bf16SubBlockTest : public LowpProductTest {};

TEST_P(Bf16SubBlockTest, TakesTheFirstColumnsOfW) {
  uint32_t seed = 300;
  for (int depth : {1, 7, 32, 33, 64}) {
    Check(40, 97, 1, true, false, false, seed++, depth);
    Check(40, 97, 6, true, true, false, seed++, depth);
  }
}

TEST_P(LowpProductTest, ZeroAndNonFiniteColumns) {
  // Column 0 all zeros, column 1 holds a NaN, column 2 an infinity,
  // column 3 ordinary: a zero column gives exactly the bias; a non-finite
  // one NaN (int8; bf16 whatever float32 arithmetic gives); neither
  // disturbs the others.
  const int rows = 20, width = 9, cols = 4;
  std::vector<float> x(width * cols, 0.5f);
  for (int k = 0; k < width; ++k) x[k] = 0;
  x[width + 3] = std::numeric_limits<float>::quiet_NaN();
  x[2 * width + 4] = std::numeric_limits<float>::infinity();
  for (int k = 0; k < width; ++k) x[3 * width + k] = 0.1f * k - 0.3f;
  // Only column 3 is compared against the reference here.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> w(rows * width);
  for (float& v : w) v = uniform(rng);
  std::vector<float> b(rows, 0.25f);
  Packed packed = Pack(GetParam(), w, rows, width);
  std::vector<float> out(rows * cols, -7.0f);
  Guarded scratch(LowpScratchBytes(width, cols));
  ProductArgs a;
  a.w = &packed.m;
  a.depth = width;
  a.x = x.data();
  a.cols = cols;
  a.out = out.data();
  a.bias = b.data();
  a.scratch = scratch.data();
  packed.m.product(a);
  const std::vector<double> want =
      Reference(GetParam(), packed, rows, width, x.data() + 3 * width);
  for (int r = 0; r < rows; ++r) {
    EXPECT_EQ(out[r], 0.25f) << "zero column, row " << r;
    EXPECT_TRUE(std::isnan(out[rows + r])) << "NaN column, row " << r;
    if (GetParam().format == WeightFormat::kInt8) {
      EXPECT_TRUE(std::isnan(out[2 * rows + r])) << "inf column, row " << r;
    }
    EXPECT_NEAR(out[3 * rows + r], want[r] + 0.25, 1e-4) << "row " << r;
  }
}

// Integer sums are exact, so every int8 path gives the same bits as the
// baseline's vpmaddwd kernel.
class Int8AgreementTest : public LowpProductTest {};

TEST_P(Int8AgreementTest, SameBitsAsTheBaseline) {
  const Param p = GetParam();
  const int rows = 70, width = 45;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal;
  std::vector<float> w(rows * width), x(width * 6);
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  for (int cols : {1, 6}) {
    std::vector<std::vector<float>> results;
    for (KernelPath path : {KernelPath::kGeneric, p.path}) {
      Packed packed = Pack({path, p.format}, w, rows, width);
      std::vector<float> out(rows * cols);
      Guarded scratch(LowpScratchBytes(width, cols));
      ProductArgs a;
      a.w = &packed.m;
      a.depth = width;
      a.x = x.data();
      a.cols = cols;
      a.out = out.data();
      a.scratch = scratch.data();
      packed.m.product(a);
      results.push_back(out);
    }
    EXPECT_EQ(results[0], results[1]) << cols << " columns";
  }
}

// The plain C++ kernels of a baseline without AVX2 (another architecture):
// the AVX2 kernels' layout and arithmetic, so the reference's and, for
// int8, the AVX2 kernel's own bits.
TEST(PortableKernelsTest, MatchTheReferenceAndTheAvx2Kernels) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (WeightFormat f : {WeightFormat::kBF16, WeightFormat::kInt8}) {
    for (int rows : {1, 9, 40}) {
      for (int width : {1, 6, 33}) {
        for (int cols : {1, 5}) {
          SCOPED_TRACE(testing::Message() << WeightFormatName(f) << " " << rows
                                          << "x" << width << " by " << cols);
          const Param generic{KernelPath::kGeneric, f};
          std::vector<float> w(rows * width), x(width * cols);
          for (float& v : w) v = normal(rng) * 0.3f;
          for (float& v : x) v = normal(rng);
          Packed packed = Pack(generic, w, rows, width);  // AVX2 layout
          Packed portable = Pack(generic, w, rows, width);
          if (f == WeightFormat::kBF16) {
            std::vector<uint16_t> b(w.size());
            for (size_t i = 0; i < w.size(); ++i) b[i] = FloatToBFloat16(w[i]);
            portable_for_test::PackBf16(b.data(), rows, width, width,
                                        portable.data->data());
            portable.m.product = &portable_for_test::ProductBf16;
          } else {
            QuantizedRows q = QuantizeRows(w.data(), rows, width, width);
            portable_for_test::PackInt8(q.q.data(), rows, width, width,
                                        portable.data->data());
            portable.m.product = &portable_for_test::ProductInt8;
          }
          std::vector<float> got(rows * cols), avx2(rows * cols);
          Guarded scratch(LowpScratchBytes(width, cols));
          ProductArgs a;
          a.depth = width;
          a.x = x.data();
          a.cols = cols;
          a.scratch = scratch.data();
          a.w = &portable.m;
          a.out = got.data();
          portable.m.product(a);
          a.w = &packed.m;
          a.out = avx2.data();
          packed.m.product(a);
          for (int j = 0; j < cols; ++j) {
            const std::vector<double> want =
                Reference(generic, packed, rows, width, x.data() + j * width);
            for (int r = 0; r < rows; ++r) {
              EXPECT_NEAR(got[j * rows + r], want[r],
                          1e-4 * std::max(1.0, std::abs(want[r])));
            }
          }
          if (f == WeightFormat::kInt8) {
            EXPECT_EQ(got, avx2);
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Paths, LowpProductTest,
    testing::Values(Param{KernelPath::kGeneric, WeightFormat::kBF16},
                    Param{KernelPath::kAvx512, WeightFormat::kBF16},
                    Param{KernelPath::kAvx512Bf16, WeightFormat::kBF16},
                    Param{KernelPath::kGeneric, WeightFormat::kInt8},
                    Param{KernelPath::kAvxVnni, WeightFormat::kInt8},
                    Param{KernelPath::kAvx512, WeightFormat::kInt8},
                    Param{KernelPath::kAvx512Vnni, WeightFormat::kInt8}),
    [](const auto& p) { return Name(p.param); });

INSTANTIATE_TEST_SUITE_P(
    Paths, Bf16SubBlockTest,
    testing::Values(Param{KernelPath::kGeneric, WeightFormat::kBF16},
                    Param{KernelPath::kAvx512, WeightFormat::kBF16},
                    Param{KernelPath::kAvx512Bf16, WeightFormat::kBF16}),
    [](const auto& p) { return Name(p.param); });

INSTANTIATE_TEST_SUITE_P(
    Paths, Int8AgreementTest,
    testing::Values(Param{KernelPath::kAvxVnni, WeightFormat::kInt8},
                    Param{KernelPath::kAvx512, WeightFormat::kInt8},
                    Param{KernelPath::kAvx512Vnni, WeightFormat::kInt8}),
    [](const auto& p) { return Name(p.param); });

}  // namespace
}  // namespace lstmserve::model::kernels
