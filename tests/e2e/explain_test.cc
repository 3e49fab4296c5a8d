// Explain over real gRPC: Predict and Stream return each step's gates and
// states exactly as the engine records them, outputs unchanged bit for bit,
// nothing extra when off; GetSession returns the session's gate summary;
// the --max-explain-values limit; per-model weight formats.
#include "model/explain.h"

#include <cstring>
#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "gmock/gmock.h"

namespace lstmserve::e2e {
namespace {

using testing::HasSubstr;

// The engine's outputs and explain records for one chunk from the zero
// state, and the gate summary of those records.
struct EngineRun {
  std::vector<float> outputs;
  std::vector<float> records;  // steps x explain_size
  std::unique_ptr<model::Model> model;
};

EngineRun RunEngine(const std::string& name, const std::vector<float>& inputs,
                    model::Model::Options options = {}) {
  EngineRun run;
  auto m = model::Model::Load(testutil::SourcePath("models/" + name + "/1"),
                              options);
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return run;
  run.model = *std::move(m);
  const int steps = static_cast<int>(inputs.size() / run.model->input_size());
  std::vector<float> state(run.model->state_size(), 0.0f);
  run.outputs.resize(static_cast<size_t>(steps) * run.model->output_size());
  run.records.resize(static_cast<size_t>(steps) * run.model->explain_size());
  model::Workspace ws;
  EXPECT_TRUE(run.model
                  ->RunChunk(inputs.data(), steps, state.data(),
                             run.outputs.data(), ws, run.records.data())
                  .ok());
  return run;
}

// Inputs for `name`: one-hot characters for charlm, a series otherwise.
std::vector<float> InputsFor(const std::string& name, int input_size,
                             int steps) {
  if (input_size == 1) return SeriesInputs(steps, 11);
  std::vector<float> v(static_cast<size_t>(steps) * input_size, 0.0f);
  for (int t = 0; t < steps; ++t)
    v[t * input_size + (t * 7 + 3) % input_size] = 1;
  return v;
}

// Every field of `explain` against the engine's records, bit for bit.
void ExpectRecords(const v1::Explain& explain, const EngineRun& run,
                   int first_step, int steps) {
  const auto& layout = run.model->explain_layout();
  ASSERT_EQ(explain.fields_size(), static_cast<int>(layout.size()));
  const int record = run.model->explain_size();
  for (size_t i = 0; i < layout.size(); ++i) {
    const v1::ExplainField& f = explain.fields(static_cast<int>(i));
    EXPECT_EQ(f.layer(), layout[i].layer);
    EXPECT_EQ(f.name(), layout[i].name);
    ASSERT_EQ(f.values().shape_size(), 2);
    ASSERT_EQ(f.values().shape(0), steps);
    ASSERT_EQ(f.values().shape(1), layout[i].size);
    for (int s = 0; s < steps; ++s) {
      for (int u = 0; u < layout[i].size; ++u) {
        const float want =
            run.records[static_cast<size_t>(first_step + s) * record +
                        layout[i].offset + u];
        ASSERT_EQ(f.values().values(s * layout[i].size + u), want)
            << "field " << f.name() << " of layer " << f.layer() << ", step "
            << first_step + s << ", unit " << u;
      }
    }
  }
}

class ExplainTest : public testing::Test {
 protected:
  void Start(server::ServerOptions options = TestOptions()) {
    server_ = StartServer(options);
    ASSERT_NE(server_, nullptr);
    stub_ = Connect(server_->address());
  }
  void SetUp() override { Start(); }

  grpc::Status Predict(const std::string& session, const std::string& model,
                       const std::vector<float>& inputs, int width,
                       bool explain, v1::PredictResponse* response) {
    v1::PredictRequest req;
    req.set_model(model);
    req.set_session_id(session);
    *req.mutable_inputs() = MakeTensor(inputs, width);
    req.set_explain(explain);
    return stub_->Predict(Ctx().get(), req, response);
  }

  void Create(const std::string& id, const std::string& model) {
    v1::CreateSessionRequest req;
    req.set_session_id(id);
    req.set_model(model);
    v1::SessionInfo info;
    ASSERT_TRUE(stub_->CreateSession(Ctx().get(), req, &info).ok());
  }

  v1::SessionInfo Get(const std::string& id) {
    v1::GetSessionRequest req;
    req.set_session_id(id);
    v1::SessionInfo info;
    grpc::Status s = stub_->GetSession(Ctx().get(), req, &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return info;
  }

  std::unique_ptr<server::Server> server_;
  std::unique_ptr<v1::LstmServe::Stub> stub_;
};

TEST_F(ExplainTest, ModelInfoDescribesTheRecordAndTheWeightFormat) {
  v1::GetModelRequest req;
  req.set_name("elnino");
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModel(Ctx().get(), req, &info).ok());
  EXPECT_EQ(info.weights(), "f32");
  std::vector<std::string> names;
  for (const v1::ExplainFieldInfo& f : info.explain_fields()) {
    EXPECT_EQ(f.layer(), 0);
    EXPECT_EQ(f.units(), info.hidden_size());
    names.push_back(f.name());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"i", "f", "g", "o", "c", "h"}));
}

TEST_F(ExplainTest, WithoutExplainAResponseCarriesNoRecords) {
  v1::PredictResponse r;
  ASSERT_TRUE(Predict("", "sunspots", SeriesInputs(5, 1), 1, false, &r).ok());
  EXPECT_FALSE(r.has_explain());
}

// Every bundled model (GRU, LSTM, the 1x256 text LSTM): a session stepped
// in chunks with explain gets the engine's records and outputs, bit for
// bit, the same outputs as a session without explain, and a gate summary
// equal to the engine's over the same records.
TEST_F(ExplainTest, RecordsAndOutputsAreTheEnginesBitForBit) {
  for (const std::string name : {"sunspots", "elnino", "charlm"}) {
    SCOPED_TRACE(name);
    auto loaded =
        model::Model::Load(testutil::SourcePath("models/" + name + "/1"));
    ASSERT_TRUE(loaded.ok());
    const int width = (*loaded)->input_size();
    const int out = (*loaded)->output_size();
    constexpr int kSteps = 24;
    const std::vector<float> inputs = InputsFor(name, width, kSteps);
    const EngineRun run = RunEngine(name, inputs);
    Create(name + "-explained", name);
    Create(name + "-plain", name);
    int step = 0;
    for (int chunk : {1, 7, 16}) {
      const std::vector<float> part(inputs.begin() + step * width,
                                    inputs.begin() + (step + chunk) * width);
      v1::PredictResponse explained, plain;
      ASSERT_TRUE(
          Predict(name + "-explained", "", part, width, true, &explained).ok());
      ASSERT_TRUE(
          Predict(name + "-plain", "", part, width, false, &plain).ok());
      EXPECT_FALSE(plain.has_explain());
      const std::vector<float> got = Values(explained.outputs());
      ASSERT_EQ(got.size(), static_cast<size_t>(chunk * out));
      EXPECT_EQ(0, std::memcmp(got.data(), Values(plain.outputs()).data(),
                               got.size() * sizeof(float)))
          << "explain changed the outputs";
      EXPECT_EQ(0, std::memcmp(got.data(), run.outputs.data() + step * out,
                               got.size() * sizeof(float)));
      ExpectRecords(explained.explain(), run, step, chunk);
      step += chunk;
    }
    model::GateSummary want(*run.model);
    want.Add(run.records.data(), kSteps);
    const v1::SessionInfo info = Get(name + "-explained");
    EXPECT_EQ(info.explained_steps(), kSteps);
    const std::vector<model::GateSummary::Layer> layers = want.Layers();
    ASSERT_EQ(info.gate_summary_size(), static_cast<int>(layers.size()));
    for (size_t l = 0; l < layers.size(); ++l) {
      const v1::LayerGateSummary& got = info.gate_summary(static_cast<int>(l));
      EXPECT_EQ(got.layer(), layers[l].layer);
      EXPECT_EQ(got.units(), layers[l].units);
      ASSERT_TRUE(got.has_mean_forget());
      EXPECT_DOUBLE_EQ(got.mean_forget(), *layers[l].mean_forget);
      EXPECT_DOUBLE_EQ(got.memory_horizon_steps(), *layers[l].memory_horizon);
      ASSERT_EQ(got.gates_size(), static_cast<int>(layers[l].gates.size()));
      for (size_t g = 0; g < layers[l].gates.size(); ++g) {
        EXPECT_EQ(got.gates(g).name(), layers[l].gates[g].name);
        EXPECT_DOUBLE_EQ(got.gates(g).mean(), layers[l].gates[g].mean);
        EXPECT_DOUBLE_EQ(got.gates(g).saturation(),
                         layers[l].gates[g].saturation);
      }
    }
    EXPECT_EQ(Get(name + "-plain").explained_steps(), 0);
    EXPECT_EQ(Get(name + "-plain").gate_summary_size(), 0);
  }
}

TEST_F(ExplainTest, ResetForgetsTheSummaryAndPlainStepsDoNotCount) {
  Create("s", "sunspots");
  v1::PredictResponse r;
  ASSERT_TRUE(Predict("s", "", SeriesInputs(6, 2), 1, true, &r).ok());
  ASSERT_TRUE(Predict("s", "", SeriesInputs(4, 3), 1, false, &r).ok());
  EXPECT_EQ(Get("s").explained_steps(), 6);
  v1::ResetSessionRequest reset;
  reset.set_session_id("s");
  v1::SessionInfo info;
  ASSERT_TRUE(stub_->ResetSession(Ctx().get(), reset, &info).ok());
  EXPECT_EQ(Get("s").explained_steps(), 0);
  EXPECT_EQ(Get("s").gate_summary_size(), 0);
}

TEST_F(ExplainTest, AStatelessPredictReturnsRecordsToo) {
  const std::vector<float> inputs = SeriesInputs(9, 4);
  const EngineRun run = RunEngine("sunspots", inputs);
  v1::PredictResponse r;
  ASSERT_TRUE(Predict("", "sunspots", inputs, 1, true, &r).ok());
  ExpectRecords(r.explain(), run, 0, 9);
}

// StreamRequest.explain: true turns it on for the session on this stream,
// unset keeps the stream's setting, false turns it off.
TEST_F(ExplainTest, OnAStreamTheSettingStaysWithTheSession) {
  const std::vector<float> inputs = SeriesInputs(4, 5);
  const EngineRun run = RunEngine("sunspots", inputs);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub_->Stream(&ctx);
  // explain: on, (unset), off, (unset); one step each.
  const std::optional<bool> settings[] = {true, std::nullopt, false,
                                          std::nullopt};
  for (int i = 0; i < 4; ++i) {
    v1::StreamRequest req;
    req.set_request_id(i + 1);
    req.set_session_id("streamed");
    req.set_create_model("sunspots");
    *req.mutable_inputs() = MakeTensor({inputs[i]}, 1);
    if (settings[i]) req.set_explain(*settings[i]);
    ASSERT_TRUE(stream->Write(req));
    v1::StreamResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    ASSERT_FALSE(resp.has_error()) << resp.error().message();
    EXPECT_EQ(resp.has_explain(), i < 2) << "message " << i;
    if (i < 2) ExpectRecords(resp.explain(), run, i, 1);
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(Get("streamed").explained_steps(), 2);
}

TEST_F(ExplainTest, TooManyValuesForOneResponseIsInvalidArgument) {
  server::ServerOptions options = TestOptions();
  options.max_explain_values = 16 * 4 * 10;  // ten steps of sunspots (GRU 1x16)
  server_.reset();
  Start(options);
  v1::PredictResponse r;
  EXPECT_TRUE(Predict("", "sunspots", SeriesInputs(10, 6), 1, true, &r).ok());
  grpc::Status s = Predict("", "sunspots", SeriesInputs(11, 6), 1, true, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("--max-explain-values"));
  EXPECT_THAT(s.error_message(), HasSubstr("at most 10 steps"));
  // Without explain the same chunk runs.
  EXPECT_TRUE(Predict("", "sunspots", SeriesInputs(11, 6), 1, false, &r).ok());
}

// [models.NAME] weights in the config: the model is converted at load and
// runs in that format.
TEST_F(ExplainTest, APerModelWeightFormatIsServed) {
  server::ServerOptions options = TestOptions();
  options.models["elnino"].weights = server::WeightFormat::kInt8;
  server_.reset();
  Start(options);
  v1::GetModelRequest req;
  req.set_name("elnino");
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModel(Ctx().get(), req, &info).ok());
  EXPECT_EQ(info.weights(), "int8");
  const std::vector<float> inputs = SeriesInputs(12, 7);
  model::Model::Options int8;
  int8.weights = model::WeightFormat::kInt8;
  const EngineRun run = RunEngine("elnino", inputs, int8);
  v1::PredictResponse r;
  ASSERT_TRUE(Predict("", "elnino", inputs, 1, false, &r).ok());
  const std::vector<float> got = Values(r.outputs());
  ASSERT_EQ(got.size(), run.outputs.size());
  EXPECT_EQ(0, std::memcmp(got.data(), run.outputs.data(),
                           got.size() * sizeof(float)));
  req.set_name("sunspots");
  ASSERT_TRUE(stub_->GetModel(Ctx().get(), req, &info).ok());
  EXPECT_EQ(info.weights(), "f32");
}

}  // namespace
}  // namespace lstmserve::e2e
