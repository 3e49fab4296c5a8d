#include "model/random_weights.h"

#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"

namespace lstmserve::model {

std::map<std::string, Tensor> RandomTensors(const ModelConfig& c, uint32_t seed,
                                            float scale) {
  std::mt19937 rng(seed);
  if (scale == 0) scale = 1.0f / std::sqrt(static_cast<float>(c.hidden_size));
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::map<std::string, Tensor> tensors;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    Tensor t;
    t.shape = std::move(shape);
    t.values.resize(t.num_elements());
    for (float& v : t.values) v = dist(rng);
    tensors[name] = std::move(t);
  };
  const int64_t gh = int64_t{c.num_gates()} * c.hidden_size;
  const int out = c.layer_output_size();
  for (int k = 0; k < c.num_layers; ++k) {
    const std::string s = absl::StrCat("_l", k);
    add("rnn.weight_ih" + s, {gh, k == 0 ? c.input_size : out});
    add("rnn.weight_hh" + s, {gh, out});
    if (c.bias) {
      add("rnn.bias_ih" + s, {gh});
      add("rnn.bias_hh" + s, {gh});
    }
    if (c.proj_size > 0) add("rnn.weight_hr" + s, {out, c.hidden_size});
    if (c.cell == CellType::kLstm && c.lstm_peepholes) {
      add("rnn.weight_peephole" + s, {int64_t{3} * c.hidden_size});
    }
  }
  if (c.head) {
    add("head.weight", {c.head->output_size, out});
    add("head.bias", {c.head->output_size});
  }
  return tensors;
}

}  // namespace lstmserve::model
