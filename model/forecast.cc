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

absl::StatusOr<ForecastPaths> Forecast(const Model& model,
                                       std::span<const float> state,
                                       const ForecastOptions& options,
                                       Workspace& workspace,
                                       std::string_view name) {
  const ModelConfig& config = model.config();
  if (options.horizon < 1 || options.samples < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("forecast horizon ", options.horizon, " and samples ",
                     options.samples, "; expected horizon >= 1, samples >= 0"));
  }
  if (state.size() != static_cast<size_t>(model.state_size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("forecast state has ", state.size(), " floats; expected ",
                     model.state_size()));
  }
  RETURN_IF_ERROR(CheckForecast(config, options.samples, name));
  const std::vector<int> feedback = ForecastFeedback(config);
  const bool softmax = IsSoftmax(config);
  const std::vector<float> no_scale;
  const std::vector<float>& scale =
      config.forecast ? config.forecast->output_scale : no_scale;

  const int paths = options.samples + 1;
  const int O = model.output_size();
  const int I = model.input_size();
  const size_t S = state.size();
  const int H = options.horizon;

  ForecastPaths result;
  result.horizon = H;
  result.output_size = O;
  result.forecast.resize(static_cast<size_t>(H) * O);
  result.samples.assign(options.samples,
                        std::vector<float>(static_cast<size_t>(H) * O));
  auto row = [&](int p, int i) {
    std::vector<float>& path = p == 0 ? result.forecast : result.samples[p - 1];
    return path.data() + static_cast<size_t>(i) * O;
  };

  std::vector<float> states(S * paths);
  for (int p = 0; p < paths; ++p) {
    std::copy(state.begin(), state.end(), states.begin() + S * p);
  }
  std::vector<float> outputs(static_cast<size_t>(paths) * O);
  RETURN_IF_ERROR(model.StateOutput(state.data(), outputs.data(), workspace));
  for (int p = 1; p < paths; ++p) {
    std::copy(outputs.begin(), outputs.begin() + O, outputs.begin() + p * O);
  }
  std::vector<SplitMix64> rngs;
  rngs.reserve(paths);
  for (int p = 0; p < paths; ++p) rngs.push_back(PathRng(options.seed, p));
  std::vector<float> inputs(static_cast<size_t>(paths) * I);
  std::vector<SequenceRef> refs(paths);

  for (int i = 0; i < H; ++i) {
    for (int p = 0; p < paths; ++p) {
      const float* y = outputs.data() + static_cast<size_t>(p) * O;
      float* r = row(p, i);
      if (softmax) {
        const int k = p == 0 ? Argmax(y, O) : Draw(rngs[p], y, O);
        std::fill(r, r + O, 0.0f);
        r[k] = 1.0f;
      } else {
        std::copy(y, y + O, r);
        if (p > 0) {
          for (int k = 0; k < O; ++k) {
            r[k] = static_cast<float>(r[k] + scale[k] * rngs[p].Normal());
          }
        }
      }
    }
    if (i + 1 == H) break;
    for (int p = 0; p < paths; ++p) {
      const float* r = row(p, i);
      float* x = inputs.data() + static_cast<size_t>(p) * I;
      for (int j = 0; j < I; ++j) x[j] = r[feedback[j]];
      refs[p] = SequenceRef{x, 1, states.data() + S * p,
                            outputs.data() + static_cast<size_t>(p) * O};
    }
    RETURN_IF_ERROR(model.RunBatch(refs, workspace));
  }
  return result;
}

}  // namespace lstmserve::model
