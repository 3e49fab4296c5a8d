// Cross-session micro-batching seen from outside: chunks of different
// sessions share an engine call, the results equal unbatched runs, and the
// statistics API reports it.
#include <future>
#include <thread>

#include "e2e_fixture.h"

namespace lstmserve::e2e {
namespace {

TEST(BatchingTest, ConcurrentSessionsShareOneEngineCallAndMatchUnbatched) {
  server::ServerOptions o = TestOptions();
  o.threads = 1;
  o.max_batch = 4;
  // Long enough that the batch can only run by filling up: the four calls
  // below arrive well within it.
  o.max_queue_delay = absl::Seconds(20);
  // Wait even for the first call, before the server has seen any partner.
  o.batch_peer_window = absl::InfiniteDuration();
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  auto stub = Connect(server->address());

  // All made before the first call starts: a call reads inputs[i] while a
  // later push_back would move the vector's elements (TSan saw that race).
  std::vector<std::vector<float>> inputs;
  for (int i = 0; i < 4; ++i) {
    inputs.push_back(SeriesInputs(1 + 3 * i, 50 + i));  // 1, 4, 7, 10 steps
  }
  std::vector<std::future<std::pair<grpc::Status, v1::PredictResponse>>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::async(std::launch::async, [&, i] {
      v1::PredictRequest req;
      req.set_model("sunspots");
      *req.mutable_inputs() = MakeTensor(inputs[i], 1);
      v1::PredictResponse resp;
      grpc::Status s = stub->Predict(Ctx().get(), req, &resp);
      return std::make_pair(s, resp);
    }));
  }
  for (int i = 0; i < 4; ++i) {
    auto [status, resp] = calls[i].get();
    ASSERT_TRUE(status.ok()) << status.error_message();
    ExpectClose(Values(resp.outputs()), Reference("sunspots", inputs[i]));
  }
  v1::ServerStats stats;
  ASSERT_TRUE(stub->GetServerStats(Ctx().get(), {}, &stats).ok());
  ASSERT_EQ(stats.models_size(), 1);
  const v1::ModelStats& m = stats.models(0);
  EXPECT_EQ(m.model(), "sunspots");
  EXPECT_EQ(m.requests(), 4);
  EXPECT_EQ(m.steps(), 1 + 4 + 7 + 10);
  EXPECT_EQ(m.batches(), 1);
  ASSERT_EQ(m.batch_size_histogram_size(), 3);  // sizes 1, 2, (2,4]
  EXPECT_EQ(m.batch_size_histogram(2), 1);
}

TEST(BatchingTest, FullQueueFailsFastWithResourceExhausted) {
  server::ServerOptions o = TestOptions();
  o.threads = 1;
  o.max_batch = 64;
  o.max_queue_delay = absl::Seconds(20);  // nothing runs until 64 arrive
  o.batch_peer_window = absl::InfiniteDuration();
  o.max_queued_steps = 10;
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  auto stub = Connect(server->address());
  // 8 steps wait in the queue; 3 more would pass the limit of 10.
  auto waiting = std::async(std::launch::async, [&] {
    v1::PredictRequest req;
    req.set_model("sunspots");
    *req.mutable_inputs() = MakeTensor(std::vector<float>(8, 1.0f), 1);
    v1::PredictResponse resp;
    return stub->Predict(Ctx(2).get(), req, &resp);
  });
  // Wait until the first call is queued (it then waits for its batch).
  for (int i = 0; i < 500; ++i) {
    v1::ServerStats stats;
    ASSERT_TRUE(stub->GetServerStats(Ctx().get(), {}, &stats).ok());
    if (stats.queued_steps() == 8) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  v1::PredictRequest req;
  req.set_model("sunspots");
  *req.mutable_inputs() = MakeTensor(std::vector<float>(3, 1.0f), 1);
  v1::PredictResponse resp;
  const auto start = std::chrono::steady_clock::now();
  grpc::Status refused = stub->Predict(Ctx(10).get(), req, &resp);
  // Fast: refused on arrival, not after waiting.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("--max-queued-steps"),
            std::string::npos);
  // The waiting call leaves the queue at its deadline instead of hanging,
  // and frees its place.
  EXPECT_EQ(waiting.get().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  for (int i = 0; i < 500; ++i) {
    v1::ServerStats stats;
    ASSERT_TRUE(stub->GetServerStats(Ctx().get(), {}, &stats).ok());
    if (stats.queued_steps() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  v1::ServerStats stats;
  ASSERT_TRUE(stub->GetServerStats(Ctx().get(), {}, &stats).ok());
  EXPECT_EQ(stats.queued_steps(), 0);
  ASSERT_EQ(stats.models_size(), 1);
  EXPECT_EQ(stats.models(0).rejected(), 1);
  EXPECT_EQ(stats.models(0).expired(), 1);
}

}  // namespace
}  // namespace lstmserve::e2e
