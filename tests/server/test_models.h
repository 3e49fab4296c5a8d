// Small LoadedModels with random weights for the server's unit tests.
#pragma once

#include <memory>
#include <string>

#include "server/core/model_registry.h"
#include "testutil/testutil.h"

namespace lstmserve::server {

inline std::shared_ptr<const LoadedModel> TinyLstm(
    const std::string& name = "tiny", int64_t version = 1) {
  model::ModelConfig c;
  c.cell = model::CellType::kLstm;
  c.input_size = 2;
  c.hidden_size = 4;
  c.num_layers = 1;
  c.head = model::HeadConfig{1, model::Activation::kIdentity};
  auto loaded = std::make_shared<LoadedModel>();
  loaded->name = name;
  loaded->version = version;
  loaded->model = testutil::RandomModel(c, 5);
  return loaded;
}

}  // namespace lstmserve::server
