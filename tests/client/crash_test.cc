// Durable sessions end to end: lstm-server as a real process with
// --state-dir, stopped by SIGTERM or killed by SIGKILL at random moments
// and restarted on the same port, while clients of the library stream.
// Every session must come back, and every caller must see each step once,
// with the outputs of an uninterrupted run.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_fixture.h"
#include "gtest/gtest.h"
#include "lstmserve/client.h"
#include "testutil/server_process.h"

namespace lstmserve::client_test {
namespace {

using client::StepResult;
using client::StreamingSession;

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<testutil::ServerProcess>(
        std::vector<std::string>{
            "--model-repo", testutil::SourcePath("models"), "--state-dir",
            tmp_.Join("state"), "--checkpoint-interval", "0.05", "--threads",
            "2", "--log-level", "info", "--metrics-listen", "127.0.0.1:0"},
        tmp_.Join("server.log"));
    ASSERT_TRUE(server_->Start()) << server_->Log();
    ClientOptions options = FastOptions(server_->target());
    options.max_retries = 60;  // rides out a restart
    client_ = ConnectTo(options);
    ASSERT_NE(client_, nullptr);
  }

  void Restart() {
    ASSERT_TRUE(server_->Start(server_->port())) << server_->Log();
  }

  testutil::TempDir tmp_;
  std::unique_ptr<testutil::ServerProcess> server_;
  std::unique_ptr<Client> client_;
};

// One streaming session fed a sequence in random chunks.
struct Streamed {
  std::string model;
  std::vector<float> inputs;
  std::vector<float> reference;
  std::vector<int> chunks;
  std::unique_ptr<StreamingSession> session;
  std::vector<std::future<absl::StatusOr<StepResult>>> futures;
  size_t sent_steps = 0, sent_chunks = 0;

  void SendUntil(size_t steps) {
    while (sent_chunks < chunks.size() && sent_steps < steps) {
      const int n = chunks[sent_chunks++];
      futures.push_back(
          session->Send(std::vector<float>(inputs.begin() + sent_steps,
                                           inputs.begin() + sent_steps + n),
                        n));
      sent_steps += n;
    }
  }
  void ExpectExact() {
    std::vector<float> outputs;
    int64_t next = 0;
    for (auto& f : futures) {
      absl::StatusOr<StepResult> r = Await(f, std::chrono::seconds(120));
      ASSERT_TRUE(r.ok()) << session->id() << ": " << r.status();
      ASSERT_EQ(r->first_step, next) << session->id();  // each step once
      next = r->next_step;
      outputs.insert(outputs.end(), r->outputs.begin(), r->outputs.end());
    }
    // The engine's sums depend on the batch a step runs in (last bits),
    // and the recurrent state carries that along a sequence: an
    // uninterrupted run differs from the one-chunk reference as much. A
    // lost or doubled step is off by far more.
    ExpectIdentical(outputs, reference, session->id());
  }
};

std::vector<Streamed> OpenSessions(Client& client, int n, int steps,
                                   uint32_t seed) {
  std::vector<Streamed> sessions(n);
  for (int i = 0; i < n; ++i) {
    Streamed& s = sessions[i];
    s.model = i % 2 == 0 ? "sunspots" : "elnino";
    s.inputs = SequenceInputs(steps, seed + i);
    s.reference = StatelessReference(client, s.model, s.inputs);
    s.chunks = RandomChunks(steps, 6, seed + 100 + i);
    // Half are created by their stream's first message (not durable until
    // their first commit), half by CreateSession (durable when answered).
    auto opened = client.OpenStream(
        {.model = s.model,
         .session_id = i % 4 < 2 ? absl::StrCat("s", i) : ""});
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (opened.ok()) s.session = *std::move(opened);
  }
  return sessions;
}

TEST_F(CrashTest, SigtermThenRestartContinuesEverySession) {
  std::vector<Streamed> sessions = OpenSessions(*client_, 6, 120, 7);
  for (Streamed& s : sessions) ASSERT_NE(s.session, nullptr);
  for (Streamed& s : sessions) s.SendUntil(60);
  for (Streamed& s : sessions) s.session->Flush();

  EXPECT_EQ(server_->Stop(SIGTERM), 0) << server_->Log();
  Restart();
  EXPECT_NE(server_->Log().find("6 sessions restored of 6 stored"),
            std::string::npos)
      << server_->Log();
  for (Streamed& s : sessions) {
    auto info = client_->GetSession(s.session->id());
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->next_step, static_cast<int64_t>(s.sent_steps));
    // SIGTERM checkpoints everything.
    EXPECT_EQ(info->durable_step, static_cast<int64_t>(s.sent_steps));
  }
  for (Streamed& s : sessions) s.SendUntil(120);
  for (Streamed& s : sessions) s.ExpectExact();
}

TEST_F(CrashTest, SigkillAtRandomMomentsLosesNoSessionAndNoStep) {
  constexpr int kSteps = 2000;  // long enough to be killed mid-stream
  std::vector<Streamed> sessions = OpenSessions(*client_, 8, kSteps, 31);
  for (Streamed& s : sessions) ASSERT_NE(s.session, nullptr);
  auto unary = client_->OpenSession({.model = "elnino", .session_id = "u"});
  ASSERT_TRUE(unary.ok()) << unary.status();
  const std::vector<float> unary_inputs = SequenceInputs(kSteps, 77);
  const std::vector<float> unary_reference =
      StatelessReference(*client_, "elnino", unary_inputs);

  // Everything is sent at once; the client pipelines its window while the
  // server is killed and restarted under it.
  for (Streamed& s : sessions) s.SendUntil(kSteps);
  std::vector<float> unary_outputs;
  std::atomic<bool> unary_failed{false};
  std::thread unary_thread([&] {
    for (int step = 0; step < kSteps && !unary_failed; step += 4) {
      auto r = (*unary)->Step(
          {unary_inputs.begin() + step, unary_inputs.begin() + step + 4}, 4);
      if (!r.ok()) {
        ADD_FAILURE() << "unary session: " << r.status();
        unary_failed = true;
        return;
      }
      unary_outputs.insert(unary_outputs.end(), r->outputs.begin(),
                           r->outputs.end());
    }
  });

  std::mt19937 rng(5);
  std::uniform_int_distribution<int> pause_ms(30, 250);
  int kills = 0;
  for (; kills < 5; ++kills) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    EXPECT_EQ(server_->Stop(SIGKILL), 128 + SIGKILL);
    Restart();
  }
  unary_thread.join();
  for (Streamed& s : sessions) s.ExpectExact();
  if (!unary_failed) {
    ExpectIdentical(unary_outputs, unary_reference, "unary");
  }
  // A kill after the last answers may have taken the server back to its
  // last checkpoint: the next chunk brings it forward again (the client
  // resends what it lost) and continues the sequence exactly.
  EXPECT_EQ(server_->Stop(SIGKILL), 128 + SIGKILL);
  Restart();
  for (Streamed& s : sessions) {
    const std::vector<float> more = SequenceInputs(5, 999);
    std::vector<float> all = s.inputs;
    all.insert(all.end(), more.begin(), more.end());
    const std::vector<float> reference =
        StatelessReference(*client_, s.model, all);
    ASSERT_EQ(reference.size(), all.size());
    auto future = s.session->Send(more, 5);
    absl::StatusOr<StepResult> r = Await(future, std::chrono::seconds(60));
    ASSERT_TRUE(r.ok()) << s.session->id() << ": " << r.status();
    EXPECT_EQ(r->first_step, kSteps);
    ExpectIdentical(r->outputs,
                    std::vector<float>(reference.end() - 5, reference.end()),
                    s.session->id() + " after the last kill");
    auto info = client_->GetSession(s.session->id());
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->next_step, kSteps + 5);
  }
  EXPECT_NE(server_->Log().find("sessions restored"), std::string::npos);
}

}  // namespace
}  // namespace lstmserve::client_test
