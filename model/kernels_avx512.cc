// The kernels compiled for AVX-512 (x86-64-v4), used only when the CPU has
// it: the cells and float32 products, bf16 by widening, int8 by vpmaddwd.
// Eigen is renamed so none of its inline functions built with these flags
// can stand in for the baseline build's copies.
// The includes go in this order, each needs the ones before it.
// clang-format off
#define Eigen lstmserve_eigen_avx512
#define LSTMSERVE_KERNEL_NS avx512
#include "model/kernels_impl.inc"

#define LSTMSERVE_LOWP_512 1
#define LSTMSERVE_BF16_DOT 0
#define LSTMSERVE_INT8_VNNI 0
#include "model/kernels_lowp.inc"
#include "model/kernels_bf16.inc"
#include "model/kernels_int8.inc"
// clang-format on
