// The engine's bf16 and int8 product kernels against oneDNN's matmul (Debian
// libdnnl-dev 2.6, which JIT-compiles for AVX512_BF16, VNNI and AMX) on
// the same products, one thread, in one run with alternating rounds:
//
//   W (M x K) times x (K x N), float32 activations in, float32 out,
//   M = 1024 (4 H), K = 256 (W_hh) and 64 (layer 0's W_ih), N = 1 and 64.
//
// Both sides do the whole job the engine needs: ours converts the
// activations inside the kernel (bf16 rounding or per-column int8
// quantization) and scales the int32 sums; for oneDNN the activations are
// reordered to bf16 (a reorder primitive) or quantized per column with the
// engine's scheme (a plain loop), the weights' per-row scales are
// oneDNN's output scales, and the activations' per-column scales (which
// oneDNN 2.6's matmul cannot take) are applied to its output afterwards.
// oneDNN's matmul alone is reported too.
//
//   OMP_NUM_THREADS=1 build/bench/onednn_compare [--rounds 5]
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "model/kernel_path.h"
#include "model/kernels.h"
#include "model/quantize.h"
#include "model/tensor_file.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace lm = lstmserve::model;
namespace kn = lstmserve::model::kernels;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

namespace {

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<unsigned char[], AlignedFree>;
Buffer Aligned(size_t bytes) {
  return Buffer(static_cast<unsigned char*>(
      std::aligned_alloc(64, (bytes + 63) / 64 * 64)));
}

// Microseconds per call (CPU time) over ~0.1 s; the caller takes the median
// of `rounds` of these.
// This thread's CPU time in microseconds (on a shared machine, the time
// the core spent, as engine_bench's rates are).
double CpuUs() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return 1e6 * static_cast<double>(t.tv_sec) +
         1e-3 * static_cast<double>(t.tv_nsec);
}

double TimeUs(const std::function<void()>& f) {
  f();  // warm
  int64_t calls = 0;
  const double start = CpuUs();
  double now = start;
  while (now - start < 1e5) {
    for (int i = 0; i < 8; ++i) f();
    calls += 8;
    now = CpuUs();
  }
  return (now - start) / static_cast<double>(calls);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

const char* IsaName(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

struct Shape {
  int m, k, n;
};

// One product, ready to run both ways.
class Case {
 public:
  Case(lm::WeightFormat format, Shape s, const dnnl::engine& eng)
      : format_(format), s_(s), eng_(eng), stream_(eng) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::normal_distribution<float> normal;
    w_.resize(static_cast<size_t>(s.m) * s.k);
    for (float& v : w_) v = u(rng) / std::sqrt(static_cast<float>(s.k));
    x_.resize(static_cast<size_t>(s.k) * s.n);
    for (float& v : x_) v = normal(rng);
    out_.resize(static_cast<size_t>(s.m) * s.n);
    SetUpOurs();
    SetUpOneDnn();
  }

  void RunOurs() { packed_.product(args_); }

  void RunOneDnn(bool matmul_only) {
    if (format_ == lm::WeightFormat::kBF16) {
      if (!matmul_only) to_bf16_.execute(stream_, src_f32_, src_);
    } else if (!matmul_only) {
      QuantizeColumns();
    }
    matmul_.execute(stream_, {{DNNL_ARG_SRC, src_},
                              {DNNL_ARG_WEIGHTS, weights_},
                              {DNNL_ARG_DST, dst_}});
    stream_.wait();
    if (format_ == lm::WeightFormat::kInt8 && !matmul_only) {
      // Row n of dst (one column of the product) times its scale.
      float* d = static_cast<float*>(dst_.get_data_handle());
      for (int n = 0; n < s_.n; ++n) {
        const float sx = x_scale_[n];
        float* row = d + static_cast<size_t>(n) * s_.m;
        for (int m = 0; m < s_.m; ++m) row[m] *= sx;
      }
    }
  }

  std::string kernel() const { return lm::KernelDescription(choice_); }

 private:
  void SetUpOurs() {
    choice_ = *lm::ChooseKernels(format_, std::nullopt);
    packed_data_ = Aligned(kn::PackedBytes(format_, s_.m, s_.k));
    if (format_ == lm::WeightFormat::kBF16) {
      std::vector<uint16_t> b(w_.size());
      for (size_t i = 0; i < w_.size(); ++i) b[i] = lm::FloatToBFloat16(w_[i]);
      kn::PackBf16(choice_.products, b.data(), s_.m, s_.k, s_.k,
                   packed_data_.get());
    } else {
      q_ = lm::QuantizeRows(w_.data(), s_.m, s_.k, s_.k);
      scales_ = q_.scales;
      scales_.resize((s_.m + 15) / 16 * 16, 0.0f);
      kn::PackInt8(choice_.products, q_.q.data(), s_.m, s_.k, s_.k,
                   packed_data_.get());
    }
    packed_.data = packed_data_.get();
    packed_.rows = s_.m;
    packed_.width = s_.k;
    packed_.format = format_;
    packed_.scales = scales_.empty() ? nullptr : scales_.data();
    packed_.product = kn::LowpProduct(choice_.products, format_);
    scratch_ = Aligned(kn::LowpScratchBytes(s_.k, s_.n));
    args_.w = &packed_;
    args_.depth = s_.k;
    args_.x = x_.data();
    args_.cols = s_.n;
    args_.out = out_.data();
    args_.scratch = scratch_.get();
  }

  void SetUpOneDnn() {
    const bool bf16 = format_ == lm::WeightFormat::kBF16;
    // x (K x N column-major) is src (N x K row-major); out (M x N
    // column-major) is dst (N x M row-major); W (M x K row-major) is
    // weights (K x M) in the "ba" layout.
    dnnl::memory::desc src_md({s_.n, s_.k}, bf16 ? dt::bf16 : dt::s8, tag::ab);
    dnnl::memory::desc wei_any({s_.k, s_.m}, bf16 ? dt::bf16 : dt::s8,
                               tag::any);
    dnnl::memory::desc dst_md({s_.n, s_.m}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    if (!bf16) attr.set_output_scales(1 << 1, q_.scales);  // per row of W
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wei_any, dst_md),
                                    attr, eng_);
    matmul_ = dnnl::matmul(pd);
    impl_ = pd.impl_info_str();
    src_ = dnnl::memory(src_md, eng_);
    dst_ = dnnl::memory(dst_md, eng_, out_.data());
    weights_ = dnnl::memory(pd.weights_desc(), eng_);
    if (bf16) {
      dnnl::memory w_f32({{s_.k, s_.m}, dt::f32, tag::ba}, eng_, w_.data());
      dnnl::reorder(w_f32, weights_).execute(stream_, w_f32, weights_);
      src_f32_ =
          dnnl::memory({{s_.n, s_.k}, dt::f32, tag::ab}, eng_, x_.data());
      to_bf16_ = dnnl::reorder(src_f32_, src_);
    } else {
      dnnl::memory w_s8({{s_.k, s_.m}, dt::s8, tag::ba}, eng_, q_.q.data());
      dnnl::reorder(w_s8, weights_).execute(stream_, w_s8, weights_);
      x_scale_.resize(s_.n);
    }
    stream_.wait();
  }

  // The engine's activation quantization (kernels_int8.inc), per column.
  void QuantizeColumns() {
    int8_t* q = static_cast<int8_t*>(src_.get_data_handle());
    for (int n = 0; n < s_.n; ++n) {
      const float* x = x_.data() + static_cast<size_t>(n) * s_.k;
      float amax = 0;
      for (int k = 0; k < s_.k; ++k) amax = std::max(amax, std::abs(x[k]));
      const float inv = amax > 0 ? 127.0f / amax : 0.0f;
      x_scale_[n] = amax / 127.0f;
      for (int k = 0; k < s_.k; ++k) {
        q[static_cast<size_t>(n) * s_.k + k] =
            static_cast<int8_t>(std::nearbyint(x[k] * inv));
      }
    }
  }

  lm::WeightFormat format_;
  Shape s_;
  const dnnl::engine& eng_;
  dnnl::stream stream_;
  std::vector<float> w_, x_, out_;
  lm::KernelChoice choice_;
  Buffer packed_data_, scratch_;
  lm::QuantizedRows q_;
  std::vector<float> scales_;
  kn::PackedMatrix packed_;
  kn::ProductArgs args_;
  dnnl::matmul matmul_;
  dnnl::reorder to_bf16_;
  dnnl::memory src_, src_f32_, weights_, dst_;
  std::vector<float> x_scale_;

 public:
  std::string impl_;
};

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: onednn_compare [--rounds N]\n");
      return 2;
    }
  }
  // One thread, as the engine runs. oneDNN here uses OpenMP, which reads
  // its environment when the library loads: set it and start again.
  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (!omp || std::strcmp(omp, "1") != 0) {
    setenv("OMP_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv);
    std::perror("onednn_compare: cannot restart with OMP_NUM_THREADS=1");
    return 1;
  }
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  const dnnl_version_t* v = dnnl_version();
  std::printf(
      "oneDNN %d.%d.%d, effective ISA %s; one thread; %d alternating "
      "rounds, medians\n",
      v->major, v->minor, v->patch, IsaName(dnnl::get_effective_cpu_isa()),
      rounds);
  std::printf("%-5s %-16s %10s %12s %12s %8s  %s\n", "", "M x K x N", "ours us",
              "oneDNN us", "matmul us", "winner", "kernels");
  for (lm::WeightFormat f :
       {lm::WeightFormat::kBF16, lm::WeightFormat::kInt8}) {
    for (Shape s : {Shape{1024, 256, 1}, Shape{1024, 64, 1},
                    Shape{1024, 256, 64}, Shape{1024, 64, 64}}) {
      Case c(f, s, eng);
      std::vector<double> ours, theirs, matmul;
      for (int r = 0; r < rounds; ++r) {
        ours.push_back(TimeUs([&] { c.RunOurs(); }));
        theirs.push_back(TimeUs([&] { c.RunOneDnn(false); }));
        matmul.push_back(TimeUs([&] { c.RunOneDnn(true); }));
      }
      const double a = Median(ours), b = Median(theirs), m = Median(matmul);
      const std::string shape = std::to_string(s.m) + " x " +
                                std::to_string(s.k) + " x " +
                                std::to_string(s.n);
      std::printf("%-5s %-16s %10.2f %12.2f %12.2f %8s  ours: %s; oneDNN: %s\n",
                  std::string(lm::WeightFormatName(f)).c_str(), shape.c_str(),
                  a, b, m, a <= b ? "ours" : "oneDNN", c.kernel().c_str(),
                  c.impl_.c_str());
    }
  }
  return 0;
}
