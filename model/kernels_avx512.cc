// The kernels compiled for AVX-512 (x86-64-v4), used only when the CPU has
// it. Eigen is renamed so none of its inline functions built with these flags
// can stand in for the baseline build's copies.
#define Eigen lstmserve_eigen_avx512
#define LSTMSERVE_KERNEL_NS avx512
#include "model/kernels_impl.inc"
