// The physical limits the engine's kernels are judged against, on one core:
// the peak rate of each multiply-add instruction they use, and the read
// bandwidth of each cache level at the sizes the benchmark shape's weights
// take (docs/PERFORMANCE.md, "Roofline").
//
//   build/bench/isa_peak            # everything this CPU has
//   build/bench/isa_peak --json
//
// Times are this thread's CPU time (on a shared machine, the core's rate
// while the program runs on it, as engine_bench's rates are). Each compute
// loop runs 12 independent accumulator chains (enough to hide a 4-6 cycle
// latency at 2 instructions per cycle) for 4M iterations; the best of 25
// runs is reported (a shared machine's quietest moments). Each read loop
// sums the buffer with 512-bit (or 256-bit) loads into 8 accumulators,
// ~400 MB in all; the best of 5 runs is reported. Instructions the CPU
// lacks are skipped, never executed.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

// This thread's CPU time: on a shared machine, the rate of the core while
// the program runs on it (as engine_bench's rates are).
struct Clock {
  using time_point = double;  // seconds
  static time_point now() {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) +
           1e-9 * static_cast<double>(t.tv_nsec);
  }
};

constexpr int kChains = 12;
constexpr int64_t kIterations = 1 << 22;

typedef float F16 __attribute__((vector_size(64)));
typedef float F8 __attribute__((vector_size(32)));
typedef int32_t I16 __attribute__((vector_size(64)));
typedef int32_t I8 __attribute__((vector_size(32)));

// Each kernel runs kIterations x kChains instructions and returns a value
// that depends on all of them (so none can be optimized away).
__attribute__((target("avx512f"), noinline)) float FmaZmm(int64_t n) {
  F16 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = F16{} + 1.0f * i;
  const F16 a = F16{} + 0.999f;
  F16 b = F16{} + 0.001f;
  for (int64_t k = 0; k < n; ++k) {
    for (int i = 0; i < kChains; ++i) {
      acc[i] = (F16)_mm512_fmadd_ps((__m512)acc[i], (__m512)a, (__m512)b);
    }
    // An opaque operand each iteration: the loop cannot be collapsed. (An
    // asm on acc[0] instead would keep the whole array in memory.)
    asm volatile("" : "+v"(b));
  }
  float s = 0;
  for (int i = 0; i < kChains; ++i) s += acc[i][0];
  return s;
}

__attribute__((target("avx2,fma"), noinline)) float FmaYmm(int64_t n) {
  F8 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = F8{} + 1.0f * i;
  const F8 a = F8{} + 0.999f;
  F8 b = F8{} + 0.001f;
  for (int64_t k = 0; k < n; ++k) {
    for (int i = 0; i < kChains; ++i) {
      acc[i] = (F8)_mm256_fmadd_ps((__m256)acc[i], (__m256)a, (__m256)b);
    }
    asm volatile("" : "+v"(b));
  }
  float s = 0;
  for (int i = 0; i < kChains; ++i) s += acc[i][0];
  return s;
}

__attribute__((target("avx512f,avx512bf16"), noinline)) float Dpbf16Zmm(
    int64_t n) {
  F16 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = F16{} + 1.0f * i;
  const __m512i a = _mm512_set1_epi16(0x3f80);  // bf16 1.0
  __m512i b = _mm512_set1_epi16(0x3a83);        // bf16 ~0.001
  for (int64_t k = 0; k < n; ++k) {
    for (int i = 0; i < kChains; ++i) {
      acc[i] = (F16)_mm512_dpbf16_ps((__m512)acc[i], (__m512bh)a, (__m512bh)b);
    }
    asm volatile("" : "+v"(b));
  }
  float s = 0;
  for (int i = 0; i < kChains; ++i) s += acc[i][0];
  return s;
}

__attribute__((target("avx512f,avx512vnni"), noinline)) float DpbusdZmm(
    int64_t n) {
  I16 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = I16{} + i;
  const __m512i a = _mm512_set1_epi8(3);
  __m512i b = _mm512_set1_epi8(-2);
  for (int64_t k = 0; k < n; ++k) {
    for (int i = 0; i < kChains; ++i) {
      acc[i] = (I16)_mm512_dpbusd_epi32((__m512i)acc[i], a, b);
    }
    asm volatile("" : "+v"(b));
  }
  int32_t s = 0;
  for (int i = 0; i < kChains; ++i) s += acc[i][0];
  return static_cast<float>(s);
}

__attribute__((target("avx2,avxvnni"), noinline)) float DpbusdYmm(int64_t n) {
  I8 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = I8{} + i;
  const __m256i a = _mm256_set1_epi8(3);
  __m256i b = _mm256_set1_epi8(-2);
  for (int64_t k = 0; k < n; ++k) {
    for (int i = 0; i < kChains; ++i) {
      acc[i] = (I8)_mm256_dpbusd_avx_epi32((__m256i)acc[i], a, b);
    }
    asm volatile("" : "+v"(b));
  }
  int32_t s = 0;
  for (int i = 0; i < kChains; ++i) s += acc[i][0];
  return static_cast<float>(s);
}

// vpmaddwd + vpaddd: what the int8 kernels without VNNI issue per product.
// `a` is made opaque every iteration so the products cannot be hoisted out
// of the loop, and each chain multiplies by its own `b` so they cannot be
// merged. 6 chains: the dependency is only through the 1-cycle add.
constexpr int kMaddChains = 6;

__attribute__((target("avx512f,avx512bw"), noinline)) float MaddZmm(int64_t n) {
  I16 acc[kMaddChains], b[kMaddChains];
  for (int i = 0; i < kMaddChains; ++i) {
    acc[i] = I16{} + i;
    b[i] = (I16)_mm512_set1_epi16(static_cast<int16_t>(i - 3));
  }
  __m512i a = _mm512_set1_epi16(3);
  for (int64_t k = 0; k < n; ++k) {
    asm volatile("" : "+v"(a));
    for (int i = 0; i < kMaddChains; ++i) {
      acc[i] += (I16)_mm512_madd_epi16(a, (__m512i)b[i]);
    }
  }
  int32_t s = 0;
  for (int i = 0; i < kMaddChains; ++i) s += acc[i][0];
  return static_cast<float>(s);
}

__attribute__((target("avx2"), noinline)) float MaddYmm(int64_t n) {
  I8 acc[kMaddChains], b[kMaddChains];
  for (int i = 0; i < kMaddChains; ++i) {
    acc[i] = I8{} + i;
    b[i] = (I8)_mm256_set1_epi16(static_cast<int16_t>(i - 3));
  }
  __m256i a = _mm256_set1_epi16(3);
  for (int64_t k = 0; k < n; ++k) {
    asm volatile("" : "+v"(a));
    for (int i = 0; i < kMaddChains; ++i) {
      acc[i] += (I8)_mm256_madd_epi16(a, (__m256i)b[i]);
    }
  }
  int32_t s = 0;
  for (int i = 0; i < kMaddChains; ++i) s += acc[i][0];
  return static_cast<float>(s);
}

// Sums `bytes` of `data` `repeat` times with 512-bit loads.
__attribute__((target("avx512f"), noinline)) float ReadZmm(const float* data,
                                                           size_t bytes,
                                                           int repeat) {
  F16 acc[8] = {};
  const size_t n = bytes / 64;
  for (int r = 0; r < repeat; ++r) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
      for (int u = 0; u < 8; ++u) {
        acc[u] += (F16)_mm512_load_ps(data + 16 * (i + u));
      }
    }
    asm volatile("" : "+r"(data));  // reread: the loads cannot be merged
  }
  float s = 0;
  for (int u = 0; u < 8; ++u) s += acc[u][0];
  return s;
}

__attribute__((target("avx2"), noinline)) float ReadYmm(const float* data,
                                                        size_t bytes,
                                                        int repeat) {
  F8 acc[8] = {};
  const size_t n = bytes / 32;
  for (int r = 0; r < repeat; ++r) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
      for (int u = 0; u < 8; ++u) {
        acc[u] += (F8)_mm256_load_ps(data + 8 * (i + u));
      }
    }
    asm volatile("" : "+r"(data));
  }
  float s = 0;
  for (int u = 0; u < 8; ++u) s += acc[u][0];
  return s;
}

double Seconds(Clock::time_point a, Clock::time_point b) { return b - a; }

struct Result {
  std::string name;
  std::string unit;
  double value = 0;
  std::string note;
};

volatile float g_sink;

// Operations per second: the best of 25 runs of kernel(kIterations).
template <typename Kernel>
double Peak(Kernel kernel, double ops_per_instruction, int chains = kChains) {
  double best = 0;
  for (int run = 0; run < 25; ++run) {
    const auto start = Clock::now();
    g_sink = kernel(kIterations);
    const double s = Seconds(start, Clock::now());
    best = std::max(best, kIterations * chains * ops_per_instruction / s);
  }
  return best;
}

template <typename Reader>
double Bandwidth(Reader reader, size_t bytes) {
  float* data = static_cast<float*>(std::aligned_alloc(64, bytes));
  for (size_t i = 0; i < bytes / 4; ++i) data[i] = 1.0f;
  g_sink = reader(data, bytes, 2);  // warm the caches
  const int repeat =
      static_cast<int>(std::max<size_t>(1, (size_t{400} << 20) / bytes));
  double best = 0;
  for (int run = 0; run < 5; ++run) {
    const auto start = Clock::now();
    g_sink = reader(data, bytes, repeat);
    const double s = Seconds(start, Clock::now());
    best = std::max(best, static_cast<double>(bytes) * repeat / s);
  }
  std::free(data);
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  if (argc > 1 && !json) {
    std::fprintf(stderr, "usage: isa_peak [--json]\n");
    return 2;
  }
  __builtin_cpu_init();
  const bool avx512 =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  const bool bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
  const bool vnni = avx512 && __builtin_cpu_supports("avx512vnni");
  const bool avx_vnni = __builtin_cpu_supports("avxvnni");

  std::vector<Result> results;
  auto add = [&](bool have, const char* name, const char* unit, auto measure,
                 const char* note) {
    if (!have) {
      results.push_back({name, unit, 0, "not on this CPU (skipped)"});
      return;
    }
    results.push_back({name, unit, measure(), note});
  };
  // Operations: FLOP for the float instructions (a multiply-add is 2),
  // integer multiply-adds x 2 for the integer ones.
  add(
      true, "vfmadd231ps ymm", "GFLOP/s", [] { return Peak(FmaYmm, 16) / 1e9; },
      "8 lanes x 2");
  add(
      avx512, "vfmadd231ps zmm", "GFLOP/s",
      [] { return Peak(FmaZmm, 32) / 1e9; }, "16 lanes x 2");
  add(
      bf16, "vdpbf16ps zmm", "GFLOP/s",
      [] { return Peak(Dpbf16Zmm, 64) / 1e9; }, "16 lanes x 2 products x 2");
  add(
      vnni, "vpdpbusd zmm", "GOP/s", [] { return Peak(DpbusdZmm, 128) / 1e9; },
      "16 lanes x 4 products x 2");
  add(
      avx_vnni, "vpdpbusd ymm (AVX-VNNI)", "GOP/s",
      [] { return Peak(DpbusdYmm, 64) / 1e9; }, "8 lanes x 4 products x 2");
  add(
      avx512, "vpmaddwd+vpaddd zmm", "GOP/s",
      [] { return Peak(MaddZmm, 64, kMaddChains) / 1e9; },
      "16 lanes x 2 products x 2");
  add(
      true, "vpmaddwd+vpaddd ymm", "GOP/s",
      [] { return Peak(MaddYmm, 32, kMaddChains) / 1e9; },
      "8 lanes x 2 products x 2");
  // The benchmark shape's weights (LSTM 64 -> 256 x 2): 3.4 MB float32,
  // 1.7 MB bf16, 0.85 MB int8; one layer's W_hh: 1 MiB, 512 KiB, 256 KiB.
  for (size_t kib : {32, 256, 512, 850, 1024, 1700, 3400, 65536}) {
    const std::string name = "read " + std::to_string(kib) + " KiB";
    add(
        true, (name + " (ymm)").c_str(), "GB/s",
        [&] { return Bandwidth(ReadYmm, kib << 10) / 1e9; }, "");
    add(
        avx512, (name + " (zmm)").c_str(), "GB/s",
        [&] { return Bandwidth(ReadZmm, kib << 10) / 1e9; }, "");
  }

  if (json) {
    std::printf("[");
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      std::printf("%s{\"name\": \"%s\", \"unit\": \"%s\", \"value\": %.1f}",
                  i ? ", " : "", r.name.c_str(), r.unit.c_str(), r.value);
    }
    std::printf("]\n");
    return 0;
  }
  for (const Result& r : results) {
    if (r.value == 0) {
      std::printf("%-28s %s\n", r.name.c_str(), r.note.c_str());
    } else {
      std::printf("%-28s %8.1f %-8s %s\n", r.name.c_str(), r.value,
                  r.unit.c_str(), r.note.c_str());
    }
  }
  return 0;
}
