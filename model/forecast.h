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
// Every path runs on its own copy of the state (ForecastPath below; the
// server steps paths through its batch queue). Samples are reproducible:
// the same model, state, horizon and seed give the same path k bit for bit,
// however many paths were asked for (the random numbers come from a fixed
// generator, SplitMix64 per path, not from the C++ library's
// distributions; the engine is batch-invariant).
//
// Thread-safety: pure functions; a ForecastPath belongs to one caller.
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

// Input j of the next step takes output ForecastFeedback(config)[j]: the
// config's forecast.feedback, else the identity when the output and input
// sizes agree; empty when the model cannot forecast.
std::vector<int> ForecastFeedback(const ModelConfig& config);

// OK if the model can forecast with `samples` sample paths; else
// FAILED_PRECONDITION saying why (no feedback mapping; samples without an
// output_scale), naming the model as `name`.
absl::Status CheckForecast(const ModelConfig& config, int samples,
                           std::string_view name);

// One path of a forecast, stepped by its caller (the server runs each step
// through its batch queue, batched with other sessions' work). Not
// thread-safe; movable.
class ForecastPath {
 public:
  // Path `index` (0: the deterministic one; k >= 1: sample path k) of a
  // forecast of `model` with `options` (CheckForecast must have passed),
  // from a state whose StateOutput is `first_output` (output_size floats):
  // makes row 0.
  ForecastPath(const Model& model, const ForecastOptions& options, int index,
               std::span<const float> first_output);

  // All horizon rows are made.
  bool done() const { return rows_made_ == horizon_; }
  // The next step's input (input_size floats): the last row fed back.
  const std::vector<float>& input() const { return input_; }
  // The output of the step run on input(): makes the next row.
  void Accept(std::span<const float> output);
  // horizon x output_size; complete once done().
  std::vector<float>& rows() { return rows_; }

 private:
  void MakeRow(const float* y);

  int index_;
  int horizon_;
  int output_size_;
  bool softmax_;
  std::vector<int> feedback_;
  std::vector<float> scale_;
  uint64_t rng_state_;
  int rows_made_ = 0;
  std::vector<float> rows_;
  std::vector<float> input_;
};

// Engine steps a forecast runs: (horizon - 1) x (samples + 1).
inline int64_t ForecastSteps(int horizon, int samples) {
  return static_cast<int64_t>(horizon - 1) * (samples + 1);
}

}  // namespace lstmserve::model
