// The kernels for the build's baseline instruction set (x86-64-v3 by
// default: AVX2 + FMA): the cells and float32 products, bf16 by widening,
// int8 by vpmaddwd. A baseline without AVX2 (another architecture) gets
// the same products in plain C++.
// The includes go in this order, each needs the ones before it.
// clang-format off
#define LSTMSERVE_KERNEL_NS generic
#include "model/kernels_impl.inc"

#if defined(__AVX2__) && defined(__FMA__)
#define LSTMSERVE_LOWP_512 0
#define LSTMSERVE_BF16_DOT 0
#define LSTMSERVE_INT8_VNNI 0
#include "model/kernels_lowp.inc"
#include "model/kernels_bf16.inc"
#include "model/kernels_int8.inc"
#else
#include "model/kernels_lowp_portable.inc"
#endif
// clang-format on
