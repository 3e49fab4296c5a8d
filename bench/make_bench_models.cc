// Writes the server benchmark's model repository: "bench_lstm" at the
// benchmark shape (LSTM, input 64, hidden 256, 2 layers, no head) and "tiny"
// (LSTM, input 1, hidden 1, 1 layer: what is left is the server's own
// overhead), both with random weights. Not serving models; for
// bench/run_server_bench.sh.
//
//   build/bench/make_bench_models OUT_REPO
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "model/model_config.h"
#include "model/tensor_file.h"

namespace lm = lstmserve::model;

namespace {

bool WriteModel(const std::string& dir, const lm::ModelConfig& c,
                uint32_t seed) {
  std::mt19937 rng(seed);
  const float bound = 1.0f / std::sqrt(static_cast<float>(c.hidden_size));
  std::uniform_real_distribution<float> dist(-bound, bound);
  std::map<std::string, lm::Tensor> tensors;
  const int64_t gh = int64_t{c.num_gates()} * c.hidden_size;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    lm::Tensor t;
    t.shape = shape;
    t.values.resize(t.num_elements());
    for (float& v : t.values) v = dist(rng);
    tensors[name] = std::move(t);
  };
  for (int k = 0; k < c.num_layers; ++k) {
    const std::string s = "_l" + std::to_string(k);
    add("rnn.weight_ih" + s, {gh, k == 0 ? c.input_size : c.hidden_size});
    add("rnn.weight_hh" + s, {gh, c.hidden_size});
    add("rnn.bias_ih" + s, {gh});
    add("rnn.bias_hh" + s, {gh});
  }
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << lm::ModelConfigToJson(c);
  std::ofstream weights(dir + "/model.safetensors", std::ios::binary);
  weights << lm::SerializeSafetensors(tensors);
  return weights.good();
}

lm::ModelConfig Lstm(int input, int hidden, int layers, const char* what) {
  lm::ModelConfig c;
  c.cell = lm::CellType::kLstm;
  c.input_size = input;
  c.hidden_size = hidden;
  c.num_layers = layers;
  c.description = what;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help") {
    std::cerr << "usage: make_bench_models OUT_REPO\n"
                 "Writes OUT_REPO/bench_lstm/1 (LSTM 64->256x2, random) and "
                 "OUT_REPO/tiny/1 (LSTM 1->1x1, random).\n";
    return argc == 2 ? 0 : 2;
  }
  const std::string repo = argv[1];
  if (!WriteModel(repo + "/bench_lstm/1",
                  Lstm(64, 256, 2, "benchmark shape, random weights"), 1) ||
      !WriteModel(repo + "/tiny/1",
                  Lstm(1, 1, 1, "server overhead probe, random weights"), 2)) {
    std::cerr << "make_bench_models: cannot write under " << repo << '\n';
    return 1;
  }
  std::cout << "wrote " << repo << "/bench_lstm/1 and " << repo << "/tiny/1\n";
  return 0;
}
