// The instruction-set paths the engine's kernels are compiled for, and which
// of them a model runs, chosen at run time from CPUID: one portable binary
// (x86-64-v3) uses AVX-512, AVX512_BF16 and the VNNI instructions where the
// CPU has them and never executes one it lacks.
//
// A model runs two kinds of kernels: the cell math (gates, state update,
// and the float32 products), on `generic` or `avx512`; and the products of
// its weight format (docs/PERFORMANCE.md, "Kernel paths"):
//
//   path         cells    f32 products  bf16 products         int8 products
//   generic      AVX2     FMA ymm       bf16 widened, FMA ymm vpmaddwd ymm
//   avx_vnni     AVX2     FMA ymm       bf16 widened, FMA ymm vpdpbusd ymm
//   avx512       AVX-512  FMA zmm       bf16 widened, FMA zmm vpmaddwd zmm
//   avx512_vnni  AVX-512  FMA zmm       bf16 widened, FMA zmm vpdpbusd zmm
//   avx512_bf16  AVX-512  FMA zmm       vdpbf16ps zmm         vpmaddwd zmm
//
// Unforced, each format gets the best path the CPU has (f32: avx512, else
// generic; bf16: avx512_bf16, avx512, generic; int8: avx512_vnni, avx_vnni,
// avx512, generic). $LSTMSERVE_ISA (or Model::Options::kernel_path) forces
// one row of the table for every model.
//
// Thread-safety: pure functions; the environment and CPUID are read once.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/weight_format.h"

namespace lstmserve::model {

enum class KernelPath {
  kGeneric,     // x86-64-v3: AVX2 + FMA, the baseline of every build
  kAvxVnni,     // generic + AVX-VNNI (int8 products)
  kAvx512,      // x86-64-v4: AVX-512 F, BW, DQ, VL
  kAvx512Vnni,  // avx512 + AVX512_VNNI (int8 products)
  kAvx512Bf16,  // avx512 + AVX512_BF16 (bf16 products)
};

// "generic", "avx_vnni", "avx512", "avx512_vnni", "avx512_bf16".
std::string_view KernelPathName(KernelPath path);
std::optional<KernelPath> ParseKernelPath(std::string_view name);
// Every path, in the order above.
const std::vector<KernelPath>& AllKernelPaths();

// Whether this build holds the path's kernels and this CPU (and OS) can run
// them. If not, and `why` is given, it says what is missing.
bool KernelPathAvailable(KernelPath path, std::string* why = nullptr);

// The kernels one model runs.
struct KernelChoice {
  KernelPath cells = KernelPath::kGeneric;     // generic or avx512
  KernelPath products = KernelPath::kGeneric;  // its weight format's products
  WeightFormat format = WeightFormat::kF32;
};

// What the products compute, e.g. "avx512_vnni: vpdpbusd zmm, u8 x s8 ->
// int32" (for info and bench output).
std::string KernelDescription(const KernelChoice& choice);

// The kernels for `format`: those of `forced` if given (FAILED_PRECONDITION
// naming what is missing if that path is not available here), else the
// best available.
absl::StatusOr<KernelChoice> ChooseKernels(WeightFormat format,
                                           std::optional<KernelPath> forced);

// The path $LSTMSERVE_ISA forces: nullopt when unset, empty or "auto";
// INVALID_ARGUMENT naming the value and the accepted names otherwise.
absl::StatusOr<std::optional<KernelPath>> KernelPathFromEnvironment();

}  // namespace lstmserve::model
