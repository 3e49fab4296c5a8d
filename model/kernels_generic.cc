// The kernels for the build's baseline instruction set (x86-64-v3 by
// default: AVX2 + FMA): the cells and float32 products, bf16 by widening,
// int8 by vpmaddwd.
// The includes go in this order, each needs the ones before it.
// clang-format off
#define LSTMSERVE_KERNEL_NS generic
#include "model/kernels_impl.inc"

#define LSTMSERVE_LOWP_512 0
#define LSTMSERVE_BF16_DOT 0
#define LSTMSERVE_INT8_VNNI 0
#include "model/kernels_lowp.inc"
#include "model/kernels_bf16.inc"
#include "model/kernels_int8.inc"
// clang-format on
