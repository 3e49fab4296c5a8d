#include "model/model_config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace lstmserve::model {
namespace {

constexpr std::string_view kFile = "config.json";

// A config.json built from (key, raw JSON value) fields, in order.
class ConfigText {
 public:
  ConfigText()
      : fields_({{"cell", R"("lstm")"},
                 {"input_size", "4"},
                 {"hidden_size", "8"},
                 {"num_layers", "2"}}) {}

  // Sets (replacing or appending) a field to a raw JSON value.
  ConfigText& Set(std::string_view key, std::string_view value) {
    for (auto& [k, v] : fields_) {
      if (k == key) {
        v = value;
        return *this;
      }
    }
    fields_.emplace_back(key, value);
    return *this;
  }
  ConfigText& Remove(std::string_view key) {
    std::erase_if(fields_, [&](const auto& f) { return f.first == key; });
    return *this;
  }
  std::string str() const {
    return absl::StrCat("{",
                        absl::StrJoin(fields_, ", ",
                                      [](std::string* out, const auto& f) {
                                        absl::StrAppend(out, "\"", f.first,
                                                        "\": ", f.second);
                                      }),
                        "}");
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

absl::StatusOr<ModelConfig> Parse(std::string_view text,
                                  const ConfigLimits& limits = {}) {
  return ParseModelConfig(text, kFile, limits);
}
absl::StatusOr<ModelConfig> Parse(const ConfigText& text,
                                  const ConfigLimits& limits = {}) {
  return Parse(text.str(), limits);
}

// Checks that `result` failed with `code`, that the message starts with the
// file name and contains every one of `parts`.
void ExpectError(const absl::StatusOr<ModelConfig>& result,
                 std::initializer_list<std::string_view> parts,
                 absl::StatusCode code = absl::StatusCode::kInvalidArgument,
                 std::string_view file = kFile) {
  ASSERT_FALSE(result.ok()) << "parsed; expected an error";
  EXPECT_EQ(result.status().code(), code) << result.status();
  const std::string message(result.status().message());
  EXPECT_EQ(message.substr(0, file.size() + 2), std::string(file) + ": ")
      << message;
  for (std::string_view part : parts) {
    EXPECT_NE(message.find(part), std::string_view::npos)
        << "message: " << message << "\nexpected to contain: " << part;
  }
}

// --- Valid configs. ---

TEST(ModelConfigTest, MinimalConfigGetsDefaults) {
  auto config = Parse(ConfigText());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cell, CellType::kLstm);
  EXPECT_EQ(config->input_size, 4);
  EXPECT_EQ(config->hidden_size, 8);
  EXPECT_EQ(config->num_layers, 2);
  EXPECT_EQ(config->proj_size, 0);
  EXPECT_TRUE(config->bias);
  EXPECT_FALSE(config->head.has_value());
  EXPECT_FALSE(config->normalization.has_value());
  EXPECT_TRUE(config->description.empty());
  EXPECT_TRUE(config->input_names.empty());
  EXPECT_TRUE(config->output_names.empty());
  EXPECT_EQ(config->output_size(), 8);
  EXPECT_EQ(config->num_gates(), 4);
}

TEST(ModelConfigTest, FullConfig) {
  const std::string text = R"({
    "cell": "lstm", "input_size": 2, "hidden_size": 16, "num_layers": 3,
    "proj_size": 4, "bias": false,
    "head": {"output_size": 3, "activation": "softmax"},
    "normalization": {"input_mean": [0.5, -1], "input_std": [2, 0.25],
                      "output_mean": [1, 2, 3], "output_std": [1, 1, 4]},
    "description": "ecg classifier",
    "input_names": ["lead1", "lead2"], "output_names": ["a", "b", "c"],
    "some_future_key": {"nested": [1, 2, {"x": null}]}
  })";
  auto config = Parse(text);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cell, CellType::kLstm);
  EXPECT_EQ(config->input_size, 2);
  EXPECT_EQ(config->hidden_size, 16);
  EXPECT_EQ(config->num_layers, 3);
  EXPECT_EQ(config->proj_size, 4);
  EXPECT_EQ(config->layer_output_size(), 4);
  EXPECT_FALSE(config->bias);
  ASSERT_TRUE(config->head.has_value());
  EXPECT_EQ(config->head->output_size, 3);
  EXPECT_EQ(config->head->activation, Activation::kSoftmax);
  EXPECT_EQ(config->output_size(), 3);
  ASSERT_TRUE(config->normalization.has_value());
  EXPECT_EQ(config->normalization->input_mean,
            (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(config->normalization->input_std,
            (std::vector<float>{2.0f, 0.25f}));
  EXPECT_EQ(config->normalization->output_mean,
            (std::vector<float>{1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(config->normalization->output_std,
            (std::vector<float>{1.0f, 1.0f, 4.0f}));
  EXPECT_EQ(config->description, "ecg classifier");
  EXPECT_EQ(config->input_names, (std::vector<std::string>{"lead1", "lead2"}));
  EXPECT_EQ(config->output_names, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(ModelConfigTest, Gru) {
  auto config = Parse(ConfigText().Set("cell", R"("gru")"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cell, CellType::kGru);
  EXPECT_EQ(config->num_gates(), 3);
  // proj_size 0 is fine on a GRU.
  EXPECT_TRUE(
      Parse(ConfigText().Set("cell", R"("gru")").Set("proj_size", "0")).ok());
}

TEST(ModelConfigTest, HeadActivationDefaultsToIdentity) {
  auto config = Parse(ConfigText().Set("head", R"({"output_size": 5})"));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->head.has_value());
  EXPECT_EQ(config->head->activation, Activation::kIdentity);
  EXPECT_EQ(config->output_size(), 5);
  for (auto [name, activation] : {std::pair{"identity", Activation::kIdentity},
                                  std::pair{"softmax", Activation::kSoftmax},
                                  std::pair{"sigmoid", Activation::kSigmoid},
                                  std::pair{"tanh", Activation::kTanh}}) {
    auto parsed = Parse(ConfigText().Set(
        "head",
        absl::StrCat(R"({"output_size": 1, "activation": ")", name, R"("})")));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->head->activation, activation) << name;
  }
}

TEST(ModelConfigTest, SizesAtTheLimitsAreAccepted) {
  ConfigLimits limits;
  auto config = Parse(ConfigText()
                          .Set("input_size", "65536")
                          .Set("hidden_size", "16384")
                          .Set("num_layers", "64")
                          .Set("proj_size", "16383")
                          .Set("head", R"({"output_size": 65536})"),
                      limits);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->hidden_size, 16384);
}

TEST(ModelConfigTest, UnknownKeysAreIgnoredNestedAsDeepAsTheLimit) {
  const std::string deep = std::string(60, '[') + std::string(60, ']');
  auto config = Parse(ConfigText().Set("future", deep).Set("x", "null"));
  ASSERT_TRUE(config.ok()) << config.status();
}

TEST(ModelConfigTest, AMegabyteOfNestedBracketsIsAClearErrorNotACrash) {
  // The parser recurses per level: half a million levels overflowed the
  // stack before the depth was checked first.
  const std::string deep = std::string(500000, '[') + std::string(500000, ']');
  for (const std::string& text :
       {deep, ConfigText().Set("future", deep).str(),
        ConfigText().Set("description", "\"[[[[\"").str()}) {
    auto config = Parse(text);
    if (text.size() < 1000) {  // brackets inside a string do not count
      EXPECT_TRUE(config.ok()) << config.status();
      continue;
    }
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find("nested more than 64 deep"),
              std::string::npos)
        << config.status();
  }
}

TEST(ModelConfigTest, Names) {
  EXPECT_EQ(CellTypeName(CellType::kLstm), "lstm");
  EXPECT_EQ(CellTypeName(CellType::kGru), "gru");
  EXPECT_EQ(ActivationName(Activation::kIdentity), "identity");
  EXPECT_EQ(ActivationName(Activation::kSoftmax), "softmax");
  EXPECT_EQ(ActivationName(Activation::kSigmoid), "sigmoid");
  EXPECT_EQ(ActivationName(Activation::kTanh), "tanh");
}

// --- Errors. ---

TEST(ModelConfigTest, BadJson) {
  ExpectError(Parse(R"({"cell": "lstm",)"), {"not valid JSON"});
  ExpectError(Parse(""), {"not valid JSON"});
  ExpectError(Parse(R"({"cell": 'lstm'})"), {"not valid JSON", "at byte"});
  ExpectError(Parse(ConfigText().str() + " {}"), {"not valid JSON"});
  // A NUL byte must not end the input early.
  ExpectError(Parse(ConfigText().str() + std::string(1, '\0') + "garbage"),
              {"not valid JSON", "NUL byte"});
}

TEST(ModelConfigTest, NotAnObject) {
  ExpectError(Parse("[1, 2]"),
              {"top level is [1,2]", "expected a JSON object"});
  ExpectError(Parse("\"lstm\""), {"expected a JSON object"});
}

TEST(ModelConfigTest, DuplicateKeys) {
  ExpectError(Parse(ConfigText().str().insert(1, R"("hidden_size": 4, )")),
              {R"(key "hidden_size" appears more than once)"});
}

TEST(ModelConfigTest, Cell) {
  ExpectError(Parse(ConfigText().Remove("cell")),
              {R"("cell" is missing; expected "lstm", "gru" or "rnn")"});
  ExpectError(Parse(ConfigText().Set("cell", R"("lstm2")")),
              {R"("cell" is "lstm2"; expected "lstm", "gru" or "rnn")"});
  ExpectError(Parse(ConfigText().Set("cell", R"("LSTM")")),
              {R"("cell" is "LSTM")"});
  ExpectError(Parse(ConfigText().Set("cell", "1")), {R"("cell" is 1;)"});
}

TEST(ModelConfigTest, RequiredSizes) {
  struct Field {
    std::string key;
    std::string range;
    std::string over;
  };
  const Field fields[] = {{"input_size", "[1, 65536]", "65537"},
                          {"hidden_size", "[1, 16384]", "16385"},
                          {"num_layers", "[1, 64]", "65"}};
  for (const Field& f : fields) {
    SCOPED_TRACE(f.key);
    const std::string expected = "; expected an integer in " + f.range;
    ExpectError(Parse(ConfigText().Remove(f.key)),
                {absl::StrCat("\"", f.key, "\" is missing", expected)});
    // (value in the file, how the message shows it)
    const std::pair<std::string, std::string> bad_values[] = {
        {"0", "0"},
        {"-1", "-1"},
        {"1.5", "1.5"},
        {"4.0", "4.0"},
        {"\"4\"", "\"4\""},
        {"true", "true"},
        {"null", "null"},
        {"[4]", "[4]"},
        {"18446744073709551616", "1.8446744073709552e+19"},
        {"-9223372036854775809", "-9.223372036854776e+18"},
        {"4294967297", "4294967297"},  // would wrap to 1 as a 32-bit int
    };
    for (const auto& [bad, shown] : bad_values) {
      SCOPED_TRACE(bad);
      ExpectError(Parse(ConfigText().Set(f.key, bad)),
                  {absl::StrCat("\"", f.key, "\" is ", shown, expected)});
    }
    ExpectError(Parse(ConfigText().Set(f.key, f.over)),
                {absl::StrCat("\"", f.key, "\" is ", f.over, expected)});
  }
  // The example from the design notes, exactly.
  auto result = Parse(ConfigText().Set("hidden_size", "0"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(
      result.status().message(),
      R"(config.json: "hidden_size" is 0; expected an integer in [1, 16384])");
}

TEST(ModelConfigTest, CustomLimits) {
  ConfigLimits limits;
  limits.max_hidden_size = 4;
  ExpectError(Parse(ConfigText(), limits),
              {R"("hidden_size" is 8; expected an integer in [1, 4])"});
  limits = ConfigLimits();
  limits.max_layers = 1;
  ExpectError(Parse(ConfigText(), limits), {R"("num_layers" is 2)", "[1, 1]"});
}

TEST(ModelConfigTest, ProjSize) {
  ExpectError(Parse(ConfigText().Set("proj_size", "-1")),
              {R"("proj_size" is -1; expected an integer in [0, 7])",
               "less than hidden_size"});
  ExpectError(Parse(ConfigText().Set("proj_size", "8")),
              {R"("proj_size" is 8; expected an integer in [0, 7])"});
  ExpectError(Parse(ConfigText().Set("proj_size", "2.5")),
              {R"("proj_size" is 2.5)"});
  ExpectError(Parse(ConfigText().Set("proj_size", "\"2\"")),
              {R"("proj_size" is "2")"});
  ExpectError(Parse(ConfigText().Set("cell", R"("gru")").Set("proj_size", "2")),
              {R"("proj_size" is 2 but "cell" is "gru")", "LSTM-only"});
  auto config = Parse(ConfigText().Set("proj_size", "7"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->output_size(), 7);
}

TEST(ModelConfigTest, Bias) {
  ExpectError(Parse(ConfigText().Set("bias", "1")),
              {R"("bias" is 1; expected true or false)"});
  ExpectError(Parse(ConfigText().Set("bias", R"("false")")),
              {R"("bias" is "false")"});
  auto config = Parse(ConfigText().Set("bias", "false"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->bias);
}

TEST(ModelConfigTest, Head) {
  ExpectError(Parse(ConfigText().Set("head", "3")),
              {R"("head" is 3; expected an object)"});
  ExpectError(Parse(ConfigText().Set("head", "null")), {R"("head" is null)"});
  ExpectError(Parse(ConfigText().Set("head", "{}")),
              {R"("head.output_size" is missing; expected an integer in )"
               R"([1, 65536])"});
  ExpectError(Parse(ConfigText().Set("head", R"({"output_size": 0})")),
              {R"("head.output_size" is 0)"});
  ExpectError(Parse(ConfigText().Set("head", R"({"output_size": 65537})")),
              {R"("head.output_size" is 65537)"});
  ExpectError(Parse(ConfigText().Set("head", R"({"output_size": "3"})")),
              {R"("head.output_size" is "3")"});
  ConfigLimits limits;
  limits.max_output_size = 2;
  ExpectError(Parse(ConfigText().Set("head", R"({"output_size": 3})"), limits),
              {R"("head.output_size" is 3; expected an integer in [1, 2])"});
  ExpectError(
      Parse(ConfigText().Set("head",
                             R"({"output_size": 3, "activation": "relu"})")),
      {R"("head.activation" is "relu"; expected "identity", "softmax", )"
       R"("sigmoid" or "tanh")"});
  ExpectError(
      Parse(ConfigText().Set("head", R"({"output_size": 3, "activation": 1})")),
      {R"("head.activation" is 1;)", R"("tanh")"});
}

TEST(ModelConfigTest, Forecast) {
  // input_size 4, head of 2 outputs.
  const ConfigText base = ConfigText().Set("head", R"({"output_size": 2})");
  auto ok = Parse(ConfigText(base).Set(
      "forecast", R"({"feedback": [0, 1, 1, 0], "output_scale": [0.5, 2]})"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_TRUE(ok->forecast.has_value());
  EXPECT_EQ(ok->forecast->feedback, (std::vector<int>{0, 1, 1, 0}));
  EXPECT_EQ(ok->forecast->output_scale, (std::vector<float>{0.5f, 2.0f}));
  auto json = ModelConfigToJson(*ok);
  auto again = Parse(json);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ModelConfigToJson(*again), json);
  EXPECT_FALSE(Parse(base)->forecast.has_value());
  EXPECT_TRUE(Parse(ConfigText(base).Set("forecast", "{}"))->forecast);

  ExpectError(Parse(ConfigText(base).Set("forecast", "[1]")),
              {R"("forecast" is [1]; expected an object)"});
  ExpectError(Parse(ConfigText(base).Set("forecast", R"({"feedback": 1})")),
              {R"("forecast.feedback" is 1; expected an array)"});
  ExpectError(
      Parse(ConfigText(base).Set("forecast", R"({"feedback": [0, 1]})")),
      {R"("forecast.feedback" has 2 indices; expected 4 (input_size)"});
  ExpectError(
      Parse(ConfigText(base).Set("forecast", R"({"feedback": [0, 1, 2, 0]})")),
      {R"("forecast.feedback"[2] is 2; expected an output index in [0, 1])"});
  ExpectError(
      Parse(ConfigText(base).Set("forecast", R"({"feedback": [0, -1, 0, 0]})")),
      {R"("forecast.feedback"[1] is -1)"});
  ExpectError(Parse(ConfigText(base).Set("forecast",
                                         R"({"feedback": [0, 1, 0.5, 0]})")),
              {R"("forecast.feedback"[2] is 0.5)"});
  ExpectError(
      Parse(ConfigText(base).Set("forecast", R"({"output_scale": [1]})")),
      {R"("forecast.output_scale" has 1 values; expected 2)"});
  ExpectError(
      Parse(ConfigText(base).Set("forecast", R"({"output_scale": [1, 0]})")),
      {R"("forecast.output_scale"[1] is 0; expected a finite number > 0)"});
  ExpectError(
      Parse(ConfigText(base).Set("forecast", R"({"output_scale": [1, "x"]})")),
      {R"("forecast.output_scale"[1] is "x")"});
  ExpectError(
      Parse(ConfigText()
                .Set("head", R"({"output_size": 2, "activation": "softmax"})")
                .Set("forecast", R"({"output_scale": [1, 1]})")),
      {R"("forecast.output_scale" is given but the head is softmax)"});
}

TEST(ModelConfigTest, Normalization) {
  auto with = [](std::string_view norm) {
    return Parse(ConfigText().Set("normalization", norm));
  };
  ExpectError(with("[]"), {R"("normalization" is [];)", "expected an object"});
  ExpectError(with(R"({"input_mean": 1, "input_std": [1, 1, 1, 1]})"),
              {R"("normalization.input_mean" is 1; expected an array)"});
  ExpectError(with(R"({"input_mean": [0, "a", 0, 0],)"
                   R"( "input_std": [1, 1, 1, 1]})"),
              {R"("normalization.input_mean"[1] is "a"; expected a finite)"});
  ExpectError(with(R"({"input_mean": [0, 0, 0, null],)"
                   R"( "input_std": [1, 1, 1, 1]})"),
              {R"("normalization.input_mean"[3] is null)"});
  ExpectError(with(R"({"input_mean": [0, 0, 0, 1e39],)"
                   R"( "input_std": [1, 1, 1, 1]})"),
              {R"("normalization.input_mean"[3] is 1e+39; expected a finite)"});
  ExpectError(with(R"({"input_mean": [0, 0, 0],)"
                   R"( "input_std": [1, 1, 1, 1]})"),
              {R"("normalization.input_mean" has 3 values; expected 4 )"
               R"((input_size))"});
  ExpectError(with(R"({"input_mean": [0, 0, 0, 0],)"
                   R"( "input_std": [1, 1, 1, 1, 1]})"),
              {R"("normalization.input_std" has 5 values; expected 4)"});
  ExpectError(with(R"({"input_mean": [0, 0, 0, 0],)"
                   R"( "input_std": [1, 0, 1, 1]})"),
              {R"("normalization.input_std"[1] is 0; expected a finite )"
               R"(number > 0)"});
  ExpectError(with(R"({"input_mean": [0, 0, 0, 0],)"
                   R"( "input_std": [1, 1, -2, 1]})"),
              {R"("normalization.input_std"[2] is -2)", "> 0"});
  ExpectError(with(R"({"input_mean": [0, 0, 0, 0],)"
                   R"( "input_std": [1, 1, 1, 1e300]})"),
              {R"("normalization.input_std"[3] is 1e+300; expected a finite)"});
  ExpectError(with(R"({"input_mean": [0, 0, 0, 0]})"),
              {R"("normalization" has "input_mean" but not "input_std"; )"
               R"(expected both or neither)"});
  ExpectError(with(R"({"output_std": [1, 1, 1, 1, 1, 1, 1, 1]})"),
              {R"(has "output_std" but not "output_mean")"});
  // Output pairs are sized by output_size(): the hidden size without a head...
  ExpectError(with(R"({"output_mean": [0], "output_std": [1]})"),
              {R"("normalization.output_mean" has 1 values; expected 8)"});
  // ...and the head's output size with one.
  auto config = Parse(
      ConfigText()
          .Set("head", R"({"output_size": 1})")
          .Set("normalization", R"({"output_mean": [0], "output_std": [3]})"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->normalization->input_mean.empty());
  EXPECT_EQ(config->normalization->output_std, std::vector<float>{3.0f});
}

TEST(ModelConfigTest, DescriptionAndNames) {
  ExpectError(Parse(ConfigText().Set("description", "5")),
              {R"("description" is 5; expected a string)"});
  ExpectError(Parse(ConfigText().Set("input_names", R"("a,b,c,d")")),
              {R"("input_names" is "a,b,c,d"; expected an array of strings)"});
  ExpectError(Parse(ConfigText().Set("input_names", R"(["a", "b", 3, "d"])")),
              {R"("input_names"[2] is 3; expected a string)"});
  ExpectError(Parse(ConfigText().Set("input_names", R"(["a", "b", "c"])")),
              {R"("input_names" has 3 names; expected 4 (input_size))"});
  ExpectError(Parse(ConfigText().Set("output_names", R"(["a"])")),
              {R"("output_names" has 1 names; expected 8)"});
  ExpectError(Parse(ConfigText()
                        .Set("head", R"({"output_size": 2})")
                        .Set("output_names", R"(["a", "b", "c"])")),
              {R"("output_names" has 3 names; expected 2)"});
  auto config = Parse(ConfigText()
                          .Set("head", R"({"output_size": 2})")
                          .Set("output_names", R"(["a", "b"])"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->output_names, (std::vector<std::string>{"a", "b"}));
}

TEST(ModelConfigTest, ConfigTooLarge) {
  ConfigLimits limits;
  limits.max_config_bytes = 16;
  ExpectError(Parse(ConfigText(), limits),
              {"expected at most 16", "max_config_bytes"});
}

TEST(ModelConfigTest, LongValuesAreShortenedInMessages) {
  auto result =
      Parse(ConfigText().Set("cell", "\"" + std::string(5000, 'x') + "\""));
  ExpectError(result, {R"("cell" is "xxxx)", "...", "expected"});
  EXPECT_LT(result.status().message().size(), 300u);
}

// --- Round trips. ---

void ExpectSameConfig(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.cell, b.cell);
  EXPECT_EQ(a.input_size, b.input_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.proj_size, b.proj_size);
  EXPECT_EQ(a.bias, b.bias);
  ASSERT_EQ(a.head.has_value(), b.head.has_value());
  if (a.head) {
    EXPECT_EQ(a.head->output_size, b.head->output_size);
    EXPECT_EQ(a.head->activation, b.head->activation);
  }
  ASSERT_EQ(a.normalization.has_value(), b.normalization.has_value());
  if (a.normalization) {
    EXPECT_EQ(a.normalization->input_mean, b.normalization->input_mean);
    EXPECT_EQ(a.normalization->input_std, b.normalization->input_std);
    EXPECT_EQ(a.normalization->output_mean, b.normalization->output_mean);
    EXPECT_EQ(a.normalization->output_std, b.normalization->output_std);
  }
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.input_names, b.input_names);
  EXPECT_EQ(a.output_names, b.output_names);
}

TEST(ModelConfigTest, ToJsonRoundTrips) {
  ModelConfig full;
  full.cell = CellType::kLstm;
  full.input_size = 3;
  full.hidden_size = 32;
  full.num_layers = 2;
  full.proj_size = 16;
  full.bias = false;
  full.head = HeadConfig{.output_size = 2, .activation = Activation::kSigmoid};
  full.normalization = Normalization{
      .input_mean = {0.1f, -1e-30f, 3.4e38f},
      .input_std = {1.0f / 3.0f, 1e-38f, 7.0f},
      .output_mean = {-0.0f, 123456.789f},
      .output_std = {0.2f, 1e10f},
  };
  full.description = "quotes \" backslash \\ newline \n unicode \xc3\xa9";
  full.input_names = {"x", "y", "z"};
  full.output_names = {"p", "q"};

  ModelConfig gru;
  gru.cell = CellType::kGru;
  gru.input_size = 1;
  gru.hidden_size = 1;
  gru.num_layers = 1;
  gru.head = HeadConfig{.output_size = 4, .activation = Activation::kTanh};

  ModelConfig empty_norm;
  empty_norm.input_size = 2;
  empty_norm.hidden_size = 2;
  empty_norm.normalization = Normalization{};

  for (const ModelConfig* config : {&full, &gru, &empty_norm}) {
    const std::string json = ModelConfigToJson(*config);
    SCOPED_TRACE(json);
    auto parsed = Parse(json);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ExpectSameConfig(*parsed, *config);
    // And the output is stable.
    EXPECT_EQ(ModelConfigToJson(*parsed), json);
  }
  EXPECT_NE(ModelConfigToJson(full).find(R"("cell": "lstm")"),
            std::string::npos);
  EXPECT_NE(ModelConfigToJson(gru).find(R"("activation": "tanh")"),
            std::string::npos);
}

// --- Files on disk. ---

class ModelConfigDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat(
               "model_config_test_", ::getpid(), "_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& text) {
    const std::string path = (dir_ / "config.json").string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(ModelConfigDiskTest, ReadsAFile) {
  auto config = ReadModelConfig(Write(ConfigText().str()));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->hidden_size, 8);
}

TEST_F(ModelConfigDiskTest, MissingFileIsNotFound) {
  const std::string path = (dir_ / "config.json").string();
  ExpectError(ReadModelConfig(path), {"no such file"},
              absl::StatusCode::kNotFound, path);
}

TEST_F(ModelConfigDiskTest, ErrorsNameThePath) {
  const std::string path = Write(ConfigText().Set("cell", R"("lstm2")").str());
  ExpectError(ReadModelConfig(path), {R"("cell" is "lstm2")"},
              absl::StatusCode::kInvalidArgument, path);
}

TEST_F(ModelConfigDiskTest, FileTooLarge) {
  const std::string text = ConfigText().str();
  const std::string path = Write(text);
  ConfigLimits limits;
  limits.max_config_bytes = text.size() - 1;
  ExpectError(
      ReadModelConfig(path, limits),
      {absl::StrCat("config is ", text.size(), " bytes"), "max_config_bytes"},
      absl::StatusCode::kInvalidArgument, path);
}

}  // namespace
}  // namespace lstmserve::model
