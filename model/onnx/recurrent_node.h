// One ONNX LSTM / GRU / RNN node as one lstmserve layer: its attributes
// checked against what the engine runs, its W/R/B/P reordered from ONNX's
// gate orders and layouts into lstmserve's (PyTorch's) tensors.
//
// Thread-safety: free functions.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "model/model_config.h"
#include "model/onnx/const_tensor.h"
#include "model/tensor_file.h"

namespace onnx {
class NodeProto;
}

namespace lstmserve::model::onnx_import {

struct RecurrentLayer {
  CellType cell = CellType::kLstm;
  int input_size = 0;
  int hidden_size = 0;
  int layout = 0;  // 0: X is [seq, batch, in]; 1: [batch, seq, in]
  // The config fields this node asks for (see ModelConfig).
  float clip = 0.0f;
  bool lstm_input_forget = false;
  bool gru_linear_before_reset = true;
  Nonlinearity nonlinearity = Nonlinearity::kTanh;
  float nonlinearity_alpha = 0.0f;
  float nonlinearity_beta = 0.0f;
  bool has_bias = false;
  bool has_peepholes = false;
  // lstmserve layout: w_ih [G*H, in], w_hh [G*H, H], b_ih, b_hh [G*H]
  // (zeros without B), peephole [3*H] (zeros without P; LSTM only).
  Tensor w_ih, w_hh, b_ih, b_hh, peephole;
};

// `what` names the node in messages ("model.onnx: node 'lstm1' (LSTM)").
// `constant(i)` is node input i as a constant, or null when it is absent
// or not a constant; X, sequence_lens and the initial states are the
// caller's to check.
absl::StatusOr<RecurrentLayer> ConvertRecurrentNode(
    const onnx::NodeProto& node, const std::string& what,
    const std::function<const ConstTensor*(int)>& constant);

}  // namespace lstmserve::model::onnx_import
