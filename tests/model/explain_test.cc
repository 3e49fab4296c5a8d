// The record-the-gates path: its layout, outputs bit for bit the same with
// and without it, and GateSummary's arithmetic. (That the recorded gates
// are PyTorch's is explain_golden_test.cc.)
#include "model/explain.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/model.h"
#include "tests/model/cell_cases.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {

std::string Layout(const Model& m) {
  std::ostringstream s;
  for (const ExplainField& f : m.explain_layout()) {
    s << "l" << f.layer << "." << f.name << ":" << f.offset << "+" << f.size
      << " ";
  }
  return s.str();
}

TEST(ExplainLayoutTest, GatesThenCellStateThenHiddenStatePerLayer) {
  ModelConfig lstm =
      CellConfig(CellType::kLstm, 3, 4, 2, 2, true, 0, Activation::kIdentity);
  auto m = testutil::RandomModel(lstm, 1);
  EXPECT_EQ(Layout(*m),
            "l0.i:0+4 l0.f:4+4 l0.g:8+4 l0.o:12+4 l0.c:16+4 l0.h:20+2 "
            "l1.i:22+4 l1.f:26+4 l1.g:30+4 l1.o:34+4 l1.c:38+4 l1.h:42+2 ");
  EXPECT_EQ(m->explain_size(), 44);

  ModelConfig gru =
      CellConfig(CellType::kGru, 3, 5, 1, 0, true, 2, Activation::kSoftmax);
  m = testutil::RandomModel(gru, 1);
  EXPECT_EQ(Layout(*m), "l0.r:0+5 l0.z:5+5 l0.n:10+5 l0.h:15+5 ");
  EXPECT_EQ(m->explain_size(), 20);

  ModelConfig rnn =
      CellConfig(CellType::kRnn, 3, 6, 2, 0, true, 0, Activation::kIdentity);
  m = testutil::RandomModel(rnn, 1);
  EXPECT_EQ(Layout(*m), "l0.h:0+6 l1.h:6+6 ");
}

struct Param {
  CellCase cell;
  WeightFormat format;
};

void PrintTo(const Param& p, std::ostream* os) {
  *os << p.cell.name << "_" << WeightFormatName(p.format);
}

std::vector<Param> Params() {
  std::vector<Param> params;
  for (const CellCase& c : CellCases()) {
    for (WeightFormat f :
         {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kInt8}) {
      params.push_back({c, f});
    }
  }
  return params;
}

class ExplainIdentityTest : public testing::TestWithParam<Param> {};

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

// The same calls three times, with the explain path off, on (for some
// sessions only), and off again, on one workspace: outputs and states must
// be the same bits every time.
TEST_P(ExplainIdentityTest, OutputsAndStateAreBitForBitTheSame) {
  const ModelConfig& c = GetParam().cell.config;
  Model::Options options;
  options.weights = GetParam().format;
  auto created = Model::Create(c, RandomTensors(c, 3), "test", options);
  ASSERT_TRUE(created.ok()) << created.status();
  const Model& m = **created;
  // Two calls: chunks of different lengths, then one step each.
  const std::vector<std::vector<int>> calls = {{5, 1, 3, 2}, {1, 1, 1, 1}};
  const int sessions = 4;
  Workspace ws;
  std::vector<std::vector<float>> outputs[3], states[3];
  for (int run = 0; run < 3; ++run) {
    std::vector<std::vector<float>> state(sessions);
    for (int b = 0; b < sessions; ++b) {
      state[b] = testutil::RandomInputs(m.state_size(), 10 + b);
    }
    for (size_t k = 0; k < calls.size(); ++k) {
      std::vector<SequenceRef> refs;
      std::vector<std::vector<float>> in(sessions), out(sessions),
          explain(sessions);
      for (int b = 0; b < sessions; ++b) {
        const int steps = calls[k][b];
        in[b] = testutil::RandomInputs(
            static_cast<size_t>(steps) * m.input_size(), 100 * k + b);
        out[b].assign(static_cast<size_t>(steps) * m.output_size(), 0);
        // Run 1 records for sessions 0 and 2 only.
        const bool on = run == 1 && b % 2 == 0;
        explain[b].assign(
            on ? static_cast<size_t>(steps) * m.explain_size() : 0, 0);
        refs.push_back(SequenceRef{in[b].data(), steps, state[b].data(),
                                   out[b].data(),
                                   on ? explain[b].data() : nullptr});
      }
      ASSERT_TRUE(m.RunBatch(refs, ws).ok());
      for (int b = 0; b < sessions; ++b) outputs[run].push_back(out[b]);
      if (run == 1) {
        // The record's last layer h is what came out of the network.
        const ExplainField& h = m.explain_layout().back();
        const float* last =
            explain[0].data() +
            static_cast<size_t>(calls[k][0] - 1) * m.explain_size();
        const std::vector<float> recorded(last + h.offset,
                                          last + h.offset + h.size);
        const int out_layer = c.num_layers - 1;
        const int per_layer = c.layer_output_size() +
                              (c.cell == CellType::kLstm ? c.hidden_size : 0);
        const std::vector<float> in_state(
            state[0].begin() + out_layer * per_layer,
            state[0].begin() + out_layer * per_layer + c.layer_output_size());
        EXPECT_TRUE(SameBits(recorded, in_state));
      }
    }
    states[run] = state;
  }
  for (int run = 1; run < 3; ++run) {
    ASSERT_EQ(outputs[run].size(), outputs[0].size());
    for (size_t i = 0; i < outputs[0].size(); ++i) {
      EXPECT_TRUE(SameBits(outputs[run][i], outputs[0][i]))
          << "run " << run << ", output " << i;
    }
    for (int b = 0; b < sessions; ++b) {
      EXPECT_TRUE(SameBits(states[run][b], states[0][b]))
          << "run " << run << ", state of session " << b;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cells, ExplainIdentityTest,
                         testing::ValuesIn(Params()), [](const auto& p) {
                           return p.param.cell.name + "_" +
                                  std::string(WeightFormatName(p.param.format));
                         });

// --- GateSummary ---

// A one-layer LSTM with H = 2: records are i, f, g, o, c, h (2 floats each).
std::unique_ptr<Model> TinyLstm() {
  return testutil::RandomModel(
      CellConfig(CellType::kLstm, 1, 2, 1, 0, true, 0, Activation::kIdentity),
      1);
}

TEST(GateSummaryTest, MeansSaturationAndHorizon) {
  auto m = TinyLstm();
  ASSERT_EQ(m->explain_size(), 12);
  GateSummary summary(*m);
  EXPECT_EQ(summary.steps(), 0);
  EXPECT_FALSE(summary.Layers()[0].mean_forget.has_value());
  //                  i           f           g            o         c     h
  const float records[] = {0.5f,  0.99f, 0.9f, 0.7f, -0.97f, 0.2f,  0.01f, 0.5f,
                           9,     9,     9,    9,    0.5f,   0.03f, 0.9f,  0.9f,
                           0.96f, -0.5f, 0.5f, 0.5f, 9,      9,     9,     9};
  summary.Add(records, 2);
  EXPECT_EQ(summary.steps(), 2);
  const std::vector<GateSummary::Layer> layers = summary.Layers();
  ASSERT_EQ(layers.size(), 1u);
  const GateSummary::Layer& l = layers[0];
  ASSERT_EQ(l.gates.size(), 4u);
  EXPECT_EQ(l.gates[0].name, "i");
  EXPECT_EQ(l.gates[2].name, "g");
  EXPECT_TRUE(l.gates[2].tanh);
  EXPECT_FALSE(l.gates[1].tanh);
  // i: 0.5, 0.99, 0.5, 0.03 -> mean 0.505; saturated 0.99, 0.03 -> 1/2.
  const auto d = [](float v) { return static_cast<double>(v); };
  EXPECT_DOUBLE_EQ(l.gates[0].mean, (0.5 + d(0.99f) + 0.5 + d(0.03f)) / 4);
  EXPECT_DOUBLE_EQ(l.gates[0].saturation, 0.5);
  // f: 0.9, 0.7, 0.9, 0.9 -> mean 0.85, none beyond 0.95.
  const double f = (d(0.9f) + d(0.7f) + d(0.9f) + d(0.9f)) / 4;
  EXPECT_DOUBLE_EQ(l.gates[1].mean, f);
  EXPECT_DOUBLE_EQ(l.gates[1].saturation, 0);
  // g (tanh): -0.97, 0.2, 0.96, -0.5 -> |g| > 0.95 twice.
  EXPECT_DOUBLE_EQ(l.gates[2].saturation, 0.5);
  // o: 0.01 saturated, 0.5, 0.5, 0.5 not.
  EXPECT_DOUBLE_EQ(l.gates[3].saturation, 0.25);
  ASSERT_TRUE(l.mean_forget.has_value());
  EXPECT_DOUBLE_EQ(*l.mean_forget, f);
  EXPECT_DOUBLE_EQ(*l.memory_horizon, 1 / (1 - f));

  GateSummary copy = summary;
  copy.Merge(summary);
  EXPECT_EQ(copy.steps(), 4);
  EXPECT_DOUBLE_EQ(copy.Layers()[0].gates[1].mean, f);
  copy.Reset();
  EXPECT_EQ(copy.steps(), 0);
  EXPECT_FALSE(copy.Layers()[0].mean_forget.has_value());
}

TEST(GateSummaryTest, AForgetGateOfOneRemembersForever) {
  auto m = TinyLstm();
  GateSummary summary(*m);
  std::vector<float> record(12, 0.5f);
  record[2] = record[3] = 1.0f;  // f
  summary.Add(record.data(), 1);
  EXPECT_EQ(*summary.Layers()[0].memory_horizon,
            std::numeric_limits<double>::infinity());
}

TEST(GateSummaryTest, GruKeepsTheUpdateGateAndRnnHasNoGates) {
  // GRU, H = 1: r, z, n, h. h' = (1 - z) n + z h: z is the share kept.
  auto gru = testutil::RandomModel(
      CellConfig(CellType::kGru, 1, 1, 1, 0, true, 0, Activation::kIdentity),
      1);
  GateSummary summary(*gru);
  const float records[] = {0.5f, 0.8f, 0.1f, 0.0f, 0.5f, 0.6f, 0.1f, 0.0f};
  summary.Add(records, 2);
  const GateSummary::Layer l = summary.Layers()[0];
  const double z = (static_cast<double>(0.8f) + static_cast<double>(0.6f)) / 2;
  EXPECT_DOUBLE_EQ(*l.mean_forget, z);
  EXPECT_DOUBLE_EQ(*l.memory_horizon, 1 / (1 - z));

  auto rnn = testutil::RandomModel(
      CellConfig(CellType::kRnn, 1, 3, 2, 0, true, 0, Activation::kIdentity),
      1);
  GateSummary none(*rnn);
  const std::vector<float> h(6 * 3, 0.5f);
  none.Add(h.data(), 3);
  ASSERT_EQ(none.Layers().size(), 2u);
  EXPECT_TRUE(none.Layers()[1].gates.empty());
  EXPECT_FALSE(none.Layers()[1].mean_forget.has_value());
}

TEST(GateSummaryTest, SummarizesWhatTheEngineRecords) {
  // A real run: gate means are within [0, 1] (sigmoid) or [-1, 1] (tanh).
  auto m = testutil::RandomModel(
      CellConfig(CellType::kLstm, 3, 16, 2, 0, true, 0, Activation::kIdentity),
      5);
  const int steps = 30;
  const std::vector<float> in = testutil::RandomInputs(steps * 3, 6);
  std::vector<float> state(m->state_size(), 0), out(steps * 16),
      explain(static_cast<size_t>(steps) * m->explain_size());
  Workspace ws;
  ASSERT_TRUE(m->RunChunk(in.data(), steps, state.data(), out.data(), ws,
                          explain.data())
                  .ok());
  GateSummary summary(*m);
  summary.Add(explain.data(), steps);
  for (const GateSummary::Layer& l : summary.Layers()) {
    ASSERT_EQ(l.gates.size(), 4u);
    for (const GateSummary::Gate& g : l.gates) {
      EXPECT_GE(g.mean, g.tanh ? -1 : 0) << g.name;
      EXPECT_LE(g.mean, 1) << g.name;
      EXPECT_GE(g.saturation, 0);
      EXPECT_LE(g.saturation, 1);
    }
    EXPECT_GT(*l.memory_horizon, 1);
  }
}

}  // namespace
}  // namespace lstmserve::model
