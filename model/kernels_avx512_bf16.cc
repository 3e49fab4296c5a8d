// The bf16 products with vdpbf16ps (AVX-512 + AVX512_BF16), used only when
// the CPU has it (model/kernel_path.h).
// The includes go in this order, each needs the ones before it.
// clang-format off
#define LSTMSERVE_KERNEL_NS avx512_bf16
#define LSTMSERVE_LOWP_512 1
#define LSTMSERVE_BF16_DOT 1
#include "model/kernels_lowp.inc"
#include "model/kernels_bf16.inc"
// clang-format on
