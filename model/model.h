// A loaded, immutable LSTM/GRU/RNN model and its inference entry points.
//
// Semantics are exactly torch.nn.LSTM / torch.nn.GRU / torch.nn.RNN
// (batch_first=False, gate order i,f,g,o and r,z,n; GRU applies r after the
// hidden matmul), or the ONNX operators' variants the config selects
// (peepholes, input_forget, clip, GRU linear_before_reset false, the ONNX
// RNN activations), optionally followed by torch.nn.Linear and an
// activation, with optional input/output normalization (see
// ../shared/DESIGN.md and docs/MODEL_FORMAT.md).
//
// Session state is one flat float buffer of state_size() floats. Its layout,
// per layer l = 0..num_layers-1 in order: h_l (layer_output_size floats),
// then for LSTM c_l (hidden_size floats). All zeros is PyTorch's default
// initial state.
//
// Thread-safety: a Model is immutable after Create/Load and may be shared
// freely across threads (typically as shared_ptr<const Model>). Each calling
// thread brings its own Workspace; a Workspace must not be used by two calls
// at once. The caller owns all input, output and state buffers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/kernels.h"
#include "model/model_config.h"
#include "model/tensor_file.h"

namespace lstmserve::model {

class Workspace;
struct LayerWeights;

// One session's work item for the batched entry point: `steps` rows of
// input_size() floats (row-major), the session's state buffer (updated in
// place), and room for `steps` rows of output_size() floats.
struct SequenceRef {
  const float* inputs = nullptr;
  int steps = 0;
  float* state = nullptr;
  float* outputs = nullptr;
};

class Model {
 public:
  struct Options {
    ConfigLimits config_limits;
    SafetensorsLimits safetensors_limits;
  };

  // Loads a version directory holding config.json and model.safetensors.
  static absl::StatusOr<std::unique_ptr<Model>> Load(
      const std::string& version_dir, const Options& options = {});

  // Builds a model from a parsed config and its tensors (PyTorch names under
  // "rnn." and "head."). Checks that exactly the expected tensors are present
  // with the expected shapes and finite values. `source` names the origin in
  // error messages.
  static absl::StatusOr<std::unique_ptr<Model>> Create(
      const ModelConfig& config, const std::map<std::string, Tensor>& tensors,
      const std::string& source = "model");

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  int input_size() const { return config_.input_size; }
  int output_size() const { return config_.output_size(); }
  // Floats in one session's state buffer.
  int state_size() const { return state_size_; }
  // Learned parameters (weights and biases, head included).
  int64_t parameter_count() const { return parameter_count_; }
  // Multiply-adds x2 per time step for one session (the FLOP count used for
  // throughput reporting).
  int64_t flops_per_step() const { return flops_per_step_; }

  // Entry point (a): one session's chunk of `steps` steps. `inputs` holds
  // steps x input_size() floats, `state` state_size() floats (read, then
  // overwritten with the state after the last step), `outputs` receives
  // steps x output_size() floats. The input projection for the whole chunk
  // is one matrix product. INVALID_ARGUMENT on null buffers or steps < 1.
  absl::Status RunChunk(const float* inputs, int steps, float* state,
                        float* outputs, Workspace& workspace) const;

  // Entry point (b): B sessions advanced by one step each, one batched
  // matrix product per layer. inputs[b], states[b], outputs[b] point at
  // session b's input row, state buffer and output row.
  absl::Status StepBatch(std::span<const float* const> inputs,
                         std::span<float* const> states,
                         std::span<float* const> outputs,
                         Workspace& workspace) const;

  // Entry point (c): B sessions, each with its own chunk length; a session
  // leaves the batch when its chunk ends. Entries must not share state
  // buffers. (a) and (b) are special cases of this one.
  absl::Status RunBatch(std::span<const SequenceRef> sequences,
                        Workspace& workspace) const;

 private:
  Model(ModelConfig config);

  ModelConfig config_;
  std::vector<LayerWeights> layers_;
  // Head: output_size x layer_output_size (row-major) and bias.
  std::vector<float> head_weight_;
  std::vector<float> head_bias_;
  // What the kernels read: pointers into layers_ and the head.
  std::vector<kernels::LayerView> layer_views_;
  kernels::NetView net_;
  int state_size_ = 0;
  int64_t parameter_count_ = 0;
  int64_t flops_per_step_ = 0;
};

// Scratch memory for Model's entry points. Grows to the largest batch it has
// seen and is then reused, so steady-state calls do not allocate.
// Thread-compatible: one Workspace per thread.
class Workspace {
 public:
  Workspace();
  ~Workspace();
  Workspace(Workspace&&) noexcept;
  Workspace& operator=(Workspace&&) noexcept;

  // Bytes currently held.
  size_t bytes() const;

 private:
  friend class Model;
  struct Buffers;
  std::unique_ptr<Buffers> buffers_;
};

}  // namespace lstmserve::model
