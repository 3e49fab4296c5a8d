// Batch invariance, bit for bit: a session's outputs, final state and
// explain records must not depend on how many other sessions share its
// batch, on its column's position in the batch, or on how its steps are
// chunked. The reference is the session alone, one step per call (B = 1,
// T = 1); every other way of running it must give the same bytes
// (docs/MODEL_FORMAT.md, "Numeric contract").
//
// Each model (every cell and variant, 1-3 layers, odd sizes, with and
// without a head) runs in every weight format on every kernel path this
// machine has ($LSTMSERVE_ISA, when set, picks one).
#include <algorithm>
#include <cstring>
#include <iomanip>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/kernel_path.h"
#include "model/model.h"
#include "model/random_weights.h"
#include "tests/model/cell_cases.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {

constexpr int kSessions = 64;
constexpr int kSteps = 9;

struct InvarianceCase {
  std::string name;
  ModelConfig config;
  WeightFormat format = WeightFormat::kF32;
};

void PrintTo(const InvarianceCase& c, std::ostream* os) { *os << c.name; }

std::vector<InvarianceCase> Cases() {
  std::vector<CellCase> cells = CellCases();
  // Sizes the shared cases leave out: hidden 13, 37 and 64 on LSTM and GRU.
  ModelConfig lstm13 =
      CellConfig(CellType::kLstm, 5, 13, 3, 0, true, 0, Activation::kIdentity);
  ModelConfig gru37 =
      CellConfig(CellType::kGru, 11, 37, 2, 0, true, 5, Activation::kSoftmax);
  ModelConfig lstm37 =
      CellConfig(CellType::kLstm, 3, 37, 1, 0, true, 6, Activation::kSigmoid);
  lstm37.normalization = Normalization{{0.5f, -1.0f, 2.0f},
                                       {2.0f, 0.5f, 3.0f},
                                       {1, 2, 3, 4, 5, 6},
                                       {0.5f, 0.25f, 3, 7, 1, 0.1f}};
  ModelConfig gru64 =
      CellConfig(CellType::kGru, 64, 64, 2, 0, true, 0, Activation::kIdentity);
  ModelConfig lstm64 =
      CellConfig(CellType::kLstm, 13, 64, 2, 0, true, 3, Activation::kTanh);
  ModelConfig gru13_reset_first =
      CellConfig(CellType::kGru, 2, 13, 3, 0, true, 2, Activation::kSoftmax);
  gru13_reset_first.gru_linear_before_reset = false;
  cells.push_back({"lstm13_3l", lstm13});
  cells.push_back({"gru37_softmax", gru37});
  cells.push_back({"lstm37_normalized", lstm37});
  cells.push_back({"gru64", gru64});
  cells.push_back({"lstm64_tanh", lstm64});
  cells.push_back({"gru13_reset_first", gru13_reset_first});
  std::vector<InvarianceCase> cases;
  for (const CellCase& c : cells) {
    for (WeightFormat f :
         {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kInt8}) {
      cases.push_back(
          {c.name + "_" + std::string(WeightFormatName(f)), c.config, f});
    }
  }
  return cases;
}

// The paths to test: $LSTMSERVE_ISA's, else every one this machine has.
std::vector<KernelPath> Paths() {
  auto forced = KernelPathFromEnvironment();
  if (forced.ok() && forced->has_value()) return {**forced};
  std::vector<KernelPath> paths;
  for (KernelPath p : AllKernelPaths()) {
    if (KernelPathAvailable(p)) paths.push_back(p);
  }
  return paths;
}

// One session's inputs and what running it produced.
struct SessionRun {
  std::vector<float> outputs, state, explain;
  bool operator==(const SessionRun& o) const {
    auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
      return a.size() == b.size() &&
             std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
    };
    return same(outputs, o.outputs) && same(state, o.state) &&
           same(explain, o.explain);
  }
};

// The first difference between two runs, for the failure message.
std::string Diff(const SessionRun& got, const SessionRun& want) {
  auto first = [](const char* what, const std::vector<float>& a,
                  const std::vector<float>& b) -> std::string {
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
        std::ostringstream m;
        m << what << "[" << i << "]: " << std::setprecision(9) << a[i] << " vs "
          << b[i] << " (relative "
          << std::abs(a[i] - b[i]) / std::max(std::abs(b[i]), 1e-30f) << ")";
        return m.str();
      }
    }
    return "";
  };
  std::string d = first("outputs", got.outputs, want.outputs);
  if (d.empty()) d = first("state", got.state, want.state);
  if (d.empty()) d = first("explain", got.explain, want.explain);
  return d;
}

class BatchInvarianceTest : public testing::TestWithParam<InvarianceCase> {
 protected:
  void SetUp() override {
    tensors_ = RandomTensors(GetParam().config, 42);
    config_ = GetParam().config;
  }

  std::unique_ptr<Model> MakeModel(KernelPath path) {
    Model::Options options;
    options.weights = GetParam().format;
    options.kernel_path = path;
    auto m = Model::Create(config_, tensors_, "random", options);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  void Init(const Model& m) {
    in_ = m.input_size();
    out_ = m.output_size();
    inputs_.resize(kSessions);
    initial_.resize(kSessions);
    for (int s = 0; s < kSessions; ++s) {
      inputs_[s] =
          testutil::RandomInputs(static_cast<size_t>(kSteps) * in_, 1000 + s);
      initial_[s] = testutil::RandomInputs(m.state_size(), 2000 + s);
      for (float& v : initial_[s]) v *= 0.5f;
    }
    // A few columns that stress the products: all zero, and large.
    std::fill(inputs_[3].begin(), inputs_[3].begin() + in_, 0.0f);
    for (float& v : inputs_[5]) v *= 30.0f;
  }

  std::vector<SessionRun> Fresh(const Model& m) const {
    std::vector<SessionRun> runs(kSessions);
    for (int s = 0; s < kSessions; ++s) {
      runs[s].outputs.assign(static_cast<size_t>(kSteps) * out_, -1.0f);
      runs[s].state = initial_[s];
      runs[s].explain.assign(static_cast<size_t>(kSteps) * m.explain_size(),
                             -1.0f);
    }
    return runs;
  }

  // The next `len` steps of session s, from step t.
  SequenceRef Ref(const Model& m, std::vector<SessionRun>& runs, int s, int t,
                  int len) const {
    return SequenceRef{
        inputs_[s].data() + static_cast<size_t>(t) * in_, len,
        runs[s].state.data(),
        runs[s].outputs.data() + static_cast<size_t>(t) * out_,
        m.explain_size() > 0
            ? runs[s].explain.data() + static_cast<size_t>(t) * m.explain_size()
            : nullptr};
  }

  // Every session alone, one step per call: the reference.
  std::vector<SessionRun> Alone(const Model& m) {
    std::vector<SessionRun> runs = Fresh(m);
    for (int s = 0; s < kSessions; ++s) {
      for (int t = 0; t < kSteps; ++t) {
        SequenceRef r = Ref(m, runs, s, t, 1);
        EXPECT_TRUE(m.RunBatch(std::span<const SequenceRef>(&r, 1), ws_).ok());
      }
    }
    return runs;
  }

  // One step at a time in batches of `b` sessions; the sessions rotate
  // between steps, so each sits at different positions of different
  // batches (and the last batch of a step may be smaller).
  std::vector<SessionRun> Batched(const Model& m, int b) {
    std::vector<SessionRun> runs = Fresh(m);
    std::mt19937 rng(b);
    for (int t = 0; t < kSteps; ++t) {
      std::vector<int> order(kSessions);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      for (int i = 0; i < kSessions; i += b) {
        std::vector<SequenceRef> refs;
        for (int k = i; k < std::min(kSessions, i + b); ++k) {
          refs.push_back(Ref(m, runs, order[k], t, 1));
        }
        EXPECT_TRUE(m.RunBatch(refs, ws_).ok());
      }
    }
    return runs;
  }

  // Each session cut into chunks (`max_chunk` 0: the whole sequence at
  // once, else random lengths 1..max_chunk), `b` sessions' next chunks per
  // call, shuffled.
  std::vector<SessionRun> Chunked(const Model& m, int b, int max_chunk,
                                  uint32_t seed) {
    std::vector<SessionRun> runs = Fresh(m);
    std::mt19937 rng(seed);
    std::vector<int> t(kSessions, 0);
    for (bool any = true; any;) {
      any = false;
      std::vector<int> order(kSessions);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<SequenceRef> refs;
      for (int s : order) {
        if (t[s] == kSteps) continue;
        const int len = max_chunk == 0
                            ? kSteps
                            : std::min(kSteps - t[s],
                                       1 + static_cast<int>(rng() % max_chunk));
        refs.push_back(Ref(m, runs, s, t[s], len));
        t[s] += len;
        any = true;
        if (static_cast<int>(refs.size()) == b) {
          EXPECT_TRUE(m.RunBatch(refs, ws_).ok());
          refs.clear();
        }
      }
      if (!refs.empty()) {
        EXPECT_TRUE(m.RunBatch(refs, ws_).ok());
      }
    }
    return runs;
  }

  void ExpectSame(const std::vector<SessionRun>& got,
                  const std::vector<SessionRun>& want, const std::string& how) {
    int failures = 0;
    for (int s = 0; s < kSessions && failures < 3; ++s) {
      if (!(got[s] == want[s])) {
        ADD_FAILURE() << how << ": session " << s << " differs from B=1 T=1, "
                      << Diff(got[s], want[s]);
        ++failures;
      }
    }
  }

  ModelConfig config_;
  std::map<std::string, Tensor> tensors_;
  int in_ = 0, out_ = 0;
  std::vector<std::vector<float>> inputs_, initial_;
  Workspace ws_;
};

TEST_P(BatchInvarianceTest, EveryBatchSizeAndChunkingIsBitIdentical) {
  for (KernelPath path : Paths()) {
    SCOPED_TRACE("kernel path " + std::string(KernelPathName(path)));
    std::unique_ptr<Model> m = MakeModel(path);
    ASSERT_NE(m, nullptr);
    Init(*m);
    const std::vector<SessionRun> want = Alone(*m);
    for (int b : {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 64}) {
      ExpectSame(Batched(*m, b), want,
                 "T=1 in batches of " + std::to_string(b));
    }
    ExpectSame(Chunked(*m, 1, 0, 1), want, "one chunk, alone");
    ExpectSame(Chunked(*m, kSessions, 0, 2), want, "one chunk, B=64");
    ExpectSame(Chunked(*m, 1, 4, 3), want, "random chunks, alone");
    ExpectSame(Chunked(*m, 5, 4, 4), want, "random chunks, B<=5");
    ExpectSame(Chunked(*m, kSessions, 6, 5), want, "random chunks, B<=64");
    if (HasFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, BatchInvarianceTest,
                         testing::ValuesIn(Cases()),
                         [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace lstmserve::model
