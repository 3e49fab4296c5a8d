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
// Weights: the recurrent weight matrices are held and multiplied as float32,
// bfloat16 or int8 (WeightFormat; config.json's "weights", overridden by
// Options::weights), converted once at load from whatever the safetensors
// file holds (docs/MODEL_FORMAT.md, "Weight formats"). Biases, peepholes and
// the head stay float32; activations are float32 between layers.
//
// Explain records (the "record the gates" path, off unless a SequenceRef
// asks for it): explain_size() floats per step. For each layer l in order:
//   LSTM: i, f, g, o (hidden_size floats each: the gate activations the
//         step used; f is 1 - i with lstm_input_forget), then c (hidden
//         size), then h (layer_output_size: the projected h with proj_size);
//   GRU:  r, z, n (hidden_size each), then h;
//   RNN:  h (the cell has no gates).
// explain_layout() lists the fields with their offsets. Recording copies
// values the step computed anyway: outputs and state are bit for bit the
// same with and without it.
//
// Thread-safety: a Model is immutable after Create/Load and may be shared
// freely across threads (typically as shared_ptr<const Model>). Each calling
// thread brings its own Workspace; a Workspace must not be used by two calls
// at once. The caller owns all input, output and state buffers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/kernel_path.h"
#include "model/kernels.h"
#include "model/model_config.h"
#include "model/tensor_file.h"
#include "model/weight_format.h"

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
  // Optional: room for `steps` explain records (steps x explain_size()
  // floats, step t at explain + t * explain_size()); null = not recorded.
  float* explain = nullptr;
};

// One field of an explain record (see the layout above).
struct ExplainField {
  int layer = 0;
  // "i", "f", "g", "o" (LSTM gates), "r", "z", "n" (GRU gates), "c" (LSTM
  // cell state), "h" (hidden state).
  std::string name;
  int offset = 0;  // floats from the start of the record
  int size = 0;    // units
};

class Model {
 public:
  struct Options {
    ConfigLimits config_limits;
    SafetensorsLimits safetensors_limits;
    // The weight format to hold and compute in; nullopt: config.json's
    // "weights" (default f32). A server passes a per-model override here.
    std::optional<WeightFormat> weights;
    // The kernels to run (model/kernel_path.h); nullopt: $LSTMSERVE_ISA if
    // set, else the best this CPU has. For tests and benchmarks.
    std::optional<KernelPath> kernel_path;
  };

  // Loads a version directory holding config.json and model.safetensors.
  static absl::StatusOr<std::unique_ptr<Model>> Load(
      const std::string& version_dir, const Options& options = {});

  // Builds a model from a parsed config and its tensors (PyTorch names under
  // "rnn." and "head."). Checks that exactly the expected tensors are present
  // with the expected shapes and finite values; a weight matrix may be I8
  // with its per-row scales in "<name>.scale". `source` names the origin in
  // error messages. Only options.weights and options.kernel_path are read.
  // FAILED_PRECONDITION if the kernel path asked for is not available here;
  // INVALID_ARGUMENT for a bad $LSTMSERVE_ISA.
  static absl::StatusOr<std::unique_ptr<Model>> Create(
      const ModelConfig& config, const std::map<std::string, Tensor>& tensors,
      const std::string& source = "model", const Options& options = {});

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // The config as loaded, with `weights` the format actually used.
  const ModelConfig& config() const { return config_; }
  WeightFormat weight_format() const { return config_.weights; }
  // The kernels this model runs (model/kernel_path.h).
  const KernelChoice& kernels() const { return kernels_; }
  // Bytes of the weights in their format, as `lstm-model convert` writes
  // them: the matrices at 4, 2 or 1 bytes per weight, int8's per-row
  // scales, and the float32 biases, peepholes and head.
  int64_t weight_bytes() const { return weight_bytes_; }
  // Floats in one step's explain record, and its fields in order.
  int explain_size() const { return explain_size_; }
  const std::vector<ExplainField>& explain_layout() const {
    return explain_layout_;
  }
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
  // `explain`, if given, receives steps x explain_size() floats.
  absl::Status RunChunk(const float* inputs, int steps, float* state,
                        float* outputs, Workspace& workspace,
                        float* explain = nullptr) const;

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

  // The output row a step that left a session in `state` produced: the
  // head (and the output normalization) applied to the last layer's h, bit
  // for bit what RunBatch returned for that step. For a state no step made
  // (the zero or an initial state) it is what the head makes of its h.
  // `state` holds state_size() floats, `output` receives output_size().
  absl::Status StateOutput(const float* state, float* output,
                           Workspace& workspace) const;

 private:
  Model(ModelConfig config);

  ModelConfig config_;
  KernelChoice kernels_;
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
  int64_t weight_bytes_ = 0;
  int explain_size_ = 0;
  std::vector<ExplainField> explain_layout_;
  // Widest product input (bf16/int8 scratch per column).
  int max_product_width_ = 0;
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
