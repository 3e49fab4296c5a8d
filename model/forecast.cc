#include "model/forecast.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"

namespace lstmserve::model {
namespace {

// SplitMix64 (Steele, Lea and Flood 2014): small, fast, and the same
// sequence on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1), 53 bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Standard normal (Box-Muller, the cosine half).
  uint64_t state() const { return state_; }
  double Normal() {
    const double u1 = 1.0 - Uniform();  // (0, 1]: log is finite
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) *
           std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  uint64_t state_;
};

// Sample path k's generator (k >= 1): its own stream, so that a path does
// not depend on how many others were asked for.
SplitMix64 PathRng(uint64_t seed, int k) {
  SplitMix64 mix(seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(k)));
  return SplitMix64(mix.Next());
}

int Argmax(const float* p, int n) {
  int best = 0;
  for (int k = 1; k < n; ++k) {
    if (p[k] > p[best]) best = k;
  }
  return best;
}

// A class drawn from probabilities `p` (summing to about 1): the first k
// whose running sum passes a uniform draw; the most likely class if
// rounding leaves the draw above the total.
int Draw(SplitMix64& rng, const float* p, int n) {
  const double u = rng.Uniform();
  double sum = 0;
  for (int k = 0; k < n; ++k) {
    sum += p[k];
    if (u < sum) return k;
  }
  return Argmax(p, n);
}

bool IsSoftmax(const ModelConfig& config) {
  return config.head && config.head->activation == Activation::kSoftmax;
}

}  // namespace

std::vector<int> ForecastFeedback(const ModelConfig& config) {
  if (config.forecast && !config.forecast->feedback.empty()) {
    return config.forecast->feedback;
  }
  if (config.output_size() != config.input_size) return {};
  std::vector<int> identity(config.input_size);
  for (int j = 0; j < config.input_size; ++j) identity[j] = j;
  return identity;
}

absl::Status CheckForecast(const ModelConfig& config, int samples,
                           std::string_view name_view) {
  const std::string name(name_view);
  if (ForecastFeedback(config).empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model \"", name, "\" cannot forecast: its output size (",
        config.output_size(), ") differs from its input size (",
        config.input_size,
        ") and its config.json declares no \"forecast\": {\"feedback\": "
        "[...]} saying which output feeds each input"));
  }
  const bool scaled = config.forecast && !config.forecast->output_scale.empty();
  if (samples > 0 && !scaled && !IsSoftmax(config)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model \"", name,
        "\" has no sample paths: its config.json declares "
        "no \"forecast\": {\"output_scale\": [...]} (the noise to add to "
        "each output); ask for samples 0"));
  }
  return absl::OkStatus();
}

ForecastPath::ForecastPath(const Model& model, const ForecastOptions& options,
                           int index, std::span<const float> first_output)
    : index_(index),
      horizon_(options.horizon),
      output_size_(model.output_size()),
      softmax_(IsSoftmax(model.config())),
      feedback_(ForecastFeedback(model.config())),
      rng_state_(0) {
  if (model.config().forecast) scale_ = model.config().forecast->output_scale;
  rng_state_ = PathRng(options.seed, index).state();
  rows_.resize(static_cast<size_t>(horizon_) * output_size_);
  input_.resize(feedback_.size());
  MakeRow(first_output.data());
}

void ForecastPath::Accept(std::span<const float> output) {
  MakeRow(output.data());
}

void ForecastPath::MakeRow(const float* y) {
  SplitMix64 rng(rng_state_);
  const int O = output_size_;
  float* r = rows_.data() + static_cast<size_t>(rows_made_) * O;
  if (softmax_) {
    const int k = index_ == 0 ? Argmax(y, O) : Draw(rng, y, O);
    std::fill(r, r + O, 0.0f);
    r[k] = 1.0f;
  } else {
    std::copy(y, y + O, r);
    if (index_ > 0) {
      for (int k = 0; k < O; ++k) {
        r[k] = static_cast<float>(r[k] + scale_[k] * rng.Normal());
      }
    }
  }
  rng_state_ = rng.state();
  ++rows_made_;
  for (size_t j = 0; j < feedback_.size(); ++j) input_[j] = r[feedback_[j]];
}

}  // namespace lstmserve::model
