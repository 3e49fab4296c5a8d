// The service over real gRPC: models, stateless and session Predict, the
// Stream, exactly-once steps, session management, limits and bad input.
#include <map>
#include <random>

#include "e2e_fixture.h"
#include "gmock/gmock.h"
#include "model/csv.h"
#include "server/core/session_manager.h"

namespace lstmserve::e2e {
namespace {

using testing::HasSubstr;

class ServiceTest : public testing::Test {
 protected:
  void SetUp() override { Start(TestOptions()); }

  void Start(server::ServerOptions options) {
    clock_ = std::make_shared<server::FakeClock>();
    options.clock = clock_;
    server_ = StartServer(options);
    ASSERT_NE(server_, nullptr);
    stub_ = Connect(server_->address());
  }

  grpc::Status CreateSession(const std::string& id, const std::string& model,
                             v1::SessionInfo* info = nullptr) {
    v1::CreateSessionRequest req;
    req.set_session_id(id);
    req.set_model(model);
    v1::SessionInfo local;
    return stub_->CreateSession(Ctx().get(), req, info ? info : &local);
  }

  grpc::Status Predict(const std::string& model, const std::string& session,
                       const std::vector<float>& inputs,
                       v1::PredictResponse* response,
                       std::optional<int64_t> first_step = std::nullopt) {
    v1::PredictRequest req;
    req.set_model(model);
    req.set_session_id(session);
    *req.mutable_inputs() = MakeTensor(inputs, 1);
    if (first_step) req.set_first_step(*first_step);
    return stub_->Predict(Ctx().get(), req, response);
  }

  std::shared_ptr<server::FakeClock> clock_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<v1::LstmServe::Stub> stub_;
};

// An empty session id is INVALID_ARGUMENT on every call that names one.
TEST_F(ServiceTest, AnEmptySessionIdIsInvalidEverywhere) {
  v1::SessionInfo info;
  v1::GetSessionRequest get;
  EXPECT_EQ(stub_->GetSession(Ctx().get(), get, &info).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::ResetSessionRequest reset;
  EXPECT_EQ(stub_->ResetSession(Ctx().get(), reset, &info).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::CloseSessionRequest close;
  v1::CloseSessionResponse closed;
  EXPECT_EQ(stub_->CloseSession(Ctx().get(), close, &closed).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::ExportSessionRequest exp;
  v1::SessionSnapshot snap;
  EXPECT_EQ(stub_->ExportSession(Ctx().get(), exp, &snap).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, ListsAndDescribesModels) {
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub_->ListModels(Ctx().get(), {}, &list).ok());
  ASSERT_EQ(list.models_size(), 3);
  EXPECT_EQ(list.models(0).name(), "charlm");
  EXPECT_EQ(list.models(1).name(), "elnino");
  EXPECT_EQ(list.models(2).name(), "sunspots");
  v1::GetModelRequest req;
  req.set_name("sunspots");
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModel(Ctx().get(), req, &info).ok());
  EXPECT_EQ(info.cell(), "gru");
  EXPECT_EQ(info.input_size(), 1);
  EXPECT_EQ(info.output_size(), 1);
  EXPECT_EQ(info.version(), 1);
  EXPECT_EQ(info.state_size(), 16);
  EXPECT_EQ(info.input_names(0), "sunspot_number");
  req.set_version(9);
  grpc::Status s = stub_->GetModel(Ctx().get(), req, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("no version 9; versions: 1"));
}

TEST_F(ServiceTest, StatelessPredictEqualsLstmModelRun) {
  const std::string csv =
      testutil::ReadFile(testutil::SourcePath("models/sunspots/data.csv"));
  auto run = testutil::RunCommand(testutil::LstmModelBinary() + " run " +
                                      testutil::SourcePath("models/sunspots"),
                                  csv);
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  std::vector<float> inputs, expected;
  std::istringstream in(csv), out(run.stdout_text);
  model::CsvReader rin(in, "data", 1), rout(out, "out", 1);
  while (*rin.Next(inputs)) {
  }
  while (*rout.Next(expected)) {
  }
  v1::PredictResponse response;
  ASSERT_TRUE(Predict("sunspots", "", inputs, &response).ok());
  EXPECT_EQ(response.outputs().shape(0), static_cast<int64_t>(inputs.size()));
  EXPECT_EQ(response.outputs().shape(1), 1);
  EXPECT_EQ(response.version(), 1);
  ExpectClose(Values(response.outputs()), expected);
  // Stateless: a second call starts from the zero state again.
  v1::PredictResponse again;
  ASSERT_TRUE(Predict("sunspots", "", inputs, &again).ok());
  EXPECT_EQ(Values(again.outputs()), Values(response.outputs()));
}

TEST_F(ServiceTest, SessionInRandomChunksOverPredictEqualsWholeSequence) {
  const std::vector<float> inputs = SeriesInputs(97, 1);
  const std::vector<float> expected = Reference("sunspots", inputs);
  ASSERT_TRUE(CreateSession("chunky", "sunspots").ok());
  std::mt19937 rng(2);
  std::vector<float> outputs;
  size_t t = 0;
  while (t < inputs.size()) {
    const size_t len = std::min<size_t>(1 + rng() % 13, inputs.size() - t);
    v1::PredictResponse r;
    ASSERT_TRUE(Predict("", "chunky",
                        std::vector<float>(inputs.begin() + t,
                                           inputs.begin() + t + len),
                        &r, t)
                    .ok());
    const auto v = Values(r.outputs());
    outputs.insert(outputs.end(), v.begin(), v.end());
    t += len;
    EXPECT_EQ(r.next_step(), static_cast<int64_t>(t));
  }
  ExpectClose(outputs, expected);
}

TEST_F(ServiceTest, SessionInRandomChunksOverStreamEqualsWholeSequence) {
  const std::vector<float> inputs = SeriesInputs(120, 3);
  const std::vector<float> expected = Reference("elnino", inputs);
  auto ctx = Ctx();
  auto stream = stub_->Stream(ctx.get());
  std::mt19937 rng(4);
  std::vector<float> outputs;
  size_t t = 0;
  uint64_t id = 0;
  while (t < inputs.size()) {
    const size_t len = std::min<size_t>(1 + rng() % 9, inputs.size() - t);
    v1::StreamRequest req;
    req.set_request_id(++id);
    req.set_session_id("streamed");
    req.set_create_model("elnino");
    *req.mutable_inputs() = MakeTensor(
        std::vector<float>(inputs.begin() + t, inputs.begin() + t + len), 1);
    ASSERT_TRUE(stream->Write(req));
    v1::StreamResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    ASSERT_FALSE(resp.has_error()) << resp.error().message();
    EXPECT_EQ(resp.request_id(), id);
    const auto v = Values(resp.outputs());
    outputs.insert(outputs.end(), v.begin(), v.end());
    t += len;
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  ExpectClose(outputs, expected, 1.0f);
}

TEST_F(ServiceTest, SessionContinuesOnANewStreamAfterTheFirstIsCancelled) {
  const std::vector<float> inputs = SeriesInputs(20, 5);
  const std::vector<float> expected = Reference("sunspots", inputs);
  std::vector<float> outputs;
  auto send =
      [&](grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>& s,
          size_t from, size_t to) {
        for (size_t t = from; t < to; ++t) {
          v1::StreamRequest req;
          req.set_request_id(t);
          req.set_session_id("survivor");
          req.set_create_model("sunspots");
          req.set_first_step(t);
          *req.mutable_inputs() = MakeTensor({inputs[t]}, 1);
          ASSERT_TRUE(s.Write(req));
          v1::StreamResponse resp;
          ASSERT_TRUE(s.Read(&resp));
          ASSERT_FALSE(resp.has_error()) << resp.error().message();
          outputs.push_back(resp.outputs().values(0));
        }
      };
  {
    auto ctx = Ctx();
    auto first = stub_->Stream(ctx.get());
    send(*first, 0, 8);
    ctx->TryCancel();  // the client vanishes mid-stream
    first->Finish();
  }
  auto ctx = Ctx();
  auto second = stub_->Stream(ctx.get());
  send(*second, 8, 20);
  second->WritesDone();
  EXPECT_TRUE(second->Finish().ok());
  ExpectClose(outputs, expected);
}

TEST_F(ServiceTest, ExactRetryDoesNotAdvanceAndGapsNameTheExpectedStep) {
  ASSERT_TRUE(CreateSession("once", "sunspots").ok());
  v1::PredictResponse a, retry, gap, b;
  ASSERT_TRUE(Predict("", "once", {10, 20, 30}, &a, 0).ok());
  ASSERT_TRUE(Predict("", "once", {10, 20, 30}, &retry, 0).ok());
  EXPECT_TRUE(retry.replayed());
  EXPECT_EQ(retry.next_step(), 3);
  EXPECT_EQ(Values(retry.outputs()), Values(a.outputs()));
  grpc::Status s = Predict("", "once", {40}, &gap, 5);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("expects step 3"));
  ASSERT_TRUE(Predict("", "once", {40}, &b, 3).ok());
  EXPECT_EQ(b.next_step(), 4);
  // The same holds on a stream, in-band.
  auto ctx = Ctx();
  auto stream = stub_->Stream(ctx.get());
  v1::StreamRequest req;
  req.set_request_id(1);
  req.set_session_id("once");
  req.set_first_step(3);  // already applied, and not the last chunk
  *req.mutable_inputs() = MakeTensor({40}, 1);
  ASSERT_TRUE(stream->Write(req));
  v1::StreamResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_TRUE(resp.replayed());  // it was the last chunk: replayed
  req.set_first_step(1);
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_TRUE(resp.has_error());
  EXPECT_EQ(resp.error().code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(resp.error().message(), HasSubstr("expects step 4"));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServiceTest, ResetCloseListAndIdleExpiryOnTheInjectedClock) {
  v1::SessionInfo info;
  ASSERT_TRUE(CreateSession("", "sunspots", &info).ok());
  const std::string made = info.session_id();
  EXPECT_FALSE(made.empty());
  ASSERT_TRUE(CreateSession("b", "elnino").ok());
  v1::PredictResponse r1, r2;
  ASSERT_TRUE(Predict("", made, {1, 2, 3}, &r1).ok());
  v1::ResetSessionRequest reset;
  reset.set_session_id(made);
  ASSERT_TRUE(stub_->ResetSession(Ctx().get(), reset, &info).ok());
  EXPECT_EQ(info.next_step(), 0);
  ASSERT_TRUE(Predict("", made, {1, 2, 3}, &r2).ok());
  EXPECT_EQ(Values(r1.outputs()), Values(r2.outputs()));

  v1::ListSessionsRequest list_req;
  list_req.set_page_size(1);
  v1::ListSessionsResponse page1, page2;
  ASSERT_TRUE(stub_->ListSessions(Ctx().get(), list_req, &page1).ok());
  ASSERT_EQ(page1.sessions_size(), 1);
  ASSERT_FALSE(page1.next_page_token().empty());
  list_req.set_page_token(page1.next_page_token());
  ASSERT_TRUE(stub_->ListSessions(Ctx().get(), list_req, &page2).ok());
  ASSERT_EQ(page2.sessions_size(), 1);
  EXPECT_TRUE(page2.next_page_token().empty());
  EXPECT_NE(page1.sessions(0).session_id(), page2.sessions(0).session_id());

  v1::CloseSessionRequest close;
  close.set_session_id("b");
  v1::CloseSessionResponse closed;
  ASSERT_TRUE(stub_->CloseSession(Ctx().get(), close, &closed).ok());
  EXPECT_EQ(stub_->CloseSession(Ctx().get(), close, &closed).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Idle expiry: 10 minutes by default, on the fake clock.
  clock_->Advance(absl::Minutes(9));
  EXPECT_EQ(server_->core().ExpireIdle(), 0);
  clock_->Advance(absl::Minutes(2));
  EXPECT_EQ(server_->core().ExpireIdle(), 1);
  v1::GetSessionRequest get;
  get.set_session_id(made);
  grpc::Status s = stub_->GetSession(Ctx().get(), get, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServiceTest, MaxSessionsIsResourceExhausted) {
  server::ServerOptions o = TestOptions();
  o.max_sessions = 3;
  Start(o);
  for (const char* id : {"a", "b", "c"})
    ASSERT_TRUE(CreateSession(id, "sunspots").ok());
  grpc::Status s = CreateSession("d", "sunspots");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("--max-sessions"));
  // The stream's create-on-first-use hits the same limit, in-band.
  auto ctx = Ctx();
  auto stream = stub_->Stream(ctx.get());
  v1::StreamRequest req;
  req.set_session_id("e");
  req.set_create_model("sunspots");
  *req.mutable_inputs() = MakeTensor({1}, 1);
  ASSERT_TRUE(stream->Write(req));
  v1::StreamResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.error().code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  stream->WritesDone();
  stream->Finish();
}

TEST_F(ServiceTest, ExportThenImportOnASecondServerContinuesIdentically) {
  const std::vector<float> inputs = SeriesInputs(30, 6);
  const std::vector<float> expected = Reference("sunspots", inputs);
  ASSERT_TRUE(CreateSession("mover", "sunspots").ok());
  v1::PredictResponse first;
  ASSERT_TRUE(Predict("", "mover",
                      std::vector<float>(inputs.begin(), inputs.begin() + 12),
                      &first, 0)
                  .ok());
  v1::ExportSessionRequest exp;
  exp.set_session_id("mover");
  v1::SessionSnapshot snap;
  ASSERT_TRUE(stub_->ExportSession(Ctx().get(), exp, &snap).ok());
  EXPECT_EQ(snap.next_step(), 12);
  EXPECT_EQ(snap.state_size(), 16);

  auto other = StartServer();
  ASSERT_NE(other, nullptr);
  auto other_stub = Connect(other->address());
  v1::ImportSessionRequest imp;
  *imp.mutable_snapshot() = snap;
  v1::SessionInfo info;
  ASSERT_TRUE(other_stub->ImportSession(Ctx().get(), imp, &info).ok());
  EXPECT_EQ(info.next_step(), 12);
  EXPECT_EQ(other_stub->ImportSession(Ctx().get(), imp, &info).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  v1::PredictRequest req;
  req.set_session_id("mover");
  req.set_first_step(12);
  *req.mutable_inputs() =
      MakeTensor(std::vector<float>(inputs.begin() + 12, inputs.end()), 1);
  v1::PredictResponse second;
  ASSERT_TRUE(other_stub->Predict(Ctx().get(), req, &second).ok());
  std::vector<float> outputs = Values(first.outputs());
  const auto rest = Values(second.outputs());
  outputs.insert(outputs.end(), rest.begin(), rest.end());
  ExpectClose(outputs, expected);
}

TEST_F(ServiceTest, ASecondServerOnTheSamePortFailsInsteadOfSharingIt) {
  server::ServerOptions o = TestOptions();
  o.listen = server_->address();
  auto second = server::Server::Start(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("address in use"));
  // The first server still answers.
  v1::ListModelsResponse models;
  EXPECT_TRUE(stub_->ListModels(Ctx().get(), {}, &models).ok());
}

// Every malformed request gets its code, and the server keeps serving.
TEST_F(ServiceTest, BadInputGetsTheRightCodeAndTheServerKeepsServing) {
  ASSERT_TRUE(CreateSession("good", "sunspots").ok());
  struct Case {
    std::string name;
    v1::PredictRequest request;
    grpc::StatusCode code;
    std::string message;
  };
  std::vector<Case> cases;
  auto base = [] {
    v1::PredictRequest r;
    r.set_model("sunspots");
    *r.mutable_inputs() = MakeTensor({1, 2}, 1);
    return r;
  };
  {
    Case c{"wrong width", base(), grpc::StatusCode::INVALID_ARGUMENT,
           "inputs has shape [1, 2]; model \"sunspots\" expects [T, 1]"};
    *c.request.mutable_inputs() = MakeTensor({1, 2}, 2);
    cases.push_back(c);
  }
  {
    Case c{"empty", base(), grpc::StatusCode::INVALID_ARGUMENT, "no steps"};
    *c.request.mutable_inputs() = MakeTensor({}, 1);
    cases.push_back(c);
  }
  {
    Case c{"values mismatch", base(), grpc::StatusCode::INVALID_ARGUMENT,
           "but 2 values; expected 3"};
    c.request.mutable_inputs()->set_shape(0, 3);
    cases.push_back(c);
  }
  {
    Case c{"nan", base(), grpc::StatusCode::INVALID_ARGUMENT, "must be finite"};
    c.request.mutable_inputs()->set_values(1, std::nanf(""));
    cases.push_back(c);
  }
  {
    Case c{"inf", base(), grpc::StatusCode::INVALID_ARGUMENT, "must be finite"};
    c.request.mutable_inputs()->set_values(0, INFINITY);
    cases.push_back(c);
  }
  {
    Case c{"unknown model", base(), grpc::StatusCode::NOT_FOUND,
           "model \"nope\" not found"};
    c.request.set_model("nope");
    cases.push_back(c);
  }
  {
    Case c{"unknown version", base(), grpc::StatusCode::NOT_FOUND,
           "no version 4"};
    c.request.set_version(4);
    cases.push_back(c);
  }
  {
    Case c{"unknown session", base(), grpc::StatusCode::NOT_FOUND,
           "session \"ghost\" not found"};
    c.request.set_session_id("ghost");
    cases.push_back(c);
  }
  {
    Case c{"session model mismatch", base(), grpc::StatusCode::INVALID_ARGUMENT,
           "runs model \"sunspots\""};
    c.request.set_session_id("good");
    c.request.set_model("elnino");
    cases.push_back(c);
  }
  {
    Case c{"too many steps", base(), grpc::StatusCode::INVALID_ARGUMENT,
           "--max-steps-per-request"};
    *c.request.mutable_inputs() = MakeTensor(std::vector<float>(5000, 1.0f), 1);
    cases.push_back(c);
  }
  {
    Case c{"message too large", base(), grpc::StatusCode::RESOURCE_EXHAUSTED,
           ""};
    *c.request.mutable_inputs() =
        MakeTensor(std::vector<float>(5 << 20, 1.0f), 1);  // 20 MiB > 16 MiB
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::PredictResponse response;
    grpc::Status s = stub_->Predict(Ctx().get(), c.request, &response);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
  }
  EXPECT_EQ(CreateSession("good", "sunspots").error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(CreateSession("bad id", "sunspots").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CreateSession("x", "nope").error_code(),
            grpc::StatusCode::NOT_FOUND);
  {
    v1::CreateSessionRequest req;
    req.set_model("sunspots");
    req.add_initial_state(1.0f);  // wrong size
    v1::SessionInfo info;
    EXPECT_EQ(stub_->CreateSession(Ctx().get(), req, &info).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  // On a stream, a bad message fails that message only.
  auto ctx = Ctx();
  auto stream = stub_->Stream(ctx.get());
  v1::StreamRequest bad;
  bad.set_request_id(7);
  bad.set_session_id("good");
  *bad.mutable_inputs() = MakeTensor({1, 2}, 2);
  ASSERT_TRUE(stream->Write(bad));
  v1::StreamRequest missing = bad;
  missing.set_request_id(8);
  missing.set_session_id("");
  ASSERT_TRUE(stream->Write(missing));
  v1::StreamRequest ok = bad;
  ok.set_request_id(9);
  *ok.mutable_inputs() = MakeTensor({5}, 1);
  ASSERT_TRUE(stream->Write(ok));
  // Answers for different sessions may come in any order (docs/API.md).
  std::map<uint64_t, v1::StreamResponse> answers;
  for (int i = 0; i < 3; ++i) {
    v1::StreamResponse r;
    ASSERT_TRUE(stream->Read(&r));
    answers[r.request_id()] = r;
  }
  EXPECT_EQ(answers[7].error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(answers[8].error().message(), HasSubstr("session_id is empty"));
  EXPECT_FALSE(answers[9].has_error()) << answers[9].error().message();
  EXPECT_EQ(answers[9].next_step(), 1);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  // And the server still serves.
  v1::PredictResponse after;
  EXPECT_TRUE(Predict("sunspots", "", {1, 2}, &after).ok());
}

}  // namespace
}  // namespace lstmserve::e2e
