// The batching rules, driven with explicit times: no threads, no sleeping.
#include "server/batch_queue.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/test_models.h"

namespace lstmserve::server {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

struct Fixture {
  std::shared_ptr<const LoadedModel> model_a = TinyLstm("a");
  std::shared_ptr<const LoadedModel> model_b = TinyLstm("b");
  std::vector<std::shared_ptr<Session>> sessions;

  std::shared_ptr<Session> NewSession(
      const std::shared_ptr<const LoadedModel>& m) {
    sessions.push_back(
        *Session::Create(absl::StrCat("s", sessions.size()), "", m, {}, kT0));
    return sessions.back();
  }
};

Task MakeTask(int steps, int tag, std::vector<int>* completed = nullptr) {
  Task t;
  t.chunk.steps = steps;
  t.chunk.inputs.assign(static_cast<size_t>(steps) * 2,
                        static_cast<float>(tag));
  t.done = [completed, tag](absl::StatusOr<ChunkResult>) {
    if (completed) completed->push_back(tag);
  };
  return t;
}

int Tag(const Task& t) { return static_cast<int>(t.chunk.inputs[0]); }

// Unless a test is about the peer window, partial batches always wait, so
// that what they check does not depend on who sent lately.
BatchQueue::Options Opts(
    int max_batch, absl::Duration delay, int64_t max_steps = 1000,
    absl::Duration peer_window = absl::InfiniteDuration()) {
  BatchQueue::Options o;
  o.max_batch = max_batch;
  o.max_queue_delay = delay;
  o.max_queued_steps = max_steps;
  o.peer_window = peer_window;
  return o;
}

// Runs one chunk of `session` through the queue at `at`, so that the queue
// has seen it send.
void RunOne(BatchQueue& q, const std::shared_ptr<Session>& session,
            absl::Time at) {
  Task t = MakeTask(1, 0);
  ASSERT_TRUE(q.Push(session, t, at).ok());
  auto next = q.TakeBatch(at + absl::Seconds(10));  // past any delay
  ASSERT_TRUE(next.batch);
  q.Finish(*next.batch, at);
}

TEST(BatchQueueTest, PartialBatchWaitsAtMostTheQueueDelay) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Microseconds(100)));
  Task t = MakeTask(1, 1);
  ASSERT_TRUE(q.Push(f.NewSession(f.model_a), t, kT0).ok());
  auto next = q.TakeBatch(kT0 + absl::Microseconds(40));
  EXPECT_FALSE(next.batch);
  EXPECT_EQ(next.wake_at, kT0 + absl::Microseconds(100));
  next = q.TakeBatch(kT0 + absl::Microseconds(100));
  ASSERT_TRUE(next.batch);
  EXPECT_EQ(next.batch->tasks.size(), 1u);
}

TEST(BatchQueueTest, LoneSessionNeverWaits) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Microseconds(100), 1000, absl::Milliseconds(1)));
  auto lone = f.NewSession(f.model_a);
  // Its own earlier chunks do not count as partners...
  RunOne(q, lone, kT0 - absl::Microseconds(300));
  // ...nor do other models' sessions.
  RunOne(q, f.NewSession(f.model_b), kT0 - absl::Microseconds(200));
  Task t = MakeTask(1, 1);
  ASSERT_TRUE(q.Push(lone, t, kT0).ok());
  auto next = q.TakeBatch(kT0);
  ASSERT_TRUE(next.batch);
  EXPECT_EQ(Tag(next.batch->tasks[0]), 1);
}

TEST(BatchQueueTest, PartialBatchWaitsWhileAnotherSessionSends) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Microseconds(100), 1000, absl::Milliseconds(1)));
  auto a = f.NewSession(f.model_a), b = f.NewSession(f.model_a);
  RunOne(q, b, kT0 - absl::Microseconds(900));  // b sent within the window
  Task t = MakeTask(1, 1);
  ASSERT_TRUE(q.Push(a, t, kT0).ok());
  auto next = q.TakeBatch(kT0 + absl::Microseconds(40));
  EXPECT_FALSE(next.batch);
  EXPECT_EQ(next.wake_at, kT0 + absl::Microseconds(100));
  // b's next chunk arrives in time and shares the batch.
  Task u = MakeTask(1, 2);
  ASSERT_TRUE(q.Push(b, u, kT0 + absl::Microseconds(60)).ok());
  next = q.TakeBatch(kT0 + absl::Microseconds(100));
  ASSERT_TRUE(next.batch);
  ASSERT_EQ(next.batch->tasks.size(), 2u);
  EXPECT_EQ(Tag(next.batch->tasks[0]), 1);
  EXPECT_EQ(Tag(next.batch->tasks[1]), 2);
}

TEST(BatchQueueTest, StatelessCallsOverOneConnectionAreOneSender) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Microseconds(100), 1000, absl::Milliseconds(1)));
  // Each stateless call runs on a new ephemeral session.
  const uint64_t conn = StatelessSender("ipv4:127.0.0.1:40000");
  Task first = MakeTask(1, 1);
  first.sender = conn;
  ASSERT_TRUE(
      q.Push(f.NewSession(f.model_a), first, kT0 - absl::Microseconds(200))
          .ok());
  auto next = q.TakeBatch(kT0 - absl::Microseconds(200));
  ASSERT_TRUE(next.batch);  // nobody else has sent: runs at once
  q.Finish(*next.batch, kT0 - absl::Microseconds(100));
  // The same connection's next call, on another ephemeral session, does not
  // wait for it either...
  Task second = MakeTask(1, 2);
  second.sender = conn;
  ASSERT_TRUE(q.Push(f.NewSession(f.model_a), second, kT0).ok());
  next = q.TakeBatch(kT0);
  ASSERT_TRUE(next.batch);
  q.Finish(*next.batch, kT0);
  // ...but another connection's call does.
  Task other = MakeTask(1, 3);
  other.sender = StatelessSender("ipv4:127.0.0.1:40001");
  ASSERT_TRUE(
      q.Push(f.NewSession(f.model_a), other, kT0 + absl::Microseconds(10))
          .ok());
  EXPECT_FALSE(q.TakeBatch(kT0 + absl::Microseconds(10)).batch);
  EXPECT_NE(conn, StatelessSender("ipv4:127.0.0.1:40001"));
}

TEST(BatchQueueTest, PartnersThatWentQuietAreNotWaitedFor) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Microseconds(100), 1000, absl::Milliseconds(1)));
  auto a = f.NewSession(f.model_a), b = f.NewSession(f.model_a);
  RunOne(q, b, kT0 - absl::Microseconds(1001));  // just outside the window
  Task t = MakeTask(1, 1);
  ASSERT_TRUE(q.Push(a, t, kT0).ok());
  auto next = q.TakeBatch(kT0);
  ASSERT_TRUE(next.batch);
  EXPECT_EQ(next.batch->tasks.size(), 1u);
}

TEST(BatchQueueTest, FullBatchRunsAtOnceAndTakesAtMostMaxBatch) {
  Fixture f;
  BatchQueue q(Opts(3, absl::Seconds(1)));
  for (int i = 0; i < 5; ++i) {
    Task t = MakeTask(1, i);
    ASSERT_TRUE(q.Push(f.NewSession(f.model_a), t, kT0).ok());
  }
  auto next = q.TakeBatch(kT0);
  ASSERT_TRUE(next.batch);
  ASSERT_EQ(next.batch->tasks.size(), 3u);
  EXPECT_EQ(Tag(next.batch->tasks[0]), 0);  // FIFO across sessions
  EXPECT_EQ(Tag(next.batch->tasks[2]), 2);
  EXPECT_EQ(q.queued_steps(), 2);
}

TEST(BatchQueueTest, ZeroDelayNeverWaits) {
  Fixture f;
  BatchQueue q(Opts(64, absl::ZeroDuration()));
  Task t = MakeTask(1, 7);
  ASSERT_TRUE(q.Push(f.NewSession(f.model_a), t, kT0).ok());
  auto next = q.TakeBatch(kT0);
  ASSERT_TRUE(next.batch);
  EXPECT_EQ(next.batch->tasks.size(), 1u);
}

TEST(BatchQueueTest, OneChunkPerSessionPerBatchInArrivalOrder) {
  Fixture f;
  BatchQueue q(Opts(8, absl::ZeroDuration()));
  auto s = f.NewSession(f.model_a);
  for (int i = 0; i < 3; ++i) {
    Task t = MakeTask(1, i);
    ASSERT_TRUE(q.Push(s, t, kT0).ok());
  }
  for (int i = 0; i < 3; ++i) {
    auto next = q.TakeBatch(kT0);
    ASSERT_TRUE(next.batch);
    ASSERT_EQ(next.batch->tasks.size(), 1u);
    EXPECT_EQ(Tag(next.batch->tasks[0]), i);
    // While its chunk runs, the session is not offered again.
    EXPECT_FALSE(q.TakeBatch(kT0).batch);
    q.Finish(*next.batch, kT0);
  }
  EXPECT_TRUE(q.empty());
}

TEST(BatchQueueTest, ChunksOfDifferentLengthsShareABatch) {
  Fixture f;
  BatchQueue q(Opts(8, absl::ZeroDuration()));
  Task a = MakeTask(1, 1), b = MakeTask(10, 2);
  ASSERT_TRUE(q.Push(f.NewSession(f.model_a), a, kT0).ok());
  ASSERT_TRUE(q.Push(f.NewSession(f.model_a), b, kT0).ok());
  auto next = q.TakeBatch(kT0);
  ASSERT_TRUE(next.batch);
  EXPECT_EQ(next.batch->tasks.size(), 2u);
}

TEST(BatchQueueTest, BatchesHoldOneModelAndTheLongestWaitingGoesFirst) {
  Fixture f;
  BatchQueue q(Opts(8, absl::ZeroDuration()));
  Task b = MakeTask(1, 1), a1 = MakeTask(1, 2), a2 = MakeTask(1, 3);
  ASSERT_TRUE(q.Push(f.NewSession(f.model_b), b, kT0).ok());
  ASSERT_TRUE(
      q.Push(f.NewSession(f.model_a), a1, kT0 + absl::Microseconds(1)).ok());
  ASSERT_TRUE(
      q.Push(f.NewSession(f.model_a), a2, kT0 + absl::Microseconds(2)).ok());
  auto first = q.TakeBatch(kT0 + absl::Microseconds(5));
  ASSERT_TRUE(first.batch);
  EXPECT_EQ(first.batch->model, f.model_b.get());
  EXPECT_EQ(first.batch->tasks.size(), 1u);
  auto second = q.TakeBatch(kT0 + absl::Microseconds(5));
  ASSERT_TRUE(second.batch);
  EXPECT_EQ(second.batch->model, f.model_a.get());
  EXPECT_EQ(second.batch->tasks.size(), 2u);
}

TEST(BatchQueueTest, BusySessionDoesNotStarveOthers) {
  Fixture f;
  BatchQueue q(Opts(1, absl::ZeroDuration()));
  auto busy = f.NewSession(f.model_a), quiet = f.NewSession(f.model_a);
  for (int i = 0; i < 5; ++i) {
    Task t = MakeTask(1, 100 + i);
    ASSERT_TRUE(q.Push(busy, t, kT0).ok());
  }
  auto next = q.TakeBatch(kT0);  // busy's first chunk
  Task t = MakeTask(1, 1);
  ASSERT_TRUE(q.Push(quiet, t, kT0).ok());
  q.Finish(*next.batch, kT0);  // busy goes to the back, behind quiet
  next = q.TakeBatch(kT0);
  ASSERT_TRUE(next.batch);
  EXPECT_EQ(Tag(next.batch->tasks[0]), 1);
}

TEST(BatchQueueTest, FullQueueRefusesFastWithResourceExhausted) {
  Fixture f;
  BatchQueue q(Opts(8, absl::Seconds(1), /*max_steps=*/10));
  Task a = MakeTask(8, 1);
  ASSERT_TRUE(q.Push(f.NewSession(f.model_a), a, kT0).ok());
  Task b = MakeTask(3, 2);
  absl::Status s = q.Push(f.NewSession(f.model_a), b, kT0);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(std::string(s.message()).find("--max-queued-steps"),
            std::string::npos);
  EXPECT_EQ(Tag(b), 2);  // the refused task is left to the caller
  Task c = MakeTask(2, 3);
  EXPECT_TRUE(q.Push(f.NewSession(f.model_a), c, kT0).ok());
}

TEST(BatchQueueTest, CancelledAndLateTasksLeaveTheQueue) {
  Fixture f;
  BatchQueue q(Opts(8, absl::Seconds(1)));
  bool cancelled = false;
  Task c = MakeTask(1, 1);
  c.cancelled = [&cancelled] { return cancelled; };
  Task late = MakeTask(2, 2);
  late.deadline = kT0 + absl::Milliseconds(5);
  Task fine = MakeTask(1, 3);
  ASSERT_TRUE(q.Push(f.NewSession(f.model_a), c, kT0).ok());
  ASSERT_TRUE(q.Push(f.NewSession(f.model_a), late, kT0).ok());
  ASSERT_TRUE(q.Push(f.NewSession(f.model_a), fine, kT0).ok());
  // The worker is told to look again when the late task must leave.
  EXPECT_EQ(q.TakeBatch(kT0).wake_at, kT0 + absl::Milliseconds(5));
  cancelled = true;
  auto next = q.TakeBatch(kT0 + absl::Milliseconds(10));
  ASSERT_EQ(next.expired.size(), 2u);
  EXPECT_EQ(q.queued_steps(), 1);
  EXPECT_FALSE(next.batch);  // "fine" alone still waits for the delay
  next = q.TakeBatch(kT0 + absl::Seconds(2));
  ASSERT_TRUE(next.batch);
  EXPECT_EQ(Tag(next.batch->tasks[0]), 3);
}

}  // namespace
}  // namespace lstmserve::server
