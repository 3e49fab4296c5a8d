// The kernels for the build's baseline instruction set (x86-64-v3 by
// default: AVX2 + FMA).
#define LSTMSERVE_KERNEL_NS generic
#include "model/kernels_impl.inc"
