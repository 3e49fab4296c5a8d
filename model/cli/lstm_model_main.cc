// lstm-model: inspect, run and benchmark one model version from the shell.
// Flag parsing only; the commands live in commands.cc.
#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "model/cli/commands.h"

namespace cli = lstmserve::model::cli;
using lstmserve::model::WeightFormat;

namespace {

// "f32" | "bf16" | "int8" for --weights.
const std::map<std::string, WeightFormat> kWeightFormats = {
    {"f32", WeightFormat::kF32},
    {"bf16", WeightFormat::kBF16},
    {"int8", WeightFormat::kInt8}};

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  CLI::App app{
      "lstm-model: inspect, run, evaluate, convert, benchmark and import an "
      "LSTM/GRU/RNN model version.\n"
      "DIR is a version directory (holding config.json and "
      "model.safetensors) or a model directory (its highest version is "
      "used)."};
  app.require_subcommand(1);

  cli::InfoOptions info;
  CLI::App* info_cmd = app.add_subcommand(
      "info",
      "Print the model's spec: cell, sizes, parameter count, state "
      "bytes per session.");
  info_cmd->add_option("DIR", info.model_path, "Model or version directory")
      ->required();
  info_cmd->add_flag("--json", info.json, "Print one JSON object");
  std::optional<WeightFormat> info_weights;
  info_cmd
      ->add_option("--weights", info_weights,
                   "Weight format to load as: f32, bf16 or int8 (default: "
                   "config.json's \"weights\", else f32)")
      ->transform(CLI::CheckedTransformer(kWeightFormats));

  cli::RunOptions run;
  CLI::App* run_cmd = app.add_subcommand(
      "run",
      "Read CSV steps from stdin (one step per line, comma-separated floats) "
      "and print one CSV output row per step.");
  run_cmd->add_option("DIR", run.model_path, "Model or version directory")
      ->required();
  run_cmd->add_option("--state-in", run.state_in,
                      "Start from the state saved in FILE by --state-out "
                      "(default: zero state)");
  run_cmd->add_option("--state-out", run.state_out,
                      "Save the final state to FILE, to continue the sequence "
                      "in a later run");
  run_cmd
      ->add_option("--chunk", run.max_chunk,
                   "Steps per engine call (bounds memory on long inputs)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::optional<WeightFormat> run_weights;
  run_cmd
      ->add_option("--weights", run_weights,
                   "Weight format to run in: f32, bf16 or int8 (default: "
                   "config.json's \"weights\", else f32)")
      ->transform(CLI::CheckedTransformer(kWeightFormats));
  run_cmd->add_option("--explain", run.explain_path,
                      "Write every step's gates, cell state and hidden state "
                      "to FILE as CSV (header: step, then layer.field.unit; "
                      "docs/INTERPRETABILITY.md; tools/plot_gates.py draws "
                      "it)");
  run_cmd->add_flag("--gate-summary", run.gate_summary,
                    "Print each layer's mean forget gate, memory horizon and "
                    "gate saturation to stderr");

  cli::EvalOptions eval;
  CLI::App* eval_cmd = app.add_subcommand(
      "eval",
      "Run CSV steps from stdin through the model with reduced-precision "
      "weights and with float32 weights, and report the max and mean "
      "absolute difference of the outputs.");
  eval_cmd->add_option("DIR", eval.model_path, "Model or version directory")
      ->required();
  eval_cmd->add_option("--weights", eval.weights, "bf16 or int8")
      ->required()
      ->transform(CLI::CheckedTransformer(kWeightFormats));
  eval_cmd
      ->add_option("--chunk", eval.max_chunk,
                   "Steps per engine call (bounds memory on long inputs)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  eval_cmd->add_flag("--json", eval.json, "Print one JSON object");

  cli::ConvertOptions convert;
  CLI::App* convert_cmd = app.add_subcommand(
      "convert",
      "Write a copy of a model version with its weight matrices stored as "
      "f32, bf16 or int8 (per-row scales): a smaller file that loads to the "
      "same model as --weights does.");
  convert_cmd
      ->add_option("DIR", convert.model_path, "Model or version directory")
      ->required();
  convert_cmd->add_option("--weights", convert.weights, "f32, bf16 or int8")
      ->required()
      ->transform(CLI::CheckedTransformer(kWeightFormats));
  convert_cmd
      ->add_option("OUT_DIR", convert.out_dir,
                   "Version directory to write (e.g. repo/mymodel_int8/1)")
      ->required();

  cli::BenchOptions bench;
  CLI::App* bench_cmd = app.add_subcommand(
      "bench", "Time the engine on random inputs: steps/s and us per call.");
  bench_cmd->add_option("DIR", bench.model_path, "Model or version directory")
      ->required();
  bench_cmd->add_option("--batch", bench.batch, "Sessions per engine call")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  bench_cmd->add_option("--chunk", bench.chunk, "Steps per session per call")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  bench_cmd
      ->add_option("--threads", bench.threads, "Independent worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  bench_cmd->add_option("--seconds", bench.seconds, "How long to run")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 3600.0));
  bench_cmd->add_flag("--json", bench.json, "Print one JSON object");
  std::optional<WeightFormat> bench_weights;
  bench_cmd
      ->add_option("--weights", bench_weights,
                   "Weight format: f32, bf16 or int8 (default: config.json's "
                   "\"weights\", else f32)")
      ->transform(CLI::CheckedTransformer(kWeightFormats));
  bench_cmd->add_flag("--explain", bench.explain,
                      "Record every step's explain record (its cost)");

  cli::ImportOnnxOptions import_onnx;
  CLI::App* import_cmd = app.add_subcommand(
      "import-onnx",
      "Convert an ONNX model of LSTM/GRU/RNN nodes (optionally a Gemm or "
      "MatMul+Add head and Sigmoid/Tanh/Softmax) into a version directory.");
  import_cmd->add_option("MODEL.onnx", import_onnx.onnx_path, "ONNX model file")
      ->required();
  import_cmd
      ->add_option("OUT_DIR", import_onnx.out_dir,
                   "Version directory to write (e.g. repo/mymodel/1)")
      ->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  info.weights = info_weights;
  run.weights = run_weights;
  bench.weights = bench_weights;
  absl::Status status;
  if (*info_cmd) {
    status = cli::Info(info, std::cout);
  } else if (*run_cmd) {
    status = cli::Run(run, std::cin, std::cout, std::cerr);
  } else if (*eval_cmd) {
    status = cli::Eval(eval, std::cin, std::cout);
  } else if (*convert_cmd) {
    status = cli::Convert(convert, std::cout);
  } else if (*bench_cmd) {
    status = cli::Bench(bench, std::cout, std::cerr);
  } else if (*import_cmd) {
    status = cli::ImportOnnx(import_onnx, std::cout);
  }
  if (!status.ok()) {
    std::cerr << "lstm-model: " << status.message() << '\n';
    return 1;
  }
  return 0;
}
