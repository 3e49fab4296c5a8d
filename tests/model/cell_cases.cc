#include "tests/model/cell_cases.h"

namespace lstmserve::model {

ModelConfig CellConfig(CellType cell, int in, int hidden, int layers, int proj,
                       bool bias, int head, Activation act) {
  ModelConfig c;
  c.cell = cell;
  c.input_size = in;
  c.hidden_size = hidden;
  c.num_layers = layers;
  c.proj_size = proj;
  c.bias = bias;
  if (head > 0) c.head = HeadConfig{head, act};
  return c;
}

std::vector<CellCase> CellCases() {
  ModelConfig normalized =
      CellConfig(CellType::kGru, 3, 16, 2, 0, true, 2, Activation::kIdentity);
  normalized.normalization = Normalization{
      {0.5f, -1.0f, 2.0f}, {2.0f, 0.5f, 3.0f}, {10.0f, -3.0f}, {4.0f, 0.25f}};
  // The ONNX cell variants (kernels_variants.inc), on odd sizes too.
  ModelConfig rnn_relu =
      CellConfig(CellType::kRnn, 3, 20, 2, 0, true, 2, Activation::kSoftmax);
  rnn_relu.nonlinearity = Nonlinearity::kRelu;
  ModelConfig rnn_clip_odd =
      CellConfig(CellType::kRnn, 7, 5, 3, 0, false, 0, Activation::kIdentity);
  rnn_clip_odd.nonlinearity = Nonlinearity::kScaledTanh;
  rnn_clip_odd.nonlinearity_alpha = 1.5f;
  rnn_clip_odd.nonlinearity_beta = 0.7f;
  rnn_clip_odd.clip = 0.3f;
  ModelConfig gru_reset_first =
      CellConfig(CellType::kGru, 4, 24, 2, 0, true, 3, Activation::kSigmoid);
  gru_reset_first.gru_linear_before_reset = false;
  ModelConfig gru_reset_first_odd =
      CellConfig(CellType::kGru, 7, 5, 2, 0, false, 0, Activation::kIdentity);
  gru_reset_first_odd.gru_linear_before_reset = false;
  gru_reset_first_odd.clip = 0.2f;
  ModelConfig lstm_onnx =
      CellConfig(CellType::kLstm, 5, 17, 2, 0, true, 2, Activation::kTanh);
  lstm_onnx.lstm_peepholes = true;
  lstm_onnx.lstm_input_forget = true;
  lstm_onnx.clip = 0.25f;
  ModelConfig gru_clip_wide =
      CellConfig(CellType::kGru, 10, 48, 1, 0, true, 0, Activation::kIdentity);
  gru_clip_wide.clip = 1.5f;
  ModelConfig lstm_peephole_proj =
      CellConfig(CellType::kLstm, 3, 16, 2, 5, true, 0, Activation::kIdentity);
  lstm_peephole_proj.lstm_peepholes = true;
  return {
      {"rnn_relu", rnn_relu},
      {"rnn_clip_odd", rnn_clip_odd},
      {"gru_reset_first", gru_reset_first},
      {"gru_reset_first_odd", gru_reset_first_odd},
      {"lstm_onnx", lstm_onnx},
      {"lstm_peephole_proj", lstm_peephole_proj},
      {"lstm_small",
       CellConfig(CellType::kLstm, 1, 8, 1, 0, true, 0, Activation::kIdentity)},
      {"lstm_proj_softmax",
       CellConfig(CellType::kLstm, 5, 32, 2, 7, true, 4, Activation::kSoftmax)},
      {"lstm_nobias_tanh",
       CellConfig(CellType::kLstm, 16, 24, 3, 0, false, 3, Activation::kTanh)},
      {"gru_sigmoid",
       CellConfig(CellType::kGru, 4, 40, 2, 0, true, 2, Activation::kSigmoid)},
      {"gru_normalized", normalized},
      // Sizes that leave the kernels' SIMD panels partly filled (a gate
      // block of 4 or 15 rows, depths that are no multiple of 8), and the
      // server's benchmark "tiny" model.
      {"lstm_tiny",
       CellConfig(CellType::kLstm, 1, 1, 1, 0, true, 0, Activation::kIdentity)},
      {"gru_odd",
       CellConfig(CellType::kGru, 7, 5, 2, 0, true, 0, Activation::kIdentity)},
      {"lstm_proj_odd", CellConfig(CellType::kLstm, 9, 17, 2, 3, false, 1,
                                   Activation::kIdentity)},
      // PyTorch's RNN, and widths past one 32-value block of the bf16 and
      // int8 kernels' activations (odd ones too).
      {"rnn_tanh",
       CellConfig(CellType::kRnn, 6, 40, 2, 0, true, 2, Activation::kIdentity)},
      {"lstm_wide", CellConfig(CellType::kLstm, 33, 64, 2, 0, true, 3,
                               Activation::kIdentity)},
      {"gru_clip_wide", gru_clip_wide},
  };
}

}  // namespace lstmserve::model
