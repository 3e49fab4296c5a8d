#include "server/session.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/test_models.h"

namespace lstmserve::server {
namespace {

using testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1000);

Chunk MakeChunk(std::vector<float> inputs, std::optional<int64_t> first) {
  Chunk c;
  c.steps = static_cast<int>(inputs.size() / 2);
  c.inputs = std::move(inputs);
  c.first_step = first;
  return c;
}

TEST(SessionTest, AppliesChunksAndAdvances) {
  auto s = Session::Create("a", "", TinyLstm(), {}, kNow);
  ASSERT_TRUE(s.ok());
  model::Workspace ws;
  auto r = (*s)->Apply(MakeChunk({1, 2, 3, 4}, std::nullopt), ws, kNow);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->next_step, 2);
  EXPECT_EQ(r->outputs.size(), 2u);
  EXPECT_FALSE(r->replayed);
  r = (*s)->Apply(MakeChunk({5, 6}, 2), ws, kNow);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->next_step, 3);
}

TEST(SessionTest, ExactRetryReplaysWithoutAdvancing) {
  auto s = Session::Create("a", "", TinyLstm(), {}, kNow);
  model::Workspace ws;
  auto first = (*s)->Apply(MakeChunk({1, 2, 3, 4}, 0), ws, kNow);
  ASSERT_TRUE(first.ok());
  const SessionSnapshot before = (*s)->Snapshot();
  auto retry = (*s)->Apply(MakeChunk({1, 2, 3, 4}, 0), ws, kNow);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->outputs, first->outputs);
  EXPECT_EQ(retry->next_step, 2);
  EXPECT_EQ((*s)->Snapshot().state, before.state);  // state did not move
}

TEST(SessionTest, GapsAndAlteredRetriesAreRefusedWithTheExpectedStep) {
  auto s = Session::Create("a", "", TinyLstm(), {}, kNow);
  model::Workspace ws;
  ASSERT_TRUE((*s)->Apply(MakeChunk({1, 2}, 0), ws, kNow).ok());
  auto gap = (*s)->Apply(MakeChunk({1, 2}, 5), ws, kNow);
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(gap.status().message(), HasSubstr("expects step 1"));
  auto altered = (*s)->Apply(MakeChunk({9, 9}, 0), ws, kNow);
  EXPECT_EQ(altered.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(altered.status().message(), HasSubstr("repeat its inputs"));
  EXPECT_EQ((*s)->Info().next_step, 1);
}

TEST(SessionTest, ResetReturnsToInitialState) {
  auto model = TinyLstm();
  std::vector<float> init(model->model->state_size(), 0.25f);
  auto s = Session::Create("a", "", model, init, kNow);
  ASSERT_TRUE(s.ok());
  model::Workspace ws;
  auto r1 = (*s)->Apply(MakeChunk({1, 2}, std::nullopt), ws, kNow);
  (*s)->Reset(kNow);
  EXPECT_EQ((*s)->Info().next_step, 0);
  EXPECT_EQ((*s)->Snapshot().state, init);
  auto r2 = (*s)->Apply(MakeChunk({1, 2}, 0), ws, kNow);
  EXPECT_EQ(r1->outputs, r2->outputs);
}

TEST(SessionTest, RejectsBadInitialState) {
  auto model = TinyLstm();
  EXPECT_EQ(Session::Create("a", "", model, {1, 2}, kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> nan(model->model->state_size(), 0.0f);
  nan[1] = std::nanf("");
  EXPECT_EQ(Session::Create("a", "", model, nan, kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SessionTest, SnapshotRoundTripContinuesIdenticallyAndKeepsRetry) {
  auto model = TinyLstm();
  auto a = Session::Create("a", "", model, {}, kNow);
  model::Workspace ws;
  auto c0 = (*a)->Apply(MakeChunk({1, 2, 3, 4}, 0), ws, kNow);
  auto b = Session::FromSnapshot((*a)->Snapshot(), "", model, kNow);
  ASSERT_TRUE(b.ok()) << b.status();
  // The last chunk's retry is still recognised after the move.
  auto retry = (*b)->Apply(MakeChunk({1, 2, 3, 4}, 0), ws, kNow);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->outputs, c0->outputs);
  auto ra = (*a)->Apply(MakeChunk({5, 6}, 2), ws, kNow);
  auto rb = (*b)->Apply(MakeChunk({5, 6}, 2), ws, kNow);
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(ra->outputs, rb->outputs);
}

TEST(SessionTest, InconsistentSnapshotIsRejected) {
  auto model = TinyLstm();
  auto a = Session::Create("a", "", model, {}, kNow);
  model::Workspace ws;
  ASSERT_TRUE((*a)->Apply(MakeChunk({1, 2}, 0), ws, kNow).ok());
  SessionSnapshot snap = (*a)->Snapshot();
  snap.next_step = 7;  // last chunk no longer ends at next_step
  EXPECT_EQ(Session::FromSnapshot(snap, "", model, kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
  snap = (*a)->Snapshot();
  snap.state.pop_back();
  EXPECT_EQ(Session::FromSnapshot(snap, "", model, kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lstmserve::server
