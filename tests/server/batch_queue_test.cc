// The batching rules, driven with explicit times: no threads, no sleeping.
#include "server/core/batch_queue.h"

#include <memory>

#include "gtest/gtest.h"

namespace lstmserve::server {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

// Sessions as the queue sees them: entries, each with a sender serial.
struct Fixture {
  std::atomic<int64_t> queued_steps{0};
  std::vector<std::unique_ptr<QueueEntry>> entries;
  std::vector<uint64_t> senders;

  QueueEntry* NewSession() {
    entries.push_back(std::make_unique<QueueEntry>());
    senders.push_back(entries.size());
    return entries.back().get();
  }
  uint64_t SenderOf(const QueueEntry* e) const {
    for (size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].get() == e) return senders[i];
    }
    return 0;
  }
  Task MakeTask(const QueueEntry* e, int steps, int tag) {
    Task t;
    t.chunk.steps = steps;
    t.chunk.inputs.assign(static_cast<size_t>(steps) * 2,
                          static_cast<float>(tag));
    t.sender = SenderOf(e);
    queued_steps += steps;  // the executor counts a task when it admits it
    return t;
  }
  void Push(BatchQueue& q, QueueEntry* e, int steps, int tag, absl::Time at) {
    q.Push(e, MakeTask(e, steps, tag), at);
  }
};

int Tag(const Task& t) { return static_cast<int>(t.chunk.inputs[0]); }

// Unless a test is about the peer window, partial batches always wait, so
// that what they check does not depend on who sent lately.
BatchQueue::Options Opts(
    int max_batch, absl::Duration delay,
    absl::Duration peer_window = absl::InfiniteDuration()) {
  BatchQueue::Options o;
  o.max_batch = max_batch;
  o.max_queue_delay = delay;
  o.peer_window = peer_window;
  return o;
}

struct Taken {
  absl::Time wake;
  Batch batch;
  std::vector<Task> expired;
};
Taken Take(BatchQueue& q, absl::Time now, bool flush = false) {
  Taken t;
  t.wake = q.TakeBatch(now, flush, t.batch, t.expired);
  return t;
}

// Runs one chunk of `session` through the queue at `at`, so that the queue
// has seen it send.
void RunOne(Fixture& f, BatchQueue& q, QueueEntry* session, absl::Time at) {
  f.Push(q, session, 1, 0, at);
  Taken t = Take(q, at + absl::Seconds(10));  // past any delay
  ASSERT_EQ(t.batch.tasks.size(), 1u);
  q.Finish(t.batch, at);
}

TEST(BatchQueueTest, PartialBatchWaitsAtMostTheQueueDelay) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Microseconds(100)), &f.queued_steps);
  f.Push(q, f.NewSession(), 1, 1, kT0);
  Taken t = Take(q, kT0 + absl::Microseconds(40));
  EXPECT_TRUE(t.batch.tasks.empty());
  EXPECT_EQ(t.wake, kT0 + absl::Microseconds(100));
  t = Take(q, kT0 + absl::Microseconds(100));
  EXPECT_EQ(t.batch.tasks.size(), 1u);
}

TEST(BatchQueueTest, FlushRunsAPartialBatchAtOnce) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Seconds(1)), &f.queued_steps);
  f.Push(q, f.NewSession(), 1, 1, kT0);
  EXPECT_EQ(Take(q, kT0, /*flush=*/true).batch.tasks.size(), 1u);
}

TEST(BatchQueueTest, LoneSessionNeverWaits) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Microseconds(100), absl::Milliseconds(1)),
               &f.queued_steps);
  QueueEntry* lone = f.NewSession();
  // Its own earlier chunks do not count as partners.
  RunOne(f, q, lone, kT0 - absl::Microseconds(300));
  f.Push(q, lone, 1, 1, kT0);
  Taken t = Take(q, kT0);
  ASSERT_EQ(t.batch.tasks.size(), 1u);
  EXPECT_EQ(Tag(t.batch.tasks[0]), 1);
}

TEST(BatchQueueTest, PartialBatchWaitsWhileAnotherSessionSends) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Microseconds(100), absl::Milliseconds(1)),
               &f.queued_steps);
  QueueEntry *a = f.NewSession(), *b = f.NewSession();
  RunOne(f, q, b, kT0 - absl::Microseconds(900));  // b sent within the window
  f.Push(q, a, 1, 1, kT0);
  Taken t = Take(q, kT0 + absl::Microseconds(40));
  EXPECT_TRUE(t.batch.tasks.empty());
  EXPECT_EQ(t.wake, kT0 + absl::Microseconds(100));
  // b's next chunk arrives in time and shares the batch.
  f.Push(q, b, 1, 2, kT0 + absl::Microseconds(60));
  t = Take(q, kT0 + absl::Microseconds(100));
  ASSERT_EQ(t.batch.tasks.size(), 2u);
  EXPECT_EQ(Tag(t.batch.tasks[0]), 1);
  EXPECT_EQ(Tag(t.batch.tasks[1]), 2);
}

TEST(BatchQueueTest, StatelessCallsOverOneConnectionAreOneSender) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Microseconds(100), absl::Milliseconds(1)),
               &f.queued_steps);
  // Each stateless call runs on a new ephemeral session.
  const uint64_t conn = StatelessSender("ipv4:127.0.0.1:40000");
  auto push_stateless = [&](uint64_t sender, int tag, absl::Time at) {
    QueueEntry* e = f.NewSession();
    Task t = f.MakeTask(e, 1, tag);
    t.sender = sender;
    q.Push(e, std::move(t), at);
  };
  push_stateless(conn, 1, kT0 - absl::Microseconds(200));
  Taken t = Take(q, kT0 - absl::Microseconds(200));
  ASSERT_EQ(t.batch.tasks.size(), 1u);  // nobody else has sent: runs at once
  q.Finish(t.batch, kT0 - absl::Microseconds(100));
  // The same connection's next call, on another ephemeral session, does not
  // wait for it either...
  push_stateless(conn, 2, kT0);
  t = Take(q, kT0);
  ASSERT_EQ(t.batch.tasks.size(), 1u);
  q.Finish(t.batch, kT0);
  // ...but another connection's call does.
  const uint64_t other = StatelessSender("ipv4:127.0.0.1:40001");
  EXPECT_NE(conn, other);
  push_stateless(other, 3, kT0 + absl::Microseconds(10));
  EXPECT_TRUE(Take(q, kT0 + absl::Microseconds(10)).batch.tasks.empty());
}

TEST(BatchQueueTest, PartnersThatWentQuietAreNotWaitedFor) {
  Fixture f;
  BatchQueue q(Opts(4, absl::Microseconds(100), absl::Milliseconds(1)),
               &f.queued_steps);
  QueueEntry *a = f.NewSession(), *b = f.NewSession();
  RunOne(f, q, b, kT0 - absl::Microseconds(1001));  // just outside the window
  f.Push(q, a, 1, 1, kT0);
  EXPECT_EQ(Take(q, kT0).batch.tasks.size(), 1u);
}

TEST(BatchQueueTest, FullBatchRunsAtOnceAndTakesAtMostMaxBatch) {
  Fixture f;
  BatchQueue q(Opts(3, absl::Seconds(1)), &f.queued_steps);
  for (int i = 0; i < 5; ++i) f.Push(q, f.NewSession(), 1, i, kT0);
  Taken t = Take(q, kT0);
  ASSERT_EQ(t.batch.tasks.size(), 3u);
  EXPECT_EQ(Tag(t.batch.tasks[0]), 0);  // FIFO across sessions
  EXPECT_EQ(Tag(t.batch.tasks[2]), 2);
  EXPECT_EQ(f.queued_steps.load(), 2);  // taken tasks leave the count
}

TEST(BatchQueueTest, ZeroDelayNeverWaits) {
  Fixture f;
  BatchQueue q(Opts(64, absl::ZeroDuration()), &f.queued_steps);
  f.Push(q, f.NewSession(), 1, 7, kT0);
  EXPECT_EQ(Take(q, kT0).batch.tasks.size(), 1u);
}

TEST(BatchQueueTest, OneChunkPerSessionPerBatchInArrivalOrder) {
  Fixture f;
  BatchQueue q(Opts(8, absl::ZeroDuration()), &f.queued_steps);
  QueueEntry* s = f.NewSession();
  for (int i = 0; i < 3; ++i) f.Push(q, s, 1, i, kT0);
  for (int i = 0; i < 3; ++i) {
    Taken t = Take(q, kT0);
    ASSERT_EQ(t.batch.tasks.size(), 1u);
    EXPECT_EQ(Tag(t.batch.tasks[0]), i);
    // While its chunk runs, the session is not offered again.
    EXPECT_TRUE(Take(q, kT0).batch.tasks.empty());
    EXPECT_FALSE(BatchQueue::Idle(*s));
    q.Finish(t.batch, kT0);
  }
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(BatchQueue::Idle(*s));
}

TEST(BatchQueueTest, ChunksOfDifferentLengthsShareABatch) {
  Fixture f;
  BatchQueue q(Opts(8, absl::ZeroDuration()), &f.queued_steps);
  f.Push(q, f.NewSession(), 1, 1, kT0);
  f.Push(q, f.NewSession(), 10, 2, kT0);
  EXPECT_EQ(Take(q, kT0).batch.tasks.size(), 2u);
}

TEST(BatchQueueTest, BusySessionDoesNotStarveOthers) {
  Fixture f;
  BatchQueue q(Opts(1, absl::ZeroDuration()), &f.queued_steps);
  QueueEntry *busy = f.NewSession(), *quiet = f.NewSession();
  for (int i = 0; i < 5; ++i) f.Push(q, busy, 1, 100 + i, kT0);
  Taken t = Take(q, kT0);  // busy's first chunk
  f.Push(q, quiet, 1, 1, kT0);
  q.Finish(t.batch, kT0);  // busy goes to the back, behind quiet
  t = Take(q, kT0);
  ASSERT_EQ(t.batch.tasks.size(), 1u);
  EXPECT_EQ(Tag(t.batch.tasks[0]), 1);
}

TEST(BatchQueueTest, CancelledAndLateTasksLeaveTheQueue) {
  Fixture f;
  BatchQueue q(Opts(8, absl::Seconds(1)), &f.queued_steps);
  bool cancelled = false;
  QueueEntry *e1 = f.NewSession(), *e2 = f.NewSession(), *e3 = f.NewSession();
  Task c = f.MakeTask(e1, 1, 1);
  c.cancelled = [&cancelled] { return cancelled; };
  Task late = f.MakeTask(e2, 2, 2);
  late.deadline = kT0 + absl::Milliseconds(5);
  q.Push(e1, std::move(c), kT0);
  q.Push(e2, std::move(late), kT0);
  f.Push(q, e3, 1, 3, kT0);
  // The worker is told to look again when the late task must leave.
  EXPECT_EQ(Take(q, kT0).wake, kT0 + absl::Milliseconds(5));
  cancelled = true;
  Taken t = Take(q, kT0 + absl::Milliseconds(10));
  ASSERT_EQ(t.expired.size(), 2u);
  EXPECT_EQ(f.queued_steps.load(), 1);
  EXPECT_TRUE(t.batch.tasks.empty());  // "fine" alone still waits
  t = Take(q, kT0 + absl::Seconds(2));
  ASSERT_EQ(t.batch.tasks.size(), 1u);
  EXPECT_EQ(Tag(t.batch.tasks[0]), 3);
}

}  // namespace
}  // namespace lstmserve::server
