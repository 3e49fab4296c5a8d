// One sequence must give the same outputs and final state however it is cut
// up: whole, in random chunks, step by step, and batched beside other
// sessions with different chunk lengths (entry points a, b and c).
#include <algorithm>
#include <random>
#include <span>
#include <vector>

#include "gtest/gtest.h"
#include "model/model.h"
#include "tests/model/cell_cases.h"
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

class InvarianceTest : public testing::TestWithParam<CellCase> {
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

INSTANTIATE_TEST_SUITE_P(Configs, InvarianceTest,
                         testing::ValuesIn(CellCases()),
                         [](const auto& p) { return p.param.name; });

TEST(RunBatchTest, RejectsBadArguments) {
  ModelConfig c =
      CellConfig(CellType::kLstm, 2, 4, 1, 0, true, 0, Activation::kIdentity);
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
      CellConfig(CellType::kLstm, 8, 32, 2, 0, true, 0, Activation::kIdentity);
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
