// A model repository on disk: <repo>/<model-name>/<version>/ where version is
// a positive integer and each version directory holds config.json and
// model.safetensors. The highest version is a model's default.
//
// Thread-safety: free functions reading the file system; safe to call
// concurrently. They do not cache.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lstmserve::model {

struct ModelEntry {
  std::string name;
  std::vector<int64_t> versions;  // ascending
  std::string path;               // <repo>/<name>
};

// Lists models (directories holding at least one numeric version directory),
// sorted by name. Entries that are not directories, and version directories
// whose name is not a positive integer, are skipped. NOT_FOUND if `repo` is
// not a directory.
absl::StatusOr<std::vector<ModelEntry>> ListModels(const std::string& repo);

// Versions of one model directory, ascending. NOT_FOUND if there are none.
absl::StatusOr<std::vector<int64_t>> ListVersions(const std::string& model_dir);

// Writes a version directory (creating it): config.json and
// model.safetensors with the given contents. ALREADY_EXISTS if either file
// is there (nothing is overwritten), PERMISSION_DENIED if the directory
// cannot be made, DATA_LOSS if a file cannot be written.
absl::Status WriteVersionDir(const std::string& out_dir,
                             const std::string& config_json,
                             const std::string& safetensors);

// Resolves a path given by a user to a version directory: a directory that
// holds config.json is returned as is; a model directory resolves to its
// highest version. NOT_FOUND otherwise, naming what was looked for.
absl::StatusOr<std::string> ResolveVersionDir(const std::string& path);

// <repo>/<name>/<version>; version 0 means the highest. NOT_FOUND naming the
// model or the version (and the versions that exist) when absent.
absl::StatusOr<std::string> VersionDir(const std::string& repo,
                                       const std::string& name,
                                       int64_t version = 0);

}  // namespace lstmserve::model
