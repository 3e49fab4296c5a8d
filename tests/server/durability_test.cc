// Durable sessions in the core: what is written to the state store and
// when, durable_step, restore, and a store that fails. The store is an
// in-memory fake with the SQLite store's semantics; the worker pool runs on
// the test's thread, the store writer on its own.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core_fixture.h"
#include "server/fake_state_store.h"

namespace lstmserve::server {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using testing::SizeIs;

class DurabilityTest : public CoreTest {
 protected:
  void StartStored(CoreOptions options = {}) {
    options.store = &fake_store_;
    options.checkpoint_interval = absl::ZeroDuration();  // by hand
    Start(options);
  }
  // A checkpoint round, run and committed.
  void Checkpoint() {
    core_->CheckpointNow();
    Run();
    ASSERT_TRUE(core_->FlushStore().ok());
  }
  // A new core over the same store, as after a restart.
  SessionManager::Restored Restart() {
    core_->Stop();
    core_.reset();
    StartStored();
    auto contents = fake_store_.LoadAll();
    EXPECT_TRUE(contents.ok());
    SessionManager::Restored restored =
        core_->Restore(std::move(contents->records));
    Run();
    return restored;
  }

  // The core goes before the store it writes to (members of this class
  // would otherwise be destroyed first).
  void TearDown() override { core_.reset(); }

  FakeStateStore fake_store_;
};

TEST_F(DurabilityTest, CreateIsAcknowledgedOnceStoredAndStepsAtCheckpoints) {
  StartStored();
  absl::StatusOr<SessionInfo> info = Create("alice", "a", "tiny", 1, {});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->durable_step, 0);
  ASSERT_THAT(fake_store_.records(), SizeIs(1));
  EXPECT_EQ(fake_store_.records().at("a").owner, "alice");

  auto r = Post("a", {1, 2, 3, 4}, 0, "alice");
  Run();
  ASSERT_TRUE(r->value->ok());
  EXPECT_EQ((*r->value)->next_step, 2);
  EXPECT_EQ((*r->value)->durable_step, 0);  // not checkpointed yet
  EXPECT_EQ(fake_store_.records().at("a").next_step, 0);

  Checkpoint();
  EXPECT_EQ(fake_store_.records().at("a").next_step, 2);
  EXPECT_EQ(core_->GetSession("alice", "a")->durable_step, 2);
  auto r2 = Post("a", {5, 6}, 2, "alice");
  Run();
  EXPECT_EQ((*r2->value)->durable_step, 2);
}

TEST_F(DurabilityTest, ACheckpointWritesOnlyChangedSessionsInOneTransaction) {
  StartStored();
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(Create("", id, "tiny", 1, {}).ok());
  }
  const int before = fake_store_.transactions();
  (void)Post("a", {1, 2});
  (void)Post("c", {3, 4});
  Run();
  Checkpoint();
  EXPECT_EQ(fake_store_.transactions(), before + 1);
  EXPECT_EQ(fake_store_.writes_per_transaction().back(), 2);
  Checkpoint();  // nothing changed: nothing written
  EXPECT_EQ(fake_store_.transactions(), before + 1);
}

TEST_F(DurabilityTest, RecordsHoldTheStateAndReplayAndRestoreContinuesExactly) {
  StartStored();
  ASSERT_TRUE(Create("bob", "a", "tiny", 1, {}).ok());
  auto first = Post("a", {1, 2, 3, 4}, 0, "bob");
  auto second = Post("a", {5, 6}, 2, "bob");
  Run();
  ASSERT_TRUE(first->value->ok() && second->value->ok());
  Checkpoint();

  SessionManager::Restored restored = Restart();
  EXPECT_EQ(restored.sessions, 1);
  EXPECT_THAT(restored.problems, testing::IsEmpty());
  // Still bob's, and only bob's.
  EXPECT_EQ(core_->GetSession("", "a").status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<SessionInfo> info = core_->GetSession("bob", "a");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->next_step, 3);
  EXPECT_EQ(info->durable_step, 3);
  // An exact retry of the last chunk is still answered from the record.
  auto retry = Post("a", {5, 6}, 2, "bob");
  auto next = Post("a", {7, 8}, 3, "bob");
  Run();
  ASSERT_TRUE(retry->value->ok() && next->value->ok());
  EXPECT_TRUE((*retry->value)->replayed);
  EXPECT_EQ((*retry->value)->outputs, (*second->value)->outputs);
  std::vector<float> all = (*first->value)->outputs;
  all.insert(all.end(), (*retry->value)->outputs.begin(),
             (*retry->value)->outputs.end());
  all.insert(all.end(), (*next->value)->outputs.begin(),
             (*next->value)->outputs.end());
  EXPECT_EQ(all, Reference({1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST_F(DurabilityTest, StepsAfterTheLastCheckpointAreLostAndSaySo) {
  StartStored();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(Chunk("a", {1, 2}, 0).ok());
  Checkpoint();
  ASSERT_TRUE(Chunk("a", {3, 4}, 1)
                  .ok());  // not checkpointed: the process "crashes" here
  // A crash takes no last checkpoint: what the store holds now is what a
  // restart finds (Stop's checkpoint is undone below).
  const std::map<std::string, SessionRecord> at_crash = fake_store_.records();
  core_->Stop();
  fake_store_.set_records(at_crash);
  Restart();
  EXPECT_EQ(core_->GetSession("", "a")->next_step, 1);
  EXPECT_EQ(core_->GetSession("", "a")->durable_step, 1);
  // The client resends from step 1 and gets exactly what it would have.
  auto again = Chunk("a", {3, 4}, 1);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->replayed);
  const std::vector<float> whole = Reference({1, 2, 3, 4});
  EXPECT_EQ(again->outputs, std::vector<float>(whole.begin() + 1, whole.end()));
}

TEST_F(DurabilityTest, StopTakesALastCheckpoint) {
  StartStored();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(Chunk("a", {1, 2, 3, 4}, 0).ok());
  core_->Stop();
  EXPECT_EQ(fake_store_.records().at("a").next_step, 2);
}

TEST_F(DurabilityTest, ResetAndCloseAreWrittenBeforeTheyAreAcknowledged) {
  StartStored();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(Chunk("a", {1, 2, 3, 4}, 0).ok());
  Checkpoint();
  Result<absl::StatusOr<SessionInfo>> reset;
  core_->ResetSession("", "a", reset.Callback());
  Run();
  ASSERT_TRUE(core_->FlushStore().ok());
  ASSERT_TRUE(reset.value && reset.value->ok());
  EXPECT_EQ(fake_store_.records().at("a").next_step, 0);
  EXPECT_EQ((*reset.value)->durable_step, 0);

  Result<absl::Status> closed;
  core_->CloseSession("", "a", closed.Callback());
  Run();
  ASSERT_TRUE(core_->FlushStore().ok());
  ASSERT_TRUE(closed.value && closed.value->ok());
  EXPECT_THAT(fake_store_.records(), testing::IsEmpty());
}

TEST_F(DurabilityTest, AReusedIdIsNeverOverwrittenByTheClosedSessionsWrites) {
  StartStored();
  ASSERT_TRUE(Create("", "x", "tiny", 1, {}).ok());
  (void)Post("x", {1, 2, 3, 4});
  // Close and re-create before the shard has run anything: the old
  // session's chunk, close and delete all come after the new put.
  Result<absl::Status> closed;
  core_->CloseSession("", "x", closed.Callback());
  Result<absl::StatusOr<SessionInfo>> made;
  core_->CreateSession("", "x", "tiny", 2, {}, made.Callback());
  Run();
  core_->CheckpointNow();
  Run();
  ASSERT_TRUE(core_->FlushStore().ok());
  ASSERT_TRUE(made.value && made.value->ok());
  ASSERT_THAT(fake_store_.records(), SizeIs(1));
  EXPECT_EQ(fake_store_.records().at("x").version, 2);
  EXPECT_EQ(fake_store_.records().at("x").next_step, 0);
}

TEST_F(DurabilityTest, RestoreReportsWhatItCannotBringBackAndLeavesItStored) {
  StartStored();
  SessionRecord gone;
  gone.id = "old";
  gone.model = "retired";
  gone.version = 3;
  gone.incarnation = 5;
  SessionRecord bent;
  bent.id = "bent";
  bent.model = "tiny";
  bent.version = 1;
  bent.incarnation = 6;
  bent.state = {1, 2, 3};  // the wrong size
  ASSERT_TRUE(
      fake_store_
          .Apply(std::vector<StoreWrite>{{StoreWrite::Kind::kPut, gone},
                                         {StoreWrite::Kind::kPut, bent}})
          .ok());
  SessionManager::Restored restored = Restart();
  EXPECT_EQ(restored.sessions, 0);
  ASSERT_THAT(restored.problems, SizeIs(2));
  EXPECT_THAT(restored.problems[0], HasSubstr("\"bent\""));
  EXPECT_THAT(restored.problems[0], HasSubstr("state has 3 floats"));
  EXPECT_THAT(restored.problems[1], HasSubstr("\"old\""));
  EXPECT_THAT(restored.problems[1], HasSubstr("\"retired\" not found"));
  EXPECT_THAT(fake_store_.records(), SizeIs(2));
}

TEST_F(DurabilityTest, ACreateThatCannotBeStoredFailsAndLeavesNoSession) {
  StartStored();
  fake_store_.set_failing(true);
  absl::StatusOr<SessionInfo> info = Create("", "a", "tiny", 1, {});
  EXPECT_EQ(info.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(info.status().message(), HasSubstr("disk full"));
  Run();  // the discard's close
  EXPECT_EQ(core_->GetSession("", "a").status().code(),
            absl::StatusCode::kNotFound);
  fake_store_.set_failing(false);
  ASSERT_TRUE(Create("", "b", "tiny", 1, {}).ok());
  // The failed put and its delete were retried with the next commit.
  EXPECT_THAT(fake_store_.records(), SizeIs(1));
  EXPECT_EQ(fake_store_.records().begin()->first, "b");
}

TEST_F(DurabilityTest, FailedCheckpointsAreRetriedAndDurableStepWaitsForThem) {
  StartStored();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(Chunk("a", {1, 2, 3, 4}, 0).ok());
  fake_store_.set_failing(true);
  core_->CheckpointNow();
  Run();
  EXPECT_FALSE(core_->FlushStore().ok());
  EXPECT_EQ(core_->GetSession("", "a")->durable_step, 0);
  EXPECT_EQ(core_->StoreStats().pending, 1);
  fake_store_.set_failing(false);
  // The next round (here with nothing new) commits what failed before.
  Checkpoint();
  EXPECT_EQ(fake_store_.records().at("a").next_step, 2);
  EXPECT_EQ(core_->GetSession("", "a")->durable_step, 2);
}

TEST_F(DurabilityTest, WithoutAStoreThereIsNoDurableStep) {
  Start();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  auto r = Chunk("a", {1, 2}, 0);
  EXPECT_FALSE(r->durable_step.has_value());
  EXPECT_FALSE(core_->GetSession("", "a")->durable_step.has_value());
}

TEST_F(DurabilityTest, AStreamCreatedSessionIsNotDurableUntilItsPutCommits) {
  StartStored();
  auto r = Post("s", {1, 2}, 0, "", "tiny", /*create=*/true);
  Run();
  ASSERT_TRUE(r->value->ok());
  // Its put is queued with the writer: the answer may come first.
  const int64_t durable = *(*r->value)->durable_step;
  EXPECT_TRUE(durable == kNotDurable || durable == 0) << durable;
  ASSERT_TRUE(core_->FlushStore().ok());
  Checkpoint();
  EXPECT_EQ(fake_store_.records().at("s").next_step, 1);
}

}  // namespace
}  // namespace lstmserve::server
