// Forecast over real gRPC, for every cell type: the forecast equals the
// session's model stepped by hand on a copy of its exported state (the
// engine directly, bit for bit), and the session does not move (its
// snapshot is the same before and after, and its next outputs match a twin
// session's that never forecast). Sample paths are reproducible by seed and
// feed their noisy values back; the limits and errors of docs/API.md.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "gmock/gmock.h"
#include "model/model_config.h"

namespace lstmserve::e2e {
namespace {

using testing::HasSubstr;

// A repository in a temporary directory: copies of the bundled models (the
// sunspots one with an output scale) and small random models of the other
// cells and variants.
class ForecastTest : public testing::Test {
 protected:
  void SetUp() override {
    CopyBundled("sunspots", [](model::ModelConfig& c) {
      c.forecast = model::ForecastConfig{{}, {12.5f}};
    });
    CopyBundled("elnino", [](model::ModelConfig&) {});
    CopyBundled("charlm", [](model::ModelConfig&) {});

    // RNN, 3 inputs fed from 2 outputs, with noise.
    model::ModelConfig rnn;
    rnn.cell = model::CellType::kRnn;
    rnn.input_size = 3;
    rnn.hidden_size = 10;
    rnn.head = model::HeadConfig{2, model::Activation::kIdentity};
    rnn.forecast = model::ForecastConfig{{0, 1, 1}, {0.5f, 0.25f}};
    Random("rnn", rnn, 3);
    // A tanh RNN without head: its h is its output and next input.
    model::ModelConfig rnn_nohead;
    rnn_nohead.cell = model::CellType::kRnn;
    rnn_nohead.input_size = 6;
    rnn_nohead.hidden_size = 6;
    rnn_nohead.num_layers = 2;
    Random("rnn_nohead", rnn_nohead, 4);
    // LSTM with projection and two layers, no head (output = proj = input).
    model::ModelConfig proj;
    proj.cell = model::CellType::kLstm;
    proj.input_size = 4;
    proj.hidden_size = 12;
    proj.proj_size = 4;
    proj.num_layers = 2;
    Random("lstm_proj", proj, 5);
    // GRU (ONNX linear_before_reset 0) with a tanh head and output norm.
    model::ModelConfig gru;
    gru.cell = model::CellType::kGru;
    gru.input_size = 2;
    gru.hidden_size = 8;
    gru.gru_linear_before_reset = false;
    gru.head = model::HeadConfig{2, model::Activation::kTanh};
    gru.normalization =
        model::Normalization{{}, {}, {1.0f, -2.0f}, {3.0f, 0.5f}};
    Random("gru_tanh", gru, 6);
    // Cannot forecast: 5 outputs, 3 inputs, no feedback mapping.
    model::ModelConfig mismatch;
    mismatch.cell = model::CellType::kGru;
    mismatch.input_size = 3;
    mismatch.hidden_size = 5;
    Random("mismatch", mismatch, 7);

    server::ServerOptions options = TestOptions();
    options.model_repo = repo_.path();
    options.max_forecast_horizon = 64;
    options.max_forecast_samples = 4;
    options.max_forecast_values = 2000;
    server_ = StartServer(options);
    ASSERT_NE(server_, nullptr);
    stub_ = Connect(server_->address());
  }

  template <typename Edit>
  void CopyBundled(const std::string& name, Edit edit) {
    const std::string from = testutil::SourcePath("models/" + name + "/1");
    const std::string to = repo_.Join(name + "/1");
    std::filesystem::create_directories(to);
    auto config = model::ReadModelConfig(from + "/config.json");
    ASSERT_TRUE(config.ok()) << config.status();
    edit(*config);
    testutil::WriteFile(to + "/config.json", model::ModelConfigToJson(*config));
    std::filesystem::copy_file(from + "/model.safetensors",
                               to + "/model.safetensors");
  }

  void Random(const std::string& name, const model::ModelConfig& config,
              uint32_t seed) {
    const std::string dir = repo_.Join(name + "/1");
    std::filesystem::create_directories(dir);
    testutil::WriteVersionDir(dir, config, model::RandomTensors(config, seed));
  }

  std::unique_ptr<model::Model> Load(const std::string& name) {
    auto m = model::Model::Load(repo_.Join(name + "/1"));
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  void CreateSession(const std::string& id, const std::string& model) {
    v1::CreateSessionRequest r;
    r.set_session_id(id);
    r.set_model(model);
    v1::SessionInfo info;
    ASSERT_TRUE(stub_->CreateSession(Ctx().get(), r, &info).ok());
  }

  std::vector<float> Predict(const std::string& id,
                             const std::vector<float>& inputs, int width) {
    v1::PredictRequest r;
    r.set_session_id(id);
    *r.mutable_inputs() = MakeTensor(inputs, width);
    v1::PredictResponse out;
    grpc::Status s = stub_->Predict(Ctx().get(), r, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return Values(out.outputs());
  }

  grpc::Status Forecast(const std::string& id, int horizon, int samples,
                        uint64_t seed, v1::ForecastResponse* out) {
    v1::ForecastRequest r;
    r.set_session_id(id);
    r.set_horizon(horizon);
    r.set_samples(samples);
    r.set_seed(seed);
    return stub_->Forecast(Ctx().get(), r, out);
  }

  v1::SessionSnapshot Export(const std::string& id) {
    v1::ExportSessionRequest r;
    r.set_session_id(id);
    v1::SessionSnapshot snap;
    EXPECT_TRUE(stub_->ExportSession(Ctx().get(), r, &snap).ok());
    return snap;
  }

  testutil::TempDir repo_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<v1::LstmServe::Stub> stub_;
};

// Inputs a model can take: one-hot characters for charlm, a plausible
// series for the bundled one-feature models, small values otherwise.
std::vector<float> InputsFor(const std::string& name, int width, int steps) {
  if (name == "charlm") {
    std::vector<float> v(static_cast<size_t>(steps) * width, 0.0f);
    for (int t = 0; t < steps; ++t) v[t * width + (t * 7 + 3) % width] = 1;
    return v;
  }
  if (width == 1) return SeriesInputs(steps, 5);
  return testutil::RandomInputs(static_cast<size_t>(steps) * width, 9);
}

std::vector<float> OneHotArgmax(const std::vector<float>& p) {
  std::vector<float> v(p.size(), 0.0f);
  size_t best = 0;
  for (size_t k = 1; k < p.size(); ++k) {
    if (p[k] > p[best]) best = k;
  }
  v[best] = 1.0f;
  return v;
}

// The deterministic forecast by hand: row 0 is the last output the session
// returned; each next row is one engine step (RunChunk, batch of one) on
// the previous row fed back, from the exported state.
std::vector<float> ByHand(const model::Model& m, std::vector<float> state,
                          std::vector<float> last_output, int horizon,
                          const std::vector<int>& feedback) {
  const bool softmax = m.config().head && m.config().head->activation ==
                                              model::Activation::kSoftmax;
  const int O = m.output_size();
  std::vector<float> rows;
  std::vector<float> row = softmax ? OneHotArgmax(last_output) : last_output;
  model::Workspace ws;
  for (int i = 0; i < horizon; ++i) {
    rows.insert(rows.end(), row.begin(), row.end());
    if (i + 1 == horizon) break;
    std::vector<float> x(m.input_size());
    for (int j = 0; j < m.input_size(); ++j) x[j] = row[feedback[j]];
    std::vector<float> y(O);
    EXPECT_TRUE(m.RunChunk(x.data(), 1, state.data(), y.data(), ws).ok());
    row = softmax ? OneHotArgmax(y) : y;
  }
  return rows;
}

std::vector<int> Identity(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

void ExpectSameSnapshot(const v1::SessionSnapshot& a,
                        const v1::SessionSnapshot& b) {
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString())
      << a.DebugString().substr(0, 500) << "\nvs\n"
      << b.DebugString().substr(0, 500);
}

TEST_F(ForecastTest, EqualsSteppingACopyByHandAndLeavesTheSessionUnchanged) {
  struct Case {
    std::string model;
    int horizon;
    std::vector<int> feedback;  // empty: the identity
  };
  const std::vector<Case> cases = {
      {"sunspots", 11, {}},   {"elnino", 24, {}},     {"charlm", 20, {}},
      {"rnn", 30, {0, 1, 1}}, {"rnn_nohead", 16, {}}, {"lstm_proj", 16, {}},
      {"gru_tanh", 16, {}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model);
    auto m = Load(c.model);
    ASSERT_NE(m, nullptr);
    const int in = m->input_size();
    const int out = m->output_size();
    const std::string id = "f-" + c.model;
    const std::string twin = "t-" + c.model;
    CreateSession(id, c.model);
    CreateSession(twin, c.model);
    const std::vector<float> inputs = InputsFor(c.model, in, 17);
    const std::vector<float> outputs = Predict(id, inputs, in);
    EXPECT_EQ(Predict(twin, inputs, in), outputs);
    ASSERT_EQ(outputs.size(), 17u * out);
    const std::vector<float> last(outputs.end() - out, outputs.end());

    const v1::SessionSnapshot before = Export(id);
    v1::ForecastResponse f;
    grpc::Status s = Forecast(id, c.horizon, 0, 0, &f);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(f.model(), c.model);
    EXPECT_EQ(f.version(), 1);
    EXPECT_EQ(f.session_id(), id);
    EXPECT_EQ(f.from_step(), 17);
    EXPECT_EQ(f.samples_size(), 0);
    ASSERT_EQ(f.forecast().shape_size(), 2);
    EXPECT_EQ(f.forecast().shape(0), c.horizon);
    EXPECT_EQ(f.forecast().shape(1), out);

    const std::vector<float> want = ByHand(
        *m, std::vector<float>(before.state().begin(), before.state().end()),
        last, c.horizon, c.feedback.empty() ? Identity(in) : c.feedback);
    const std::vector<float> got = Values(f.forecast());
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << "row " << i / out << ", output " << i % out;
    }
    // Not a constant: the forecast moves (a model stuck at a fixed point
    // would not tell feeding back from repeating row 0).
    if (c.model != "charlm") {  // greedy text may repeat a character
      EXPECT_NE(std::vector<float>(got.begin(), got.begin() + out),
                std::vector<float>(got.end() - out, got.end()));
    }

    // The session has not moved: the same snapshot, and its next outputs
    // are the twin's, which never forecast.
    ExpectSameSnapshot(Export(id), before);
    const std::vector<float> more = InputsFor(c.model, in, 5);
    EXPECT_EQ(Predict(id, more, in), Predict(twin, more, in));
  }
}

TEST_F(ForecastTest, ASessionAtStepZeroStartsFromItsStatesOutput) {
  CreateSession("z", "elnino");
  v1::ForecastResponse f;
  ASSERT_TRUE(Forecast("z", 3, 0, 0, &f).ok());
  EXPECT_EQ(f.from_step(), 0);
  // Row 1 is the output of a step on row 0, as a Predict would give.
  CreateSession("z2", "elnino");
  const std::vector<float> rows = Values(f.forecast());
  EXPECT_EQ(Predict("z2", {rows[0]}, 1), std::vector<float>{rows[1]});
}

TEST_F(ForecastTest, SamplesAreReproducibleBySeedAndFeedBackTheirNoise) {
  for (const std::string name : {"sunspots", "rnn"}) {
    SCOPED_TRACE(name);
    auto m = Load(name);
    const int in = m->input_size(), out = m->output_size();
    CreateSession(name, name);
    const std::vector<float> outputs =
        Predict(name, InputsFor(name, in, 20), in);
    const std::vector<float> last(outputs.end() - out, outputs.end());
    const v1::SessionSnapshot before = Export(name);
    const int horizon = 10;

    v1::ForecastResponse a, b, c, one;
    ASSERT_TRUE(Forecast(name, horizon, 3, 42, &a).ok());
    ASSERT_TRUE(Forecast(name, horizon, 3, 42, &b).ok());
    ASSERT_TRUE(Forecast(name, horizon, 3, 43, &c).ok());
    ASSERT_TRUE(Forecast(name, horizon, 1, 42, &one).ok());
    ASSERT_EQ(a.samples_size(), 3);
    ASSERT_EQ(one.samples_size(), 1);
    EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
    // Sample path 1 does not depend on how many paths were asked for.
    EXPECT_EQ(Values(one.samples(0)), Values(a.samples(0)));
    EXPECT_EQ(Values(one.forecast()), Values(a.forecast()));
    const std::vector<float> scale = m->config().forecast->output_scale;
    const std::vector<int> feedback = m->config().forecast->feedback.empty()
                                          ? Identity(in)
                                          : m->config().forecast->feedback;
    for (int p = 0; p < 3; ++p) {
      SCOPED_TRACE(p);
      const std::vector<float> path = Values(a.samples(p));
      ASSERT_EQ(path.size(), static_cast<size_t>(horizon) * out);
      EXPECT_NE(path, Values(c.samples(p)));  // another seed
      EXPECT_NE(path, Values(a.forecast()));
      if (p > 0) {
        EXPECT_NE(path, Values(a.samples(0)));
      }
      // Each row is the model's output on the previous row fed back, plus
      // noise of about the declared scale.
      std::vector<float> state(before.state().begin(), before.state().end());
      std::vector<float> y = last;
      model::Workspace ws;
      for (int i = 0; i < horizon; ++i) {
        for (int k = 0; k < out; ++k) {
          const float noise = path[i * out + k] - y[k];
          EXPECT_NE(noise, 0.0f) << "row " << i;
          EXPECT_LT(std::abs(noise), 6 * scale[k]) << "row " << i;
        }
        std::vector<float> x(in);
        for (int j = 0; j < in; ++j) x[j] = path[i * out + feedback[j]];
        ASSERT_TRUE(m->RunChunk(x.data(), 1, state.data(), y.data(), ws).ok());
      }
    }
    ExpectSameSnapshot(Export(name), before);
  }
}

TEST_F(ForecastTest, SoftmaxSamplesDrawOneHotClassesFromTheProbabilities) {
  auto m = Load("charlm");
  const int in = m->input_size();
  CreateSession("c", "charlm");
  Predict("c", InputsFor("charlm", in, 12), in);
  const v1::SessionSnapshot before = Export("c");
  v1::ForecastResponse a, b;
  ASSERT_TRUE(Forecast("c", 6, 2, 7, &a).ok());
  ASSERT_TRUE(Forecast("c", 6, 2, 7, &b).ok());
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  for (int p = 0; p < 2; ++p) {
    const std::vector<float> path = Values(a.samples(p));
    std::vector<float> state(before.state().begin(), before.state().end());
    std::vector<float> y(in);
    model::Workspace ws;
    for (int i = 0; i < 6; ++i) {  // 6 x 3 x 97 values fit the limit
      const float* row = path.data() + i * in;
      int ones = 0, k = -1;
      for (int j = 0; j < in; ++j) {
        if (row[j] == 1.0f)
          ++ones, k = j;
        else
          EXPECT_EQ(row[j], 0.0f);
      }
      ASSERT_EQ(ones, 1) << "row " << i;
      if (i > 0) {
        EXPECT_GT(y[k], 0.0f) << "a class the model gives no chance";
      }
      ASSERT_TRUE(m->RunChunk(row, 1, state.data(), y.data(), ws).ok());
    }
  }
  ExpectSameSnapshot(Export("c"), before);
}

TEST_F(ForecastTest, LimitsAndErrors) {
  CreateSession("e", "elnino");
  CreateSession("mis", "mismatch");
  CreateSession("ch", "charlm");
  v1::ForecastResponse f;
  auto expect = [&](grpc::Status s, grpc::StatusCode code,
                    const std::string& words) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(words));
  };
  using grpc::StatusCode;
  expect(Forecast("e", 0, 0, 0, &f), StatusCode::INVALID_ARGUMENT,
         "horizon is 0; expected 1 to 64 (--max-forecast-horizon)");
  expect(Forecast("e", 65, 0, 0, &f), StatusCode::INVALID_ARGUMENT,
         "--max-forecast-horizon");
  expect(Forecast("e", 5, -1, 0, &f), StatusCode::INVALID_ARGUMENT,
         "samples is -1; expected 0 to 4");
  expect(Forecast("e", 5, 5, 0, &f), StatusCode::INVALID_ARGUMENT,
         "--max-forecast-samples");
  // charlm: 21 x 1 x 97 = 2037 values > 2000.
  expect(Forecast("ch", 21, 0, 0, &f), StatusCode::INVALID_ARGUMENT,
         "--max-forecast-values");
  EXPECT_TRUE(Forecast("ch", 20, 0, 0, &f).ok());
  expect(Forecast("", 5, 0, 0, &f), StatusCode::INVALID_ARGUMENT,
         "session_id is empty");
  expect(Forecast("nope", 5, 0, 0, &f), StatusCode::NOT_FOUND,
         "session \"nope\" not found");
  expect(Forecast("mis", 5, 0, 0, &f), StatusCode::FAILED_PRECONDITION,
         "model \"mismatch\" cannot forecast: its output size (5) differs "
         "from its input size (3)");
  expect(Forecast("e", 5, 1, 0, &f), StatusCode::FAILED_PRECONDITION,
         "model \"elnino\" has no sample paths");
  EXPECT_TRUE(Forecast("e", 64, 0, 0, &f).ok());
  // Nothing is left counted in the queue.
  v1::ServerStats stats;
  ASSERT_TRUE(
      stub_->GetServerStats(Ctx().get(), v1::GetServerStatsRequest(), &stats)
          .ok());
  EXPECT_EQ(stats.queued_steps(), 0);
}

}  // namespace
}  // namespace lstmserve::e2e
