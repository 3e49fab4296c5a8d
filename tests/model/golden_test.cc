// Golden data written by tools/make_golden.py: PyTorch's outputs and final
// state for committed models and inputs. The engine, and lstm-model run,
// must reproduce them.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "model/model.h"
#include "model/state_file.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {
namespace fs = std::filesystem;

// 1e-5 in the network's own units. Absolute for values of magnitude up to 1;
// beyond that, relative, and for denormalized outputs (y * std + mean)
// scaled by std: float32 cannot hold sunspot numbers in the hundreds to
// 1e-5 absolute (its spacing there is ~1.5e-5), and y * 34 + 44 carries
// y's rounding times 34.
bool Close(float actual, float expected, float scale = 1.0f) {
  return std::abs(actual - expected) <=
         1e-5f * std::max({1.0f, std::abs(expected), scale});
}

// Per output column: the output_std it is denormalized with, else 1.
float OutputScale(const Model& m, size_t flat_index) {
  const auto& norm = m.config().normalization;
  if (!norm || norm->output_std.empty()) return 1.0f;
  return norm->output_std[flat_index % m.output_size()];
}

std::vector<std::string> GoldenCases() {
  std::vector<std::string> cases;
  std::error_code ec;
  for (const auto& entry :
       fs::directory_iterator(testutil::SourcePath("tests/golden"), ec)) {
    if (entry.is_directory()) cases.push_back(entry.path().filename().string());
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

std::string CaseDir(const std::string& name) {
  return testutil::SourcePath("tests/golden/" + name);
}

std::string ModelDirOf(const std::string& name) {
  const std::string dir = CaseDir(name);
  if (fs::exists(dir + "/model_dir.txt")) {
    std::string rel = testutil::ReadFile(dir + "/model_dir.txt");
    while (!rel.empty() && std::isspace(static_cast<unsigned char>(rel.back())))
      rel.pop_back();
    return testutil::SourcePath(rel);
  }
  return dir + "/model/1";
}

std::vector<float> Flatten(const std::vector<std::vector<float>>& rows) {
  std::vector<float> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return flat;
}

std::vector<float> InitialState(const std::string& name, int size) {
  const std::string path = CaseDir(name) + "/initial_state.csv";
  if (!fs::exists(path)) return std::vector<float>(size, 0.0f);
  return Flatten(testutil::ReadCsvFile(path));
}

TEST(GoldenSetTest, HasTheRequiredCases) {
  const std::vector<std::string> cases = GoldenCases();
  int bundled = 0, lstm = 0, gru = 0;
  for (const std::string& c : cases) {
    if (c.rfind("bundled_", 0) == 0) ++bundled;
    if (c.rfind("lstm", 0) == 0) ++lstm;
    if (c.rfind("gru", 0) == 0) ++gru;
  }
  EXPECT_GE(lstm + gru, 8) << "expected at least 8 PyTorch configurations";
  EXPECT_GE(lstm, 1);
  EXPECT_GE(gru, 1);
  EXPECT_GE(bundled, 3) << "expected golden data for the bundled models";
}

class GoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, EngineMatchesPyTorch) {
  const std::string name = GetParam();
  auto model = Model::Load(ModelDirOf(name));
  ASSERT_TRUE(model.ok()) << model.status();
  const Model& m = **model;
  const auto input_rows = testutil::ReadCsvFile(CaseDir(name) + "/input.csv");
  const std::vector<float> inputs = Flatten(input_rows);
  const std::vector<float> expected =
      Flatten(testutil::ReadCsvFile(CaseDir(name) + "/expected_output.csv"));
  const std::vector<float> expected_state =
      Flatten(testutil::ReadCsvFile(CaseDir(name) + "/expected_state.csv"));
  const int steps = static_cast<int>(input_rows.size());
  ASSERT_GT(steps, 0);
  ASSERT_EQ(inputs.size(), static_cast<size_t>(steps) * m.input_size());
  ASSERT_EQ(expected.size(), static_cast<size_t>(steps) * m.output_size());

  std::vector<float> state = InitialState(name, m.state_size());
  ASSERT_EQ(state.size(), static_cast<size_t>(m.state_size()));
  ASSERT_EQ(expected_state.size(), state.size());
  std::vector<float> outputs(expected.size());
  Workspace ws;
  ASSERT_TRUE(
      m.RunChunk(inputs.data(), steps, state.data(), outputs.data(), ws).ok());

  int bad = 0;
  for (size_t i = 0; i < outputs.size() && bad < 5; ++i) {
    if (!Close(outputs[i], expected[i], OutputScale(m, i))) {
      ++bad;
      ADD_FAILURE() << "output step " << i / m.output_size() << " column "
                    << i % m.output_size() << ": got " << outputs[i]
                    << ", PyTorch " << expected[i];
    }
  }
  for (size_t i = 0; i < state.size() && bad < 5; ++i) {
    if (!Close(state[i], expected_state[i])) {
      ++bad;
      ADD_FAILURE() << "final state[" << i << "]: got " << state[i]
                    << ", PyTorch " << expected_state[i];
    }
  }
}

TEST_P(GoldenTest, LstmModelRunMatchesPyTorch) {
  const std::string name = GetParam();
  const std::string model_dir = ModelDirOf(name);
  auto model = Model::Load(model_dir);
  ASSERT_TRUE(model.ok()) << model.status();
  testutil::TempDir tmp;
  SavedState initial;
  initial.state = InitialState(name, (*model)->state_size());
  const std::string state_in = tmp.Join("state.json");
  ASSERT_TRUE(WriteStateFile(state_in, (*model)->config(), initial).ok());

  const auto result = testutil::RunCommand(
      testutil::LstmModelBinary() + " run '" + model_dir + "' --state-in '" +
          state_in + "' --state-out '" + tmp.Join("out.json") + "'",
      testutil::ReadFile(CaseDir(name) + "/input.csv"));
  ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
  testutil::WriteFile(tmp.Join("out.csv"), result.stdout_text);
  const std::vector<float> outputs =
      Flatten(testutil::ReadCsvFile(tmp.Join("out.csv")));
  const std::vector<float> expected =
      Flatten(testutil::ReadCsvFile(CaseDir(name) + "/expected_output.csv"));
  ASSERT_EQ(outputs.size(), expected.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    ASSERT_TRUE(Close(outputs[i], expected[i], OutputScale(**model, i)))
        << "value " << i << ": got " << outputs[i] << ", PyTorch "
        << expected[i];
  }
  auto final_state = ReadStateFile(tmp.Join("out.json"), (*model)->config(),
                                   (*model)->state_size());
  ASSERT_TRUE(final_state.ok()) << final_state.status();
  const std::vector<float> expected_state =
      Flatten(testutil::ReadCsvFile(CaseDir(name) + "/expected_state.csv"));
  for (size_t i = 0; i < expected_state.size(); ++i) {
    ASSERT_TRUE(Close(final_state->state[i], expected_state[i]))
        << "state " << i;
  }
}

// The bundled sunspot model forecasts a count: it must never output a
// negative number. Its config makes that structural (a sigmoid head, output
// normalization with mean 0 and std > 0: outputs in (0, std)); this checks
// the config and what `lstm-model run` prints for the whole series and for
// inputs far outside it.
TEST(BundledModelTest, SunspotsNeverForecastsANegativeNumber) {
  const std::string dir = testutil::SourcePath("models/sunspots");
  auto model = Model::Load(dir + "/1");
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& config = (*model)->config();
  ASSERT_TRUE(config.head.has_value());
  EXPECT_EQ(config.head->activation, Activation::kSigmoid);
  ASSERT_TRUE(config.normalization.has_value());
  ASSERT_EQ(config.normalization->output_mean.size(), 1u);
  EXPECT_EQ(config.normalization->output_mean[0], 0.0f);
  ASSERT_EQ(config.normalization->output_std.size(), 1u);
  const float bound = config.normalization->output_std[0];
  EXPECT_GT(bound, 0.0f);

  std::vector<std::pair<std::string, std::string>> inputs = {
      {"data.csv", testutil::ReadFile(dir + "/data.csv")}};
  // Far outside the data: zeros, huge counts, and jumps between them.
  std::string zeros, huge, jumps;
  for (int t = 0; t < 300; ++t) {
    zeros += "0\n";
    huge += "100000\n";
    jumps += (t % 2 == 0 ? "0\n" : "1000\n");
  }
  inputs.push_back({"zeros", zeros});
  inputs.push_back({"huge", huge});
  inputs.push_back({"jumps", jumps});
  inputs.push_back({"negative inputs", "-50\n-1000\n-5\n0\n"});
  for (const auto& [what, text] : inputs) {
    const auto result = testutil::RunCommand(
        testutil::LstmModelBinary() + " run '" + dir + "'", text);
    ASSERT_EQ(result.exit_code, 0) << what << ": " << result.stderr_text;
    testutil::TempDir tmp;
    testutil::WriteFile(tmp.Join("out.csv"), result.stdout_text);
    const std::vector<float> outputs =
        Flatten(testutil::ReadCsvFile(tmp.Join("out.csv")));
    ASSERT_FALSE(outputs.empty()) << what;
    for (size_t t = 0; t < outputs.size(); ++t) {
      ASSERT_TRUE(outputs[t] >= 0.0f && outputs[t] <= bound)
          << what << ", step " << t << ": " << outputs[t] << " is outside [0, "
          << bound << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenTest, testing::ValuesIn(GoldenCases()),
                         [](const auto& p) { return p.param; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenTest);

}  // namespace
}  // namespace lstmserve::model
