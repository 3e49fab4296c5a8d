// ONNX import: converts a model made of ONNX LSTM / GRU / RNN nodes, an
// optional Gemm or MatMul+Add head and an activation, and the shape glue
// torch.onnx.export emits, into the repository format (docs/MODEL_FORMAT.md,
// "Import from ONNX", lists the supported subset and its errors).
//
// The importer follows the operator specification for opsets 7-14. It
// interprets the graph symbolically: constants (initializers, Constant
// nodes and the shape arithmetic on them) are evaluated; the sequence tensor
// is tracked by which of its axes are time, batch and features, so that
// glue which only moves, adds or drops size-1 axes passes and anything that
// would mix time steps, sessions or features is refused by name.
//
// Thread-safety: free functions with no shared state.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model_config.h"
#include "model/tensor_file.h"

namespace lstmserve::model::onnx_import {

struct ImportedModel {
  ModelConfig config;
  std::map<std::string, Tensor> tensors;  // lstmserve (PyTorch) names
  // What the import decided that a user should know (ignored outputs,
  // initial states that became the session's state, ...), one per line.
  std::vector<std::string> notes;
};

// Converts a serialized ONNX ModelProto. `source` names it in messages.
// INVALID_ARGUMENT, naming the node, the attribute and the value, for
// anything outside the supported subset.
absl::StatusOr<ImportedModel> ImportOnnx(std::string_view bytes,
                                         const std::string& source);

// Reads `onnx_path`, converts it, checks the result loads (Model::Create),
// and writes out_dir/config.json and out_dir/model.safetensors (F32),
// creating out_dir if needed. Refuses to overwrite an existing
// config.json or model.safetensors.
absl::StatusOr<ImportedModel> ImportOnnxFile(const std::string& onnx_path,
                                             const std::string& out_dir);

}  // namespace lstmserve::model::onnx_import
