// Hot reload end to end: 50 sessions stream while a new version of their
// model is dropped into the repository. They keep their version (outputs
// equal to it), new sessions get the new one, a half-written and a broken
// version are not served, and the old version is freed once its sessions
// end.
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lstmserve/client.h"
#include "model/model.h"
#include "server/core/session_manager.h"

namespace lstmserve::client_test {
namespace {

namespace fs = std::filesystem;
using client::StepResult;
using client::StreamingSession;

// The engine on a version directory, from the zero state.
std::vector<float> EngineReference(const std::string& dir,
                                   const std::vector<float>& inputs) {
  auto m = model::Model::Load(dir);
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return {};
  std::vector<float> state((*m)->state_size(), 0.0f);
  std::vector<float> out(inputs.size() * (*m)->output_size());
  model::Workspace ws;
  EXPECT_TRUE((*m)->RunChunk(inputs.data(), static_cast<int>(inputs.size()),
                             state.data(), out.data(), ws)
                  .ok());
  return out;
}

// Waits up to 20 s for `done`.
template <typename Pred>
bool Eventually(Pred done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

TEST(ReloadTest, SessionsKeepTheirVersionWhileANewOneIsRolledOut) {
  testutil::TempDir tmp;
  const std::string repo = tmp.Join("repo");
  fs::create_directories(repo + "/sunspots");
  fs::copy(testutil::SourcePath("models/sunspots/1"), repo + "/sunspots/1",
           fs::copy_options::recursive);
  server::ServerOptions options = ServerOptionsOn();
  options.model_repo = repo;
  options.repo_poll_interval = absl::Milliseconds(50);
  options.expiry_sweep_interval = absl::Milliseconds(20);
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  auto client = ConnectTo(server->address());

  constexpr int kSessions = 50, kSteps = 120;
  std::vector<std::vector<float>> inputs;
  std::vector<std::unique_ptr<StreamingSession>> sessions;
  std::vector<std::vector<std::future<absl::StatusOr<StepResult>>>> futures(
      kSessions);
  auto send = [&](int s, int from, int to) {
    for (int t = from; t < to; ++t) {
      futures[s].push_back(sessions[s]->Send({inputs[s][t]}, 1));
    }
  };
  for (int s = 0; s < kSessions; ++s) {
    inputs.push_back(SequenceInputs(kSteps, 100 + s));
    auto opened = client->OpenStream({.model = "sunspots"});
    ASSERT_TRUE(opened.ok()) << opened.status();
    sessions.push_back(*std::move(opened));
    send(s, 0, kSteps / 2);
  }

  // A half-written version 3 (its weights not there yet): never served.
  fs::create_directories(repo + "/sunspots/3");
  fs::copy(testutil::SourcePath("models/elnino/1/config.json"),
           repo + "/sunspots/3/config.json");
  // Version 2 arrives whole (a GRU: its outputs are unlike version 1's).
  fs::copy(testutil::SourcePath("models/elnino/1"), repo + "/sunspots/2",
           fs::copy_options::recursive);
  ASSERT_TRUE(Eventually([&] {
    auto m = client->GetModel("sunspots");
    return m.ok() && m->version == 2;
  })) << "version 2 was not loaded";
  // A session on the draining version 1 still exports (the version is no
  // longer in the registry; the session keeps it).
  {
    absl::StatusOr<client::Snapshot> snap =
        client->ExportSession(sessions[0]->id());
    ASSERT_TRUE(snap.ok()) << snap.status();
    EXPECT_EQ(snap->version, 1);
  }

  // The old sessions go on, on version 1, while new ones get version 2.
  for (int s = 0; s < kSessions; ++s) send(s, kSteps / 2, kSteps);
  std::vector<std::unique_ptr<StreamingSession>> fresh;
  for (int s = 0; s < 5; ++s) {
    auto opened = client->OpenStream({.model = "sunspots"});
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ((*opened)->version(), 2);
    fresh.push_back(*std::move(opened));
  }
  const std::vector<float> fresh_inputs = SequenceInputs(30, 7);
  const std::vector<float> v2_reference =
      EngineReference(repo + "/sunspots/2", fresh_inputs);
  for (auto& f : fresh) {
    auto r = f->Send(fresh_inputs, 30);
    absl::StatusOr<StepResult> result = Await(r);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectIdentical(result->outputs, v2_reference, "version 2 session");
  }
  for (int s = 0; s < kSessions; ++s) {
    std::vector<float> outputs;
    for (auto& f : futures[s]) {
      absl::StatusOr<StepResult> r = Await(f);
      ASSERT_TRUE(r.ok()) << "session " << s << ": " << r.status();
      outputs.insert(outputs.end(), r->outputs.begin(), r->outputs.end());
    }
    // Batched with up to 49 others, one step at a time: the sums' order
    // differs from the one-chunk reference's in the last bits, and the
    // state carries that along (the same holds without any reload).
    ExpectIdentical(outputs, EngineReference(repo + "/sunspots/1", inputs[s]),
                    absl::StrCat("version 1 session ", s));
  }

  // A broken version 4 leaves version 2 serving.
  fs::create_directories(repo + "/sunspots/4");
  testutil::WriteFile(repo + "/sunspots/4/config.json", "{\"cell\": ");
  testutil::WriteFile(repo + "/sunspots/4/model.safetensors", "junk");
  testutil::WriteFile(repo + "/sunspots/4/READY", "");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // polls
  auto model = client->GetModel("sunspots");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->version, 2);
  EXPECT_THAT(model->versions, testing::ElementsAre(2));

  // Version 1 is freed once its sessions end.
  EXPECT_EQ(server->core().draining_versions(), 1);
  for (auto& s : sessions) {
    ASSERT_TRUE(client->CloseSession(s->id()).ok());
    s->Close().IgnoreError();
  }
  EXPECT_TRUE(
      Eventually([&] { return server->core().draining_versions() == 0; }));
}

}  // namespace
}  // namespace lstmserve::client_test
