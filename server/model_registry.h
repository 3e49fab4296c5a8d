// Every model version of a repository, loaded once at start and shared.
//
// Thread-safety: immutable after Create; safe to use from any thread. The
// models are handed out as shared_ptr, so a session keeps the exact version
// it started on alive for as long as it lives.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model.h"

namespace lstmserve::server {

// One loaded model version.
struct LoadedModel {
  std::string name;
  int64_t version = 0;
  std::shared_ptr<const model::Model> model;
};

class ModelRegistry {
 public:
  // Loads every version of every model under `repo`. Fails (naming the
  // file) if any version does not load: a server should not start half
  // configured. NOT_FOUND if the repository is missing or holds no models.
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> Create(
      const std::string& repo);

  // version 0: the highest. NOT_FOUND naming the model or version (and the
  // versions there are).
  absl::StatusOr<std::shared_ptr<const LoadedModel>> Get(
      const std::string& name, int64_t version = 0) const;

  // Model names, sorted.
  std::vector<std::string> Names() const;
  // Versions of a model, ascending (empty if unknown).
  std::vector<int64_t> Versions(const std::string& name) const;
  int num_versions() const;

 private:
  // name -> version -> model
  std::map<std::string, std::map<int64_t, std::shared_ptr<const LoadedModel>>>
      models_;
};

}  // namespace lstmserve::server
