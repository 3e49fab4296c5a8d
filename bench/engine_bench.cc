// Engine throughput at the benchmark shape: LSTM, input 64, hidden 256,
// 2 layers, no head, random weights. One thread. Reports steps/s.
//
//   build/bench/engine_bench                       # all shapes
//   build/bench/engine_bench --benchmark_filter=B1_T100
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "model/model.h"
#include "model/random_weights.h"

namespace lstmserve::model {
namespace {

std::unique_ptr<Model> MakeModel(CellType cell) {
  ModelConfig c;
  c.cell = cell;
  c.input_size = 64;
  c.hidden_size = 256;
  c.num_layers = 2;
  return *Model::Create(c, RandomTensors(c, /*seed=*/1));
}

// B sessions, each advanced by T steps per call (entry point a for B=1,
// b for T=1, c otherwise).
void RunShape(benchmark::State& state, CellType cell) {
  const int batch = static_cast<int>(state.range(0));
  const int chunk = static_cast<int>(state.range(1));
  static const std::unique_ptr<Model> lstm = MakeModel(CellType::kLstm);
  static const std::unique_ptr<Model> gru = MakeModel(CellType::kGru);
  const Model& m = cell == CellType::kLstm ? *lstm : *gru;
  std::mt19937 rng(2);
  std::normal_distribution<float> normal;
  std::vector<float> inputs(static_cast<size_t>(batch) * chunk *
                            m.input_size());
  for (float& x : inputs) x = normal(rng);
  std::vector<float> states(static_cast<size_t>(batch) * m.state_size(), 0.0f);
  std::vector<float> outputs(static_cast<size_t>(batch) * chunk *
                             m.output_size());
  std::vector<SequenceRef> refs;
  for (int b = 0; b < batch; ++b) {
    refs.push_back(SequenceRef{
        inputs.data() + static_cast<size_t>(b) * chunk * m.input_size(), chunk,
        states.data() + static_cast<size_t>(b) * m.state_size(),
        outputs.data() + static_cast<size_t>(b) * chunk * m.output_size()});
  }
  Workspace ws;
  for (auto _ : state) {
    if (!m.RunBatch(refs, ws).ok()) state.SkipWithError("RunBatch failed");
    benchmark::DoNotOptimize(outputs.data());
  }
  const double steps = static_cast<double>(state.iterations()) * batch * chunk;
  state.counters["steps_per_s"] =
      benchmark::Counter(steps, benchmark::Counter::kIsRate);
  state.counters["GFLOPs"] = benchmark::Counter(
      steps * m.flops_per_step() / 1e9, benchmark::Counter::kIsRate);
}

void Lstm(benchmark::State& state) { RunShape(state, CellType::kLstm); }
void Gru(benchmark::State& state) { RunShape(state, CellType::kGru); }

// {batch, chunk}
#define SHAPES                        \
  ArgNames({"B", "T"})                \
      ->Args({1, 1})                  \
      ->Args({1, 100})                \
      ->Args({8, 1})                  \
      ->Args({64, 1})                 \
      ->Args({256, 1})                \
      ->Args({64, 10})                \
      ->Unit(benchmark::kMicrosecond) \
      ->MinTime(0.5)

BENCHMARK(Lstm)->SHAPES;
BENCHMARK(Gru)->SHAPES;

}  // namespace
}  // namespace lstmserve::model

BENCHMARK_MAIN();
