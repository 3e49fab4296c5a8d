// A float64 reference of what the engine computes with bf16 or int8 weights
// (docs/MODEL_FORMAT.md, "Weight formats"): the weights rounded or
// quantized exactly as the engine holds them, the activations rounded as
// the kernel rounds them (bf16 products with vdpbf16ps: to bf16; int8: per
// column, symmetric), everything else in float64. One layer's step at a
// time, from the engine's own float inputs and previous state (read back
// from its explain records), so that the comparison measures the kernels
// and the cell math of one step, without error carried over from earlier
// steps.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/model_config.h"
#include "model/tensor_file.h"
#include "model/weight_format.h"

namespace lstmserve::model::ref {

// A weight matrix as a kernel of `format` multiplies it.
class RefMatrix {
 public:
  RefMatrix() = default;
  // Rows [r0, r0 + rows) of a row-major tensor (I8 tensors not taken).
  RefMatrix(const Tensor& t, int r0, int rows, WeightFormat format,
            bool bf16_activations);

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  bool empty() const { return rows_ == 0; }

  // W v in float64, v rounded as the kernel rounds it. If `slack` is given,
  // it receives per row the most the result could move if an activation
  // lay so close to a rounding boundary (within float32 noise) that the
  // engine's float32 v, computed differently, might round the other way;
  // without `slack`, v must be exactly the engine's.
  std::vector<double> Times(const std::vector<float>& v,
                            std::vector<double>* slack = nullptr) const;

 private:
  int rows_ = 0, cols_ = 0;
  WeightFormat format_ = WeightFormat::kF32;
  bool bf16_activations_ = false;
  std::vector<double> w_;      // effective weights (int8: q * s)
  std::vector<int> q_;         // int8
  std::vector<float> scales_;  // int8
};

// One layer's step: gate activations (in the explain record's order), c
// (LSTM) and h, and per element of h the slack of its projection.
struct RefStep {
  std::vector<double> gates, c, h, h_slack;
};

class ReferenceModel {
 public:
  // `tensors` as given to Model::Create (float dtypes).
  ReferenceModel(const ModelConfig& config,
                 const std::map<std::string, Tensor>& tensors,
                 WeightFormat format, bool bf16_activations);

  // Layer l's step: x its input, h_prev/c_prev its state before the step
  // (c_prev ignored unless LSTM), engine_r the engine's r (GRU with
  // linear_before_reset false: the reference forms r * h from it, as the
  // engine does in float32).
  RefStep Step(int l, const std::vector<float>& x,
               const std::vector<float>& h_prev,
               const std::vector<float>& c_prev,
               const std::vector<float>& engine_r) const;

  // The output row from the last layer's h (head, activation, output
  // normalization), in float64.
  std::vector<double> Output(const std::vector<float>& h_last) const;

 private:
  struct Layer {
    RefMatrix w_ih, w_hh, w_hn, w_hr;
    std::vector<double> b_ih, b_hh, peephole;
  };
  ModelConfig config_;
  std::vector<Layer> layers_;
  std::vector<double> head_w_, head_b_;
};

}  // namespace lstmserve::model::ref
