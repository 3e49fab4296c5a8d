// Forecasting: a model run ahead of a state on its own predictions, each
// step's output fed back as the next step's input (docs/MODEL_FORMAT.md,
// "Forecasting", says what a config declares; docs/API.md, "Forecast", what
// a client gets).
//
// Row i of a path is the path's value for the input at step from + i, in
// the model's output units, where `from` is the step the state is at: row 0
// comes from the state itself (Model::StateOutput: the output the step that
// made the state returned), and row i + 1 from one engine step on row i fed
// back through the feedback mapping. So a horizon of N costs N - 1 engine
// steps per path, and the deterministic path's row 0 is exactly the last
// output the session returned.
//
// What a row is: the model's output (identity, sigmoid and tanh heads, no
// head); for a softmax head, the one-hot of the class chosen from the
// output probabilities (the most likely one: greedy decoding). Sample paths
// add Gaussian noise of the config's output_scale to each output
// (non-softmax heads), or draw each step's class from the probabilities
// (softmax heads); their rows are the noisy values or the drawn one-hots,
// which is what they feed back.
//
// Every path runs on its own copy of the state; the paths form one batch of
// the engine per step. Samples are reproducible: the same model, state,
// horizon, sample count and seed give the same paths bit for bit (the
// random numbers come from a fixed generator, SplitMix64 per path, not from
// the C++ library's distributions).
//
// Thread-safety: free functions; the Workspace is the caller's, as for
// Model's entry points.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/model.h"

namespace lstmserve::model {

struct ForecastOptions {
  int horizon = 1;    // rows per path, at least 1
  int samples = 0;    // noisy sample paths besides the deterministic one
  uint64_t seed = 0;  // of the sample paths' noise
};

struct ForecastPaths {
  int horizon = 0;
  int output_size = 0;
  std::vector<float> forecast;              // horizon x output_size
  std::vector<std::vector<float>> samples;  // each horizon x output_size
};

// Input j of the next step takes output ForecastFeedback(config)[j]: the
// config's forecast.feedback, else the identity when the output and input
// sizes agree; empty when the model cannot forecast.
std::vector<int> ForecastFeedback(const ModelConfig& config);

// OK if the model can forecast with `samples` sample paths; else
// FAILED_PRECONDITION saying why (no feedback mapping; samples without an
// output_scale), naming the model as `name`.
absl::Status CheckForecast(const ModelConfig& config, int samples,
                           std::string_view name);

// The paths from `state` (state_size floats, not modified). CheckForecast
// first; INVALID_ARGUMENT for a horizon below 1, negative samples or a
// state of the wrong size.
absl::StatusOr<ForecastPaths> Forecast(const Model& model,
                                       std::span<const float> state,
                                       const ForecastOptions& options,
                                       Workspace& workspace,
                                       std::string_view name = "model");

// Engine steps a forecast runs: (horizon - 1) x (samples + 1).
inline int64_t ForecastSteps(int horizon, int samples) {
  return static_cast<int64_t>(horizon - 1) * (samples + 1);
}

}  // namespace lstmserve::model
