// Engine throughput at the benchmark shape: LSTM, input 64, hidden 256,
// 2 layers, no head, random weights. One thread. Reports steps/s, for each
// weight format (Lstm = float32, LstmBf16, LstmInt8, likewise Gru) and
// with the explain records on (LstmExplain, LstmInt8Explain), the kernels
// each runs in its label.
//
//   build/bench/engine_bench                       # all shapes
//   build/bench/engine_bench --benchmark_filter='^Lstm(Bf16|Int8)?/B:1/T:1/'
//   # formats side by side, 5 interleaved repetitions (as in PERFORMANCE.md):
//   build/bench/engine_bench --benchmark_repetitions=5
//     --benchmark_enable_random_interleaving=true
//     --benchmark_report_aggregates_only=true   (one command line)
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "model/model.h"
#include "model/random_weights.h"

namespace lstmserve::model {
namespace {

std::unique_ptr<Model> MakeModel(CellType cell, WeightFormat format) {
  ModelConfig c;
  c.cell = cell;
  c.input_size = 64;
  c.hidden_size = 256;
  c.num_layers = 2;
  Model::Options options;
  options.weights = format;
  return *Model::Create(c, RandomTensors(c, /*seed=*/1), "bench", options);
}

const Model& CachedModel(CellType cell, WeightFormat format) {
  static std::map<std::pair<CellType, WeightFormat>, std::unique_ptr<Model>>
      models;
  auto& m = models[{cell, format}];
  if (!m) m = MakeModel(cell, format);
  return *m;
}

// B sessions, each advanced by T steps per call (entry point a for B=1,
// b for T=1, c otherwise), with or without explain records.
void RunShape(benchmark::State& state, CellType cell, WeightFormat format,
              bool explain) {
  const int batch = static_cast<int>(state.range(0));
  const int chunk = static_cast<int>(state.range(1));
  const Model& m = CachedModel(cell, format);
  std::mt19937 rng(2);
  std::normal_distribution<float> normal;
  std::vector<float> inputs(static_cast<size_t>(batch) * chunk *
                            m.input_size());
  for (float& x : inputs) x = normal(rng);
  std::vector<float> states(static_cast<size_t>(batch) * m.state_size(), 0.0f);
  std::vector<float> outputs(static_cast<size_t>(batch) * chunk *
                             m.output_size());
  std::vector<float> records(
      explain ? static_cast<size_t>(batch) * chunk * m.explain_size() : 0);
  std::vector<SequenceRef> refs;
  for (int b = 0; b < batch; ++b) {
    refs.push_back(SequenceRef{
        inputs.data() + static_cast<size_t>(b) * chunk * m.input_size(), chunk,
        states.data() + static_cast<size_t>(b) * m.state_size(),
        outputs.data() + static_cast<size_t>(b) * chunk * m.output_size(),
        explain
            ? records.data() + static_cast<size_t>(b) * chunk * m.explain_size()
            : nullptr});
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
  state.SetLabel(KernelDescription(m.kernels()));
}

// {batch, chunk}
const std::vector<std::pair<int, int>> kShapes = {{1, 1},  {1, 100}, {8, 1},
                                                  {64, 1}, {256, 1}, {64, 10}};

struct Variant {
  const char* name;
  CellType cell;
  WeightFormat format;
  bool explain;
};

const Variant kVariants[] = {
    {"Lstm", CellType::kLstm, WeightFormat::kF32, false},
    {"LstmBf16", CellType::kLstm, WeightFormat::kBF16, false},
    {"LstmInt8", CellType::kLstm, WeightFormat::kInt8, false},
    {"LstmExplain", CellType::kLstm, WeightFormat::kF32, true},
    {"LstmInt8Explain", CellType::kLstm, WeightFormat::kInt8, true},
    {"Gru", CellType::kGru, WeightFormat::kF32, false},
    {"GruBf16", CellType::kGru, WeightFormat::kBF16, false},
    {"GruInt8", CellType::kGru, WeightFormat::kInt8, false},
};

}  // namespace
}  // namespace lstmserve::model

int main(int argc, char** argv) {
  using namespace lstmserve::model;  // NOLINT: a benchmark's main
  for (const Variant& v : kVariants) {
    for (const auto& [batch, chunk] : kShapes) {
      benchmark::RegisterBenchmark(v.name,
                                   [v](benchmark::State& s) {
                                     RunShape(s, v.cell, v.format, v.explain);
                                   })
          ->ArgNames({"B", "T"})
          ->Args({batch, chunk})
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.5);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
