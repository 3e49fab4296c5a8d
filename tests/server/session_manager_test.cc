// The core below the RPC layer: session policy, exactly-once, the executor's
// ordering, limits and hostile input. No sockets, no threads (the worker
// pool runs on the test's thread), no sleeps: time is a FakeClock.
#include "server/core/session_manager.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core_fixture.h"

namespace lstmserve::server {
namespace {

using testing::HasSubstr;

TEST_F(CoreTest, ChunksContinueTheSessionExactlyAsOneLongChunk) {
  Start();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  auto r1 = Chunk("a", {1, 2, 3, 4});
  auto r2 = Chunk("a", {5, 6});
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->next_step, 2);
  EXPECT_EQ(r2->next_step, 3);
  std::vector<float> both = r1->outputs;
  both.insert(both.end(), r2->outputs.begin(), r2->outputs.end());
  EXPECT_EQ(both, Reference({1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(core_->GetSession("", "a")->next_step, 3);
}

TEST_F(CoreTest, ExecutorRunsChunkResetChunkExportCloseInPostedOrder) {
  Start();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  // Everything posted before any of it runs: each waits for what is ahead.
  auto* a = Post("a", {1, 2, 3, 4});
  Result<absl::StatusOr<SessionInfo>> reset;
  core_->ResetSession("", "a", reset.Callback());
  auto* b = Post("a", {7, 8});
  Result<absl::StatusOr<SessionSnapshot>> exported;
  core_->ExportSession("", "a", exported.Callback());
  Result<absl::Status> closed;
  core_->CloseSession("", "a", closed.Callback());
  EXPECT_FALSE(a->value || reset.value || b->value);  // nothing ran yet
  Run();
  ASSERT_TRUE(a->value->ok());
  EXPECT_EQ((*a->value)->next_step, 2);
  ASSERT_TRUE(reset.value->ok());
  ASSERT_TRUE(b->value->ok());
  EXPECT_EQ((*b->value)->next_step, 1);  // ran after the reset
  EXPECT_EQ((*b->value)->outputs, Reference({7, 8}));
  ASSERT_TRUE(exported.value->ok());
  EXPECT_EQ((*exported.value)->next_step, 1);
  EXPECT_TRUE(closed.value->ok());
  // Closed: a chunk now is NOT_FOUND, like a session that never was.
  auto after = Chunk("a", {1, 2});
  EXPECT_EQ(after.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoreTest, AChunkPostedBehindACloseFailsNotFound) {
  Start();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  absl::StatusOr<std::shared_ptr<SessionHandle>> handle;
  auto* first = Post("a", {1, 2});
  Result<absl::Status> closed;
  core_->CloseSession("", "a", closed.Callback());
  Run();
  EXPECT_TRUE(first->value->ok());
  EXPECT_TRUE(closed.value->ok());
  EXPECT_EQ(core_->sessions(), 0);
}

TEST_F(CoreTest, SessionsOfOneModelShareOneEngineCall) {
  Start();
  std::vector<Result<absl::StatusOr<ChunkResult>>*> posted;
  for (int i = 0; i < 5; ++i) {
    const std::string id = absl::StrCat("s", i);
    ASSERT_TRUE(Create("", id, "tiny", 1, {}).ok());
    posted.push_back(Post(id, {float(i), 1, 2, float(i)}));
  }
  Run();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(posted[i]->value->ok());
    EXPECT_EQ((*posted[i]->value)->outputs,
              Reference({float(i), 1, 2, float(i)}));
  }
  std::vector<ModelStats> stats = core_->Stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].batches, 1);
  EXPECT_EQ(stats[0].requests, 5);
  EXPECT_EQ(stats[0].steps, 10);
}

TEST_F(CoreTest, ExactRetriesWithinTheReplayWindowAreAnsweredNotReapplied) {
  CoreOptions o;
  o.limits.max_replay_chunks = 3;
  Start(o);
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  std::vector<ChunkResult> first;
  for (int k = 0; k < 4; ++k) {
    auto r = Chunk("a", {float(k), 1}, k);
    ASSERT_TRUE(r.ok()) << r.status();
    first.push_back(*r);
  }
  const std::vector<float> state = Export("a").state;
  // A pipelined client resends its last three chunks: all replayed.
  for (int k = 1; k < 4; ++k) {
    auto retry = Chunk("a", {float(k), 1}, k);
    ASSERT_TRUE(retry.ok()) << retry.status();
    EXPECT_TRUE(retry->replayed);
    EXPECT_EQ(retry->outputs, first[k].outputs);
    EXPECT_EQ(retry->next_step, 4);
  }
  EXPECT_EQ(Export("a").state, state);  // the state did not move
  // Outside the window, or altered: refused, naming the expected step.
  auto old = Chunk("a", {0, 1}, 0);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(old.status().message(), HasSubstr("expects step 4"));
  auto altered = Chunk("a", {9, 9}, 3);
  EXPECT_EQ(altered.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(altered.status().message(), HasSubstr("repeat its inputs"));
  auto gap = Chunk("a", {1, 1}, 7);
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Export("a").replay.size(), 3u);
}

TEST_F(CoreTest, ARefusedChunkIsAnsweredInOrderWithTheSessionsOthers) {
  Start();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  std::vector<int> order;
  auto record = [&order](int tag) {
    return [&order, tag](absl::StatusOr<ChunkResult>) { order.push_back(tag); };
  };
  std::vector<float> good = {1, 2}, bad = {1, 2, 3};
  std::vector<int64_t> good_shape = {1, 2}, bad_shape = {1, 3};
  ChunkRequest req;
  req.session_id = "a";
  req.shape = good_shape;
  req.values = good;
  core_->SubmitChunk({}, req, record(1));
  req.shape = bad_shape;
  req.values = bad;
  core_->SubmitChunk({}, req, record(2));  // refused: wrong width
  req.shape = good_shape;
  req.values = good;
  core_->SubmitChunk({}, req, record(3));
  EXPECT_TRUE(order.empty());  // not even the refusal jumps the queue
  Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_F(CoreTest, ChunksWithoutFirstStepKeepNoReplayRecord) {
  Start();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(Chunk("a", {1, 2}, 0).ok());
  EXPECT_EQ(Export("a").replay.size(), 1u);
  ASSERT_TRUE(Chunk("a", {3, 4}).ok());
  EXPECT_TRUE(Export("a").replay.empty());
}

TEST_F(CoreTest, StepIndexCannotPass2To62) {
  Start();
  SessionSnapshot snap = Export(Create("", "a", "tiny", 1, {})->id);
  snap.id = "near-end";
  snap.next_step = kMaxStepIndex - 1;
  ASSERT_TRUE(Import("", snap).ok());
  auto over = Chunk("near-end", {1, 2, 3, 4});
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(over.status().message(), HasSubstr("2^62"));
  EXPECT_TRUE(Chunk("near-end", {1, 2}).ok());  // exactly to the end is fine
  snap.id = "past-end";
  snap.next_step = kMaxStepIndex + 1;
  EXPECT_EQ(Import("", snap).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto huge = Chunk("near-end", {1, 2}, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CoreTest, SnapshotRoundTripContinuesIdenticallyAndKeepsRetries) {
  Start();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(Chunk("a", {1, 2}, 0).ok());
  auto last = Chunk("a", {3, 4}, 1);
  SessionSnapshot snap = Export("a");
  auto continued = Chunk("a", {5, 6}, 2);

  auto second = std::move(core_);
  Start();  // another server, same models
  ASSERT_TRUE(Import("", snap).ok());
  auto retry = Chunk("a", {3, 4}, 1);  // the client never saw the answer
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->outputs, last->outputs);
  auto again = Chunk("a", {5, 6}, 2);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outputs, continued->outputs);
}

TEST_F(CoreTest, EveryFieldOfAnImportedSnapshotIsRangeChecked) {
  Start();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(Chunk("a", {1, 2, 3, 4}, 0).ok());
  const SessionSnapshot good = Export("a");
  auto refused = [&](auto mutate) {
    SessionSnapshot s = good;
    s.id = "imported";
    mutate(s);
    return Import("", s).status().code() == absl::StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(refused([](SessionSnapshot& s) { s.state.pop_back(); }));
  EXPECT_TRUE(refused([](SessionSnapshot& s) { s.state[0] = NAN; }));
  EXPECT_TRUE(refused([](SessionSnapshot& s) { s.next_step = -1; }));
  EXPECT_TRUE(refused([](SessionSnapshot& s) { s.next_step = 3; }));
  EXPECT_TRUE(refused([](SessionSnapshot& s) { s.replay[0].steps = 0; }));
  EXPECT_TRUE(
      refused([](SessionSnapshot& s) { s.replay[0].inputs.pop_back(); }));
  EXPECT_TRUE(
      refused([](SessionSnapshot& s) { s.replay[0].outputs.push_back(1); }));
  EXPECT_TRUE(refused([](SessionSnapshot& s) {
    s.replay.resize(9, s.replay[0]);  // more than --max-replay-chunks
  }));
  EXPECT_TRUE(refused([](SessionSnapshot& s) { s.version = 0; }));
  EXPECT_TRUE(refused([](SessionSnapshot& s) { s.id = "bad id!"; }));
  SessionSnapshot ok = good;
  ok.id = "imported";
  EXPECT_TRUE(Import("", ok).ok());
  EXPECT_EQ(Import("", ok).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(CoreTest, StatelessCallsStartFromZeroAndRefuseFirstStep) {
  Start();
  auto* r = Post("", {1, 2, 3, 4}, std::nullopt, "", "tiny");
  Run();
  ASSERT_TRUE(r->value->ok()) << r->value->status();
  EXPECT_EQ((*r->value)->outputs, Reference({1, 2, 3, 4}, 2));  // latest
  auto* bad = Post("", {1, 2}, 0, "", "tiny");
  ASSERT_TRUE(bad->value);  // refused before anything is posted
  EXPECT_EQ(bad->value->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad->value->status().message(), HasSubstr("stateless"));
}

TEST_F(CoreTest, CreateOnStreamAndItsConsistencyRules) {
  Start();
  auto* created = Post("new", {1, 2}, 0, "", "tiny", /*create=*/true);
  Run();
  ASSERT_TRUE(created->value->ok()) << created->value->status();
  EXPECT_EQ(core_->GetSession("", "new")->version, 2);
  // The same message again continues the session it created.
  auto* next = Post("new", {3, 4}, 1, "", "tiny", true);
  Run();
  ASSERT_TRUE(next->value->ok());
  // A create_model that disagrees with the existing session is refused.
  auto* wrong = Post("new", {3, 4}, 2, "", "other", true);
  Run();  // answered in order with the session's other chunks
  ASSERT_TRUE(wrong->value);
  EXPECT_EQ(wrong->value->status().code(), absl::StatusCode::kInvalidArgument);
  // Without create, a missing session is NOT_FOUND.
  auto* missing = Post("nope", {1, 2});
  EXPECT_EQ(missing->value->status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoreTest, AnotherOwnersSessionLooksExactlyLikeAMissingOne) {
  Start();
  ASSERT_TRUE(Create("alice", "a", "tiny", 1, {}).ok());
  auto* other = Post("a", {1, 2}, std::nullopt, "bob");
  auto* missing = Post("b", {1, 2}, std::nullopt, "bob");
  auto* create = Post("a", {1, 2}, std::nullopt, "bob", "tiny", true);
  ASSERT_TRUE(other->value && missing->value && create->value);
  EXPECT_EQ(other->value->status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(create->value->status().code(), absl::StatusCode::kNotFound);
  std::string shown = std::string(other->value->status().message());
  std::string absent = std::string(missing->value->status().message());
  EXPECT_EQ(shown.replace(shown.find("\"a\""), 3, "\"b\""), absent);
  EXPECT_EQ(core_->GetSession("bob", "a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(core_->ListSessions("bob", false, 10, "").sessions.empty());
  EXPECT_EQ(core_->ListSessions("alice", false, 10, "").sessions.size(), 1u);
}

TEST_F(CoreTest, SessionLimitIdsAndInitialState) {
  CoreOptions o;
  o.max_sessions = 2;
  Start(o);
  auto made = Create("", "", "tiny", 1, {});
  ASSERT_TRUE(made.ok());
  EXPECT_THAT(made->id, testing::StartsWith("s-"));
  EXPECT_EQ(Create("", "bad id", "tiny", 1, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create("", "x", "tiny", 1, {1, 2}).status().code(),
            absl::StatusCode::kInvalidArgument);  // wrong state size
  ASSERT_TRUE(Create("", "x", "tiny", 1, {}).ok());
  EXPECT_EQ(Create("", "x", "tiny", 1, {}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Create("", "y", "tiny", 1, {}).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(CoreTest, EachIdentityHasItsOwnSessionLimit) {
  CoreOptions o;
  o.max_sessions_per_identity = 2;
  Start(o);
  ASSERT_TRUE(Create("alice", "a1", "tiny", 1, {}).ok());
  ASSERT_TRUE(Create("alice", "a2", "tiny", 1, {}).ok());
  absl::Status third = Create("alice", "a3", "tiny", 1, {}).status();
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(third.message(), testing::HasSubstr("per identity"));
  // Creating on a stream counts too.
  auto* streamed = Post("a4", {1, 2}, std::nullopt, "alice", "tiny", true);
  ASSERT_TRUE(streamed->value);
  EXPECT_EQ(streamed->value->status().code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(Create("bob", "b1", "tiny", 1, {}).ok());
  // A closed session frees its owner's place.
  Result<absl::Status> closed;
  core_->CloseSession("alice", "a1", closed.Callback());
  Run();
  ASSERT_TRUE(closed.value && closed.value->ok());
  EXPECT_TRUE(Create("alice", "a3", "tiny", 1, {}).ok());
  // The admin listing sees every owner's sessions, with their owners.
  SessionManager::Page all = core_->ListSessions("", true, 10, "");
  std::vector<std::string> owners;
  for (const SessionInfo& s : all.sessions) {
    owners.push_back(s.owner + "/" + s.id);
  }
  EXPECT_THAT(owners, testing::ElementsAre("alice/a2", "alice/a3", "bob/b1"));
}

TEST_F(CoreTest, ResetReturnsToTheInitialState) {
  Start();
  const int size = (*registry_->Get("tiny", 1))->model->state_size();
  std::vector<float> initial(size, 0.5f);
  ASSERT_TRUE(Create("", "a", "tiny", 1, initial).ok());
  auto before = Chunk("a", {1, 2});
  ASSERT_TRUE(Chunk("a", {3, 4}).ok());
  Result<absl::StatusOr<SessionInfo>> reset;
  core_->ResetSession("", "a", reset.Callback());
  Run();
  ASSERT_TRUE(reset.value->ok());
  EXPECT_EQ((*reset.value)->next_step, 0);
  EXPECT_EQ(Chunk("a", {1, 2})->outputs, before->outputs);
}

TEST_F(CoreTest, IdleSessionsExpireOnTheInjectedClock) {
  CoreOptions o;
  o.idle_timeout = absl::Minutes(1);
  Start(o);
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(Create("", "b", "tiny", 1, {}).ok());
  clock_->Advance(absl::Seconds(40));
  ASSERT_TRUE(Chunk("b", {1, 2}).ok());
  clock_->Advance(absl::Seconds(30));
  EXPECT_EQ(core_->ExpireIdle(), 1);
  Run();
  EXPECT_EQ(core_->GetSession("", "a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(core_->GetSession("", "b").ok());
}

TEST_F(CoreTest, AFullQueueRefusesFastAndCounts) {
  CoreOptions o;
  o.max_queued_steps = 10;
  Start(o);
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  ASSERT_TRUE(Create("", "b", "tiny", 1, {}).ok());
  auto* big = Post("a", std::vector<float>(16, 1.0f));     // 8 steps
  auto* refused = Post("b", std::vector<float>(6, 1.0f));  // 3 more
  ASSERT_TRUE(refused->value);  // at once, before anything runs
  EXPECT_EQ(refused->value->status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused->value->status().message(),
              HasSubstr("--max-queued-steps"));
  EXPECT_EQ(core_->queued_steps(), 8);
  Run();
  EXPECT_TRUE(big->value->ok());
  EXPECT_EQ(core_->queued_steps(), 0);
  EXPECT_EQ(core_->Stats()[0].rejected, 1);
}

TEST_F(CoreTest, ShuttingDownRefusesNewChunksButFinishesPostedOnes) {
  Start();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  auto* posted = Post("a", {1, 2});
  core_->BeginShutdown();
  auto* late = Post("a", {3, 4});
  EXPECT_EQ(late->value->status().code(), absl::StatusCode::kUnavailable);
  core_->Stop();
  ASSERT_TRUE(posted->value);
  EXPECT_TRUE(posted->value->ok());
}

TEST_F(CoreTest, HostileStringsAreCutInEveryErrorMessage) {
  Start();
  const std::string huge(100000, 'x');
  constexpr size_t kBound = 400;
  auto* chunk = Post(huge, {1, 2});
  EXPECT_LT(chunk->value->status().message().size(), kBound);
  auto* create = Post(huge, {1, 2}, std::nullopt, "", "tiny", true);
  EXPECT_LT(create->value->status().message().size(), kBound);
  auto* model = Post("", {1, 2}, std::nullopt, "", huge);
  EXPECT_LT(model->value->status().message().size(), kBound);
  EXPECT_LT(Create("", huge, "tiny", 1, {}).status().message().size(), kBound);
  EXPECT_LT(Create("", "", huge, 1, {}).status().message().size(), kBound);
  EXPECT_LT(core_->GetSession("", huge).status().message().size(), kBound);
  Result<absl::Status> closed;
  core_->CloseSession("", huge, closed.Callback());
  EXPECT_LT(closed.value->message().size(), kBound);
  SessionSnapshot snap;
  snap.id = huge;
  snap.model = huge;
  snap.version = 1;
  EXPECT_LT(Import("", snap).status().message().size(), kBound);
  snap.id = "ok";
  EXPECT_LT(Import("", snap).status().message().size(), kBound);
  EXPECT_TRUE(core_->ListSessions("", false, 10, huge).sessions.empty());
}

TEST_F(CoreTest, BadShapesAndValuesAreInvalidArgument) {
  Start();
  ASSERT_TRUE(Create("", "a", "tiny", 1, {}).ok());
  auto* nan = Post("a", {1, NAN});
  auto* odd = Post("a", {1, 2, 3});  // 3 values for a [1, 2] shape
  Run();  // refused chunks are answered in order with the others
  ASSERT_TRUE(nan->value && odd->value);
  EXPECT_EQ(nan->value->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan->value->status().message(), HasSubstr("finite"));
  EXPECT_EQ(odd->value->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(core_->GetSession("", "a")->next_step, 0);
}

}  // namespace
}  // namespace lstmserve::server
