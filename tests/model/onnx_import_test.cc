// ONNX import against the data tools/make_onnx_tests.py writes in
// tests/onnx/: models exported by torch.onnx.export must reproduce
// PyTorch's outputs, hand-built graphs the numpy reference of the ONNX
// operators (tools/onnx_reference.py), and refused graphs must name what is
// wrong.
#include "model/onnx/onnx_import.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "model/model.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {
namespace fs = std::filesystem;

std::string CaseDir(const std::string& name) {
  return testutil::SourcePath("tests/onnx/" + name);
}

std::vector<std::string> Cases(const std::string& prefix) {
  std::vector<std::string> cases;
  std::error_code ec;
  for (const auto& e :
       fs::directory_iterator(testutil::SourcePath("tests/onnx"), ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind(prefix, 0) == 0) cases.push_back(name);
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

std::vector<float> Flatten(const std::vector<std::vector<float>>& rows) {
  std::vector<float> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return flat;
}

TEST(OnnxImportSetTest, HasTheRequiredCases) {
  int lstm = 0, gru = 0;
  for (const std::string& c : Cases("torch_")) {
    lstm += c.rfind("torch_lstm", 0) == 0;
    gru += c.rfind("torch_gru", 0) == 0;
  }
  EXPECT_GE(lstm, 3) << "expected torch-exported LSTMs of 1-3 layers";
  EXPECT_GE(gru, 3) << "expected torch-exported GRUs of 1-3 layers";
  EXPECT_GE(Cases("graph_").size(), 10u);
  EXPECT_GE(Cases("error_").size(), 8u);
}

class OnnxImportTest : public testing::TestWithParam<std::string> {};

// Imports into a temporary version directory, loads it like any model and
// runs the inputs as one session: every step's output must match.
TEST_P(OnnxImportTest, ReproducesTheReference) {
  const std::string name = GetParam();
  testutil::TempDir tmp;
  const std::string out = tmp.Join("model/1");
  auto imported =
      onnx_import::ImportOnnxFile(CaseDir(name) + "/model.onnx", out);
  ASSERT_TRUE(imported.ok()) << imported.status();
  auto model = Model::Load(out);
  ASSERT_TRUE(model.ok()) << model.status();
  const Model& m = **model;
  const auto rows = testutil::ReadCsvFile(CaseDir(name) + "/input.csv");
  const std::vector<float> inputs = Flatten(rows);
  const std::vector<float> expected =
      Flatten(testutil::ReadCsvFile(CaseDir(name) + "/expected_output.csv"));
  const int steps = static_cast<int>(rows.size());
  ASSERT_EQ(inputs.size(), static_cast<size_t>(steps) * m.input_size());
  ASSERT_EQ(expected.size(), static_cast<size_t>(steps) * m.output_size());
  std::vector<float> state(m.state_size(), 0.0f), outputs(expected.size());
  Workspace ws;
  ASSERT_TRUE(
      m.RunChunk(inputs.data(), steps, state.data(), outputs.data(), ws).ok());
  int bad = 0;
  for (size_t i = 0; i < outputs.size() && bad < 5; ++i) {
    const float tol = 1e-5f * std::max(1.0f, std::abs(expected[i]));
    if (!(std::abs(outputs[i] - expected[i]) <= tol)) {
      ++bad;
      ADD_FAILURE() << "step " << i / m.output_size() << " output "
                    << i % m.output_size() << ": got " << outputs[i]
                    << ", expected " << expected[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Torch, OnnxImportTest,
                         testing::ValuesIn(Cases("torch_")),
                         [](const auto& p) { return p.param; });
INSTANTIATE_TEST_SUITE_P(Graph, OnnxImportTest,
                         testing::ValuesIn(Cases("graph_")),
                         [](const auto& p) { return p.param; });

class OnnxRefusalTest : public testing::TestWithParam<std::string> {};

TEST_P(OnnxRefusalTest, NamesWhatIsUnsupported) {
  const std::string name = GetParam();
  const std::string bytes = testutil::ReadFile(CaseDir(name) + "/model.onnx");
  auto imported = onnx_import::ImportOnnx(bytes, "model.onnx");
  ASSERT_FALSE(imported.ok()) << name << " imported; expected an error";
  EXPECT_EQ(imported.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(imported.status().message());
  EXPECT_EQ(message.rfind("model.onnx: ", 0), 0u) << message;
  const std::string expected =
      testutil::ReadFile(CaseDir(name) + "/expected_error.txt");
  for (absl::string_view part : absl::StrSplit(expected, '\n')) {
    if (part.empty()) continue;
    EXPECT_NE(message.find(std::string(part)), std::string::npos)
        << "message: " << message << "\nexpected to contain: " << part;
  }
}

INSTANTIATE_TEST_SUITE_P(Errors, OnnxRefusalTest,
                         testing::ValuesIn(Cases("error_")),
                         [](const auto& p) { return p.param; });

TEST(OnnxImportTest, GarbageIsNotAModel) {
  auto imported =
      onnx_import::ImportOnnx("\xff\xff\xff not protobuf", "x.onnx");
  ASSERT_FALSE(imported.ok());
  EXPECT_NE(imported.status().message().find("x.onnx: not a valid ONNX model"),
            std::string::npos)
      << imported.status();
}

TEST(OnnxImportTest, NotesIgnoredOutputsAndStateInputs) {
  auto imported = onnx_import::ImportOnnx(
      testutil::ReadFile(CaseDir("torch_lstm_l2_stateinputs_head2") +
                         "/model.onnx"),
      "m.onnx");
  ASSERT_TRUE(imported.ok()) << imported.status();
  bool state_note = false;
  for (const std::string& n : imported->notes) {
    state_note = state_note || n.find("graph input 'h0'") != std::string::npos;
  }
  EXPECT_TRUE(state_note);
  EXPECT_EQ(imported->config.cell, CellType::kLstm);
  EXPECT_EQ(imported->config.num_layers, 2);
}

TEST(OnnxImportCliTest, WritesAVersionDirAndRefusesToOverwrite) {
  testutil::TempDir tmp;
  const std::string onnx = CaseDir("torch_gru_l1_head2") + "/model.onnx";
  const std::string out = tmp.Join("repo/gru/1");
  const auto first = testutil::RunCommand(
      testutil::LstmModelBinary() + " import-onnx '" + onnx + "' '" + out + "'",
      "");
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  EXPECT_NE(first.stdout_text.find("cell:           gru"), std::string::npos)
      << first.stdout_text;
  EXPECT_TRUE(fs::exists(out + "/config.json"));
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  const auto again = testutil::RunCommand(
      testutil::LstmModelBinary() + " import-onnx '" + onnx + "' '" + out + "'",
      "");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.stderr_text.find("config.json exists"), std::string::npos)
      << again.stderr_text;
  const auto refused =
      testutil::RunCommand(testutil::LstmModelBinary() + " import-onnx '" +
                               CaseDir("error_bidirectional") +
                               "/model.onnx' '" + tmp.Join("bad/1") + "'",
                           "");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.stderr_text.find("attribute direction is"),
            std::string::npos)
      << refused.stderr_text;
  EXPECT_FALSE(fs::exists(tmp.Join("bad/1/config.json")));
}

}  // namespace
}  // namespace lstmserve::model
