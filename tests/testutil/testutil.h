// Helpers shared by the test suites: temporary directories, paths into the
// source tree, CSV files, and models with random weights.
//
// Thread-safety: test-only helpers; use from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/model_config.h"
#include "model/random_weights.h"  // model::RandomTensors, for tests
#include "model/tensor_file.h"

namespace lstmserve::testutil {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents when
// the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Absolute path of a file in the source tree, e.g. SourcePath("models").
std::string SourcePath(const std::string& relative);

// Path of the built lstm-model binary.
std::string LstmModelBinary();

void WriteFile(const std::string& path, const std::string& contents);
std::string ReadFile(const std::string& path);

// Reads a CSV file (CSV convention: rows of comma-separated floats).
std::vector<std::vector<float>> ReadCsvFile(const std::string& path);

// A model with random weights; fails the current test if Create fails.
std::unique_ptr<model::Model> RandomModel(const model::ModelConfig& config,
                                          uint32_t seed);

// Writes a version directory (config.json + model.safetensors).
void WriteVersionDir(const std::string& dir, const model::ModelConfig& config,
                     const std::map<std::string, model::Tensor>& tensors,
                     model::DType dtype = model::DType::kF32);

// Normal(0, 1) random floats.
std::vector<float> RandomInputs(size_t n, uint32_t seed);

// Result of running a command through the shell.
struct CommandResult {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
};
// Runs `command` with /bin/sh, feeding `stdin_text`; captures both streams.
CommandResult RunCommand(const std::string& command,
                         const std::string& stdin_text = "");

}  // namespace lstmserve::testutil
