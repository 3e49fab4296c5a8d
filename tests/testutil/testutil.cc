#include "testutil/testutil.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "gtest/gtest.h"
#include "model/csv.h"
#include "model/random_weights.h"

namespace lstmserve::testutil {
namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base && *base ? base : "/tmp") + "/lstmserve_test_XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << pattern;
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string SourcePath(const std::string& relative) {
  return std::string(LSTMSERVE_SOURCE_DIR) + "/" + relative;
}

std::string LstmModelBinary() { return LSTMSERVE_LSTM_MODEL_BIN; }

void WriteFile(const std::string& path, const std::string& contents) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  EXPECT_TRUE(out.good()) << "cannot write " << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::vector<float>> ReadCsvFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::vector<std::vector<float>> rows;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    auto values = model::ParseCsvLine(line, path + ":" + std::to_string(n));
    EXPECT_TRUE(values.ok()) << values.status();
    if (values.ok()) rows.push_back(*values);
  }
  return rows;
}

std::unique_ptr<model::Model> RandomModel(const model::ModelConfig& config,
                                          uint32_t seed) {
  auto model = model::Model::Create(config, model::RandomTensors(config, seed));
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

void WriteVersionDir(const std::string& dir, const model::ModelConfig& config,
                     const std::map<std::string, model::Tensor>& tensors,
                     model::DType dtype) {
  WriteFile(dir + "/config.json", model::ModelConfigToJson(config));
  WriteFile(dir + "/model.safetensors",
            model::SerializeSafetensors(tensors, dtype));
}

std::vector<float> RandomInputs(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

CommandResult RunCommand(const std::string& command,
                         const std::string& stdin_text) {
  TempDir dir;
  const std::string in = dir.Join("stdin"), out = dir.Join("stdout"),
                    err = dir.Join("stderr");
  WriteFile(in, stdin_text);
  const std::string full =
      command + " < '" + in + "' > '" + out + "' 2> '" + err + "'";
  const int rc = std::system(full.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  result.stdout_text = ReadFile(out);
  result.stderr_text = ReadFile(err);
  return result;
}

}  // namespace lstmserve::testutil
