#include "server/scheduler.h"

#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/test_models.h"

namespace lstmserve::server {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1000);

Chunk Step(int64_t first_step) {
  Chunk c;
  c.steps = 1;
  c.inputs = {0.5f * first_step, 1.0f};
  c.first_step = first_step;
  return c;
}

TEST(SchedulerTest, ChunksOfOneSessionApplyInSubmissionOrder) {
  Scheduler::Options o;
  o.threads = 2;
  Scheduler scheduler(o);
  auto session = *Session::Create("a", "", TinyLstm(), {}, kNow);
  constexpr int kChunks = 200;
  absl::Mutex mu;
  std::vector<int64_t> next_steps;
  int errors = 0;
  absl::Notification all_done;
  for (int i = 0; i < kChunks; ++i) {
    // first_step makes any reordering fail with FAILED_PRECONDITION.
    scheduler.Submit(session, Step(i), [&](absl::StatusOr<ChunkResult> r) {
      absl::MutexLock lock(&mu);
      if (r.ok()) {
        next_steps.push_back(r->next_step);
      } else {
        ++errors;
      }
      if (next_steps.size() + errors == kChunks) all_done.Notify();
    });
  }
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(errors, 0);
  for (int i = 0; i < kChunks; ++i) EXPECT_EQ(next_steps[i], i + 1);
}

TEST(SchedulerTest, SessionsTakeTurnsSoNoneStarves) {
  Scheduler::Options o;
  o.threads = 1;
  Scheduler scheduler(o);
  auto a = *Session::Create("a", "", TinyLstm(), {}, kNow);
  auto b = *Session::Create("b", "", TinyLstm(), {}, kNow);
  absl::Mutex mu;
  std::vector<std::string> order;
  absl::Notification gate, first_running, done;
  // The first chunk holds the only worker until everything is queued.
  scheduler.Submit(a, Step(0), [&](absl::StatusOr<ChunkResult>) {
    first_running.Notify();
    gate.WaitForNotification();
    absl::MutexLock lock(&mu);
    order.push_back("a");
  });
  ASSERT_TRUE(first_running.WaitForNotificationWithTimeout(absl::Seconds(10)));
  constexpr int kMore = 10;
  for (int i = 1; i <= kMore; ++i) {
    scheduler.Submit(a, Step(i), [&](absl::StatusOr<ChunkResult>) {
      absl::MutexLock lock(&mu);
      order.push_back("a");
      if (order.size() == kMore + 2) done.Notify();
    });
  }
  scheduler.Submit(b, Step(0), [&](absl::StatusOr<ChunkResult>) {
    absl::MutexLock lock(&mu);
    order.push_back("b");
    if (order.size() == kMore + 2) done.Notify();
  });
  gate.Notify();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // b queued behind a's running chunk, not behind a's whole backlog.
  ASSERT_EQ(order.size(), kMore + 2u);
  EXPECT_EQ(order[0], "a");
  EXPECT_EQ(order[1], "b");
}

TEST(SchedulerTest, AfterStopSubmissionsFailUnavailable) {
  Scheduler::Options o;
  o.threads = 1;
  Scheduler scheduler(o);
  auto a = *Session::Create("a", "", TinyLstm(), {}, kNow);
  scheduler.Stop();
  absl::StatusCode code = absl::StatusCode::kOk;
  scheduler.Submit(a, Step(0), [&](absl::StatusOr<ChunkResult> r) {
    code = r.status().code();
  });
  EXPECT_EQ(code, absl::StatusCode::kUnavailable);
}

TEST(SchedulerTest, StopFinishesQueuedWork) {
  Scheduler::Options o;
  o.threads = 1;
  Scheduler scheduler(o);
  auto a = *Session::Create("a", "", TinyLstm(), {}, kNow);
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    scheduler.Submit(a, Step(i), [&](absl::StatusOr<ChunkResult> r) {
      if (r.ok()) ++ok;
    });
  }
  scheduler.Stop();
  EXPECT_EQ(ok.load(), 50);
}

}  // namespace
}  // namespace lstmserve::server
