// The model versions being served: what new sessions, stateless calls and
// ListModels/GetModel see. Versions come and go while serving (the
// repository is polled; LoadModel/UnloadModel); a session keeps the exact
// version it started on alive through its shared_ptr for as long as it
// lives, whatever happens here.
//
// Thread-safety: thread-safe. The models are handed out as shared_ptr.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
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
  // An empty registry.
  ModelRegistry() = default;

  // A registry of the given versions (tests, and models built in memory).
  // INVALID_ARGUMENT for a duplicate name and version.
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> FromModels(
      std::vector<std::shared_ptr<const LoadedModel>> models);

  // Serves `model` from now on. ALREADY_EXISTS if that name and version
  // are served.
  absl::Status Add(std::shared_ptr<const LoadedModel> model);
  // Stops serving a version: nullptr if it was not served.
  std::shared_ptr<const LoadedModel> Remove(absl::string_view name,
                                            int64_t version);

  // Every loaded version, by name then version.
  std::vector<std::shared_ptr<const LoadedModel>> All() const;

  // version 0: the highest. NOT_FOUND naming the model or version (and the
  // versions there are).
  absl::StatusOr<std::shared_ptr<const LoadedModel>> Get(
      absl::string_view name, int64_t version = 0) const;

  // Model names, sorted.
  std::vector<std::string> Names() const;
  // Versions of a model, ascending (empty if unknown).
  std::vector<int64_t> Versions(absl::string_view name) const;
  int num_versions() const;

 private:
  std::vector<std::string> NamesLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::vector<int64_t> VersionsLocked(absl::string_view name) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  // name -> version -> model
  std::map<std::string, std::map<int64_t, std::shared_ptr<const LoadedModel>>,
           std::less<>>
      models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lstmserve::server
