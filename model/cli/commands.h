// The `lstm-model` subcommands as library functions, so the thin main() only
// parses flags and the commands can be tested with string streams.
//
// Thread-safety: each call is independent; they share no state.
#pragma once

#include <istream>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "model/weight_format.h"

namespace lstmserve::model::cli {

struct InfoOptions {
  std::string model_path;  // version dir, or model dir (highest version)
  bool json = false;
  std::optional<WeightFormat> weights;  // overrides config.json's
};

// Prints the model's spec: cell, sizes, parameter count, state bytes per
// session, FLOPs per step, weight format and bytes, the kernels it runs,
// input/output names.
absl::Status Info(const InfoOptions& options, std::ostream& out);

struct RunOptions {
  std::string model_path;
  std::string state_in;   // empty: start from the zero state
  std::string state_out;  // empty: do not save the final state
  // Rows read before each engine call; bounds memory on long inputs.
  int max_chunk = 1024;
  std::optional<WeightFormat> weights;  // overrides config.json's
  // Non-empty: write each step's explain record there as CSV, a header
  // naming the columns "step,l0.i.0,l0.i.1,...,l0.h.<n>,l1...." (layer,
  // field, unit), then one row per step.
  std::string explain_path;
  // Print the per-layer gate summary (model/explain.h) to `log`.
  bool gate_summary = false;
};

// Reads CSV steps from `in` and writes one CSV output row per step. The
// state carries across chunks and, through the state files, invocations.
// Nothing is written to state_out if any input row is bad.
absl::Status Run(const RunOptions& options, std::istream& in, std::ostream& out,
                 std::ostream& log);

struct EvalOptions {
  std::string model_path;
  WeightFormat weights = WeightFormat::kInt8;  // compared with float32
  int max_chunk = 1024;
  bool json = false;
};

// Runs the CSV steps of `in` through the model twice from the zero state,
// with `weights` and with float32 weights (the same file), and reports the
// max and mean absolute difference of the outputs: one line, or one JSON
// object.
absl::Status Eval(const EvalOptions& options, std::istream& in,
                  std::ostream& out);

struct ConvertOptions {
  std::string model_path;
  WeightFormat weights = WeightFormat::kInt8;
  std::string out_dir;  // the version directory to write
};

// Writes out_dir/config.json and model.safetensors with the weight
// matrices stored in `weights` (model/convert.h), then prints the result's
// spec.
absl::Status Convert(const ConvertOptions& options, std::ostream& out);

struct BenchOptions {
  std::string model_path;
  int batch = 1;    // sessions advanced per engine call
  int chunk = 1;    // steps per session per call
  int threads = 1;  // independent workers, each with its own sessions
  double seconds = 2.0;
  bool json = false;
  std::optional<WeightFormat> weights;  // overrides config.json's
  bool explain = false;  // record every step's gates (the explain path)
};

// Times the engine on random inputs: steps/s and microseconds per call.
// Prints progress to `progress` for runs longer than a few seconds.
absl::Status Bench(const BenchOptions& options, std::ostream& out,
                   std::ostream& progress);

struct ImportOnnxOptions {
  std::string onnx_path;
  std::string out_dir;  // the version directory to write
};

// Converts an ONNX model (LSTM/GRU/RNN nodes, optional head and activation)
// into out_dir/config.json and out_dir/model.safetensors, then prints the
// result's spec and what the import decided (docs/MODEL_FORMAT.md, "Import
// from ONNX").
absl::Status ImportOnnx(const ImportOnnxOptions& options, std::ostream& out);

}  // namespace lstmserve::model::cli
