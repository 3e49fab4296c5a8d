// One sequence must give the same outputs and final state however it is cut
// up: whole, in random chunks, step by step, and batched beside other
// sessions with different chunk lengths (entry points a, b and c).
#include <algorithm>
#include <random>
#include <span>
#include <vector>

#include "gtest/gtest.h"
#include "model/model.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {

constexpr float kTolerance = 1e-5f;

float MaxAbsDiff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    m = std::max(m, std::abs(a[i] - b[i]));
  }
  return m;
}

struct Case {
  std::string name;
  ModelConfig config;
};

// Keeps gtest from dumping the struct's bytes in test names and failures.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

ModelConfig Config(CellType cell, int in, int hidden, int layers, int proj,
                   bool bias, int head, Activation act) {
  ModelConfig c;
  c.cell = cell;
  c.input_size = in;
  c.hidden_size = hidden;
  c.num_layers = layers;
  c.proj_size = proj;
  c.bias = bias;
  if (head > 0) c.head = HeadConfig{head, act};
  return c;
}

std::vector<Case> Cases() {
  ModelConfig normalized =
      Config(CellType::kGru, 3, 16, 2, 0, true, 2, Activation::kIdentity);
  normalized.normalization = Normalization{
      {0.5f, -1.0f, 2.0f}, {2.0f, 0.5f, 3.0f}, {10.0f, -3.0f}, {4.0f, 0.25f}};
  // The ONNX cell variants (kernels_variants.inc), on odd sizes too.
  ModelConfig rnn_relu =
      Config(CellType::kRnn, 3, 20, 2, 0, true, 2, Activation::kSoftmax);
  rnn_relu.nonlinearity = Nonlinearity::kRelu;
  ModelConfig rnn_clip_odd =
      Config(CellType::kRnn, 7, 5, 3, 0, false, 0, Activation::kIdentity);
  rnn_clip_odd.nonlinearity = Nonlinearity::kScaledTanh;
  rnn_clip_odd.nonlinearity_alpha = 1.5f;
  rnn_clip_odd.nonlinearity_beta = 0.7f;
  rnn_clip_odd.clip = 0.3f;
  ModelConfig gru_reset_first =
      Config(CellType::kGru, 4, 24, 2, 0, true, 3, Activation::kSigmoid);
  gru_reset_first.gru_linear_before_reset = false;
  ModelConfig gru_reset_first_odd =
      Config(CellType::kGru, 7, 5, 2, 0, false, 0, Activation::kIdentity);
  gru_reset_first_odd.gru_linear_before_reset = false;
  gru_reset_first_odd.clip = 0.2f;
  ModelConfig lstm_onnx =
      Config(CellType::kLstm, 5, 17, 2, 0, true, 2, Activation::kTanh);
  lstm_onnx.lstm_peepholes = true;
  lstm_onnx.lstm_input_forget = true;
  lstm_onnx.clip = 0.25f;
  ModelConfig lstm_peephole_proj =
      Config(CellType::kLstm, 3, 16, 2, 5, true, 0, Activation::kIdentity);
  lstm_peephole_proj.lstm_peepholes = true;
  return {
      {"rnn_relu", rnn_relu},
      {"rnn_clip_odd", rnn_clip_odd},
      {"gru_reset_first", gru_reset_first},
      {"gru_reset_first_odd", gru_reset_first_odd},
      {"lstm_onnx", lstm_onnx},
      {"lstm_peephole_proj", lstm_peephole_proj},
      {"lstm_small",
       Config(CellType::kLstm, 1, 8, 1, 0, true, 0, Activation::kIdentity)},
      {"lstm_proj_softmax",
       Config(CellType::kLstm, 5, 32, 2, 7, true, 4, Activation::kSoftmax)},
      {"lstm_nobias_tanh",
       Config(CellType::kLstm, 16, 24, 3, 0, false, 3, Activation::kTanh)},
      {"gru_sigmoid",
       Config(CellType::kGru, 4, 40, 2, 0, true, 2, Activation::kSigmoid)},
      {"gru_normalized", normalized},
      // Sizes that leave the kernels' SIMD panels partly filled (a gate
      // block of 4 or 15 rows, depths that are no multiple of 8), and the
      // server's benchmark "tiny" model.
      {"lstm_tiny",
       Config(CellType::kLstm, 1, 1, 1, 0, true, 0, Activation::kIdentity)},
      {"gru_odd",
       Config(CellType::kGru, 7, 5, 2, 0, true, 0, Activation::kIdentity)},
      {"lstm_proj_odd",
       Config(CellType::kLstm, 9, 17, 2, 3, false, 1, Activation::kIdentity)},
  };
}

class InvarianceTest : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    model_ = testutil::RandomModel(GetParam().config, 42);
    ASSERT_NE(model_, nullptr);
    in_ = model_->input_size();
    out_ = model_->output_size();
    inputs_ = testutil::RandomInputs(static_cast<size_t>(kSteps) * in_, 7);
    initial_state_ = testutil::RandomInputs(model_->state_size(), 8);
    for (float& v : initial_state_) v *= 0.5f;
    // Reference: the whole sequence in one chunk.
    expected_outputs_.resize(static_cast<size_t>(kSteps) * out_);
    expected_state_ = initial_state_;
    ASSERT_TRUE(model_
                    ->RunChunk(inputs_.data(), kSteps, expected_state_.data(),
                               expected_outputs_.data(), workspace_)
                    .ok());
  }

  // Runs the sequence as consecutive chunks of the given lengths.
  void RunChunked(const std::vector<int>& lengths, std::vector<float>& outputs,
                  std::vector<float>& state) {
    outputs.assign(static_cast<size_t>(kSteps) * out_, 0);
    state = initial_state_;
    int t = 0;
    for (int len : lengths) {
      ASSERT_TRUE(model_
                      ->RunChunk(inputs_.data() + static_cast<size_t>(t) * in_,
                                 len, state.data(),
                                 outputs.data() + static_cast<size_t>(t) * out_,
                                 workspace_)
                      .ok());
      t += len;
    }
    ASSERT_EQ(t, kSteps);
  }

  static constexpr int kSteps = 37;
  std::unique_ptr<Model> model_;
  int in_ = 0, out_ = 0;
  Workspace workspace_;
  std::vector<float> inputs_, initial_state_, expected_outputs_,
      expected_state_;
};

std::vector<int> RandomChunking(int total, std::mt19937& rng) {
  std::vector<int> lengths;
  std::uniform_int_distribution<int> len(1, 9);
  while (total > 0) {
    lengths.push_back(std::min(total, len(rng)));
    total -= lengths.back();
  }
  return lengths;
}

TEST_P(InvarianceTest, RandomChunkingsMatchWholeSequence) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<float> outputs, state;
    RunChunked(RandomChunking(kSteps, rng), outputs, state);
    EXPECT_LE(MaxAbsDiff(outputs, expected_outputs_), kTolerance);
    EXPECT_LE(MaxAbsDiff(state, expected_state_), kTolerance);
  }
}

TEST_P(InvarianceTest, StepByStepMatchesWholeSequence) {
  std::vector<float> outputs, state;
  RunChunked(std::vector<int>(kSteps, 1), outputs, state);
  EXPECT_LE(MaxAbsDiff(outputs, expected_outputs_), kTolerance);
  EXPECT_LE(MaxAbsDiff(state, expected_state_), kTolerance);
}

TEST_P(InvarianceTest, StepBatchBesideOtherSessionsMatches) {
  // Our session is batch member 2 of 5; the others get their own inputs.
  constexpr int kBatch = 5, kOurs = 2;
  std::vector<std::vector<float>> states(kBatch), outs(kBatch);
  std::vector<std::vector<float>> others_inputs(kBatch);
  for (int b = 0; b < kBatch; ++b) {
    states[b] = b == kOurs
                    ? initial_state_
                    : testutil::RandomInputs(model_->state_size(), 100 + b);
    outs[b].resize(out_);
    others_inputs[b] =
        testutil::RandomInputs(static_cast<size_t>(kSteps) * in_, 200 + b);
  }
  std::vector<float> outputs(static_cast<size_t>(kSteps) * out_);
  for (int t = 0; t < kSteps; ++t) {
    std::vector<const float*> in(kBatch);
    std::vector<float*> st(kBatch), ou(kBatch);
    for (int b = 0; b < kBatch; ++b) {
      const std::vector<float>& src = b == kOurs ? inputs_ : others_inputs[b];
      in[b] = src.data() + static_cast<size_t>(t) * in_;
      st[b] = states[b].data();
      ou[b] = outs[b].data();
    }
    ASSERT_TRUE(model_->StepBatch(in, st, ou, workspace_).ok());
    std::copy(outs[kOurs].begin(), outs[kOurs].end(),
              outputs.begin() + static_cast<size_t>(t) * out_);
  }
  EXPECT_LE(MaxAbsDiff(outputs, expected_outputs_), kTolerance);
  EXPECT_LE(MaxAbsDiff(states[kOurs], expected_state_), kTolerance);
}

TEST_P(InvarianceTest, VariableLengthBatchesMatchEachSessionAlone) {
  // 40 sessions, each a random sequence cut into random chunks; each round
  // batches the next chunk of every session that has one. Every session must
  // match its own whole-sequence run. 40 x ~37 columns also exceeds one
  // block, exercising the time-blocking.
  constexpr int kSessions = 40;
  std::mt19937 rng(3);
  struct Session {
    std::vector<float> inputs, state, outputs, expected_outputs, expected_state;
    std::vector<int> chunks;
    size_t next_chunk = 0;
    int t = 0;
  };
  std::vector<Session> sessions(kSessions);
  for (int s = 0; s < kSessions; ++s) {
    Session& x = sessions[s];
    const int steps = 1 + static_cast<int>(rng() % kSteps);
    x.inputs =
        testutil::RandomInputs(static_cast<size_t>(steps) * in_, 300 + s);
    x.state = testutil::RandomInputs(model_->state_size(), 400 + s);
    x.expected_state = x.state;
    x.expected_outputs.resize(static_cast<size_t>(steps) * out_);
    x.outputs.resize(x.expected_outputs.size());
    ASSERT_TRUE(model_
                    ->RunChunk(x.inputs.data(), steps, x.expected_state.data(),
                               x.expected_outputs.data(), workspace_)
                    .ok());
    x.chunks = s == 0 ? std::vector<int>{steps} : RandomChunking(steps, rng);
  }
  // Session 0 runs in a single batch call with everyone's first chunk.
  bool any = true;
  Workspace batch_workspace;
  while (any) {
    any = false;
    std::vector<SequenceRef> refs;
    for (Session& x : sessions) {
      if (x.next_chunk == x.chunks.size()) continue;
      const int len = x.chunks[x.next_chunk++];
      refs.push_back(SequenceRef{
          x.inputs.data() + static_cast<size_t>(x.t) * in_, len, x.state.data(),
          x.outputs.data() + static_cast<size_t>(x.t) * out_});
      x.t += len;
      any = true;
    }
    std::shuffle(refs.begin(), refs.end(), rng);
    ASSERT_TRUE(model_->RunBatch(refs, batch_workspace).ok());
  }
  for (int s = 0; s < kSessions; ++s) {
    SCOPED_TRACE("session " + std::to_string(s));
    EXPECT_LE(MaxAbsDiff(sessions[s].outputs, sessions[s].expected_outputs),
              kTolerance);
    EXPECT_LE(MaxAbsDiff(sessions[s].state, sessions[s].expected_state),
              kTolerance);
  }
}

TEST_P(InvarianceTest, ZeroStateIsPyTorchDefaultAndStateChanges) {
  // Guards against a kernel that ignores its state: different initial states
  // must give different outputs.
  std::vector<float> zero(model_->state_size(), 0.0f);
  std::vector<float> outputs(static_cast<size_t>(kSteps) * out_);
  ASSERT_TRUE(model_
                  ->RunChunk(inputs_.data(), kSteps, zero.data(),
                             outputs.data(), workspace_)
                  .ok());
  EXPECT_GT(MaxAbsDiff(std::span<const float>(outputs.data(), out_),
                       std::span<const float>(expected_outputs_.data(), out_)),
            1e-6f);
}

INSTANTIATE_TEST_SUITE_P(Configs, InvarianceTest, testing::ValuesIn(Cases()),
                         [](const auto& p) { return p.param.name; });

TEST(RunBatchTest, RejectsBadArguments) {
  ModelConfig c =
      Config(CellType::kLstm, 2, 4, 1, 0, true, 0, Activation::kIdentity);
  auto model = testutil::RandomModel(c, 1);
  ASSERT_NE(model, nullptr);
  Workspace ws;
  std::vector<float> in(2), state(model->state_size()), out(4);
  EXPECT_EQ(model->RunChunk(in.data(), 0, state.data(), out.data(), ws).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->RunChunk(nullptr, 1, state.data(), out.data(), ws).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<const float*> ins{in.data()};
  std::vector<float*> states{state.data(), state.data()};
  std::vector<float*> outs{out.data()};
  EXPECT_EQ(model->StepBatch(ins, states, outs, ws).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(model->RunBatch({}, ws).ok());
}

TEST(RunBatchTest, WorkspaceStopsGrowingOnceWarm) {
  ModelConfig c =
      Config(CellType::kLstm, 8, 32, 2, 0, true, 0, Activation::kIdentity);
  auto model = testutil::RandomModel(c, 1);
  ASSERT_NE(model, nullptr);
  Workspace ws;
  std::vector<float> in(8 * 10), state(model->state_size()), out(32 * 10);
  ASSERT_TRUE(
      model->RunChunk(in.data(), 10, state.data(), out.data(), ws).ok());
  const size_t warm = ws.bytes();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        model->RunChunk(in.data(), 10, state.data(), out.data(), ws).ok());
    ASSERT_TRUE(
        model->RunChunk(in.data(), 3, state.data(), out.data(), ws).ok());
  }
  EXPECT_EQ(ws.bytes(), warm);
}

}  // namespace
}  // namespace lstmserve::model
