#!/usr/bin/env bash
# Fails if a kernel variant's object (AVX-512, AVX512_BF16, AVX512_VNNI,
# AVX-VNNI) defines any symbol the linker could merge with the baseline
# build's copy (an inline function from a shared header, such as a std::
# template). Such a merge could run those instructions on a CPU without
# them. Everything a variant defines must live in its own namespaces.
#   tools/check_kernel_symbols.sh build/model/CMakeFiles/.../kernels_avx512.cc.o ...
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 OBJECT..." >&2; exit 2; }
for f in "$@"; do
  [[ -s "$f" ]] || { echo "check_kernel_symbols: no object file $f" >&2; exit 2; }
done
symbols=$(nm -C --defined-only "$@")
# Local (lower-case t/d/b/r) symbols cannot be merged; only global and weak matter.
bad=$(echo "$symbols" | awk '$2 ~ /^[TWVuBDR]$/' |
  grep -v -E 'lstmserve_eigen_avx512::|lstmserve::model::kernels::(avx512|avx512_bf16|avx512_vnni|avx_vnni)::' |
  grep -v -E ' DW\.ref\.__g(xx|cc)_personality_v0$' |  # a pointer (C++ or, under TSan, C), same in every TU
  # clang's -fsanitize=function (UBSan) emits type descriptors of the
  # kernels' function types: data, identical in every TU, never executed.
  grep -v -E ' typeinfo (name )?for ' || true)
if [[ -n "$bad" ]]; then
  echo "check_kernel_symbols: shared symbols defined in the kernel variants:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "check_kernel_symbols: ok ($(echo "$symbols" | wc -l) symbols defined, none shared)"
