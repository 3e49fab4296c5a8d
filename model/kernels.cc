#include "model/kernels.h"

#include <cstdlib>
#include <cstring>

namespace lstmserve::model::kernels {
namespace {

bool CpuHasAvx512() {
#if defined(LSTMSERVE_HAVE_AVX512_KERNELS) && defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

Isa DetectIsa() {
  const char* forced = std::getenv("LSTMSERVE_ISA");
  if (forced && std::strcmp(forced, "generic") == 0) return Isa::kGeneric;
  return CpuHasAvx512() ? Isa::kAvx512 : Isa::kGeneric;
}

Isa Selected() {
  static const Isa isa = DetectIsa();
  return isa;
}

}  // namespace

Isa ActiveIsa() { return Selected(); }

std::string_view IsaName(Isa isa) {
  return isa == Isa::kAvx512 ? "avx512" : "generic";
}

size_t PackedWeightsSize(int rows, int width) {
  // Rows rounded up to the widest vector (16 floats), whichever ISA is
  // active.
  const size_t padded_rows = (static_cast<size_t>(rows) + 15) / 16 * 16;
  return padded_rows * static_cast<size_t>(width);
}

void PackWeights(const float* w, int rows, int width, int row_stride,
                 float* out) {
#if defined(LSTMSERVE_HAVE_AVX512_KERNELS)
  if (ActiveIsa() == Isa::kAvx512) {
    return avx512::PackWeights(w, rows, width, row_stride, out);
  }
#endif
  generic::PackWeights(w, rows, width, row_stride, out);
}

const float* ForwardBlock(const NetView& net, const BlockView& block) {
#if defined(LSTMSERVE_HAVE_AVX512_KERNELS)
  if (ActiveIsa() == Isa::kAvx512) return avx512::ForwardBlock(net, block);
#endif
  return generic::ForwardBlock(net, block);
}

}  // namespace lstmserve::model::kernels
