// The int8 products with vpdpbusd on 512-bit vectors (AVX-512 +
// AVX512_VNNI), used only when the CPU has it (model/kernel_path.h).
// The includes go in this order, each needs the ones before it.
// clang-format off
#define LSTMSERVE_KERNEL_NS avx512_vnni
#define LSTMSERVE_LOWP_512 1
#define LSTMSERVE_INT8_VNNI 1
#include "model/kernels_lowp.inc"
#include "model/kernels_int8.inc"
// clang-format on
