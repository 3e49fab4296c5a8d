// Tensors with random weights for a config: every tensor the config calls
// for, under PyTorch's names, uniform in [-scale, scale]. For tests,
// benchmarks and benchmark models; never for serving.
//
// Thread-safety: a free function with no shared state.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "model/model_config.h"
#include "model/tensor_file.h"

namespace lstmserve::model {

// scale 0: 1/sqrt(hidden_size), PyTorch's initialisation range.
// Deterministic for a given seed.
std::map<std::string, Tensor> RandomTensors(const ModelConfig& config,
                                            uint32_t seed, float scale = 0);

}  // namespace lstmserve::model
