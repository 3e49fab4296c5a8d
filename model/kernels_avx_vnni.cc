// The int8 products with the VEX-encoded vpdpbusd on 256-bit vectors
// (AVX-VNNI, e.g. Alder Lake, Zen 5), used only when the CPU has it
// (model/kernel_path.h).
// The includes go in this order, each needs the ones before it.
// clang-format off
#define LSTMSERVE_KERNEL_NS avx_vnni
#define LSTMSERVE_LOWP_512 0
#define LSTMSERVE_INT8_VNNI 1
#include "model/kernels_lowp.inc"
#include "model/kernels_int8.inc"
// clang-format on
