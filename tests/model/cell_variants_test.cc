// The config fields and tensors of the cells the ONNX operators add: the
// plain RNN, GRU with linear_before_reset false, LSTM peepholes,
// input_forget and clip. Their numerics are checked by the golden cases
// (tests/golden/rnn_*, *_resetfirst_*, *_peephole_*, ...) and the
// invariance suite.
#include <string>

#include "gtest/gtest.h"
#include "model/model.h"
#include "model/model_config.h"
#include "model/random_weights.h"

namespace lstmserve::model {
namespace {

absl::StatusOr<ModelConfig> Parse(const std::string& extra,
                                  const std::string& cell = "rnn") {
  return ParseModelConfig(R"({"cell": ")" + cell +
                              R"(", "input_size": 3, "hidden_size": 4, )"
                              R"("num_layers": 2)" +
                              extra + "}",
                          "config.json");
}

void ExpectError(const absl::StatusOr<ModelConfig>& result,
                 const std::string& part) {
  ASSERT_FALSE(result.ok()) << "parsed; expected an error containing " << part;
  EXPECT_NE(result.status().message().find(part), std::string::npos)
      << result.status().message();
}

TEST(CellVariantConfigTest, RnnDefaultsToTanh) {
  auto c = Parse("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->cell, CellType::kRnn);
  EXPECT_EQ(c->nonlinearity, Nonlinearity::kTanh);
  EXPECT_EQ(c->num_gates(), 1);
  EXPECT_EQ(c->clip, 0.0f);
}

TEST(CellVariantConfigTest, NonlinearityParametersAndDefaults) {
  auto leaky = Parse(R"(, "nonlinearity": "leaky_relu")");
  ASSERT_TRUE(leaky.ok()) << leaky.status();
  EXPECT_FLOAT_EQ(leaky->nonlinearity_alpha, 0.01f);  // ONNX LeakyRelu's
  auto hard = Parse(R"(, "nonlinearity": "hard_sigmoid", )"
                    R"("nonlinearity_alpha": 0.3)");
  ASSERT_TRUE(hard.ok()) << hard.status();
  EXPECT_FLOAT_EQ(hard->nonlinearity_alpha, 0.3f);
  EXPECT_FLOAT_EQ(hard->nonlinearity_beta, 0.5f);
  ExpectError(Parse(R"(, "nonlinearity": "affine", "nonlinearity_alpha": 2)"),
              R"("nonlinearity_beta" is missing; nonlinearity "affine")");
  ExpectError(Parse(R"(, "nonlinearity": "tanh", "nonlinearity_alpha": 2)"),
              R"(takes no parameters; expected it absent)");
  ExpectError(Parse(R"(, "nonlinearity": "elu", "nonlinearity_beta": 2)"),
              R"(takes only alpha)");
  ExpectError(Parse(R"(, "nonlinearity": "gelu")"),
              R"("nonlinearity" is "gelu"; expected "tanh", "relu")");
  ExpectError(Parse(R"(, "nonlinearity": "relu", "nonlinearity_alpha": "x")"),
              R"(takes no parameters)");
  ExpectError(Parse(R"(, "nonlinearity": "elu", "nonlinearity_alpha": "x")"),
              R"("nonlinearity_alpha" is "x"; expected a finite number)");
}

TEST(CellVariantConfigTest, KeysBelongToTheirCell) {
  ExpectError(Parse(R"(, "nonlinearity": "relu")", "lstm"),
              R"("nonlinearity" is given but "cell" is "lstm"; expected it )"
              R"(only with "cell": "rnn")");
  ExpectError(Parse(R"(, "gru_linear_before_reset": false)", "lstm"),
              R"(only with "cell": "gru")");
  ExpectError(Parse(R"(, "lstm_peepholes": true)", "gru"),
              R"(only with "cell": "lstm")");
  ExpectError(Parse(R"(, "lstm_input_forget": true)", "rnn"),
              R"(only with "cell": "lstm")");
  ExpectError(Parse(R"(, "proj_size": 2)", "rnn"),
              R"(projection is LSTM-only)");
  ExpectError(Parse(R"(, "gru_linear_before_reset": 0)", "gru"),
              R"("gru_linear_before_reset" is 0; expected true or false)");
}

TEST(CellVariantConfigTest, Clip) {
  auto c = Parse(R"(, "clip": 2.5)", "gru");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FLOAT_EQ(c->clip, 2.5f);
  for (const char* bad : {"0", "-1", "\"3\"", "1e300"}) {
    ExpectError(Parse(std::string(R"(, "clip": )") + bad, "lstm"),
                "expected a finite number > 0");
  }
}

TEST(CellVariantConfigTest, RoundTripsThroughJson) {
  auto rnn = Parse(R"(, "nonlinearity": "scaled_tanh", )"
                   R"("nonlinearity_alpha": 1.5, "nonlinearity_beta": 0.25, )"
                   R"("clip": 3)");
  ASSERT_TRUE(rnn.ok()) << rnn.status();
  auto lstm =
      Parse(R"(, "lstm_peepholes": true, "lstm_input_forget": true)", "lstm");
  ASSERT_TRUE(lstm.ok()) << lstm.status();
  auto gru = Parse(R"(, "gru_linear_before_reset": false)", "gru");
  ASSERT_TRUE(gru.ok()) << gru.status();
  for (const ModelConfig& c : {*rnn, *lstm, *gru}) {
    auto back = ParseModelConfig(ModelConfigToJson(c), "round-trip");
    ASSERT_TRUE(back.ok()) << back.status() << "\n" << ModelConfigToJson(c);
    EXPECT_EQ(back->cell, c.cell);
    EXPECT_EQ(back->nonlinearity, c.nonlinearity);
    EXPECT_EQ(back->nonlinearity_alpha, c.nonlinearity_alpha);
    EXPECT_EQ(back->nonlinearity_beta, c.nonlinearity_beta);
    EXPECT_EQ(back->gru_linear_before_reset, c.gru_linear_before_reset);
    EXPECT_EQ(back->lstm_peepholes, c.lstm_peepholes);
    EXPECT_EQ(back->lstm_input_forget, c.lstm_input_forget);
    EXPECT_EQ(back->clip, c.clip);
  }
}

TEST(CellVariantConfigTest, JsonShowsShortFloats) {
  auto c = Parse(R"(, "nonlinearity": "leaky_relu", "clip": 0.9)");
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string json = ModelConfigToJson(*c);
  EXPECT_NE(json.find(R"("clip": 0.9)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("nonlinearity_alpha": 0.01)"), std::string::npos)
      << json;
  EXPECT_EQ(static_cast<float>(ShortestDouble(0.1f)), 0.1f);
  EXPECT_EQ(ShortestDouble(0.1f), 0.1);
}

TEST(CellVariantModelTest, RnnStateIsHOnlyAndTensorsArePyTorchNames) {
  auto c = Parse(R"(, "nonlinearity": "relu")");
  ASSERT_TRUE(c.ok()) << c.status();
  auto tensors = RandomTensors(*c, 1);
  EXPECT_EQ(tensors.at("rnn.weight_ih_l0").shape, (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(tensors.at("rnn.weight_hh_l1").shape, (std::vector<int64_t>{4, 4}));
  auto m = Model::Create(*c, tensors);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->state_size(), 2 * 4);
  tensors["rnn.weight_hh_l1"].shape = {12, 4};
  tensors["rnn.weight_hh_l1"].values.resize(48);
  auto bad = Model::Create(*c, tensors);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(
                R"(tensor "rnn.weight_hh_l1" has shape [12, 4]; expected )"
                R"([4, 4] (hidden_size, hidden_size))"),
            std::string::npos)
      << bad.status().message();
}

TEST(CellVariantModelTest, PeepholesAreRequiredExactlyWhenConfigured) {
  auto c = Parse(R"(, "lstm_peepholes": true)", "lstm");
  ASSERT_TRUE(c.ok()) << c.status();
  auto tensors = RandomTensors(*c, 1);
  EXPECT_EQ(tensors.at("rnn.weight_peephole_l1").shape,
            (std::vector<int64_t>{12}));
  ASSERT_TRUE(Model::Create(*c, tensors).ok());
  auto without = tensors;
  without.erase("rnn.weight_peephole_l1");
  auto missing = Model::Create(*c, without);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(
                R"(missing tensor "rnn.weight_peephole_l1"; expected [12])"),
            std::string::npos)
      << missing.status().message();
  c->lstm_peepholes = false;
  auto extra = Model::Create(*c, tensors);
  ASSERT_FALSE(extra.ok());
  EXPECT_NE(extra.status().message().find(
                R"(unexpected tensors "rnn.weight_peephole_l0")"),
            std::string::npos)
      << extra.status().message();
}

}  // namespace
}  // namespace lstmserve::model
