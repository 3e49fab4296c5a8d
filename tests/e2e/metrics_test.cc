// The server's /metrics endpoint over a real socket: the counters move as
// traffic does, the core's figures are there, and promtool accepts the
// whole exposition.
#include <cstdio>
#include <filesystem>
#include <regex>

#include "e2e_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/http_client.h"

namespace lstmserve::e2e {
namespace {

using testing::HasSubstr;

std::string Scrape(int port) {
  auto r = metrics::test_http::Request(port, "GET", "/metrics");
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->status, 200);
  return r->body;
}

// The value of the sample `series` (name{labels} exactly), or -1.
double Sample(const std::string& exposition, const std::string& series) {
  for (size_t at = exposition.find(series + " "); at != std::string::npos;
       at = exposition.find(series + " ", at + 1)) {
    if (at != 0 && exposition[at - 1] != '\n') continue;
    return std::stod(exposition.substr(at + series.size() + 1));
  }
  return -1;
}

TEST(MetricsTest, CountersMoveWithTrafficAndPromtoolAcceptsTheExposition) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->metrics_port(), 0);
  auto stub = Connect(server->address());
  const std::string before = Scrape(server->metrics_port());
  EXPECT_THAT(before, HasSubstr("lstmserve_build_info{"));
  EXPECT_THAT(before, HasSubstr("process_resident_memory_bytes"));
  EXPECT_EQ(Sample(before, "lstmserve_model_versions{model=\"sunspots\"}"), 1);

  v1::PredictRequest predict;
  predict.set_model("sunspots");
  *predict.mutable_inputs() = MakeTensor({1, 2, 3}, 1);
  v1::PredictResponse out;
  ASSERT_TRUE(stub->Predict(Ctx().get(), predict, &out).ok());
  predict.set_model("no-such-model");
  EXPECT_FALSE(stub->Predict(Ctx().get(), predict, &out).ok());
  v1::CreateSessionRequest create;
  create.set_session_id("m1");
  create.set_model("elnino");
  v1::SessionInfo info;
  ASSERT_TRUE(stub->CreateSession(Ctx().get(), create, &info).ok());
  {
    auto ctx = Ctx();
    auto stream = stub->Stream(ctx.get());
    v1::StreamRequest r;
    r.set_session_id("m1");
    *r.mutable_inputs() = MakeTensor({0.5f, 0.25f}, 1);
    for (int i = 0; i < 3; ++i) {
      r.set_request_id(i + 1);
      ASSERT_TRUE(stream->Write(r));
      v1::StreamResponse answer;
      ASSERT_TRUE(stream->Read(&answer));
    }
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }

  const std::string after = Scrape(server->metrics_port());
  EXPECT_EQ(Sample(after,
                   "lstmserve_requests_total{method=\"Predict\",model="
                   "\"sunspots\",code=\"OK\"}"),
            1);
  // A client's model name never becomes a label: it is "".
  EXPECT_EQ(Sample(after,
                   "lstmserve_requests_total{method=\"Predict\",model=\"\","
                   "code=\"NOT_FOUND\"}"),
            1);
  EXPECT_THAT(after, testing::Not(HasSubstr("no-such-model")));
  EXPECT_EQ(Sample(after,
                   "lstmserve_requests_total{method=\"Stream\",model="
                   "\"elnino\",code=\"OK\"}"),
            3);
  EXPECT_EQ(
      Sample(after, "lstmserve_steps_total{model=\"sunspots\",version=\"1\"}"),
      3);
  EXPECT_EQ(
      Sample(after, "lstmserve_steps_total{model=\"elnino\",version=\"1\"}"),
      6);
  EXPECT_EQ(Sample(after, "lstmserve_sessions{model=\"elnino\",version=\"1\"}"),
            1);
  EXPECT_EQ(Sample(after, "lstmserve_sessions_created_total{via=\"create\"}"),
            1);
  EXPECT_GT(Sample(after,
                   "lstmserve_request_duration_seconds_count{method="
                   "\"Stream\"}"),
            2);

  const char* promtool = "/usr/bin/promtool";
  if (!std::filesystem::exists(promtool)) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus): "
                    "the exposition was not checked by it";
  }
  testutil::TempDir tmp;
  testutil::WriteFile(tmp.Join("metrics.txt"), after);
  testutil::CommandResult check = testutil::RunCommand(
      std::string(promtool) + " check metrics < " + tmp.Join("metrics.txt"));
  EXPECT_EQ(check.exit_code, 0) << check.stdout_text << check.stderr_text;
  EXPECT_EQ(check.stdout_text + check.stderr_text, "");
}

}  // namespace
}  // namespace lstmserve::e2e
