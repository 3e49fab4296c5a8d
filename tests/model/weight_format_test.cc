// Choosing a weight format (config.json, Model::Options), loading I8 and
// BF16 files, refusing bad ones with messages that name the tensor, `lstm-
// model convert`'s directories, and the kernel paths.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/convert.h"
#include "model/kernel_path.h"
#include "model/model.h"
#include "tests/model/cell_cases.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {

using testing::HasSubstr;

TEST(WeightFormatTest, NamesRoundTrip) {
  for (WeightFormat f :
       {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kInt8}) {
    EXPECT_EQ(ParseWeightFormat(WeightFormatName(f)), f);
  }
  EXPECT_EQ(WeightFormatName(WeightFormat::kInt8), "int8");
  EXPECT_FALSE(ParseWeightFormat("fp16").has_value());
  EXPECT_FALSE(ParseWeightFormat("INT8").has_value());
  EXPECT_EQ(WeightFormatBytes(WeightFormat::kBF16), 2);
}

TEST(WeightFormatTest, ConfigJsonChoosesTheFormat) {
  const std::string base =
      R"({"cell": "gru", "input_size": 2, "hidden_size": 3, "num_layers": 1)";
  auto c = ParseModelConfig(base + "}", "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->weights, WeightFormat::kF32);
  c = ParseModelConfig(base + R"(, "weights": "bf16"})", "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->weights, WeightFormat::kBF16);
  EXPECT_THAT(ModelConfigToJson(*c), HasSubstr(R"("weights": "bf16")"));
  for (const char* bad : {R"("fp8")", "8", "null"}) {
    c = ParseModelConfig(base + R"(, "weights": )" + bad + "}", "config.json");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_THAT(c.status().message(), HasSubstr("config.json"));
    EXPECT_THAT(c.status().message(),
                HasSubstr(R"(expected "f32", "bf16" or "int8")"));
  }
}

class LoadTest : public testing::Test {
 protected:
  void SetUp() override {
    config_ =
        CellConfig(CellType::kLstm, 3, 8, 2, 0, true, 2, Activation::kIdentity);
    tensors_ = RandomTensors(config_, 4);
  }

  absl::Status Load(const std::map<std::string, Tensor>& tensors,
                    const std::string& config_json = "") {
    const std::string dir = tmp_.Join("v" + std::to_string(++n_));
    testutil::WriteVersionDir(dir, config_, {});
    testutil::WriteFile(dir + "/model.safetensors",
                        SerializeSafetensorsAsStored(tensors));
    if (!config_json.empty()) {
      testutil::WriteFile(dir + "/config.json", config_json);
    }
    return Model::Load(dir).status();
  }

  // tensors_ with rnn.weight_hh_l1 stored as I8 with the given scales.
  std::map<std::string, Tensor> WithInt8(std::vector<int64_t> scale_shape,
                                         float scale_value) {
    std::map<std::string, Tensor> t = tensors_;
    Tensor& w = t["rnn.weight_hh_l1"];
    w.stored_dtype = DType::kI8;
    for (float& v : w.values) v = std::round(v * 100);
    Tensor s;
    s.shape = scale_shape;
    s.values.assign(static_cast<size_t>(s.num_elements()), scale_value);
    t["rnn.weight_hh_l1.scale"] = s;
    return t;
  }

  ModelConfig config_;
  std::map<std::string, Tensor> tensors_;
  testutil::TempDir tmp_;
  int n_ = 0;
};

TEST_F(LoadTest, OptionsOverrideConfigJson) {
  config_.weights = WeightFormat::kBF16;
  const std::string dir = tmp_.Join("m");
  testutil::WriteVersionDir(dir, config_, tensors_);
  auto m = Model::Load(dir);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->weight_format(), WeightFormat::kBF16);
  Model::Options options;
  options.weights = WeightFormat::kInt8;
  m = Model::Load(dir, options);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->weight_format(), WeightFormat::kInt8);
  EXPECT_EQ((*m)->config().weights, WeightFormat::kInt8);
  // 2 layers of 32 x (3 or 8) + 32 x 8 weights, plus biases and head, all
  // float32 but the matrices (1 byte + a 4-byte scale per row).
  const int64_t matrices = 32 * 3 + 32 * 8 + 32 * 8 + 32 * 8;
  const int64_t f32_rest = (4 * 32 + 2 * 8 + 2) * 4;
  EXPECT_EQ((*m)->weight_bytes(), matrices + 4 * 32 * 4 + f32_rest);
  options.weights = WeightFormat::kF32;
  m = Model::Load(dir, options);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->weight_bytes(), matrices * 4 + f32_rest);
}

TEST_F(LoadTest, AcceptsI8WithScales) {
  EXPECT_TRUE(Load(WithInt8({32}, 0.01f)).ok());
}

TEST_F(LoadTest, RefusesBadI8AndScales) {
  struct Bad {
    std::map<std::string, Tensor> tensors;
    std::vector<std::string> message;
  };
  std::vector<Bad> cases;
  {
    auto t = WithInt8({32}, 0.01f);
    t.erase("rnn.weight_hh_l1.scale");
    cases.push_back({t,
                     {R"(tensor "rnn.weight_hh_l1" is I8 but )",
                      R"("rnn.weight_hh_l1.scale" is missing)", "[32]"}});
  }
  cases.push_back({WithInt8({31}, 0.01f),
                   {R"(tensor "rnn.weight_hh_l1.scale" is F32 [31])",
                    "expected F32 [32]"}});
  cases.push_back({WithInt8({32, 1}, 0.01f),
                   {R"("rnn.weight_hh_l1.scale" is F32 [32, 1])"}});
  cases.push_back(
      {WithInt8({32}, -1.0f), {"negative scale", "scales must be >= 0"}});
  cases.push_back({WithInt8({32}, std::numeric_limits<float>::quiet_NaN()),
                   {R"("rnn.weight_hh_l1.scale" has a non-finite value)"}});
  {
    auto t = WithInt8({32}, 0.01f);
    t["rnn.weight_hh_l1.scale"].stored_dtype = DType::kI8;
    cases.push_back({t, {R"("rnn.weight_hh_l1.scale" is I8 [32])"}});
  }
  {
    auto t = tensors_;
    t["rnn.weight_ih_l0.scale"] = Tensor{.shape = {32}, .values = {}};
    t["rnn.weight_ih_l0.scale"].values.assign(32, 1.0f);
    cases.push_back(
        {t, {R"("rnn.weight_ih_l0.scale" is given but)", "is F32, not I8"}});
  }
  {
    auto t = tensors_;
    t["rnn.bias_ih_l0"].stored_dtype = DType::kI8;
    for (float& v : t["rnn.bias_ih_l0"].values) v = 1;
    cases.push_back(
        {t, {R"(tensor "rnn.bias_ih_l0" is I8; only the weight matrices)"}});
  }
  {
    auto t = tensors_;
    t["rnn.weight_hh_l0"].values[5] = std::numeric_limits<float>::infinity();
    cases.push_back(
        {t, {R"(tensor "rnn.weight_hh_l0" has a non-finite value)"}});
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const absl::Status s = Load(cases[i].tensors);
    ASSERT_FALSE(s.ok()) << "case " << i;
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("model.safetensors"));
    for (const std::string& part : cases[i].message) {
      EXPECT_THAT(std::string(s.message()), HasSubstr(part)) << "case " << i;
    }
  }
  const absl::Status s =
      Load(tensors_, R"({"cell": "lstm", "input_size": 3, "hidden_size": 8,)"
                     R"( "num_layers": 2, "weights": "int4"})");
  EXPECT_THAT(std::string(s.message()), HasSubstr(R"("weights" is "int4")"));
}

// Converted directories hold smaller files that load to exactly the model
// the original becomes with the same format.
class ConvertTest : public testing::TestWithParam<CellCase> {};

TEST_P(ConvertTest, ConvertedLoadsToTheSameModel) {
  const ModelConfig& c = GetParam().config;
  testutil::TempDir tmp;
  const std::string src = tmp.Join("src/1");
  testutil::WriteVersionDir(src, c, RandomTensors(c, 8));
  const int steps = 9;
  const std::vector<float> in = testutil::RandomInputs(steps * c.input_size, 3);
  auto run = [&](const Model& m) {
    std::vector<float> state(m.state_size(), 0.1f);
    std::vector<float> out(static_cast<size_t>(steps) * m.output_size());
    Workspace ws;
    EXPECT_TRUE(
        m.RunChunk(in.data(), steps, state.data(), out.data(), ws).ok());
    out.insert(out.end(), state.begin(), state.end());
    return out;
  };
  for (WeightFormat f : {WeightFormat::kBF16, WeightFormat::kInt8}) {
    SCOPED_TRACE(std::string(WeightFormatName(f)));
    const std::string dst = tmp.Join(std::string(WeightFormatName(f)) + "/1");
    ASSERT_TRUE(ConvertVersionDir(src, f, dst).ok());
    auto converted = Model::Load(dst);
    ASSERT_TRUE(converted.ok()) << converted.status();
    EXPECT_EQ((*converted)->weight_format(), f);
    Model::Options options;
    options.weights = f;
    auto original = Model::Load(src, options);
    ASSERT_TRUE(original.ok());
    EXPECT_EQ(run(**converted), run(**original));
    // The data section holds exactly weight_bytes(): the matrices at 2 or
    // 1 byte per weight (int8: with a float32 scale per row), the rest
    // float32.
    const std::string file = testutil::ReadFile(dst + "/model.safetensors");
    uint64_t header = 0;
    std::memcpy(&header, file.data(), 8);  // little-endian on x86-64
    EXPECT_EQ(file.size() - 8 - header,
              static_cast<uint64_t>((*converted)->weight_bytes()));
    auto tensors = ReadSafetensors(dst + "/model.safetensors");
    ASSERT_TRUE(tensors.ok());
    for (const auto& [name, t] : *tensors) {
      const bool matrix = name.rfind("rnn.weight_", 0) == 0 &&
                          name.find("peephole") == std::string::npos &&
                          name.find(".scale") == std::string::npos;
      const DType want = !matrix                    ? DType::kF32
                         : f == WeightFormat::kBF16 ? DType::kBF16
                                                    : DType::kI8;
      EXPECT_EQ(t.stored_dtype, want) << name;
    }
    // A converted directory converts again: int8 stays exactly as it is,
    // and back to float32 it loads.
    const std::string again =
        tmp.Join(std::string(WeightFormatName(f)) + "2/1");
    ASSERT_TRUE(ConvertVersionDir(dst, f, again).ok());
    EXPECT_EQ(testutil::ReadFile(again + "/model.safetensors"),
              testutil::ReadFile(dst + "/model.safetensors"));
    ASSERT_TRUE(
        ConvertVersionDir(dst, WeightFormat::kF32,
                          tmp.Join(std::string(WeightFormatName(f)) + "f32/1"))
            .ok());
    // Never over an existing version.
    const absl::Status s = ConvertVersionDir(src, f, dst);
    EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  }
}

INSTANTIATE_TEST_SUITE_P(Cells, ConvertTest, testing::ValuesIn(CellCases()),
                         [](const auto& p) { return p.param.name; });

TEST(KernelPathTest, NamesRoundTrip) {
  for (KernelPath p : AllKernelPaths()) {
    EXPECT_EQ(ParseKernelPath(KernelPathName(p)), p);
  }
  EXPECT_FALSE(ParseKernelPath("avx2").has_value());
  EXPECT_TRUE(KernelPathAvailable(KernelPath::kGeneric));
}

TEST(KernelPathTest, ForcedPathsPickTheirKernelsOrSayWhatIsMissing) {
  struct Row {
    KernelPath forced;
    KernelPath cells, f32, bf16, int8;
  };
  using P = KernelPath;
  const Row table[] = {
      {P::kGeneric, P::kGeneric, P::kGeneric, P::kGeneric, P::kGeneric},
      {P::kAvxVnni, P::kGeneric, P::kGeneric, P::kGeneric, P::kAvxVnni},
      {P::kAvx512, P::kAvx512, P::kAvx512, P::kAvx512, P::kAvx512},
      {P::kAvx512Vnni, P::kAvx512, P::kAvx512, P::kAvx512, P::kAvx512Vnni},
      {P::kAvx512Bf16, P::kAvx512, P::kAvx512, P::kAvx512Bf16, P::kAvx512},
  };
  for (const Row& row : table) {
    SCOPED_TRACE(std::string(KernelPathName(row.forced)));
    for (auto [format, want] : {std::pair{WeightFormat::kF32, row.f32},
                                std::pair{WeightFormat::kBF16, row.bf16},
                                std::pair{WeightFormat::kInt8, row.int8}}) {
      auto choice = ChooseKernels(format, row.forced);
      std::string why;
      if (!KernelPathAvailable(row.forced, &why)) {
        ASSERT_FALSE(choice.ok());
        EXPECT_EQ(choice.status().code(),
                  absl::StatusCode::kFailedPrecondition);
        EXPECT_THAT(std::string(choice.status().message()), HasSubstr(why));
        continue;
      }
      ASSERT_TRUE(choice.ok()) << choice.status();
      EXPECT_EQ(choice->cells, row.cells);
      EXPECT_EQ(choice->products, want);
    }
  }
  // Unforced: the best available, never one the CPU lacks.
  for (WeightFormat f :
       {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kInt8}) {
    auto choice = ChooseKernels(f, std::nullopt);
    ASSERT_TRUE(choice.ok());
    EXPECT_TRUE(KernelPathAvailable(choice->products));
    EXPECT_TRUE(KernelPathAvailable(choice->cells));
  }
}

// $LSTMSERVE_ISA, restored afterwards.
class EnvironmentTest : public testing::Test {
 protected:
  void SetUp() override {
    if (const char* v = std::getenv("LSTMSERVE_ISA")) saved_ = v;
  }
  void TearDown() override {
    if (saved_) {
      setenv("LSTMSERVE_ISA", saved_->c_str(), 1);
    } else {
      unsetenv("LSTMSERVE_ISA");
    }
  }
  std::optional<std::string> saved_;
};

TEST_F(EnvironmentTest, LstmserveIsaNamesAPathOrAuto) {
  unsetenv("LSTMSERVE_ISA");
  EXPECT_FALSE(KernelPathFromEnvironment()->has_value());
  setenv("LSTMSERVE_ISA", "auto", 1);
  EXPECT_FALSE(KernelPathFromEnvironment()->has_value());
  setenv("LSTMSERVE_ISA", "avx512_vnni", 1);
  EXPECT_EQ(KernelPathFromEnvironment()->value(), KernelPath::kAvx512Vnni);
  setenv("LSTMSERVE_ISA", "sse2", 1);
  auto bad = KernelPathFromEnvironment();
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr(R"(LSTMSERVE_ISA is "sse2"; expected one of auto, )"
                        "generic, avx_vnni, avx512, avx512_vnni, "
                        "avx512_bf16"));
  // A model cannot be created under a bad value, and says why.
  ModelConfig c =
      CellConfig(CellType::kGru, 1, 2, 1, 0, true, 0, Activation::kIdentity);
  auto m = Model::Create(c, RandomTensors(c, 1));
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("LSTMSERVE_ISA"));
  // Options::kernel_path takes precedence over the environment.
  Model::Options options;
  options.kernel_path = KernelPath::kGeneric;
  m = Model::Create(c, RandomTensors(c, 1), "test", options);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->kernels().cells, KernelPath::kGeneric);
}

}  // namespace
}  // namespace lstmserve::model
