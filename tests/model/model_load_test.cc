// Model::Create / Model::Load: every tensor the config calls for, with the
// right shape and finite values, and nothing else; clear errors otherwise.
#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {

using testing::HasSubstr;

ModelConfig LstmConfig() {
  ModelConfig c;
  c.cell = CellType::kLstm;
  c.input_size = 3;
  c.hidden_size = 8;
  c.num_layers = 2;
  c.head = HeadConfig{2, Activation::kIdentity};
  return c;
}

absl::Status CreateWith(const ModelConfig& c,
                        std::map<std::string, Tensor> tensors) {
  return Model::Create(c, tensors, "test.safetensors").status();
}

TEST(ModelCreateTest, AcceptsCompleteTensorsAndReportsSizes) {
  ModelConfig c = LstmConfig();
  auto model = Model::Create(c, model::RandomTensors(c, 1));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->input_size(), 3);
  EXPECT_EQ((*model)->output_size(), 2);
  EXPECT_EQ((*model)->state_size(), 2 * (8 + 8));
  // 4H*(in+H) + 2*4H per layer, plus head.
  const int64_t expected =
      (32 * 3 + 32 * 8 + 64) + (32 * 8 + 32 * 8 + 64) + (2 * 8 + 2);
  EXPECT_EQ((*model)->parameter_count(), expected);
}

TEST(ModelCreateTest, MissingTensorIsNamed) {
  ModelConfig c = LstmConfig();
  auto t = model::RandomTensors(c, 1);
  t.erase("rnn.weight_hh_l1");
  absl::Status s = CreateWith(c, t);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("missing tensor \"rnn.weight_hh_l1\""));
  EXPECT_THAT(s.message(), HasSubstr("test.safetensors"));
}

TEST(ModelCreateTest, ExtraTensorIsNamed) {
  ModelConfig c = LstmConfig();
  auto t = model::RandomTensors(c, 1);
  t["rnn.weight_ih_l2"] = t["rnn.weight_ih_l1"];
  absl::Status s = CreateWith(c, t);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("unexpected tensor \"rnn.weight_ih_l2\""));
}

TEST(ModelCreateTest, BiasTensorsWithBiasFalseAreExtra) {
  ModelConfig c = LstmConfig();
  auto t = model::RandomTensors(c, 1);
  c.bias = false;
  EXPECT_THAT(CreateWith(c, t).message(), HasSubstr("rnn.bias_"));
}

TEST(ModelCreateTest, WrongShapeSaysWhatWasExpected) {
  ModelConfig c = LstmConfig();
  auto t = model::RandomTensors(c, 1);
  t["rnn.weight_ih_l0"].shape = {32, 2};
  t["rnn.weight_ih_l0"].values.resize(64);
  absl::Status s = CreateWith(c, t);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("has shape [32, 2]; expected [32, 3]"));
}

TEST(ModelCreateTest, HeadShapeIsChecked) {
  ModelConfig c = LstmConfig();
  auto t = model::RandomTensors(c, 1);
  c.head->output_size = 3;
  EXPECT_THAT(CreateWith(c, t).message(), HasSubstr("head.weight"));
}

TEST(ModelCreateTest, ProjectionShapesAreChecked) {
  ModelConfig c = LstmConfig();
  c.proj_size = 4;
  auto t = model::RandomTensors(c, 1);
  ASSERT_TRUE(CreateWith(c, t).ok());
  t.erase("rnn.weight_hr_l0");
  EXPECT_THAT(CreateWith(c, t).message(), HasSubstr("rnn.weight_hr_l0"));
}

TEST(ModelCreateTest, NonFiniteWeightsAreRejected) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    ModelConfig c = LstmConfig();
    auto t = model::RandomTensors(c, 1);
    t["rnn.bias_hh_l1"].values[5] = bad;
    absl::Status s = CreateWith(c, t);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("\"rnn.bias_hh_l1\" has a non-finite"));
    EXPECT_THAT(s.message(), HasSubstr("index 5"));
  }
}

TEST(ModelCreateTest, GruTensorsForLstmConfigAreRejected) {
  ModelConfig gru = LstmConfig();
  gru.cell = CellType::kGru;
  auto t = model::RandomTensors(gru, 1);
  EXPECT_THAT(CreateWith(LstmConfig(), t).message(), HasSubstr("expected [32"));
}

TEST(ModelLoadTest, LoadsWhatWasWrittenInEveryDtype) {
  ModelConfig c = LstmConfig();
  auto t = model::RandomTensors(c, 3);
  testutil::TempDir dir;
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    const std::string v = dir.Join(std::string(DTypeName(dtype)));
    testutil::WriteVersionDir(v, c, t, dtype);
    auto model = Model::Load(v);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->output_size(), 2);
  }
}

TEST(ModelLoadTest, MissingFilesAreNotFound) {
  testutil::TempDir dir;
  auto model = Model::Load(dir.path());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(model.status().message(), HasSubstr("config.json"));
  testutil::WriteFile(dir.Join("config.json"), ModelConfigToJson(LstmConfig()));
  model = Model::Load(dir.path());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(model.status().message(), HasSubstr("model.safetensors"));
}

TEST(ModelLoadTest, TruncatedWeightsFileIsAnErrorNotACrash) {
  ModelConfig c = LstmConfig();
  testutil::TempDir dir;
  testutil::WriteVersionDir(dir.path(), c, model::RandomTensors(c, 1));
  std::string bytes = testutil::ReadFile(dir.Join("model.safetensors"));
  for (size_t keep : {size_t{0}, size_t{7}, size_t{20}, bytes.size() - 1}) {
    testutil::WriteFile(dir.Join("model.safetensors"), bytes.substr(0, keep));
    auto model = Model::Load(dir.path());
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument)
        << "kept " << keep << " bytes: " << model.status();
  }
}

}  // namespace
}  // namespace lstmserve::model
