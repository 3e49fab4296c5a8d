// Model configurations that together cover every cell the engine runs:
// LSTM (with projection, peepholes, input_forget, clip), GRU (both
// linear_before_reset variants, clip), the plain RNN (PyTorch's and ONNX's
// nonlinearities), heads, normalization, and sizes that leave the kernels'
// SIMD panels partly filled. Shared by the model test suites.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace lstmserve::model {

struct CellCase {
  std::string name;
  ModelConfig config;
};

// Keeps gtest from dumping the struct's bytes in test names and failures.
inline void PrintTo(const CellCase& c, std::ostream* os) { *os << c.name; }

std::vector<CellCase> CellCases();

// A config with the given sizes; head > 0 adds a head with `act`.
ModelConfig CellConfig(CellType cell, int in, int hidden, int layers, int proj,
                       bool bias, int head, Activation act);

}  // namespace lstmserve::model
