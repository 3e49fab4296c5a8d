// The worker pool's RunHere (a strand run on the calling thread instead of a
// worker) and the executor's use of it for short chunks. These tests have
// real worker threads; what they wait for, they wait for with
// notifications, never with sleeps.
#include "server/core/worker_pool.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/core/session_manager.h"
#include "server/test_models.h"

namespace lstmserve::server {
namespace {

// A strand that records the threads it ran on and asks to run again until
// it has run `runs_wanted` times.
class CountingStrand : public Strand {
 public:
  explicit CountingStrand(int runs_wanted = 1) : runs_wanted_(runs_wanted) {}

  Next Run(model::Workspace&) override {
    absl::MutexLock lock(&mu_);
    threads_.push_back(std::this_thread::get_id());
    const bool again = static_cast<int>(threads_.size()) < runs_wanted_;
    if (!again) done_.Notify();
    return Next{again};
  }
  // Timers: wants to run when woken if `run_when_woken`.
  bool Wake() override {
    absl::MutexLock lock(&mu_);
    ++wakes_;
    return run_when_woken_;
  }
  void set_run_when_woken(bool run) {
    absl::MutexLock lock(&mu_);
    run_when_woken_ = run;
  }
  int wakes() const {
    absl::MutexLock lock(&mu_);
    return wakes_;
  }

  std::vector<std::thread::id> threads() const {
    absl::MutexLock lock(&mu_);
    return threads_;
  }
  void WaitDone() { done_.WaitForNotification(); }

 private:
  const int runs_wanted_;
  mutable absl::Mutex mu_;
  std::vector<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
  int wakes_ ABSL_GUARDED_BY(mu_) = 0;
  bool run_when_woken_ ABSL_GUARDED_BY(mu_) = false;
  absl::Notification done_;
};

TEST(WorkerPoolTest, AWokenStrandRunsOnlyIfItAsks) {
  WorkerPool pool(0);  // RunUntilIdle fires the timers on this thread
  CountingStrand strand(/*runs_wanted=*/1);
  pool.WakeAt(&strand, absl::InfinitePast());
  EXPECT_EQ(pool.RunUntilIdle(), 0);  // woken, did not ask to run
  EXPECT_EQ(strand.wakes(), 1);
  strand.set_run_when_woken(true);
  pool.WakeAt(&strand, absl::InfinitePast());
  EXPECT_EQ(pool.RunUntilIdle(), 1);
  EXPECT_EQ(strand.wakes(), 2);
  EXPECT_EQ(strand.threads().size(), 1u);
}

TEST(WorkerPoolTest, RunHereRunsTheStrandOnTheCallingThread) {
  WorkerPool pool(1);
  CountingStrand strand;
  ASSERT_TRUE(pool.RunHere(&strand));
  ASSERT_EQ(strand.threads().size(), 1u);
  EXPECT_EQ(strand.threads()[0], std::this_thread::get_id());
}

TEST(WorkerPoolTest, RunHereRefusesWithoutWorkersAndWhileFlushing) {
  WorkerPool no_workers(0);  // the tests' pool: strands run in RunUntilIdle
  CountingStrand strand;
  EXPECT_FALSE(no_workers.RunHere(&strand));
  EXPECT_TRUE(strand.threads().empty());

  WorkerPool pool(1);
  pool.Flush();  // shutting down: partial batches must run on the workers
  EXPECT_FALSE(pool.RunHere(&strand));
  EXPECT_TRUE(strand.threads().empty());
}

TEST(WorkerPoolTest, RunHereRefusesOnAWorker) {
  WorkerPool pool(1);
  CountingStrand inner;
  // Runs on the worker and tries to run `inner` there.
  class Outer : public Strand {
   public:
    Outer(WorkerPool& pool, Strand& inner) : pool_(pool), inner_(inner) {}
    Next Run(model::Workspace&) override {
      ran_here_ = pool_.RunHere(&inner_);
      done_.Notify();
      return {};
    }
    bool Wake() override { return false; }
    WorkerPool& pool_;
    Strand& inner_;
    bool ran_here_ = true;
    absl::Notification done_;
  } outer(pool, inner);
  pool.Schedule(&outer);
  outer.done_.WaitForNotification();
  EXPECT_FALSE(outer.ran_here_);
  EXPECT_TRUE(inner.threads().empty());
}

TEST(WorkerPoolTest, AStrandWithMoreWorkRunsHereFourTimesThenOnAWorker) {
  WorkerPool pool(1);
  CountingStrand strand(/*runs_wanted=*/7);
  ASSERT_TRUE(pool.RunHere(&strand));
  strand.WaitDone();
  const std::vector<std::thread::id> threads = strand.threads();
  ASSERT_EQ(threads.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    if (i < 4) {
      EXPECT_EQ(threads[i], std::this_thread::get_id()) << "run " << i;
    } else {
      EXPECT_NE(threads[i], std::this_thread::get_id()) << "run " << i;
    }
  }
}

TEST(WorkerPoolTest, QuiesceWaitsForAStrandRunningHere) {
  WorkerPool pool(1);
  class Blocking : public Strand {
   public:
    Next Run(model::Workspace&) override {
      entered_.Notify();
      release_.WaitForNotification();
      finished_.store(true);
      return {};
    }
    bool Wake() override { return false; }
    absl::Notification entered_, release_;
    std::atomic<bool> finished_{false};
  } strand;
  std::thread runner([&] { EXPECT_TRUE(pool.RunHere(&strand)); });
  strand.entered_.WaitForNotification();
  std::atomic<bool> finished_before_quiesce_returned{false};
  std::thread quiescer([&] {
    pool.Quiesce({&strand});
    finished_before_quiesce_returned.store(strand.finished_.load());
  });
  strand.release_.Notify();
  quiescer.join();
  runner.join();
  EXPECT_TRUE(finished_before_quiesce_returned.load());
}

TEST(WorkerPoolTest, QuiesceForgetsTheTimerAStrandAskedForInItsLastRun) {
  // Runs once and asks to be woken in an hour.
  class AsksForATimer : public CountingStrand {
   public:
    Next Run(model::Workspace& w) override {
      CountingStrand::Run(w);
      return Next{false, absl::Now() + absl::Hours(1)};
    }
  } strand;
  WorkerPool pool(1);
  ASSERT_TRUE(pool.RunHere(&strand));
  pool.Quiesce({&strand});
  pool.Stop();  // fires every timer left: none may be the strand's
  EXPECT_EQ(strand.wakes(), 0);
}

// The executor runs a short chunk posted to an idle shard on the posting
// thread (its answer is there when SubmitChunk returns), and a long one on
// a worker.
class RunHereTest : public testing::Test {
 protected:
  void SetUp() override {
    registry_ = *ModelRegistry::FromModels({TinyLstm("tiny", 1)});
    CoreOptions options;
    options.threads = 1;
    options.batching.max_queue_delay = absl::ZeroDuration();
    core_ = *SessionManager::Create(*registry_, options);
  }
  void TearDown() override { core_->Stop(); }

  struct Outcome {
    bool answered_before_return = false;
    std::thread::id thread;
    absl::StatusOr<ChunkResult> result = absl::UnknownError("unanswered");
  };
  // Sends `steps` steps to session "a" (creating it) and waits for the
  // answer.
  Outcome Send(int steps) {
    std::vector<float> values(static_cast<size_t>(steps) * 2, 0.5f);
    const int64_t shape[] = {steps, 2};
    ChunkRequest req;
    req.session_id = "a";
    req.model = "tiny";
    req.create_if_missing = true;
    req.shape = shape;
    req.values = values;
    Outcome out;
    absl::Notification answered;
    core_->SubmitChunk({}, req, [&](absl::StatusOr<ChunkResult> r) {
      out.thread = std::this_thread::get_id();
      out.result = std::move(r);
      answered.Notify();
    });
    out.answered_before_return = answered.HasBeenNotified();
    answered.WaitForNotification();
    return out;
  }

  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<SessionManager> core_;
};

TEST_F(RunHereTest, AShortChunkToAnIdleShardRunsOnThePostingThread) {
  // The first chunk creates the session on a worker; the shard may still
  // be finishing there when the next chunk comes, so try a few.
  bool ran_here = false;
  for (int i = 0; i < 1000 && !ran_here; ++i) {
    const Outcome o = Send(1);
    ASSERT_TRUE(o.result.ok()) << o.result.status();
    if (o.thread == std::this_thread::get_id()) {
      EXPECT_TRUE(o.answered_before_return);
      ran_here = true;
    }
  }
  EXPECT_TRUE(ran_here);
}

TEST_F(RunHereTest, ALongChunkRunsOnAWorker) {
  ASSERT_TRUE(Send(1).result.ok());
  for (int i = 0; i < 20; ++i) {
    const Outcome o = Send(17);
    ASSERT_TRUE(o.result.ok()) << o.result.status();
    EXPECT_NE(o.thread, std::this_thread::get_id());
  }
}

}  // namespace
}  // namespace lstmserve::server
