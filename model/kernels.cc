// Run-time choice of the kernel variants (model/kernel_path.h) and the
// dispatch into them. Compiled for the baseline instruction set: nothing
// here may execute an instruction the CPU lacks.
#include "model/kernels.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lstmserve::model::kernels {
namespace {

// What the CPU (and the OS, for the AVX-512 register state) supports,
// read once. GCC's __builtin_cpu_supports checks XGETBV for the AVX and
// AVX-512 states as well as the CPUID bits.
struct CpuFeatures {
  bool avx512 = false;  // F, BW, DQ, VL
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx_vnni = false;
};

const CpuFeatures& Cpu() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__)
    __builtin_cpu_init();
    f.avx512 = __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
    f.avx512_vnni = f.avx512 && __builtin_cpu_supports("avx512vnni");
    f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
#if defined(__clang__) && __clang_major__ < 15
    // clang 14 (the thread-safety and fuzz build) does not know "avxvnni":
    // CPUID leaf 7, subleaf 1, EAX bit 4. AVX's OS state is the baseline's.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    f.avx_vnni = __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) != 0 &&
                 (eax & (1u << 4)) != 0;
#else
    f.avx_vnni = __builtin_cpu_supports("avxvnni");
#endif
#endif
    return f;
  }();
  return features;
}

constexpr bool kBuiltWithExtraKernels =
#if defined(LSTMSERVE_HAVE_AVX512_KERNELS)
    true;
#else
    false;
#endif

}  // namespace
}  // namespace lstmserve::model::kernels

namespace lstmserve::model {

using kernels::Cpu;

std::string_view KernelPathName(KernelPath path) {
  switch (path) {
    case KernelPath::kGeneric:
      return "generic";
    case KernelPath::kAvxVnni:
      return "avx_vnni";
    case KernelPath::kAvx512:
      return "avx512";
    case KernelPath::kAvx512Vnni:
      return "avx512_vnni";
    case KernelPath::kAvx512Bf16:
      return "avx512_bf16";
  }
  return "unknown";
}

const std::vector<KernelPath>& AllKernelPaths() {
  static const std::vector<KernelPath> paths = {
      KernelPath::kGeneric, KernelPath::kAvxVnni, KernelPath::kAvx512,
      KernelPath::kAvx512Vnni, KernelPath::kAvx512Bf16};
  return paths;
}

std::optional<KernelPath> ParseKernelPath(std::string_view name) {
  for (KernelPath p : AllKernelPaths()) {
    if (KernelPathName(p) == name) return p;
  }
  return std::nullopt;
}

bool KernelPathAvailable(KernelPath path, std::string* why) {
  auto missing = [&](const char* what) {
    if (why) *why = what;
    return false;
  };
  if (path == KernelPath::kGeneric) return true;
  if (!kernels::kBuiltWithExtraKernels) {
    return missing("this build has only the baseline (x86-64-v3) kernels");
  }
  const kernels::CpuFeatures& cpu = Cpu();
  switch (path) {
    case KernelPath::kGeneric:
      return true;
    case KernelPath::kAvxVnni:
      return cpu.avx_vnni || missing("the CPU lacks AVX-VNNI");
    case KernelPath::kAvx512:
      return cpu.avx512 || missing("the CPU lacks AVX-512 (F, BW, DQ, VL)");
    case KernelPath::kAvx512Vnni:
      return cpu.avx512_vnni ||
             missing("the CPU lacks AVX-512 with AVX512_VNNI");
    case KernelPath::kAvx512Bf16:
      return cpu.avx512_bf16 ||
             missing("the CPU lacks AVX-512 with AVX512_BF16");
  }
  return missing("unknown kernel path");
}

namespace {

bool IsAvx512(KernelPath p) {
  return p == KernelPath::kAvx512 || p == KernelPath::kAvx512Vnni ||
         p == KernelPath::kAvx512Bf16;
}

// The products a forced path runs for `format` (the table in
// kernel_path.h).
KernelPath ForcedProducts(KernelPath path, WeightFormat format) {
  const KernelPath base =
      IsAvx512(path) ? KernelPath::kAvx512 : KernelPath::kGeneric;
  switch (format) {
    case WeightFormat::kF32:
      return base;
    case WeightFormat::kBF16:
      return path == KernelPath::kAvx512Bf16 ? path : base;
    case WeightFormat::kInt8:
      return path == KernelPath::kAvx512Vnni || path == KernelPath::kAvxVnni
                 ? path
                 : base;
  }
  return base;
}

}  // namespace

absl::StatusOr<KernelChoice> ChooseKernels(WeightFormat format,
                                           std::optional<KernelPath> forced) {
  KernelChoice choice;
  choice.format = format;
  if (forced) {
    std::string why;
    if (!KernelPathAvailable(*forced, &why)) {
      std::vector<std::string> available;
      for (KernelPath p : AllKernelPaths()) {
        if (KernelPathAvailable(p)) {
          available.push_back(std::string(KernelPathName(p)));
        }
      }
      return absl::FailedPreconditionError(
          absl::StrCat("kernel path \"", std::string(KernelPathName(*forced)),
                       "\" is not available: ", why,
                       "; available here: ", absl::StrJoin(available, ", ")));
    }
    choice.cells =
        IsAvx512(*forced) ? KernelPath::kAvx512 : KernelPath::kGeneric;
    choice.products = ForcedProducts(*forced, format);
    return choice;
  }
  auto best = [](std::initializer_list<KernelPath> order) {
    for (KernelPath p : order) {
      if (KernelPathAvailable(p)) return p;
    }
    return KernelPath::kGeneric;
  };
  choice.cells = best({KernelPath::kAvx512});
  switch (format) {
    case WeightFormat::kF32:
      choice.products = choice.cells;
      break;
    case WeightFormat::kBF16:
      choice.products = best({KernelPath::kAvx512Bf16, KernelPath::kAvx512});
      break;
    case WeightFormat::kInt8:
      choice.products = best(
          {KernelPath::kAvx512Vnni, KernelPath::kAvxVnni, KernelPath::kAvx512});
      break;
  }
  return choice;
}

std::string KernelDescription(const KernelChoice& c) {
  const bool wide = IsAvx512(c.products);
  const char* reg = wide ? "zmm" : "ymm";
  std::string what;
  switch (c.format) {
    case WeightFormat::kF32:
      what = absl::StrCat("vfmadd231ps ", reg, ", float32");
      break;
    case WeightFormat::kBF16:
      what = c.products == KernelPath::kAvx512Bf16
                 ? "vdpbf16ps zmm, bf16 x bf16 -> float32"
                 : absl::StrCat("bf16 widened to float32, vfmadd231ps ", reg);
      break;
    case WeightFormat::kInt8:
      what = c.products == KernelPath::kAvx512Vnni ||
                     c.products == KernelPath::kAvxVnni
                 ? absl::StrCat("vpdpbusd ", reg, ", u8 x s8 -> int32")
                 : absl::StrCat("vpmaddwd ", reg, ", s16 x s16 -> int32");
      break;
  }
  std::string text =
      absl::StrCat(std::string(KernelPathName(c.products)), " (", what, ")");
  if (c.cells != c.products) {
    absl::StrAppend(&text, ", cells ", std::string(KernelPathName(c.cells)));
  }
  return text;
}

absl::StatusOr<std::optional<KernelPath>> KernelPathFromEnvironment() {
  const char* value = std::getenv("LSTMSERVE_ISA");
  if (!value || !*value || std::strcmp(value, "auto") == 0) {
    return std::optional<KernelPath>();
  }
  if (std::optional<KernelPath> p = ParseKernelPath(value)) return p;
  std::vector<std::string> names = {"auto"};
  for (KernelPath p : AllKernelPaths()) {
    names.push_back(std::string(KernelPathName(p)));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("LSTMSERVE_ISA is \"", std::string(value).substr(0, 64),
                   "\"; expected one of ", absl::StrJoin(names, ", ")));
}

}  // namespace lstmserve::model

namespace lstmserve::model::kernels {

size_t PackedBytes(WeightFormat format, int rows, int width) {
  const size_t padded_rows = (static_cast<size_t>(rows) + 15) / 16 * 16;
  const size_t padded_width = (static_cast<size_t>(width) + 3) / 4 * 4;
  switch (format) {
    case WeightFormat::kF32:
      return padded_rows * static_cast<size_t>(width) * sizeof(float);
    case WeightFormat::kBF16:
      return padded_rows * padded_width * 2;
    case WeightFormat::kInt8:  // the weights, then one int32 sum per row
      return padded_rows * padded_width + padded_rows * sizeof(int32_t);
  }
  return 0;
}

size_t LowpScratchBytes(int depth, int cols) {
  // Per column: its scale and sum (8 bytes, all columns together first),
  // then the converted activations, 2 bytes each at most, padded to 32;
  // or (the widening bf16 kernels, whose activations stay float32) one row
  // tile of at most 4 panels of 16 rows widened to float32.
  const size_t meta = (static_cast<size_t>(cols) * 8 + 63) / 64 * 64;
  const size_t padded = (static_cast<size_t>(depth) + 31) / 32 * 32;
  const size_t columns = meta + static_cast<size_t>(cols) * 2 * padded;
  const size_t row_tile = 4 * 16 * padded * sizeof(float);
  return std::max(columns, row_tile);
}

#if defined(LSTMSERVE_HAVE_AVX512_KERNELS)
#define LSTMSERVE_IF_EXTRA(path, call) \
  case path:                           \
    return call;
#else
#define LSTMSERVE_IF_EXTRA(path, call)
#endif

void PackF32(KernelPath cells, const float* w, int rows, int width,
             int row_stride, void* out) {
  switch (cells) {
    LSTMSERVE_IF_EXTRA(KernelPath::kAvx512,
                       avx512::PackF32(w, rows, width, row_stride, out))
    default:
      return generic::PackF32(w, rows, width, row_stride, out);
  }
}

void PackBf16(KernelPath products, const uint16_t* w, int rows, int width,
              int row_stride, void* out) {
  switch (products) {
    LSTMSERVE_IF_EXTRA(KernelPath::kAvx512,
                       avx512::PackBf16(w, rows, width, row_stride, out))
    LSTMSERVE_IF_EXTRA(KernelPath::kAvx512Bf16,
                       avx512_bf16::PackBf16(w, rows, width, row_stride, out))
    default:
      return generic::PackBf16(w, rows, width, row_stride, out);
  }
}

void PackInt8(KernelPath products, const int8_t* w, int rows, int width,
              int row_stride, void* out) {
  switch (products) {
    LSTMSERVE_IF_EXTRA(KernelPath::kAvx512,
                       avx512::PackInt8(w, rows, width, row_stride, out))
    LSTMSERVE_IF_EXTRA(KernelPath::kAvx512Vnni,
                       avx512_vnni::PackInt8(w, rows, width, row_stride, out))
    LSTMSERVE_IF_EXTRA(KernelPath::kAvxVnni,
                       avx_vnni::PackInt8(w, rows, width, row_stride, out))
    default:
      return generic::PackInt8(w, rows, width, row_stride, out);
  }
}

ProductFn LowpProduct(KernelPath products, WeightFormat format) {
  if (format == WeightFormat::kBF16) {
    switch (products) {
      LSTMSERVE_IF_EXTRA(KernelPath::kAvx512, &avx512::ProductBf16)
      LSTMSERVE_IF_EXTRA(KernelPath::kAvx512Bf16, &avx512_bf16::ProductBf16)
      default:
        return &generic::ProductBf16;
    }
  }
  if (format == WeightFormat::kInt8) {
    switch (products) {
      LSTMSERVE_IF_EXTRA(KernelPath::kAvx512, &avx512::ProductInt8)
      LSTMSERVE_IF_EXTRA(KernelPath::kAvx512Vnni, &avx512_vnni::ProductInt8)
      LSTMSERVE_IF_EXTRA(KernelPath::kAvxVnni, &avx_vnni::ProductInt8)
      default:
        return &generic::ProductInt8;
    }
  }
  return nullptr;
}

const float* ForwardBlock(const NetView& net, const BlockView& block) {
  switch (net.cells) {
    LSTMSERVE_IF_EXTRA(KernelPath::kAvx512, avx512::ForwardBlock(net, block))
    default:
      return generic::ForwardBlock(net, block);
  }
}

#undef LSTMSERVE_IF_EXTRA

}  // namespace lstmserve::model::kernels
