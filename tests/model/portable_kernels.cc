// The plain C++ bf16/int8 kernels a baseline without AVX2 builds
// (model/kernels_lowp_portable.inc), compiled here into their own
// namespace so that lowp_kernels_test.cc can run them on any machine.
// clang-format off
#define LSTMSERVE_KERNEL_NS portable_for_test
#include "model/kernels_lowp_portable.inc"
// clang-format on
