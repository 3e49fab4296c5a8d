// A server restart with the sessions carried over: a streaming session and
// a unary session on server A; export every session, shut A down, start B
// on the same port, import, and keep going. The outputs must equal the
// reference with no step lost or doubled.
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "client_fixture.h"
#include "gtest/gtest.h"
#include "lstmserve/client.h"

namespace lstmserve::client_test {
namespace {

using client::Snapshot;
using client::StepResult;

TEST(RestartTest, SessionsSurviveARestartOnTheSamePort) {
  auto a = StartServer();
  ASSERT_NE(a, nullptr);
  const int port = a->port();
  ClientOptions options = FastOptions("127.0.0.1:" + std::to_string(port));
  options.max_retries = 20;  // enough to ride out the restart
  auto client = ConnectTo(options);

  const std::vector<float> stream_inputs = SequenceInputs(240, 21);
  const std::vector<float> unary_inputs = SequenceInputs(90, 22);
  const std::vector<float> stream_reference =
      StatelessReference(*client, "sunspots", stream_inputs);
  const std::vector<float> unary_reference =
      StatelessReference(*client, "elnino", unary_inputs);

  auto stream = client->OpenStream({.model = "sunspots"});
  ASSERT_TRUE(stream.ok()) << stream.status();
  auto unary =
      client->OpenSession({.model = "elnino", .session_id = "unary-1"});
  ASSERT_TRUE(unary.ok()) << unary.status();

  const std::vector<int> chunks = RandomChunks(240, 12, 23);
  std::vector<std::future<absl::StatusOr<StepResult>>> futures;
  size_t offset = 0, chunk = 0;
  auto send_until = [&](size_t steps) {
    for (; chunk < chunks.size() && offset < steps; ++chunk) {
      const int n = chunks[chunk];
      futures.push_back((*stream)->Send(
          std::vector<float>(stream_inputs.begin() + offset,
                             stream_inputs.begin() + offset + n),
          n));
      offset += n;
    }
  };
  std::vector<float> unary_outputs;
  auto step_unary = [&](int from, int to) {
    auto r = (*unary)->Step(
        {unary_inputs.begin() + from, unary_inputs.begin() + to}, to - from);
    ASSERT_TRUE(r.ok()) << r.status();
    unary_outputs.insert(unary_outputs.end(), r->outputs.begin(),
                         r->outputs.end());
  };

  // On server A.
  send_until(120);
  step_unary(0, 40);
  for (auto& f : futures) {  // bounded waits, so Flush returns at once
    ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  }
  (*stream)->Flush();
  const int64_t steps_on_a = (*stream)->next_step();
  ASSERT_EQ(steps_on_a, static_cast<int64_t>(offset));

  // Export every session (all pages).
  std::vector<Snapshot> snapshots;
  std::string token;
  do {
    auto page = client->ListSessions(1, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& s : page->sessions) {
      auto snap = client->ExportSession(s.session_id);
      ASSERT_TRUE(snap.ok()) << snap.status();
      snapshots.push_back(*snap);
    }
    token = page->next_page_token;
  } while (!token.empty());
  ASSERT_EQ(snapshots.size(), 2u);

  a->Shutdown(absl::Milliseconds(200));
  a.reset();
  // While nothing listens, a call fails (after its retries) as UNAVAILABLE.
  {
    ClientOptions quick = options;
    quick.max_retries = 1;
    auto probe = ConnectTo(quick);
    EXPECT_EQ(probe->ListModels().status().code(),
              absl::StatusCode::kUnavailable);
  }

  // Server B on the same port, with the sessions imported.
  auto b = StartServer(ServerOptionsOn("127.0.0.1:" + std::to_string(port)));
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b->port(), port);
  for (const Snapshot& s : snapshots) {
    auto imported = client->ImportSession(s);
    ASSERT_TRUE(imported.ok()) << imported.status();
  }

  // Keep going on the same client objects.
  send_until(240);
  step_unary(40, 70);
  step_unary(70, 90);
  std::vector<float> stream_outputs;
  int64_t first = 0;
  for (size_t i = 0; i < futures.size(); ++i) {
    auto r = Await(futures[i]);
    ASSERT_TRUE(r.ok()) << "chunk " << i << ": " << r.status();
    EXPECT_EQ(r->first_step, first);
    first += chunks[i];
    stream_outputs.insert(stream_outputs.end(), r->outputs.begin(),
                          r->outputs.end());
  }
  ExpectIdentical(stream_outputs, stream_reference, "stream");
  ExpectIdentical(unary_outputs, unary_reference, "unary");

  // Server B agrees on the step counts: nothing lost, nothing doubled.
  auto stream_info = client->GetSession((*stream)->id());
  ASSERT_TRUE(stream_info.ok()) << stream_info.status();
  EXPECT_EQ(stream_info->next_step, 240);
  auto unary_info = client->GetSession("unary-1");
  ASSERT_TRUE(unary_info.ok()) << unary_info.status();
  EXPECT_EQ(unary_info->next_step, 90);
  EXPECT_TRUE((*stream)->Close().ok());
}

TEST(RestartTest, APipelinedWindowIsReplayedExactlyOnceAfterExportImport) {
  // A client pipelined four chunks; server A applied them all, then went
  // away before any answer arrived. Exported and imported on server B, the
  // session answers a resend of each of the four from its replay record.
  auto a = StartServer();
  auto b = StartServer();
  ASSERT_TRUE(a && b);
  auto client_a = ConnectTo(FastOptions(a->address()));
  auto client_b = ConnectTo(FastOptions(b->address()));
  ASSERT_TRUE(
      client_a->CreateSession({.session_id = "window", .model = "sunspots"})
          .ok());
  const std::vector<float> inputs = SequenceInputs(8, 31);
  std::vector<client::PredictResult> first;
  for (int k = 0; k < 4; ++k) {
    auto r = client_a->Predict({.session_id = "window",
                                .inputs = {inputs[2 * k], inputs[2 * k + 1]},
                                .steps = 2,
                                .first_step = 2 * k});
    ASSERT_TRUE(r.ok()) << r.status();
    first.push_back(*r);
  }
  auto snap = client_a->ExportSession("window");
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->replay.size(), 4u);
  EXPECT_EQ(snap->replay.front().first_step, 0);
  ASSERT_TRUE(client_b->ImportSession(*snap).ok());
  for (int k = 0; k < 4; ++k) {
    auto again =
        client_b->Predict({.session_id = "window",
                           .inputs = {inputs[2 * k], inputs[2 * k + 1]},
                           .steps = 2,
                           .first_step = 2 * k});
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->replayed);
    EXPECT_EQ(again->outputs, first[k].outputs);
    EXPECT_EQ(again->next_step, 8);
  }
  auto info = client_b->GetSession("window");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->next_step, 8);  // nothing applied twice
}

}  // namespace
}  // namespace lstmserve::client_test
