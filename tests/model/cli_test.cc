// lstm-model as a user runs it: the built binary, through the shell.
#include <algorithm>
#include <filesystem>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/csv.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {

using testing::HasSubstr;
using testutil::RunCommand;

// All floats of a CSV text, row after row.
std::vector<float> ParseCsvText(const std::string& text) {
  std::vector<float> values;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto row = ParseCsvLine(line, "output");
    EXPECT_TRUE(row.ok()) << row.status();
    if (row.ok()) values.insert(values.end(), row->begin(), row->end());
  }
  return values;
}

// Chunk boundaries change the order of floating-point sums (a GEMV for one
// step, a GEMM for many), so results agree to rounding, not bit for bit.
void ExpectSameOutputs(const std::string& actual, const std::string& expected) {
  const std::vector<float> a = ParseCsvText(actual), e = ParseCsvText(expected);
  ASSERT_EQ(a.size(), e.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], e[i], 1e-5f) << i;
}

class LstmModelCliTest : public testing::Test {
 protected:
  void SetUp() override {
    ModelConfig c;
    c.cell = CellType::kGru;
    c.input_size = 2;
    c.hidden_size = 6;
    c.num_layers = 2;
    c.head = HeadConfig{3, Activation::kSoftmax};
    c.input_names = {"a", "b"};
    testutil::WriteVersionDir(dir_.Join("toy/4"), c,
                              model::RandomTensors(c, 9));
    model_dir_ = dir_.Join("toy");
  }

  std::string Cmd(const std::string& args) {
    return testutil::LstmModelBinary() + " " + args;
  }

  testutil::TempDir dir_;
  std::string model_dir_;
  const std::string input_ = "0.1,0.2\n-1,3\n0.5,0.5\n2,-2\n0,0\n";
};

TEST_F(LstmModelCliTest, InfoPrintsTheSpec) {
  auto r = RunCommand(Cmd("info " + model_dir_));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("cell:           gru"));
  EXPECT_THAT(r.stdout_text, HasSubstr("/toy/4"));  // highest version
  // 2 layers x 6 floats of h, 4 bytes each.
  EXPECT_THAT(r.stdout_text, HasSubstr("12 floats = 48 bytes per session"));
  EXPECT_THAT(r.stdout_text, HasSubstr("parameters:     "));
  r = RunCommand(Cmd("info --json " + model_dir_));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.stdout_text, HasSubstr("\"state_bytes\": 48"));
}

TEST_F(LstmModelCliTest, InfoShowsTheCellVariant) {
  const std::string rnn = testutil::SourcePath(
      "tests/golden/rnn_l1_in3_h10_scaled_tanh_randstate/model");
  auto r = RunCommand(Cmd("info " + rnn));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("cell:           rnn"));
  EXPECT_THAT(r.stdout_text,
              HasSubstr("variant:        scaled_tanh(alpha=1.7, beta=0.6)"));
  // RNN state is h only: 10 floats.
  EXPECT_THAT(r.stdout_text, HasSubstr("10 floats = 40 bytes per session"));
  const std::string lstm = testutil::SourcePath(
      "tests/golden/lstm_l2_in3_h12_peephole_inputforget_clip_randstate/model");
  r = RunCommand(Cmd("info --json " + lstm));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("\"lstm_peepholes\": true"));
  EXPECT_THAT(r.stdout_text, HasSubstr("\"lstm_input_forget\": true"));
  EXPECT_THAT(r.stdout_text, HasSubstr("\"clip\": 0.9"));
}

TEST_F(LstmModelCliTest, RunPrintsOneRowPerStep) {
  auto r = RunCommand(Cmd("run " + model_dir_), input_);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  std::istringstream out(r.stdout_text);
  CsvReader reader(out, "stdout", 3);
  std::vector<float> rows;
  int n = 0;
  while (true) {
    auto more = reader.Next(rows);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    ++n;
  }
  EXPECT_EQ(n, 5);
  // Softmax rows sum to one.
  EXPECT_NEAR(rows[0] + rows[1] + rows[2], 1.0f, 1e-5f);
}

TEST_F(LstmModelCliTest, StateCarriesAcrossInvocations) {
  const auto whole = RunCommand(Cmd("run " + model_dir_), input_);
  ASSERT_EQ(whole.exit_code, 0);
  const std::string state = dir_.Join("s.json");
  const auto first = RunCommand(
      Cmd("run " + model_dir_ + " --state-out " + state), "0.1,0.2\n-1,3\n");
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  const auto second = RunCommand(Cmd("run " + model_dir_ + " --state-in " +
                                     state + " --state-out " + state),
                                 "0.5,0.5\n2,-2\n0,0\n");
  ASSERT_EQ(second.exit_code, 0) << second.stderr_text;
  ExpectSameOutputs(first.stdout_text + second.stdout_text, whole.stdout_text);
  EXPECT_THAT(testutil::ReadFile(state), HasSubstr("\"steps\":5"));
}

TEST_F(LstmModelCliTest, SmallChunksGiveTheSameOutputs) {
  const auto whole = RunCommand(Cmd("run " + model_dir_), input_);
  const auto chunked = RunCommand(Cmd("run --chunk 2 " + model_dir_), input_);
  ASSERT_EQ(chunked.exit_code, 0);
  ExpectSameOutputs(chunked.stdout_text, whole.stdout_text);
}

TEST_F(LstmModelCliTest, BadInputIsOneLineAndNoStateWritten) {
  const std::string state = dir_.Join("never.json");
  auto r = RunCommand(Cmd("run " + model_dir_ + " --state-out " + state),
                      "1,2\n1,2,3\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.stderr_text,
              HasSubstr("stdin:2: row has 3 values; expected 2"));
  EXPECT_EQ(std::count(r.stderr_text.begin(), r.stderr_text.end(), '\n'), 1);
  EXPECT_FALSE(std::filesystem::exists(state));
}

TEST_F(LstmModelCliTest, ErrorsAreOneLineWithNonZeroExit) {
  auto r = RunCommand(Cmd("info " + dir_.Join("nowhere")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("lstm-model: "));
  EXPECT_THAT(r.stderr_text, HasSubstr("nowhere"));
  EXPECT_EQ(std::count(r.stderr_text.begin(), r.stderr_text.end(), '\n'), 1);

  r = RunCommand(
      Cmd("run " + model_dir_ + " --state-in " + dir_.Join("no.json")), input_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("no.json"));

  // A state saved by a different architecture is refused.
  testutil::WriteFile(dir_.Join("other.json"),
                      R"({"format":"lstmserve.state/1","cell":"lstm",)"
                      R"("input_size":2,"hidden_size":6,"num_layers":2,)"
                      R"("proj_size":0,"steps":0,"state":[]})");
  r = RunCommand(
      Cmd("run " + model_dir_ + " --state-in " + dir_.Join("other.json")),
      input_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("state was saved by a lstm model"));

  r = RunCommand(Cmd("frobnicate"));
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(LstmModelCliTest, HelpExplainsEachCommand) {
  auto r = RunCommand(Cmd("--help"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.stdout_text, HasSubstr("info"));
  EXPECT_THAT(r.stdout_text, HasSubstr("run"));
  EXPECT_THAT(r.stdout_text, HasSubstr("bench"));
  r = RunCommand(Cmd("run --help"));
  EXPECT_THAT(r.stdout_text, HasSubstr("--state-in"));
}

TEST_F(LstmModelCliTest, BenchReportsJson) {
  auto r = RunCommand(Cmd("bench " + model_dir_ +
                          " --batch 4 --chunk 3 --seconds 0.05 --json"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("\"steps_per_s\":"));
  EXPECT_THAT(r.stdout_text, HasSubstr("\"us_per_call\":"));
}

TEST_F(LstmModelCliTest, WeightsOptionChoosesTheFormat) {
  auto r = RunCommand(Cmd("info --weights int8 " + model_dir_));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("weights:        int8, "));
  EXPECT_THAT(r.stdout_text, HasSubstr("kernels:        "));
  EXPECT_THAT(r.stdout_text, HasSubstr("int32"));  // vpdpbusd or vpmaddwd
  EXPECT_THAT(r.stdout_text, HasSubstr("cpu paths:      generic"));
  EXPECT_THAT(r.stdout_text, HasSubstr("(per format: f32 "));
  r = RunCommand(Cmd("info --json --weights bf16 " + model_dir_));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("\"weights\": \"bf16\""));
  EXPECT_THAT(r.stdout_text, HasSubstr("\"weight_bytes\": "));
  r = RunCommand(Cmd("run --weights int4 " + model_dir_), input_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("int4"));
  // Run in each format: five rows, close to float32's.
  const auto f32 = RunCommand(Cmd("run " + model_dir_), input_);
  for (const char* w : {"bf16", "int8"}) {
    r = RunCommand(Cmd(std::string("run --weights ") + w + " " + model_dir_),
                   input_);
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
    const std::vector<float> a = ParseCsvText(r.stdout_text);
    const std::vector<float> e = ParseCsvText(f32.stdout_text);
    ASSERT_EQ(a.size(), e.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], e[i], 0.05f) << w;
  }
  r = RunCommand("LSTMSERVE_ISA=avx3 " + Cmd("info " + model_dir_));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("LSTMSERVE_ISA is \"avx3\""));
}

TEST_F(LstmModelCliTest, EvalReportsTheErrorAgainstFloat32) {
  auto r = RunCommand(Cmd("eval --weights int8 " + model_dir_), input_);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text,
              HasSubstr("int8 vs f32 over 5 steps x 3 outputs: max abs error"));
  EXPECT_THAT(r.stdout_text, HasSubstr("mean abs error"));
  EXPECT_EQ(std::count(r.stdout_text.begin(), r.stdout_text.end(), '\n'), 1);
  r = RunCommand(Cmd("eval --json --weights bf16 " + model_dir_), input_);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("\"max_abs_error\":"));
  EXPECT_THAT(r.stdout_text, HasSubstr("\"weights\":\"bf16\""));
  r = RunCommand(Cmd("eval --weights int8 " + model_dir_), "");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("no steps"));
  r = RunCommand(Cmd("eval " + model_dir_), input_);
  EXPECT_NE(r.exit_code, 0);  // --weights is required
}

TEST_F(LstmModelCliTest, ConvertWritesAVersionThatRunsTheSame) {
  const std::string out = dir_.Join("toy_int8/1");
  auto r = RunCommand(Cmd("convert " + model_dir_ + " --weights int8 " + out));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("wrote " + out));
  EXPECT_THAT(r.stdout_text, HasSubstr("weights:        int8"));
  EXPECT_THAT(testutil::ReadFile(out + "/config.json"),
              HasSubstr("\"weights\": \"int8\""));
  const auto converted = RunCommand(Cmd("run " + out), input_);
  const auto original =
      RunCommand(Cmd("run --weights int8 " + model_dir_), input_);
  ASSERT_EQ(converted.exit_code, 0) << converted.stderr_text;
  EXPECT_EQ(converted.stdout_text, original.stdout_text);
  r = RunCommand(Cmd("convert " + model_dir_ + " --weights int8 " + out));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("exists"));
}

TEST_F(LstmModelCliTest, RunExplainWritesOneRecordPerStep) {
  const std::string csv = dir_.Join("explain.csv");
  auto r = RunCommand(
      Cmd("run --explain " + csv + " --gate-summary " + model_dir_), input_);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(ParseCsvText(r.stdout_text).size(), 5u * 3);
  std::istringstream in(testutil::ReadFile(csv));
  std::string header;
  std::getline(in, header);
  // GRU, 2 layers of H = 6: per layer r, z, n, h: 24 floats, plus "step".
  EXPECT_EQ(std::count(header.begin(), header.end(), ','), 48);
  EXPECT_EQ(header.substr(0, 28), "step,l0.r.0,l0.r.1,l0.r.2,l0");
  EXPECT_THAT(header, HasSubstr(",l1.z.5,l1.n.0,"));
  EXPECT_EQ(header.substr(header.size() - 7), ",l1.h.5");
  int rows = 0;
  for (std::string line; std::getline(in, line); ++rows) {
    EXPECT_EQ(line.substr(0, 2), std::to_string(rows) + ",");
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 48);
  }
  EXPECT_EQ(rows, 5);
  EXPECT_THAT(r.stderr_text, HasSubstr("gate summary over 5 steps"));
  EXPECT_THAT(r.stderr_text, HasSubstr("layer 1: mean forget "));
  EXPECT_THAT(r.stderr_text, HasSubstr("memory horizon"));
  // The outputs are the same as without --explain.
  EXPECT_EQ(r.stdout_text,
            RunCommand(Cmd("run " + model_dir_), input_).stdout_text);
}

TEST_F(LstmModelCliTest, BenchTakesAWeightFormatAndExplain) {
  auto r = RunCommand(Cmd("bench " + model_dir_ +
                          " --weights int8 --explain --seconds 0.05 --json"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("\"weights\":\"int8\""));
  EXPECT_THAT(r.stdout_text, HasSubstr("\"explain\":true"));
  EXPECT_THAT(r.stdout_text, HasSubstr("\"kernels\":"));
}

}  // namespace
}  // namespace lstmserve::model
