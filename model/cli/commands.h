// The `lstm-model` subcommands as library functions, so the thin main() only
// parses flags and the commands can be tested with string streams.
//
// Thread-safety: each call is independent; they share no state.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace lstmserve::model::cli {

struct InfoOptions {
  std::string model_path;  // version dir, or model dir (highest version)
  bool json = false;
};

// Prints the model's spec: cell, sizes, parameter count, state bytes per
// session, FLOPs per step, input/output names.
absl::Status Info(const InfoOptions& options, std::ostream& out);

struct RunOptions {
  std::string model_path;
  std::string state_in;   // empty: start from the zero state
  std::string state_out;  // empty: do not save the final state
  // Rows read before each engine call; bounds memory on long inputs.
  int max_chunk = 1024;
};

// Reads CSV steps from `in` and writes one CSV output row per step. The
// state carries across chunks and, through the state files, invocations.
// Nothing is written to state_out if any input row is bad.
absl::Status Run(const RunOptions& options, std::istream& in,
                 std::ostream& out);

struct BenchOptions {
  std::string model_path;
  int batch = 1;    // sessions advanced per engine call
  int chunk = 1;    // steps per session per call
  int threads = 1;  // independent workers, each with its own sessions
  double seconds = 2.0;
  bool json = false;
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
