// Helpers for the config tests: a temporary directory, files in it, paths
// into the source tree, and lstm-server's command line run in-process.
// (tests/testutil/ links the engine; these tests need none of it.)
//
// Thread-safety: test-only helpers; use from one thread.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "server/config/config.h"

namespace lstmserve::config::testing {

// A fresh directory, removed with its contents at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "lstmserve-config-XXXXXX")
            .string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes `contents` to a file of that name in the directory; its path.
  std::string Write(const std::string& name,
                    const std::string& contents) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary) << contents;
    return file;
  }

 private:
  std::string path_;
};

inline std::string SourcePath(const std::string& relative) {
  return std::string(LSTMSERVE_SOURCE_DIR) + "/" + relative;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// lstm-server's command line, as main() runs it: CLI11 parses `args` (no
// program name), then CommandLine::Resolve(env). A CLI11 error is thrown.
inline absl::StatusOr<ServerConfig> ParseCommandLine(
    std::vector<std::string> args, const Environment& env = {}) {
  CLI::App app;
  CommandLine command_line(app);
  std::reverse(args.begin(), args.end());  // CLI11 takes them in reverse
  app.parse(args);
  return command_line.Resolve(env);
}

inline server::VersionPolicy LatestPolicy(int64_t n) {
  server::VersionPolicy policy;
  policy.kind = server::VersionPolicy::Kind::kLatest;
  policy.latest = n;
  return policy;
}
inline server::VersionPolicy AllPolicy() {
  server::VersionPolicy policy;
  policy.kind = server::VersionPolicy::Kind::kAll;
  return policy;
}
inline server::VersionPolicy SpecificPolicy(std::vector<int64_t> versions) {
  server::VersionPolicy policy;
  policy.kind = server::VersionPolicy::Kind::kSpecific;
  policy.specific = std::move(versions);
  return policy;
}

// A ServerConfig read from a TOML document named "test.toml".
inline absl::StatusOr<ServerConfig> FromToml(const std::string& text) {
  ServerConfig config;
  absl::Status status = ApplyTomlText(text, "test.toml", config);
  if (!status.ok()) return status;
  return config;
}

// The message of `status`, or "OK".
inline std::string Message(const absl::Status& status) {
  return status.ok() ? "OK" : std::string(status.message());
}

}  // namespace lstmserve::config::testing
