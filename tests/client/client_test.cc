// The client library's unary calls and Session against a real in-process
// server: models, stateless and session predictions, session management,
// error mapping, retries, deadlines.
#include "lstmserve/client.h"

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "client/internal.h"
#include "client_fixture.h"
#include "flaky_proxy.h"
#include "gtest/gtest.h"

namespace lstmserve::client_test {
namespace {

using client::CreateSessionRequest;
using client::OpenSessionOptions;
using client::PredictRequest;

using ClientTest = ServerAndClientTest;

TEST_F(ClientTest, ListModelsAndGetModel) {
  auto models = client_->ListModels();
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->size(), 3u);
  EXPECT_EQ((*models)[0].name, "charlm");
  EXPECT_EQ((*models)[0].cell, "lstm");
  EXPECT_EQ((*models)[1].name, "elnino");
  EXPECT_EQ((*models)[1].cell, "lstm");
  EXPECT_EQ((*models)[2].name, "sunspots");
  EXPECT_EQ((*models)[2].cell, "gru");

  auto sunspots = client_->GetModel("sunspots");
  ASSERT_TRUE(sunspots.ok()) << sunspots.status();
  EXPECT_EQ(sunspots->version, 1);
  EXPECT_EQ(sunspots->versions, std::vector<int64_t>({1}));
  EXPECT_EQ(sunspots->input_size, 1);
  EXPECT_EQ(sunspots->output_size, 1);
  EXPECT_EQ(sunspots->cell, "gru");
  EXPECT_EQ(sunspots->hidden_size, 16);
  EXPECT_EQ(sunspots->num_layers, 1);
  EXPECT_EQ(sunspots->head_activation, "sigmoid");
  // GRU: h per layer.
  EXPECT_EQ(sunspots->state_size, 16);
  EXPECT_EQ(sunspots->input_names,
            std::vector<std::string>({"sunspot_number"}));
  EXPECT_FALSE(sunspots->description.empty());

  auto by_version = client_->GetModel("elnino", 1);
  ASSERT_TRUE(by_version.ok()) << by_version.status();
  EXPECT_EQ(by_version->cell, "lstm");
  EXPECT_EQ(by_version->state_size, 2 * 16);  // LSTM: h and c
}

TEST_F(ClientTest, UnknownModelAndVersionAreNotFound) {
  auto missing = client_->GetModel("nope");
  ASSERT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  // The server's message, unchanged.
  EXPECT_NE(std::string(missing.status().message()).find("\"nope\""),
            std::string::npos)
      << missing.status();
  EXPECT_EQ(client_->GetModel("sunspots", 7).status().code(),
            absl::StatusCode::kNotFound);

  PredictRequest request;
  request.model = "nope";
  request.inputs = {1.0f};
  request.steps = 1;
  EXPECT_EQ(client_->Predict(request).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, StatelessPredictEqualsASessionFedTheSameChunk) {
  const std::vector<float> inputs = SequenceInputs(40, 1);
  PredictRequest stateless;
  stateless.model = "sunspots";
  stateless.inputs = inputs;
  stateless.steps = 40;
  auto a = client_->Predict(stateless);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->steps, 40);
  EXPECT_EQ(a->output_size, 1);
  EXPECT_EQ(a->outputs.size(), 40u);
  EXPECT_EQ(a->model, "sunspots");
  EXPECT_EQ(a->version, 1);
  EXPECT_TRUE(a->session_id.empty());

  auto info = client_->CreateSession({.model = "sunspots"});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->session_id.empty());
  EXPECT_EQ(info->next_step, 0);
  PredictRequest in_session;
  in_session.session_id = info->session_id;
  in_session.inputs = inputs;
  in_session.steps = 40;
  auto b = client_->Predict(in_session);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->session_id, info->session_id);
  EXPECT_EQ(b->next_step, 40);
  EXPECT_FALSE(b->replayed);
  ExpectIdentical(b->outputs, a->outputs);
  // Stateless really keeps nothing: the same call again gives the same.
  auto again = client_->Predict(stateless);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outputs, a->outputs);
}

TEST_F(ClientTest, SessionStepsEqualOneStatelessPredictOfTheConcatenation) {
  const std::vector<float> inputs = SequenceInputs(120, 2);
  const std::vector<float> reference =
      StatelessReference(*client_, "sunspots", inputs);
  ASSERT_EQ(reference.size(), 120u);

  auto session = client_->OpenSession({.model = "sunspots"});
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_FALSE((*session)->id().empty());
  EXPECT_EQ((*session)->model(), "sunspots");
  EXPECT_EQ((*session)->version(), 1);
  std::vector<float> outputs;
  int64_t expected_first = 0;
  for (int n : RandomChunks(120, 17, 3)) {
    std::vector<float> chunk(inputs.begin() + expected_first,
                             inputs.begin() + expected_first + n);
    auto r = (*session)->Step(chunk, n);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->first_step, expected_first);
    EXPECT_EQ(r->next_step, expected_first + n);
    EXPECT_EQ(r->steps, n);
    EXPECT_FALSE(r->replayed);
    outputs.insert(outputs.end(), r->outputs.begin(), r->outputs.end());
    expected_first += n;
    EXPECT_EQ((*session)->next_step(), expected_first);
  }
  ExpectIdentical(outputs, reference);
  EXPECT_TRUE((*session)->Close().ok());
  EXPECT_EQ(client_->GetSession((*session)->id()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ((*session)->Step({1.0f}, 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ClientTest, OpenSessionAttachesToAnExistingSessionAndContinues) {
  const std::vector<float> inputs = SequenceInputs(30, 4);
  const std::vector<float> reference =
      StatelessReference(*client_, "elnino", inputs);
  std::vector<float> outputs;
  {
    auto first =
        client_->OpenSession({.model = "elnino", .session_id = "attach-me"});
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ((*first)->id(), "attach-me");
    auto r = (*first)->Step({inputs.begin(), inputs.begin() + 10}, 10);
    ASSERT_TRUE(r.ok()) << r.status();
    outputs = r->outputs;
  }  // the server-side session outlives the object
  auto second =
      client_->OpenSession({.model = "elnino", .session_id = "attach-me"});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->next_step(), 10);
  auto r = (*second)->Step({inputs.begin() + 10, inputs.end()}, 20);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->first_step, 10);
  outputs.insert(outputs.end(), r->outputs.begin(), r->outputs.end());
  ExpectIdentical(outputs, reference);

  // Another model on the same id is refused; so is a missing session when
  // creation is not allowed.
  EXPECT_EQ(
      client_->OpenSession({.model = "sunspots", .session_id = "attach-me"})
          .status()
          .code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_
                ->OpenSession({.model = "elnino",
                               .session_id = "not-there",
                               .create_if_missing = false})
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, WrongWidthIsInvalidArgument) {
  PredictRequest request;
  request.model = "sunspots";
  request.inputs = {1, 2, 3, 4, 5, 6};
  request.steps = 3;  // [3, 2]; the model takes [T, 1]
  auto r = client_->Predict(request);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("[3, 2]"), std::string::npos)
      << r.status();

  // Inconsistent sizes are refused before sending.
  request.inputs = {1, 2, 3};
  request.steps = 2;
  EXPECT_EQ(client_->Predict(request).status().code(),
            absl::StatusCode::kInvalidArgument);
  request.steps = 0;
  EXPECT_EQ(client_->Predict(request).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto session = client_->OpenSession({.model = "sunspots"});
  ASSERT_TRUE(session.ok());
  EXPECT_EQ((*session)->Step({1, 2}, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The failed chunk did not move the session.
  EXPECT_EQ((*session)->next_step(), 0);
  auto ok = (*session)->Step({1}, 1);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->first_step, 0);
}

TEST_F(ClientTest, FirstStepGivesExactlyOnceAndNamesTheExpectedStep) {
  auto info = client_->CreateSession({.model = "sunspots"});
  ASSERT_TRUE(info.ok());
  PredictRequest request;
  request.session_id = info->session_id;
  request.inputs = {10, 20, 30};
  request.steps = 3;
  request.first_step = 0;
  auto first = client_->Predict(request);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->replayed);
  // An exact retry: same outputs, not applied again.
  auto retry = client_->Predict(request);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->outputs, first->outputs);
  EXPECT_EQ(retry->next_step, 3);
  // Skipping ahead is refused.
  request.first_step = 5;
  auto skip = client_->Predict(request);
  EXPECT_EQ(skip.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(skip.status().message()).find("3"), std::string::npos);
}

TEST_F(ClientTest, SessionManagement) {
  auto created =
      client_->CreateSession({.session_id = "mgmt-b", .model = "sunspots"});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->session_id, "mgmt-b");
  EXPECT_EQ(created->model, "sunspots");
  EXPECT_EQ(created->version, 1);
  EXPECT_EQ(created->state_size, 16);
  EXPECT_GT(created->created_unix_ms, 0);
  EXPECT_EQ(
      client_->CreateSession({.session_id = "mgmt-b", .model = "sunspots"})
          .status()
          .code(),
      absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(
      client_->CreateSession({.session_id = "mgmt-a", .model = "elnino"}).ok());
  ASSERT_TRUE(
      client_->CreateSession({.session_id = "mgmt-c", .model = "elnino"}).ok());

  auto session =
      client_->OpenSession({.model = "sunspots", .session_id = "mgmt-b"});
  ASSERT_TRUE(session.ok());
  ASSERT_TRUE((*session)->Step({1, 2, 3, 4}, 4).ok());
  auto got = client_->GetSession("mgmt-b");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->next_step, 4);

  auto reset = client_->ResetSession("mgmt-b");
  ASSERT_TRUE(reset.ok()) << reset.status();
  EXPECT_EQ(reset->next_step, 0);

  // Paging: ordered by id, two per page.
  std::vector<std::string> ids;
  std::string token;
  int pages = 0;
  do {
    auto page = client_->ListSessions(2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->sessions.size(), 2u);
    for (const auto& s : page->sessions) ids.push_back(s.session_id);
    token = page->next_page_token;
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_EQ(ids, std::vector<std::string>({"mgmt-a", "mgmt-b", "mgmt-c"}));
  EXPECT_EQ(client_->ListSessions(-1).status().code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(client_->CloseSession("mgmt-a").ok());
  EXPECT_EQ(client_->CloseSession("mgmt-a").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->GetSession("mgmt-a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->ResetSession("mgmt-a").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, CreateSessionWithAnInitialState) {
  auto model = client_->GetModel("elnino");
  ASSERT_TRUE(model.ok());
  const std::vector<float> inputs = SequenceInputs(20, 5);
  // Run 8 steps, export the state, start a second session from it.
  auto a = client_->OpenSession({.model = "elnino"});
  ASSERT_TRUE(a.ok());
  auto head = (*a)->Step({inputs.begin(), inputs.begin() + 8}, 8);
  ASSERT_TRUE(head.ok());
  auto snapshot = client_->ExportSession((*a)->id());
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_EQ(snapshot->state.size(), static_cast<size_t>(model->state_size));

  auto b = client_->CreateSession(
      {.model = "elnino", .initial_state = snapshot->state});
  ASSERT_TRUE(b.ok()) << b.status();
  PredictRequest tail;
  tail.session_id = b->session_id;
  tail.inputs.assign(inputs.begin() + 8, inputs.end());
  tail.steps = 12;
  auto from_b = client_->Predict(tail);
  ASSERT_TRUE(from_b.ok()) << from_b.status();
  auto from_a = (*a)->Step(tail.inputs, 12);
  ASSERT_TRUE(from_a.ok());
  ExpectIdentical(from_b->outputs, from_a->outputs);

  EXPECT_EQ(
      client_->CreateSession({.model = "elnino", .initial_state = {1.0f, 2.0f}})
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, ExportImportContinuesExactlyOnce) {
  const std::vector<float> inputs = SequenceInputs(50, 6);
  const std::vector<float> reference =
      StatelessReference(*client_, "sunspots", inputs);
  auto session =
      client_->OpenSession({.model = "sunspots", .session_id = "moving"});
  ASSERT_TRUE(session.ok());
  auto head = (*session)->Step({inputs.begin(), inputs.begin() + 30}, 30);
  ASSERT_TRUE(head.ok());
  auto snapshot = client_->ExportSession("moving");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->session_id, "moving");
  EXPECT_EQ(snapshot->model, "sunspots");
  EXPECT_EQ(snapshot->version, 1);
  EXPECT_EQ(snapshot->next_step, 30);
  EXPECT_EQ(snapshot->last_first_step, 0);
  EXPECT_EQ(snapshot->last_inputs_shape, std::vector<int64_t>({30, 1}));
  EXPECT_EQ(snapshot->last_outputs, head->outputs);

  // Onto another server, where a retry of the last chunk is still known.
  auto other = StartServer();
  ASSERT_NE(other, nullptr);
  auto other_client = ConnectTo(other->address());
  EXPECT_EQ(other_client->ImportSession(*snapshot).status().code(),
            absl::StatusCode::kOk);
  EXPECT_EQ(other_client->ImportSession(*snapshot).status().code(),
            absl::StatusCode::kAlreadyExists);
  PredictRequest retry;
  retry.session_id = "moving";
  retry.inputs.assign(inputs.begin(), inputs.begin() + 30);
  retry.steps = 30;
  retry.first_step = 0;
  auto replay = other_client->Predict(retry);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_TRUE(replay->replayed);
  EXPECT_EQ(replay->outputs, head->outputs);

  auto moved = other_client->OpenSession({.session_id = "moving"});
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ((*moved)->next_step(), 30);
  auto tail = (*moved)->Step({inputs.begin() + 30, inputs.end()}, 20);
  ASSERT_TRUE(tail.ok()) << tail.status();
  std::vector<float> outputs = head->outputs;
  outputs.insert(outputs.end(), tail->outputs.begin(), tail->outputs.end());
  ExpectIdentical(outputs, reference);
}

// --- retries, deadlines, unreachable servers (through FlakyProxy) ---

TEST_F(ClientTest, PredictWithFirstStepIsRetriedOnUnavailable) {
  FlakyProxy proxy(server_->address(), {.fail_predicts = 3});
  auto client = ConnectTo(proxy.address());
  auto info = client->CreateSession({.model = "sunspots"});
  ASSERT_TRUE(info.ok()) << info.status();
  auto session = client->OpenSession(
      {.model = "sunspots", .session_id = info->session_id});
  ASSERT_TRUE(session.ok()) << session.status();
  auto r = (*session)->Step({5, 6, 7}, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(proxy.predict_calls(), 4);  // 3 failures, then through
  EXPECT_EQ(r->next_step, 3);
  EXPECT_FALSE(r->replayed);
}

TEST_F(ClientTest, ASessionsPredictWithoutFirstStepIsNeverRetried) {
  FlakyProxy proxy(server_->address(), {.fail_predicts = 1});
  auto client = ConnectTo(proxy.address());
  auto info = client->CreateSession({.model = "sunspots"});
  ASSERT_TRUE(info.ok()) << info.status();
  PredictRequest request;
  request.session_id = info->session_id;
  request.inputs = {1, 2};
  request.steps = 2;
  auto r = client->Predict(request);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(r.status().message()), "proxy: failing this Predict");
  EXPECT_EQ(proxy.predict_calls(), 1);
}

TEST_F(ClientTest, AStatelessPredictIsRetriedOnUnavailable) {
  // It changes nothing on the server, so repeating it is always safe.
  FlakyProxy proxy(server_->address(), {.fail_predicts = 2});
  auto client = ConnectTo(proxy.address());
  PredictRequest request;
  request.model = "sunspots";
  request.inputs = {1, 2};
  request.steps = 2;
  auto r = client->Predict(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(proxy.predict_calls(), 3);
  EXPECT_EQ(r->outputs, StatelessReference(*client_, "sunspots", {1, 2}));
}

TEST_F(ClientTest, RetriesStopAfterMaxRetries) {
  FlakyProxy proxy(server_->address(), {.fail_predicts = 100});
  ClientOptions options = FastOptions(proxy.address());
  options.max_retries = 2;
  auto client = ConnectTo(options);
  PredictRequest request;
  request.model = "sunspots";
  request.inputs = {1};
  request.steps = 1;
  request.first_step = 0;
  request.session_id = "whatever";
  EXPECT_EQ(client->Predict(request).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(proxy.predict_calls(), 3);
}

TEST_F(ClientTest, SlowServerIsDeadlineExceeded) {
  FlakyProxy proxy(server_->address(), {.stall_get_model = true});
  ClientOptions options = FastOptions(proxy.address());
  options.deadline = std::chrono::milliseconds(300);
  auto client = ConnectTo(options);
  const auto start = std::chrono::steady_clock::now();
  auto r = client->GetModel("sunspots");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_EQ(proxy.get_model_calls(), 1);  // not retried
}

TEST(ClientNoServerTest, UnreachableServerIsUnavailableAfterBoundedRetries) {
  // A port that was free a moment ago and has nothing listening now.
  int port = 0;
  {
    auto s = StartServer();
    ASSERT_NE(s, nullptr);
    port = s->port();
  }
  ClientOptions options = FastOptions("127.0.0.1:" + std::to_string(port));
  options.max_retries = 3;
  auto connected = Client::Connect(options);  // succeeds: no call yet
  ASSERT_TRUE(connected.ok()) << connected.status();
  const auto start = std::chrono::steady_clock::now();
  auto models = (*connected)->ListModels();
  EXPECT_EQ(models.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(ClientOptionsTest, InvalidOptionsAreRefused) {
  ClientOptions options;
  options.target = "";
  EXPECT_EQ(Client::Connect(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.target = "127.0.0.1:1";
  options.initial_backoff = std::chrono::milliseconds(500);
  options.max_backoff = std::chrono::milliseconds(100);
  EXPECT_EQ(Client::Connect(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.max_backoff = std::chrono::milliseconds(1000);
  options.max_retries = -1;
  EXPECT_EQ(Client::Connect(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ClientBackoffTest, DoublesFromInitialUpToMaxWithJitter) {
  ClientOptions options;
  options.initial_backoff = std::chrono::milliseconds(50);
  options.max_backoff = std::chrono::milliseconds(2000);
  for (int i = 0; i < 20; ++i) {
    const auto first = client::internal::Backoff(options, 1).count();
    EXPECT_GE(first, 40);
    EXPECT_LE(first, 60);
    const auto third = client::internal::Backoff(options, 3).count();
    EXPECT_GE(third, 160);
    EXPECT_LE(third, 240);
    const auto late = client::internal::Backoff(options, 30).count();
    EXPECT_GE(late, 1600);
    EXPECT_LE(late, 2400);
  }
}

}  // namespace
}  // namespace lstmserve::client_test
