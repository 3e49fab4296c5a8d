// Writes the server benchmark's model repository: "bench_lstm" at the
// benchmark shape (LSTM, input 64, hidden 256, 2 layers, no head), the same
// weights converted to bf16 and int8 ("bench_lstm_bf16", "bench_lstm_int8":
// what `lstm-model convert` writes), and "tiny" (LSTM, input 1, hidden 1,
// 1 layer: what is left is the server's own overhead), all with random
// weights. Not serving models; for bench/run_server_bench.sh.
//
//   build/bench/make_bench_models OUT_REPO
#include <filesystem>
#include <fstream>
#include <iostream>

#include "model/convert.h"
#include "model/model_config.h"
#include "model/random_weights.h"
#include "model/tensor_file.h"

namespace lm = lstmserve::model;

namespace {

bool WriteModel(const std::string& dir, lm::ModelConfig c, uint32_t seed,
                lm::WeightFormat format = lm::WeightFormat::kF32) {
  const std::map<std::string, lm::Tensor> tensors =
      lm::ConvertTensors(lm::RandomTensors(c, seed), format);
  c.weights = format;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << lm::ModelConfigToJson(c);
  std::ofstream weights(dir + "/model.safetensors", std::ios::binary);
  weights << lm::SerializeSafetensorsAsStored(tensors);
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
                 "Writes OUT_REPO/bench_lstm/1 (LSTM 64->256x2, random), "
                 "bench_lstm_bf16/1 and bench_lstm_int8/1 (the same weights "
                 "converted) and OUT_REPO/tiny/1 (LSTM 1->1x1, random).\n";
    return argc == 2 ? 0 : 2;
  }
  const std::string repo = argv[1];
  const lm::ModelConfig bench =
      Lstm(64, 256, 2, "benchmark shape, random weights");
  if (!WriteModel(repo + "/bench_lstm/1", bench, 1) ||
      !WriteModel(repo + "/bench_lstm_bf16/1", bench, 1,
                  lm::WeightFormat::kBF16) ||
      !WriteModel(repo + "/bench_lstm_int8/1", bench, 1,
                  lm::WeightFormat::kInt8) ||
      !WriteModel(repo + "/tiny/1",
                  Lstm(1, 1, 1, "server overhead probe, random weights"), 2)) {
    std::cerr << "make_bench_models: cannot write under " << repo << '\n';
    return 1;
  }
  std::cout << "wrote " << repo << "/bench_lstm/1, " << repo
            << "/bench_lstm_bf16/1, " << repo << "/bench_lstm_int8/1 and "
            << repo << "/tiny/1\n";
  return 0;
}
