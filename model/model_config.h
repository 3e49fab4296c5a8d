// A model version's config.json: the architecture of the network and the
// optional head and normalization, validated against documented limits.
//
// Thread-safety: plain value types and free functions; safe to share const.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/weight_format.h"

namespace lstmserve::model {

enum class CellType { kLstm, kGru, kRnn };
enum class Activation { kIdentity, kSoftmax, kSigmoid, kTanh };
// The plain RNN cell's h = f(W_ih x + b_ih + W_hh h + b_hh): PyTorch's
// nn.RNN has tanh and relu; the rest are the ONNX RNN operator's
// activations, with alpha/beta as that specification defines them.
enum class Nonlinearity {
  kTanh,
  kRelu,
  kSigmoid,
  kAffine,           // alpha * x + beta
  kLeakyRelu,        // x < 0 ? alpha * x : x
  kThresholdedRelu,  // x > alpha ? x : 0
  kScaledTanh,       // alpha * tanh(beta * x)
  kHardSigmoid,      // max(0, min(1, alpha * x + beta))
  kElu,              // x < 0 ? alpha * (exp(x) - 1) : x
  kSoftsign,         // x / (1 + |x|)
  kSoftplus,         // log(1 + exp(x))
};

// "lstm" / "gru" / "rnn"; "identity" / "softmax" / "sigmoid" / "tanh";
// "tanh" / "relu" / "sigmoid" / "affine" / "leaky_relu" / ... (snake_case).
std::string_view CellTypeName(CellType cell);
std::string_view ActivationName(Activation activation);
std::string_view NonlinearityName(Nonlinearity nonlinearity);
std::optional<Nonlinearity> ParseNonlinearity(std::string_view name);
// How many of alpha, beta the nonlinearity reads (0, 1 or 2), and their
// defaults (ONNX's, where it has them; NaN where the value is required).
int NonlinearityParams(Nonlinearity nonlinearity);
float NonlinearityDefaultAlpha(Nonlinearity nonlinearity);
float NonlinearityDefaultBeta(Nonlinearity nonlinearity);

struct HeadConfig {
  int output_size = 0;
  Activation activation = Activation::kIdentity;
};

// Inputs are mapped as (x - input_mean) / input_std before the network;
// outputs as y * output_std + output_mean after it. Each pair is either both
// present with the right size or both absent (empty).
struct Normalization {
  std::vector<float> input_mean, input_std;
  std::vector<float> output_mean, output_std;
};

// How a model forecasts (config.json's "forecast", docs/MODEL_FORMAT.md):
// which output feeds each input when its outputs are fed back as its next
// inputs, and the noise its sample paths add.
struct ForecastConfig {
  // Input j takes output feedback[j] (input_size indices, each in
  // [0, output_size)). Empty: the identity, which needs output_size ==
  // input_size.
  std::vector<int> feedback;
  // Standard deviation of the Gaussian noise a sample path adds to each
  // output, in the output's units (output_size values > 0). Empty: the
  // model has no sample paths, unless its head is softmax (which samples
  // from its probabilities and must not declare a scale).
  std::vector<float> output_scale;
};

struct ModelConfig {
  CellType cell = CellType::kLstm;
  int input_size = 0;
  int hidden_size = 0;
  int num_layers = 1;
  int proj_size = 0;  // LSTM only; 0 = no projection
  bool bias = true;
  // Variants the ONNX operators define (docs/MODEL_FORMAT.md). Defaults are
  // PyTorch's cells.
  // RNN only: the cell's nonlinearity and the alpha/beta it reads.
  Nonlinearity nonlinearity = Nonlinearity::kTanh;
  float nonlinearity_alpha = 0.0f;
  float nonlinearity_beta = 0.0f;
  // GRU only: false is ONNX linear_before_reset=0,
  // n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
  bool gru_linear_before_reset = true;
  // LSTM only: peephole weights rnn.weight_peephole_l{k} ([3*H]: i, f, o),
  // and ONNX input_forget (f = 1 - i; the f rows of the weights are unused).
  bool lstm_peepholes = false;
  bool lstm_input_forget = false;
  // Every cell: gate pre-activations are clamped to [-clip, clip] before
  // their activation (ONNX clip). 0 = no clipping.
  float clip = 0.0f;
  // How the recurrent weight matrices are stored and multiplied ("weights":
  // "f32" | "bf16" | "int8"; Model::Options::weights overrides it). Biases,
  // peepholes and the head stay float32 in every format.
  WeightFormat weights = WeightFormat::kF32;
  std::optional<HeadConfig> head;
  std::optional<Normalization> normalization;
  // Absent: forecasting with the defaults (identity feedback, no noise).
  std::optional<ForecastConfig> forecast;
  std::string description;
  std::vector<std::string> input_names;
  std::vector<std::string> output_names;

  // Width of each layer's h: proj_size if set, else hidden_size.
  int layer_output_size() const {
    return proj_size > 0 ? proj_size : hidden_size;
  }
  // Width of one output row: the head's output_size, else layer_output_size().
  int output_size() const {
    return head ? head->output_size : layer_output_size();
  }
  // Gates per layer: 4 for LSTM (i, f, g, o), 3 for GRU (r, z, n), 1 for RNN.
  int num_gates() const {
    return cell == CellType::kLstm ? 4 : cell == CellType::kGru ? 3 : 1;
  }
};

// Bounds that reject absurd configs before any memory is allocated for them.
struct ConfigLimits {
  int max_input_size = 1 << 16;
  int max_hidden_size = 1 << 14;
  int max_layers = 64;
  int max_output_size = 1 << 16;
  uint64_t max_config_bytes = 16u << 20;
  // Arrays and objects nested deeper than this are refused before parsing:
  // the JSON parser and what walks its result recurse per level.
  int max_json_depth = 64;
};

// Parses and validates config.json text. `file_name` is used in error
// messages only. INVALID_ARGUMENT on bad JSON, unknown cell or activation,
// missing or out-of-range sizes, proj_size on a GRU or >= hidden_size,
// normalization vectors of the wrong length or non-positive/non-finite std,
// an unknown "weights" format, a "forecast" whose feedback or output_scale
// has the wrong length or out-of-range values.
// Unknown keys are ignored (forward compatibility).
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text,
                                             std::string_view file_name,
                                             const ConfigLimits& limits = {});

// Reads and parses a config.json file (NOT_FOUND if it does not exist).
absl::StatusOr<ModelConfig> ReadModelConfig(const std::string& path,
                                            const ConfigLimits& limits = {});

// The shortest decimal that reads back as `v` in float32, as a double: so
// JSON shows 0.9 for 0.9f, not 0.8999999761581421.
double ShortestDouble(float v);

// Serialises a config back to JSON text (used by tools and tests).
std::string ModelConfigToJson(const ModelConfig& config);

}  // namespace lstmserve::model
