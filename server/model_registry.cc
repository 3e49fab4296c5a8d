#include "server/model_registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/repository.h"
#include "model/status_macros.h"

namespace lstmserve::server {

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::Create(
    const std::string& repo) {
  ASSIGN_OR_RETURN(std::vector<model::ModelEntry> entries,
                   model::ListModels(repo));
  if (entries.empty()) {
    return absl::NotFoundError(absl::StrCat(
        repo, ": no models; expected <repo>/<name>/<version>/config.json"));
  }
  auto registry = std::unique_ptr<ModelRegistry>(new ModelRegistry());
  for (const model::ModelEntry& entry : entries) {
    for (int64_t version : entry.versions) {
      const std::string dir = absl::StrCat(entry.path, "/", version);
      ASSIGN_OR_RETURN(std::unique_ptr<model::Model> m,
                       model::Model::Load(dir));
      auto loaded = std::make_shared<LoadedModel>();
      loaded->name = entry.name;
      loaded->version = version;
      loaded->model = std::move(m);
      registry->models_[entry.name][version] = std::move(loaded);
    }
  }
  return registry;
}

absl::StatusOr<std::shared_ptr<const LoadedModel>> ModelRegistry::Get(
    const std::string& name, int64_t version) const {
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(
        absl::StrCat("model \"", name,
                     "\" not found; models: ", absl::StrJoin(Names(), ", ")));
  }
  if (version < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "version ", version, " is negative; expected 0 (latest) or a version"));
  }
  if (version == 0) return it->second.rbegin()->second;
  auto v = it->second.find(version);
  if (v == it->second.end()) {
    return absl::NotFoundError(
        absl::StrCat("model \"", name, "\" has no version ", version,
                     "; versions: ", absl::StrJoin(Versions(name), ", ")));
  }
  return v->second;
}

std::vector<std::string> ModelRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, versions] : models_) names.push_back(name);
  return names;
}

std::vector<int64_t> ModelRegistry::Versions(const std::string& name) const {
  std::vector<int64_t> versions;
  auto it = models_.find(name);
  if (it == models_.end()) return versions;
  for (const auto& [v, m] : it->second) versions.push_back(v);
  return versions;
}

int ModelRegistry::num_versions() const {
  int n = 0;
  for (const auto& [name, versions] : models_) n += versions.size();
  return n;
}

}  // namespace lstmserve::server
