// `lstm-model convert`: a model version re-stored in another weight format
// (docs/MODEL_FORMAT.md, "Weight formats"), so a smaller file can be
// shipped. The converted directory loads to exactly the model the original
// becomes when loaded with that format.
//
// Thread-safety: a free function; concurrent calls must use different
// output directories.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "model/model_config.h"
#include "model/tensor_file.h"
#include "model/weight_format.h"

namespace lstmserve::model {

// The tensors of a model with its weight matrices (rnn.weight_ih_l*,
// rnn.weight_hh_l*, rnn.weight_hr_l*) stored in `format`: F32; BF16
// (rounded to nearest even); or I8 with "<name>.scale" F32 per-row scales
// (model/quantize.h; an I8 source is kept as it is). Every other tensor is
// F32. `tensors` must be a valid model's (Model::Create accepts them).
std::map<std::string, Tensor> ConvertTensors(
    const std::map<std::string, Tensor>& tensors, WeightFormat format);

// Reads the version at `version_dir`, checks that it loads, and writes
// out_dir/config.json ("weights" set to `format`) and
// out_dir/model.safetensors, then loads the result. ALREADY_EXISTS if
// either file exists in out_dir (which is created if missing).
absl::Status ConvertVersionDir(const std::string& version_dir,
                               WeightFormat format, const std::string& out_dir);

}  // namespace lstmserve::model
