#include "server/core/model_registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/validation.h"

namespace lstmserve::server {

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::FromModels(
    std::vector<std::shared_ptr<const LoadedModel>> models) {
  auto registry = std::make_unique<ModelRegistry>();
  for (std::shared_ptr<const LoadedModel>& m : models) {
    const std::string name = m->name;
    const int64_t version = m->version;
    if (!registry->Add(std::move(m)).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model ", Quote(name), " version ", version, " given twice"));
    }
  }
  return registry;
}

absl::Status ModelRegistry::Add(std::shared_ptr<const LoadedModel> model) {
  absl::MutexLock lock(&mu_);
  auto& slot = models_[model->name][model->version];
  if (slot) {
    return absl::AlreadyExistsError(absl::StrCat("model ", Quote(model->name),
                                                 " version ", model->version,
                                                 " is served already"));
  }
  slot = std::move(model);
  return absl::OkStatus();
}

std::shared_ptr<const LoadedModel> ModelRegistry::Remove(absl::string_view name,
                                                         int64_t version) {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return nullptr;
  auto v = it->second.find(version);
  if (v == it->second.end()) return nullptr;
  std::shared_ptr<const LoadedModel> removed = std::move(v->second);
  it->second.erase(v);
  if (it->second.empty()) models_.erase(it);
  return removed;
}

std::vector<std::shared_ptr<const LoadedModel>> ModelRegistry::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<const LoadedModel>> all;
  for (const auto& [name, versions] : models_) {
    for (const auto& [v, m] : versions) all.push_back(m);
  }
  return all;
}

absl::StatusOr<std::shared_ptr<const LoadedModel>> ModelRegistry::Get(
    absl::string_view name, int64_t version) const {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "model ", Quote(name),
        " not found; models: ", absl::StrJoin(NamesLocked(), ", ")));
  }
  if (version < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "version ", version, " is negative; expected 0 (latest) or a version"));
  }
  if (version == 0) return it->second.rbegin()->second;
  auto v = it->second.find(version);
  if (v == it->second.end()) {
    return absl::NotFoundError(absl::StrCat(
        "model ", Quote(name), " has no version ", version,
        "; versions: ", absl::StrJoin(VersionsLocked(name), ", ")));
  }
  return v->second;
}

std::vector<std::string> ModelRegistry::Names() const {
  absl::MutexLock lock(&mu_);
  return NamesLocked();
}

std::vector<std::string> ModelRegistry::NamesLocked() const {
  std::vector<std::string> names;
  for (const auto& [name, versions] : models_) names.push_back(name);
  return names;
}

std::vector<int64_t> ModelRegistry::Versions(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  return VersionsLocked(name);
}

std::vector<int64_t> ModelRegistry::VersionsLocked(
    absl::string_view name) const {
  std::vector<int64_t> versions;
  auto it = models_.find(name);
  if (it == models_.end()) return versions;
  for (const auto& [v, m] : it->second) versions.push_back(v);
  return versions;
}

int ModelRegistry::num_versions() const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [name, versions] : models_) n += versions.size();
  return n;
}

}  // namespace lstmserve::server
