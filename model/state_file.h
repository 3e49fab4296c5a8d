// A session state saved to a file, so `lstm-model run --state-in/--state-out`
// can carry a sequence across invocations. JSON:
//   {"format": "lstmserve.state/1", "cell": "lstm", "input_size": 1,
//    "hidden_size": 32, "num_layers": 2, "proj_size": 0,
//    "steps": 120, "state": [ ...state_size floats... ]}
// The architecture fields guard against loading a state into a model it was
// not made by. Floats are written so that they read back bit-exact.
//
// Thread-safety: free functions; safe to call concurrently on distinct files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model_config.h"

namespace lstmserve::model {

struct SavedState {
  int64_t steps = 0;         // time steps applied since the zero state
  std::vector<float> state;  // the flat state buffer (see model.h)
};

// Writes the file (replacing it atomically via a temporary file + rename).
absl::Status WriteStateFile(const std::string& path, const ModelConfig& config,
                            const SavedState& saved);

// Reads a file written by WriteStateFile and checks it belongs to a model
// with this architecture and has `state_size` finite floats.
absl::StatusOr<SavedState> ReadStateFile(const std::string& path,
                                         const ModelConfig& config,
                                         int state_size);

}  // namespace lstmserve::model
