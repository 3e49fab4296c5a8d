// Helpers shared by the fuzz targets: a tiny model to validate against, and
// a check that stops the fuzzer when a property does not hold (a finding,
// like a crash).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "model/model.h"
#include "model/random_weights.h"
#include "server/core/model_registry.h"

namespace lstmserve::fuzz {

// Aborts (a libFuzzer crash, with the input saved) when `ok` is false.
inline void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz property failed: %s\n", what);
    std::abort();
  }
}

// The model the seeds were made for: LSTM, 2 inputs, 3 hidden units, a head
// of 2 outputs, named "tiny" version 1 (tests/fuzz/make_seeds.sh writes its
// files). Built once.
inline const server::LoadedModel& TinyModel() {
  static const server::LoadedModel* loaded = [] {
    model::ModelConfig config;
    config.cell = model::CellType::kLstm;
    config.input_size = 2;
    config.hidden_size = 3;
    config.head = model::HeadConfig{2, model::Activation::kIdentity};
    auto m =
        model::Model::Create(config, model::RandomTensors(config, 7), "tiny");
    Check(m.ok(), "the tiny model builds");
    auto* l = new server::LoadedModel;
    l->name = "tiny";
    l->version = 1;
    l->model = std::shared_ptr<const model::Model>(*std::move(m));
    return l;
  }();
  return *loaded;
}

}  // namespace lstmserve::fuzz
