#include "tests/model/reference_step.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "model/quantize.h"

namespace lstmserve::model::ref {
namespace {

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

double Clip(double v, float clip) {
  return clip > 0 ? std::clamp(v, -static_cast<double>(clip),
                               static_cast<double>(clip))
                  : v;
}

float RoundBf16(float v) { return BFloat16ToFloat(FloatToBFloat16(v)); }

// The bf16 values either side of v (equal if v is one) and the midpoint.
void Bf16Neighbours(float v, float& lo, float& hi) {
  const uint16_t b = FloatToBFloat16(v);
  const float r = BFloat16ToFloat(b);
  if (r == v) {
    lo = hi = r;
    return;
  }
  // The next bf16 away from r toward v.
  const uint16_t other = (r < v) == (r >= 0) ? b + 1 : b - 1;
  lo = std::min(r, BFloat16ToFloat(other));
  hi = std::max(r, BFloat16ToFloat(other));
}

double Nonlinearity(const ModelConfig& c, double x) {
  const double a = c.nonlinearity_alpha, b = c.nonlinearity_beta;
  switch (c.nonlinearity) {
    case Nonlinearity::kTanh:
      return std::tanh(x);
    case Nonlinearity::kRelu:
      return std::max(x, 0.0);
    case Nonlinearity::kSigmoid:
      return Sigmoid(x);
    case Nonlinearity::kAffine:
      return a * x + b;
    case Nonlinearity::kLeakyRelu:
      return x < 0 ? a * x : x;
    case Nonlinearity::kThresholdedRelu:
      return x > a ? x : 0.0;
    case Nonlinearity::kScaledTanh:
      return a * std::tanh(b * x);
    case Nonlinearity::kHardSigmoid:
      return std::clamp(a * x + b, 0.0, 1.0);
    case Nonlinearity::kElu:
      return x < 0 ? a * (std::exp(x) - 1) : x;
    case Nonlinearity::kSoftsign:
      return x / (1 + std::abs(x));
    case Nonlinearity::kSoftplus:
      return std::log1p(std::exp(x));
  }
  return x;
}

std::vector<double> ToDouble(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace

RefMatrix::RefMatrix(const Tensor& t, int r0, int rows, WeightFormat format,
                     bool bf16_activations)
    : rows_(rows),
      cols_(static_cast<int>(t.shape[1])),
      format_(format),
      bf16_activations_(bf16_activations) {
  const float* src = t.values.data() + static_cast<size_t>(r0) * cols_;
  w_.resize(static_cast<size_t>(rows) * cols_);
  if (format == WeightFormat::kInt8) {
    // Quantized over exactly the rows the engine packs together.
    const QuantizedRows q = QuantizeRows(src, rows, cols_, cols_);
    q_.assign(q.q.begin(), q.q.end());
    scales_ = q.scales;
    for (size_t i = 0; i < w_.size(); ++i) {
      w_[i] = static_cast<double>(q_[i]) * scales_[i / cols_];
    }
  } else {
    for (size_t i = 0; i < w_.size(); ++i) {
      w_[i] = format == WeightFormat::kBF16 ? RoundBf16(src[i]) : src[i];
    }
  }
}

std::vector<double> RefMatrix::Times(const std::vector<float>& v,
                                     std::vector<double>* slack) const {
  std::vector<double> out(rows_, 0.0);
  if (slack) slack->assign(rows_, 0.0);
  if (format_ == WeightFormat::kInt8) {
    // The documented activation quantization, in float32 as the kernel
    // computes it.
    float amax = 0;
    for (float x : v) amax = std::max(amax, std::abs(x));
    std::vector<int> qx(cols_, 0);
    float sx = 0, inv = 0;
    if (amax > 0) {
      sx = amax / 127.0f;
      inv = 127.0f / amax;
    }
    std::vector<bool> ambiguous(cols_, false);
    for (int k = 0; k < cols_ && amax > 0; ++k) {
      const float t = v[k] * inv;
      qx[k] = static_cast<int>(std::nearbyint(t));
      ambiguous[k] = std::abs(t - std::floor(t) - 0.5f) < 1e-3f;
    }
    for (int r = 0; r < rows_; ++r) {
      int64_t sum = 0;
      for (int k = 0; k < cols_; ++k) {
        const int qw = q_[static_cast<size_t>(r) * cols_ + k];
        sum += static_cast<int64_t>(qw) * qx[k];
        if (slack && ambiguous[k]) {
          (*slack)[r] += std::abs(qw) * static_cast<double>(scales_[r]) * sx;
        }
      }
      out[r] = static_cast<double>(sum) * scales_[r] * sx;
    }
    return out;
  }
  for (int k = 0; k < cols_; ++k) {
    double x = v[k];
    double step = 0;  // bf16: the rounding step if v[k] is near a midpoint
    if (bf16_activations_) {
      x = RoundBf16(v[k]);
      float lo, hi;
      Bf16Neighbours(v[k], lo, hi);
      const float mid = 0.5f * (lo + hi);
      const float ulp = std::abs(std::nextafter(v[k], 2 * v[k] + 1) - v[k]);
      if (hi > lo && std::abs(v[k] - mid) <= 4 * ulp) step = hi - lo;
    }
    for (int r = 0; r < rows_; ++r) {
      const double w = w_[static_cast<size_t>(r) * cols_ + k];
      out[r] += w * x;
      if (slack) (*slack)[r] += std::abs(w) * step;
    }
  }
  return out;
}

ReferenceModel::ReferenceModel(const ModelConfig& config,
                               const std::map<std::string, Tensor>& tensors,
                               WeightFormat format, bool bf16_activations)
    : config_(config) {
  const int H = config.hidden_size;
  const int G = config.num_gates();
  const bool reset_first =
      config.cell == CellType::kGru && !config.gru_linear_before_reset;
  for (int l = 0; l < config.num_layers; ++l) {
    const std::string s = absl::StrCat("_l", l);
    Layer layer;
    const Tensor& w_ih = tensors.at("rnn.weight_ih" + s);
    const Tensor& w_hh = tensors.at("rnn.weight_hh" + s);
    layer.w_ih = RefMatrix(w_ih, 0, G * H, format, bf16_activations);
    // As the engine packs them: W_hh whole, or (reset-first GRU) its r and
    // z rows apart from W_hn.
    layer.w_hh = RefMatrix(w_hh, 0, reset_first ? 2 * H : G * H, format,
                           bf16_activations);
    if (reset_first) {
      layer.w_hn = RefMatrix(w_hh, 2 * H, H, format, bf16_activations);
    }
    if (config.proj_size > 0) {
      const Tensor& w_hr = tensors.at("rnn.weight_hr" + s);
      layer.w_hr =
          RefMatrix(w_hr, 0, config.proj_size, format, bf16_activations);
    }
    layer.b_ih.assign(G * H, 0.0);
    layer.b_hh.assign(G * H, 0.0);
    if (config.bias) {
      layer.b_ih = ToDouble(tensors.at("rnn.bias_ih" + s).values);
      layer.b_hh = ToDouble(tensors.at("rnn.bias_hh" + s).values);
    }
    if (config.lstm_peepholes) {
      layer.peephole = ToDouble(tensors.at("rnn.weight_peephole" + s).values);
    }
    layers_.push_back(std::move(layer));
  }
  if (config.head) {
    head_w_ = ToDouble(tensors.at("head.weight").values);
    head_b_ = ToDouble(tensors.at("head.bias").values);
  }
}

RefStep ReferenceModel::Step(int l, const std::vector<float>& x,
                             const std::vector<float>& h_prev,
                             const std::vector<float>& c_prev,
                             const std::vector<float>& engine_r) const {
  const Layer& w = layers_[l];
  const int H = config_.hidden_size;
  const float clip = config_.clip;
  const std::vector<double> wx = w.w_ih.Times(x);
  const std::vector<double> wh = w.w_hh.Times(h_prev);
  RefStep step;
  if (config_.cell == CellType::kRnn) {
    step.h.resize(H);
    for (int j = 0; j < H; ++j) {
      const double pre = wx[j] + w.b_ih[j] + wh[j] + w.b_hh[j];
      step.h[j] = Nonlinearity(config_, Clip(pre, clip));
    }
    step.h_slack.assign(H, 0.0);
    return step;
  }
  if (config_.cell == CellType::kGru) {
    step.gates.resize(3 * H);
    step.h.resize(H);
    const bool lbr = config_.gru_linear_before_reset;
    std::vector<double> hn;
    if (!lbr) {
      // r * h in float32 from the engine's r, as the engine forms it.
      std::vector<float> rh(H);
      for (int j = 0; j < H; ++j) rh[j] = engine_r[j] * h_prev[j];
      hn = w.w_hn.Times(rh);
    }
    for (int j = 0; j < H; ++j) {
      const double r =
          Sigmoid(Clip(wx[j] + w.b_ih[j] + wh[j] + w.b_hh[j], clip));
      const double z = Sigmoid(
          Clip(wx[H + j] + w.b_ih[H + j] + wh[H + j] + w.b_hh[H + j], clip));
      const double n_pre =
          lbr ? wx[2 * H + j] + w.b_ih[2 * H + j] +
                    r * (wh[2 * H + j] + w.b_hh[2 * H + j])
              : wx[2 * H + j] + w.b_ih[2 * H + j] + hn[j] + w.b_hh[2 * H + j];
      const double n = std::tanh(Clip(n_pre, clip));
      step.gates[j] = r;
      step.gates[H + j] = z;
      step.gates[2 * H + j] = n;
      step.h[j] = (1 - z) * n + z * h_prev[j];
    }
    step.h_slack.assign(H, 0.0);
    return step;
  }
  // LSTM.
  step.gates.resize(4 * H);
  step.c.resize(H);
  std::vector<double> h_full(H);
  for (int j = 0; j < H; ++j) {
    double pre[4];
    for (int g = 0; g < 4; ++g) {
      const int r = g * H + j;
      pre[g] = wx[r] + w.b_ih[r] + wh[r] + w.b_hh[r];
    }
    if (!w.peephole.empty()) {
      pre[0] += w.peephole[j] * c_prev[j];
      pre[1] += w.peephole[H + j] * c_prev[j];
    }
    const double i = Sigmoid(Clip(pre[0], clip));
    const double f =
        config_.lstm_input_forget ? 1 - i : Sigmoid(Clip(pre[1], clip));
    const double g = std::tanh(Clip(pre[2], clip));
    const double c = f * c_prev[j] + i * g;
    if (!w.peephole.empty()) pre[3] += w.peephole[2 * H + j] * c;
    const double o = Sigmoid(Clip(pre[3], clip));
    step.gates[j] = i;
    step.gates[H + j] = f;
    step.gates[2 * H + j] = g;
    step.gates[3 * H + j] = o;
    step.c[j] = c;
    h_full[j] = o * std::tanh(c);
  }
  if (w.w_hr.empty()) {
    step.h = h_full;
    step.h_slack.assign(H, 0.0);
    return step;
  }
  // The engine projects its own float32 o * tanh(c), within float32 noise
  // of this one: the slack covers activations that could round either way.
  std::vector<float> m(h_full.begin(), h_full.end());
  step.h = w.w_hr.Times(m, &step.h_slack);
  return step;
}

std::vector<double> ReferenceModel::Output(
    const std::vector<float>& h_last) const {
  const int P = static_cast<int>(h_last.size());
  std::vector<double> y(h_last.begin(), h_last.end());
  if (config_.head) {
    const int O = config_.head->output_size;
    std::vector<double> z(O);
    for (int o = 0; o < O; ++o) {
      z[o] = head_b_[o];
      for (int k = 0; k < P; ++k) {
        z[o] += head_w_[static_cast<size_t>(o) * P + k] * h_last[k];
      }
    }
    switch (config_.head->activation) {
      case Activation::kIdentity:
        break;
      case Activation::kSigmoid:
        for (double& v : z) v = Sigmoid(v);
        break;
      case Activation::kTanh:
        for (double& v : z) v = std::tanh(v);
        break;
      case Activation::kSoftmax: {
        const double m = *std::max_element(z.begin(), z.end());
        double sum = 0;
        for (double& v : z) sum += (v = std::exp(v - m));
        for (double& v : z) v /= sum;
        break;
      }
    }
    y = z;
  }
  if (config_.normalization && !config_.normalization->output_mean.empty()) {
    for (size_t o = 0; o < y.size(); ++o) {
      y[o] = y[o] * config_.normalization->output_std[o] +
             config_.normalization->output_mean[o];
    }
  }
  return y;
}

}  // namespace lstmserve::model::ref
