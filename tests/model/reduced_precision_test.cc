// Models with bf16 and int8 weights, on every kernel path this CPU has:
//
// (a) exact for what they compute: every step of every layer, read back
//     from the explain records, matches a float64 reference built from the
//     rounded or quantized weights and the same activation rounding
//     (tests/model/reference_step.h), within 1e-4 relative (beyond
//     magnitude 1; absolute below it), for every cell and variant, batched
//     and chunked, B = 1 and B > 1;
// (b) close to float32: the outputs of the same model in float32, over a
//     40-step sequence, within the bounds documented in
//     docs/MODEL_FORMAT.md ("Accuracy").
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/kernel_path.h"
#include "model/model.h"
#include "tests/model/cell_cases.h"
#include "tests/model/reference_step.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {

constexpr double kTolerance = 1e-4;

struct Param {
  CellCase cell;
  WeightFormat format;
  KernelPath path;
};

std::string Name(const Param& p) {
  return p.cell.name + "_" + std::string(WeightFormatName(p.format)) + "_" +
         std::string(KernelPathName(p.path));
}

void PrintTo(const Param& p, std::ostream* os) { *os << Name(p); }

// Every cell case with each reduced format on each path that has its own
// kernel for that format (the others run the same kernels as one of these).
std::vector<Param> Params() {
  std::vector<Param> params;
  for (const CellCase& c : CellCases()) {
    for (KernelPath p :
         {KernelPath::kGeneric, KernelPath::kAvx512, KernelPath::kAvx512Bf16}) {
      params.push_back({c, WeightFormat::kBF16, p});
    }
    for (KernelPath p : {KernelPath::kGeneric, KernelPath::kAvxVnni,
                         KernelPath::kAvx512, KernelPath::kAvx512Vnni}) {
      params.push_back({c, WeightFormat::kInt8, p});
    }
  }
  return params;
}

// One session's part in a RunBatch call and what it needs for checking.
struct Session {
  std::vector<float> inputs;   // steps x input_size
  std::vector<float> state;    // before the call, then after it
  std::vector<float> outputs;  // steps x output_size
  std::vector<float> explain;  // steps x explain_size
  int steps = 0;
};

class ReducedPrecisionTest : public testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    const Param& p = GetParam();
    std::string why;
    if (!KernelPathAvailable(p.path, &why)) GTEST_SKIP() << why;
    config_ = p.cell.config;
    tensors_ = RandomTensors(config_, 11);
    Model::Options options;
    options.weights = p.format;
    options.kernel_path = p.path;
    auto m = Model::Create(config_, tensors_, "test", options);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = *std::move(m);
    ASSERT_EQ(model_->weight_format(), p.format);
    // vdpbf16ps rounds the activations to bf16; the widening kernels do not.
    const bool bf16_activations =
        p.format == WeightFormat::kBF16 &&
        model_->kernels().products == KernelPath::kAvx512Bf16;
    reference_ = std::make_unique<ref::ReferenceModel>(
        config_, tensors_, p.format, bf16_activations);
    for (const ExplainField& f : model_->explain_layout()) {
      fields_[f.layer][f.name] = f;
    }
  }

  // Runs one RunBatch call over `sessions` (their states updated) and
  // checks every step against the reference.
  void RunAndCheck(std::vector<Session>& sessions) {
    std::vector<SequenceRef> refs;
    std::vector<std::vector<float>> before;
    for (Session& s : sessions) {
      s.outputs.assign(static_cast<size_t>(s.steps) * model_->output_size(), 0);
      s.explain.assign(static_cast<size_t>(s.steps) * model_->explain_size(),
                       0);
      before.push_back(s.state);
      refs.push_back(SequenceRef{s.inputs.data(), s.steps, s.state.data(),
                                 s.outputs.data(), s.explain.data()});
    }
    ASSERT_TRUE(model_->RunBatch(refs, workspace_).ok());
    for (size_t b = 0; b < sessions.size(); ++b) {
      SCOPED_TRACE("session " + std::to_string(b));
      CheckSession(sessions[b], before[b]);
    }
  }

  // A field of step t's record (t = -1: from the state before the call).
  std::vector<float> Field(const Session& s, const std::vector<float>& before,
                           int t, int layer, const std::string& name) const {
    const ExplainField& f = fields_.at(layer).at(name);
    if (t >= 0) {
      const float* r =
          s.explain.data() + static_cast<size_t>(t) * model_->explain_size();
      return std::vector<float>(r + f.offset, r + f.offset + f.size);
    }
    // The state layout: per layer h (out), then c (H) for LSTM.
    const int out = config_.layer_output_size();
    const int H = config_.hidden_size;
    const int per_layer = out + (config_.cell == CellType::kLstm ? H : 0);
    const float* sl = before.data() + static_cast<size_t>(layer) * per_layer;
    if (name == "h") return std::vector<float>(sl, sl + out);
    if (name == "c") return std::vector<float>(sl + out, sl + out + H);
    return {};
  }

  void Compare(const std::vector<float>& got, const std::vector<double>& want,
               const std::vector<double>* slack, const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < got.size(); ++i) {
      const double tol = kTolerance * std::max(1.0, std::abs(want[i])) +
                         (slack ? (*slack)[i] : 0.0);
      if (!(std::abs(got[i] - want[i]) <= tol)) {
        ADD_FAILURE() << what << "[" << i << "]: engine " << got[i]
                      << ", reference " << want[i] << " (tolerance " << tol
                      << ")";
        if (++failures_ > 10) FAIL() << "too many differences";
      }
    }
  }

  void CheckSession(const Session& s, const std::vector<float>& before) {
    const bool lstm = config_.cell == CellType::kLstm;
    const bool gru = config_.cell == CellType::kGru;
    const int in = config_.input_size;
    const Normalization* norm =
        config_.normalization ? &*config_.normalization : nullptr;
    for (int t = 0; t < s.steps; ++t) {
      // Layer 0's input, normalized in float32 as the engine does.
      std::vector<float> x(s.inputs.begin() + static_cast<size_t>(t) * in,
                           s.inputs.begin() + static_cast<size_t>(t + 1) * in);
      if (norm && !norm->input_mean.empty()) {
        for (int i = 0; i < in; ++i) {
          x[i] = (x[i] - norm->input_mean[i]) / norm->input_std[i];
        }
      }
      for (int l = 0; l < config_.num_layers; ++l) {
        const std::string at =
            "step " + std::to_string(t) + " layer " + std::to_string(l) + " ";
        const std::vector<float> h_prev = Field(s, before, t - 1, l, "h");
        const std::vector<float> c_prev =
            lstm ? Field(s, before, t - 1, l, "c") : std::vector<float>();
        const std::vector<float> r =
            gru ? Field(s, before, t, l, "r") : std::vector<float>();
        const ref::RefStep want = reference_->Step(l, x, h_prev, c_prev, r);
        const std::vector<std::string> gates =
            lstm  ? std::vector<std::string>{"i", "f", "g", "o"}
            : gru ? std::vector<std::string>{"r", "z", "n"}
                  : std::vector<std::string>{};
        const int H = config_.hidden_size;
        for (size_t g = 0; g < gates.size(); ++g) {
          Compare(Field(s, before, t, l, gates[g]),
                  std::vector<double>(want.gates.begin() + g * H,
                                      want.gates.begin() + (g + 1) * H),
                  nullptr, at + gates[g]);
        }
        if (lstm)
          Compare(Field(s, before, t, l, "c"), want.c, nullptr, at + "c");
        const std::vector<float> h = Field(s, before, t, l, "h");
        Compare(h, want.h, &want.h_slack, at + "h");
        x = h;  // the next layer's input
      }
      const std::vector<float> out(
          s.outputs.begin() + static_cast<size_t>(t) * model_->output_size(),
          s.outputs.begin() +
              static_cast<size_t>(t + 1) * model_->output_size());
      Compare(out, reference_->Output(x), nullptr,
              "step " + std::to_string(t) + " output");
    }
    // The state after the call is the last step's record, exactly.
    for (int l = 0; l < config_.num_layers; ++l) {
      std::vector<float> after(s.state);
      EXPECT_EQ(Field(s, after, -1, l, "h"),
                Field(s, before, s.steps - 1, l, "h"));
      if (lstm) {
        EXPECT_EQ(Field(s, after, -1, l, "c"),
                  Field(s, before, s.steps - 1, l, "c"));
      }
    }
  }

  Session NewSession(int steps, uint32_t seed) const {
    Session s;
    s.steps = steps;
    s.inputs = testutil::RandomInputs(
        static_cast<size_t>(steps) * config_.input_size, seed);
    s.state = testutil::RandomInputs(model_->state_size(), seed + 1000);
    for (float& v : s.state) v *= 0.5f;
    return s;
  }

  ModelConfig config_;
  std::map<std::string, Tensor> tensors_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<ref::ReferenceModel> reference_;
  std::map<int, std::map<std::string, ExplainField>> fields_;
  Workspace workspace_;
  int failures_ = 0;
};

TEST_P(ReducedPrecisionTest, OneSessionChunkedMatchesTheReference) {
  std::vector<Session> s = {NewSession(6, 1)};
  RunAndCheck(s);
  // Continued step by step (the single-step path), then another chunk.
  for (int t = 0; t < 3; ++t) {
    s[0].steps = 1;
    s[0].inputs = testutil::RandomInputs(config_.input_size, 50 + t);
    RunAndCheck(s);
  }
  s[0].steps = 4;
  s[0].inputs = testutil::RandomInputs(4 * config_.input_size, 60);
  RunAndCheck(s);
}

TEST_P(ReducedPrecisionTest, BatchedSessionsMatchTheReference) {
  // Chunks of different lengths in one call, then one step each (the
  // batched single-step path), then a batch of 7 (several tiles).
  std::vector<Session> s = {NewSession(5, 2), NewSession(1, 3),
                            NewSession(3, 4)};
  RunAndCheck(s);
  for (Session& x : s) {
    x.steps = 1;
    x.inputs = testutil::RandomInputs(config_.input_size, 70);
  }
  RunAndCheck(s);
  std::vector<Session> seven;
  for (int b = 0; b < 7; ++b) seven.push_back(NewSession(1 + b % 3, 80 + b));
  RunAndCheck(seven);
}

// (b) Against the same model in float32. The bounds hold for these random
// models (weights uniform in +-1/sqrt(H), normal inputs, 40 steps) and
// are documented in docs/MODEL_FORMAT.md; they are not a promise for every
// model (eval measures a real one).
TEST_P(ReducedPrecisionTest, OutputsStayCloseToFloat32) {
  const Param& p = GetParam();
  auto f32 = Model::Create(config_, tensors_, "test");
  ASSERT_TRUE(f32.ok()) << f32.status();
  constexpr int kSteps = 40;
  const std::vector<float> inputs =
      testutil::RandomInputs(kSteps * config_.input_size, 5);
  const int O = model_->output_size();
  std::vector<float> got(kSteps * O), want(kSteps * O);
  std::vector<float> s1(model_->state_size(), 0), s2(s1);
  Workspace ws;
  ASSERT_TRUE(
      model_->RunChunk(inputs.data(), kSteps, s1.data(), got.data(), ws).ok());
  ASSERT_TRUE(
      (*f32)->RunChunk(inputs.data(), kSteps, s2.data(), want.data(), ws).ok());
  // Relative to the outputs' own scale (normalized outputs are in the
  // output_std's units).
  double scale = 1.0;
  for (float v : want)
    scale = std::max(scale, static_cast<double>(std::abs(v)));
  double max_err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    max_err =
        std::max(max_err, std::abs(static_cast<double>(got[i]) - want[i]));
  }
  const double bound = p.format == WeightFormat::kBF16 ? 1e-2 : 2e-2;
  EXPECT_LE(max_err / scale, bound)
      << "max abs error " << max_err << " on outputs up to " << scale;
}

INSTANTIATE_TEST_SUITE_P(Formats, ReducedPrecisionTest,
                         testing::ValuesIn(Params()),
                         [](const auto& p) { return Name(p.param); });

}  // namespace
}  // namespace lstmserve::model
