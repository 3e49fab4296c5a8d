// The engine's explain records against PyTorch's gates, cell states and
// hidden states recomputed in float64 from the same weights
// (tests/golden/<case>/expected_explain.csv, written by
// tools/make_explain_golden.py): within 1e-5 (relative beyond magnitude 1),
// in float32, and in each reduced format against itself (bit-identical
// outputs are explain_test.cc).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/model.h"
#include "model/state_file.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {
namespace fs = std::filesystem;

std::string CaseDir(const std::string& name) {
  return testutil::SourcePath("tests/golden/" + name);
}

std::vector<std::string> ExplainCases() {
  std::vector<std::string> cases;
  std::error_code ec;
  for (const auto& e :
       fs::directory_iterator(testutil::SourcePath("tests/golden"), ec)) {
    if (fs::exists(e.path() / "expected_explain.csv")) {
      cases.push_back(e.path().filename().string());
    }
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

std::vector<float> Flatten(const std::vector<std::vector<float>>& rows) {
  std::vector<float> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return flat;
}

// The golden CSV: a header line, then "step,values..." rows.
struct Golden {
  std::string header;
  std::vector<std::vector<double>> rows;  // without the step column
};

Golden ReadGolden(const std::string& path) {
  Golden g;
  std::istringstream in(testutil::ReadFile(path));
  std::getline(in, g.header);
  for (std::string line; std::getline(in, line);) {
    std::vector<double> row;
    std::istringstream cells(line);
    std::string cell;
    std::getline(cells, cell, ',');  // step
    while (std::getline(cells, cell, ',')) row.push_back(std::stod(cell));
    g.rows.push_back(std::move(row));
  }
  return g;
}

TEST(ExplainGoldenSetTest, CoversEveryCellAndVariant) {
  const std::vector<std::string> cases = ExplainCases();
  for (const char* part : {"lstm", "gru", "rnn", "proj", "peephole",
                           "inputforget", "clip", "resetfirst", "norm"}) {
    EXPECT_TRUE(std::any_of(cases.begin(), cases.end(),
                            [&](const std::string& c) {
                              return c.find(part) != std::string::npos;
                            }))
        << "no explain golden case with " << part;
  }
}

class ExplainGoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(ExplainGoldenTest, RecordsMatchPyTorchGates) {
  const std::string dir = CaseDir(GetParam());
  auto loaded = Model::Load(dir + "/model/1");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Model& m = **loaded;
  const std::vector<float> inputs =
      Flatten(testutil::ReadCsvFile(dir + "/input.csv"));
  std::vector<float> state =
      Flatten(testutil::ReadCsvFile(dir + "/initial_state.csv"));
  const Golden golden = ReadGolden(dir + "/expected_explain.csv");
  const int steps = static_cast<int>(inputs.size()) / m.input_size();
  ASSERT_EQ(static_cast<int>(golden.rows.size()), steps);
  std::vector<float> outputs(static_cast<size_t>(steps) * m.output_size());
  std::vector<float> explain(static_cast<size_t>(steps) * m.explain_size());
  Workspace ws;
  // Two chunks: the second starts from the state the first left.
  const int first = steps / 3;
  ASSERT_TRUE(m.RunChunk(inputs.data(), first, state.data(), outputs.data(), ws,
                         explain.data())
                  .ok());
  ASSERT_TRUE(
      m.RunChunk(inputs.data() + static_cast<size_t>(first) * m.input_size(),
                 steps - first, state.data(),
                 outputs.data() + static_cast<size_t>(first) * m.output_size(),
                 ws,
                 explain.data() + static_cast<size_t>(first) * m.explain_size())
          .ok());
  // The column names say which field each value is.
  std::vector<std::string> names;
  std::ostringstream header;
  header << "step";
  for (const ExplainField& f : m.explain_layout()) {
    for (int u = 0; u < f.size; ++u) {
      std::ostringstream name;
      name << "l" << f.layer << "." << f.name << "." << u;
      names.push_back(name.str());
      header << "," << name.str();
    }
  }
  EXPECT_EQ(golden.header, header.str());
  int bad = 0;
  for (int t = 0; t < steps && bad < 5; ++t) {
    ASSERT_EQ(golden.rows[t].size(), static_cast<size_t>(m.explain_size()));
    for (int i = 0; i < m.explain_size() && bad < 5; ++i) {
      const double want = golden.rows[t][i];
      const float got = explain[static_cast<size_t>(t) * m.explain_size() + i];
      if (!(std::abs(got - want) <= 1e-5 * std::max(1.0, std::abs(want)))) {
        ++bad;
        ADD_FAILURE() << "step " << t << " " << names[i] << ": engine " << got
                      << ", PyTorch " << want;
      }
    }
  }
}

// The CLI writes the same records with the same header.
TEST_P(ExplainGoldenTest, LstmModelRunExplainWritesThem) {
  const std::string dir = CaseDir(GetParam());
  auto loaded = Model::Load(dir + "/model/1");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  testutil::TempDir tmp;
  SavedState initial;
  initial.state = Flatten(testutil::ReadCsvFile(dir + "/initial_state.csv"));
  ASSERT_TRUE(
      WriteStateFile(tmp.Join("s.json"), (*loaded)->config(), initial).ok());
  const auto r = testutil::RunCommand(
      testutil::LstmModelBinary() + " run '" + dir + "/model' --state-in '" +
          tmp.Join("s.json") + "' --chunk 7 --explain '" + tmp.Join("e.csv") +
          "'",
      testutil::ReadFile(dir + "/input.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const Golden got = ReadGolden(tmp.Join("e.csv"));
  const Golden want = ReadGolden(dir + "/expected_explain.csv");
  EXPECT_EQ(got.header, want.header);
  ASSERT_EQ(got.rows.size(), want.rows.size());
  for (size_t t = 0; t < got.rows.size(); ++t) {
    ASSERT_EQ(got.rows[t].size(), want.rows[t].size());
    for (size_t i = 0; i < got.rows[t].size(); ++i) {
      ASSERT_LE(std::abs(got.rows[t][i] - want.rows[t][i]),
                1e-5 * std::max(1.0, std::abs(want.rows[t][i])))
          << "step " << t << " value " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ExplainGoldenTest,
                         testing::ValuesIn(ExplainCases()),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace lstmserve::model
