// The packed weight layout the kernels read (kernels::PackWeights): panels
// of one SIMD vector of rows, each panel column by column, the last panel
// padded with zeros (the kernels load whole vectors; the padded lanes are
// computed and dropped, and zeros keep them finite). Runs once per
// instruction set, like the rest of model_tests.
#include "model/kernels.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace lstmserve::model::kernels {
namespace {

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

class PackF32Test : public testing::TestWithParam<KernelPath> {};

TEST_P(PackF32Test, PanelsOfOneVectorOfRowsColumnByColumnZeroPadded) {
  std::string why;
  if (!KernelPathAvailable(GetParam(), &why)) GTEST_SKIP() << why;
  // 21 rows: one full panel and a partial one for both vector widths; the
  // matrix is read out of a wider one (row stride 5, width 3).
  const int rows = 21, width = 3, stride = 5;
  std::vector<float> w(static_cast<size_t>(rows) * stride);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 1.0f + static_cast<float>(i);

  const size_t size = PackedBytes(WeightFormat::kF32, rows, width) / 4;
  EXPECT_EQ(size, 32u * width);  // rows rounded up to 16 for every ISA
  std::unique_ptr<float[], FreeDeleter> out(
      static_cast<float*>(std::aligned_alloc(64, size * sizeof(float))));
  for (size_t i = 0; i < size; ++i) out[i] = -1.0f;  // poison
  PackF32(GetParam(), w.data(), rows, width, stride, out.get());

  const int lanes = GetParam() == KernelPath::kAvx512 ? 16 : 8;
  const int panels = (rows + lanes - 1) / lanes;
  for (int p = 0; p < panels; ++p) {
    for (int k = 0; k < width; ++k) {
      for (int lane = 0; lane < lanes; ++lane) {
        const int r = p * lanes + lane;
        const float want =
            r < rows ? w[static_cast<size_t>(r) * stride + k] : 0.0f;
        EXPECT_EQ(out[(static_cast<size_t>(p) * width + k) * lanes + lane],
                  want)
            << "panel " << p << " column " << k << " lane " << lane;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(CellPaths, PackF32Test,
                         testing::Values(KernelPath::kGeneric,
                                         KernelPath::kAvx512),
                         [](const auto& p) {
                           return std::string(KernelPathName(p.param));
                         });

}  // namespace
}  // namespace lstmserve::model::kernels
