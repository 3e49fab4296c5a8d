#include "model/repository.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lstmserve::model {
namespace fs = std::filesystem;
namespace {

// A version directory name is a positive decimal integer without sign or
// leading zeros ("1", "12"; not "01", "v2", "-1").
bool ParseVersion(const std::string& name, int64_t& version) {
  if (name.empty() || name.size() > 18 || name[0] == '0') return false;
  auto [ptr, ec] =
      std::from_chars(name.data(), name.data() + name.size(), version);
  return ec == std::errc() && ptr == name.data() + name.size() && version > 0;
}

bool IsDirectory(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> ListVersions(
    const std::string& model_dir) {
  std::error_code ec;
  fs::directory_iterator it(model_dir, ec);
  if (ec) {
    return absl::NotFoundError(absl::StrCat(
        model_dir, ": cannot list model directory (", ec.message(), ")"));
  }
  std::vector<int64_t> versions;
  for (const fs::directory_entry& entry : it) {
    int64_t version = 0;
    if (ParseVersion(entry.path().filename().string(), version) &&
        IsDirectory(entry.path())) {
      versions.push_back(version);
    }
  }
  if (versions.empty()) {
    return absl::NotFoundError(
        absl::StrCat(model_dir,
                     ": no version directories; expected <model>/<N>/ with N a "
                     "positive integer"));
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

absl::StatusOr<std::vector<ModelEntry>> ListModels(const std::string& repo) {
  std::error_code ec;
  fs::directory_iterator it(repo, ec);
  if (ec) {
    return absl::NotFoundError(absl::StrCat(
        repo, ": cannot list model repository (", ec.message(), ")"));
  }
  std::vector<ModelEntry> models;
  for (const fs::directory_entry& entry : it) {
    if (!IsDirectory(entry.path())) continue;
    absl::StatusOr<std::vector<int64_t>> versions =
        ListVersions(entry.path().string());
    if (!versions.ok()) continue;  // not a model directory
    models.push_back(ModelEntry{entry.path().filename().string(),
                                *std::move(versions), entry.path().string()});
  }
  std::sort(
      models.begin(), models.end(),
      [](const ModelEntry& a, const ModelEntry& b) { return a.name < b.name; });
  return models;
}

absl::StatusOr<std::string> ResolveVersionDir(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(fs::path(path) / "config.json", ec)) return path;
  if (!IsDirectory(path)) {
    return absl::NotFoundError(
        absl::StrCat(path,
                     ": no such directory; expected a model version "
                     "directory (holding config.json) or a model "
                     "directory (holding numbered versions)"));
  }
  absl::StatusOr<std::vector<int64_t>> versions = ListVersions(path);
  if (!versions.ok()) {
    return absl::NotFoundError(
        absl::StrCat(path,
                     ": holds neither config.json nor numbered version "
                     "directories"));
  }
  return (fs::path(path) / std::to_string(versions->back())).string();
}

absl::StatusOr<std::string> VersionDir(const std::string& repo,
                                       const std::string& name,
                                       int64_t version) {
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model name \"", name, "\" is not valid; expected a directory name"));
  }
  const fs::path model_dir = fs::path(repo) / name;
  if (!IsDirectory(model_dir)) {
    return absl::NotFoundError(
        absl::StrCat("model \"", name, "\" not found in ", repo));
  }
  absl::StatusOr<std::vector<int64_t>> versions =
      ListVersions(model_dir.string());
  if (!versions.ok()) {
    return absl::NotFoundError(
        absl::StrCat("model \"", name, "\" has no versions in ", repo));
  }
  if (version == 0) version = versions->back();
  if (!std::binary_search(versions->begin(), versions->end(), version)) {
    return absl::NotFoundError(
        absl::StrCat("model \"", name, "\" has no version ", version,
                     "; versions: ", absl::StrJoin(*versions, ", ")));
  }
  return (model_dir / std::to_string(version)).string();
}

absl::Status WriteVersionDir(const std::string& out_dir,
                             const std::string& config_json,
                             const std::string& safetensors) {
  const std::string config_path = out_dir + "/config.json";
  const std::string weights_path = out_dir + "/model.safetensors";
  for (const std::string& p : {config_path, weights_path}) {
    if (fs::exists(p)) {
      return absl::AlreadyExistsError(absl::StrCat(
          p, " exists; expected a new or empty version directory"));
    }
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  }
  const std::pair<const std::string&, const std::string&> files[] = {
      {config_path, config_json}, {weights_path, safetensors}};
  for (const auto& [path, content] : files) {
    std::ofstream f(path, std::ios::binary);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    f.close();
    if (!f) return absl::DataLossError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace lstmserve::model
