// Versions coming and going in the core: new sessions get the newest
// version, live sessions stay on theirs, an unloaded version drains and its
// executor is freed once its last session ends or its drain time passes.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core_fixture.h"

namespace lstmserve::server {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;

class ReloadTest : public CoreTest {
 protected:
  void SetUp() override {
    registry_ = *ModelRegistry::FromModels({TinyLstm("tiny", 1)});
    Start();
  }
  // Output of one step of `inputs` through a fresh session on `version`.
  std::vector<float> Fresh(int64_t version, std::vector<float> inputs) {
    auto m = *registry_->Get("tiny", version);
    std::vector<float> state(m->model->state_size(), 0.0f);
    std::vector<float> out(m->model->output_size());
    model::Workspace ws;
    EXPECT_TRUE(
        m->model->RunChunk(inputs.data(), 1, state.data(), out.data(), ws)
            .ok());
    return out;
  }
};

TEST_F(ReloadTest, NewSessionsGetTheNewVersionOldOnesKeepTheirs) {
  ASSERT_TRUE(Create("", "old", "tiny", 0, {}).ok());
  ASSERT_TRUE(core_->LoadVersion(TinyLstm("tiny", 2)).ok());
  EXPECT_THAT(registry_->Versions("tiny"), ElementsAre(1, 2));
  absl::StatusOr<SessionInfo> fresh = Create("", "new", "tiny", 0, {});
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->version, 2);
  EXPECT_EQ(core_->GetSession("", "old")->version, 1);
  auto old_out = Chunk("old", {1, 2});
  auto new_out = Chunk("new", {1, 2});
  ASSERT_TRUE(old_out.ok() && new_out.ok());
  EXPECT_EQ(old_out->model->version, 1);
  EXPECT_EQ(new_out->model->version, 2);
  EXPECT_EQ(old_out->outputs, Reference({1, 2}, 1));
  // A second load of a served version is refused.
  EXPECT_EQ(core_->LoadVersion(TinyLstm("tiny", 2)).code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(ReloadTest, AnUnloadedVersionServesItsSessionsUntilTheyEnd) {
  ASSERT_TRUE(core_->LoadVersion(TinyLstm("tiny", 2)).ok());
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(core_->UnloadVersion("tiny", 1, absl::Hours(1)).ok());
  EXPECT_THAT(registry_->Versions("tiny"), ElementsAre(2));
  // Unreachable for new sessions and stateless calls ...
  EXPECT_EQ(Create("", "b", "tiny", 1, {}).status().code(),
            absl::StatusCode::kNotFound);
  // ... but its session runs on, on version 1.
  auto r = Chunk("a", {3, 4});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model->version, 1);
  EXPECT_EQ(core_->draining_versions(), 1);
  EXPECT_TRUE(core_->Maintain().versions_freed.empty());

  Result<absl::Status> closed;
  core_->CloseSession("", "a", closed.Callback());
  Run();
  ASSERT_TRUE(closed.value && closed.value->ok());
  SessionManager::Maintained m = core_->Maintain();
  EXPECT_THAT(m.versions_freed, ElementsAre("tiny 1"));
  EXPECT_EQ(core_->draining_versions(), 0);
}

TEST_F(ReloadTest, SessionsStillOnAVersionAfterItsDrainTimeAreClosed) {
  ASSERT_TRUE(core_->LoadVersion(TinyLstm("tiny", 2)).ok());
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(Create("", "b", "tiny", 1, {}).ok());
  ASSERT_TRUE(Create("", "c", "tiny", 2, {}).ok());
  ASSERT_TRUE(core_->UnloadVersion("tiny", 1, absl::Seconds(30)).ok());
  clock_->Advance(absl::Seconds(29));
  EXPECT_EQ(core_->Maintain().closed_for_reload, 0);
  clock_->Advance(absl::Seconds(2));
  SessionManager::Maintained m = core_->Maintain();
  EXPECT_EQ(m.closed_for_reload, 2);
  Run();  // the closes
  m = core_->Maintain();
  EXPECT_THAT(m.versions_freed, ElementsAre("tiny 1"));
  EXPECT_EQ(core_->GetSession("", "a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(core_->GetSession("", "c").ok());
}

TEST_F(ReloadTest, AStatelessCallInFlightKeepsItsVersionAlive) {
  ASSERT_TRUE(core_->LoadVersion(TinyLstm("tiny", 2)).ok());
  auto* r = Post("", {1, 2}, std::nullopt, "", "tiny");
  // Version 2 goes while the call waits in its queue.
  ASSERT_TRUE(core_->UnloadVersion("tiny", 2, absl::ZeroDuration()).ok());
  EXPECT_TRUE(core_->Maintain().versions_freed.empty());
  Run();
  ASSERT_TRUE(r->value && r->value->ok()) << r->value->status();
  EXPECT_EQ((*r->value)->model->version, 2);
  EXPECT_THAT(core_->Maintain().versions_freed, ElementsAre("tiny 2"));
}

TEST_F(ReloadTest, UnloadingAVersionNotServedIsNotFound) {
  absl::Status s = core_->UnloadVersion("tiny", 7, absl::ZeroDuration());
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("version 7"));
}

TEST_F(ReloadTest, CheckpointsIncludeDrainingVersions) {
  // Checkpoint rounds ask every executor alive, served or draining; with
  // no store this only has to not hang or crash.
  ASSERT_TRUE(core_->LoadVersion(TinyLstm("tiny", 2)).ok());
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(core_->UnloadVersion("tiny", 1, absl::Hours(1)).ok());
  core_->CheckpointNow();
  Run();
  EXPECT_EQ(core_->Stats().size(), 0u);  // nothing ran yet
  ASSERT_TRUE(Chunk("a", {1, 1}).ok());
  ASSERT_EQ(core_->Stats().size(), 1u);
  EXPECT_EQ(core_->Stats()[0].version, 1);
}

}  // namespace
}  // namespace lstmserve::server
