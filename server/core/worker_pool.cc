#include "server/core/worker_pool.h"

#include "absl/time/clock.h"

namespace lstmserve::server {
namespace {
// Set on the pool's workers (RunHere leaves them to their loop).
thread_local bool on_worker = false;
}  // namespace

WorkerPool::WorkerPool(int threads) : threads_(threads > 0 ? threads : 0) {
  workers_.reserve(threads_);
  for (int i = 0; i < threads_; ++i) {
    workers_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "lstm-worker");  // for top, perf
      on_worker = true;
      WorkerLoop();
    });
  }
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Schedule(Strand* strand) {
  {
    absl::MutexLock lock(&mu_);
    runnable_.push_back(strand);
  }
  // Signalled after unlocking: a worker woken under the lock would block on
  // mu_ at once and need a second wake-up (two futex calls, not one). A
  // waiting worker re-checks runnable_ under the lock, so none is missed.
  work_.Signal();
}

bool WorkerPool::RunHere(Strand* strand) {
  if (threads_ == 0 || on_worker) return false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || flushing_) return false;
    ++running_;
    busy_.push_back(strand);  // Quiesce waits for it like a worker's
  }
  // One per thread that runs strands here (gRPC's threads), reused.
  thread_local model::Workspace workspace;
  // Work that arrived meanwhile runs here too, a few times at most: the
  // calling thread has its own work (gRPC's reads and writes).
  constexpr int kMaxRunsHere = 4;
  Strand::Next next;
  for (int run = 0; run < kMaxRunsHere; ++run) {
    next = strand->Run(workspace);
    if (!next.again) break;
  }
  After(strand, next);
  absl::MutexLock lock(&mu_);
  Unbusy(strand);
  --running_;
  if (stopping_) work_.SignalAll();
  if (quiescing_ > 0) quiesce_cv_.SignalAll();
  return true;
}

void WorkerPool::After(Strand* strand, const Strand::Next& next) {
  if (next.again) {
    Schedule(strand);  // to the back: other strands go first
  } else if (next.wake != absl::InfiniteFuture()) {
    WakeAt(strand, next.wake);
  }
}

void WorkerPool::WakeAt(Strand* strand, absl::Time when) {
  absl::MutexLock lock(&mu_);
  const bool earliest = timers_.empty() || when < timers_.top().first;
  timers_.emplace(when, strand);
  // A waiting worker sleeps until the previous earliest timer; wake one so
  // it sleeps until this one instead.
  if (earliest) work_.Signal();
}

void WorkerPool::Flush() {
  absl::MutexLock lock(&mu_);
  flushing_ = true;
  work_.SignalAll();
}

bool WorkerPool::flushing() const {
  absl::MutexLock lock(&mu_);
  return flushing_ || stopping_;
}

void WorkerPool::WorkerLoop() {
  // One workspace per worker, reused across models and calls.
  model::Workspace workspace;
  std::vector<Strand*> due, woken;
  while (true) {
    Strand* strand = nullptr;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        const absl::Time now = absl::Now();
        while (!timers_.empty() &&
               (timers_.top().first <= now || stopping_ || flushing_)) {
          due.push_back(timers_.top().second);
          timers_.pop();
        }
        if (!due.empty()) {
          busy_.insert(busy_.end(), due.begin(), due.end());
          break;
        }
        if (!runnable_.empty()) {
          strand = runnable_.front();
          runnable_.pop_front();
          ++running_;
          busy_.push_back(strand);
          break;
        }
        if (stopping_ && running_ == 0 && timers_.empty()) {
          work_.SignalAll();  // the others see it too
          return;
        }
        if (timers_.empty()) {
          work_.Wait(&mu_);
        } else {
          work_.WaitWithDeadline(&mu_, timers_.top().first);
        }
      }
    }
    // Wake takes the strand's lock: call it unlocked.
    for (Strand* s : due) {
      if (s->Wake()) woken.push_back(s);
    }
    if (strand) After(strand, strand->Run(workspace));
    if (strand || !due.empty()) {
      absl::MutexLock lock(&mu_);
      for (Strand* s : due) Unbusy(s);
      // This worker takes the first woken strand itself on its next turn:
      // no other worker is woken for it (a wake-up and a context switch).
      for (size_t i = 0; i < woken.size(); ++i) {
        runnable_.push_back(woken[i]);
        if (i > 0) work_.Signal();
      }
      if (strand) {
        Unbusy(strand);
        --running_;
      }
      if (stopping_) work_.SignalAll();
      if (quiescing_ > 0) quiesce_cv_.SignalAll();
    }
    due.clear();
    woken.clear();
  }
}

void WorkerPool::Unbusy(Strand* strand) {
  auto it = std::find(busy_.begin(), busy_.end(), strand);
  if (it != busy_.end()) busy_.erase(it);
}

void WorkerPool::Quiesce(const std::vector<Strand*>& strands) {
  auto mine = [&](Strand* s) {
    return std::find(strands.begin(), strands.end(), s) != strands.end();
  };
  absl::MutexLock lock(&mu_);
  ForgetLocked(mine);
  ++quiescing_;
  while (std::any_of(busy_.begin(), busy_.end(), mine)) quiesce_cv_.Wait(&mu_);
  --quiescing_;
  // A strand's last run, or its timer's Wake, may have scheduled it again
  // or asked for a timer just before it stopped being busy.
  ForgetLocked(mine);
}

void WorkerPool::ForgetLocked(const std::function<bool(Strand*)>& mine) {
  runnable_.erase(std::remove_if(runnable_.begin(), runnable_.end(), mine),
                  runnable_.end());
  std::vector<Timer> kept;
  while (!timers_.empty()) {
    if (!mine(timers_.top().second)) kept.push_back(timers_.top());
    timers_.pop();
  }
  for (const Timer& t : kept) timers_.push(t);
}

int WorkerPool::RunUntilIdle(bool fire_timers) {
  model::Workspace workspace;
  int runs = 0;
  while (true) {
    std::vector<Strand*> due;
    Strand* strand = nullptr;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = absl::Now();
      while (!timers_.empty() && (fire_timers || stopping_ || flushing_ ||
                                  timers_.top().first <= now)) {
        due.push_back(timers_.top().second);
        timers_.pop();
      }
      if (due.empty() && runnable_.empty()) return runs;
      if (!runnable_.empty()) {
        strand = runnable_.front();
        runnable_.pop_front();
      }
    }
    for (Strand* s : due) {
      if (s->Wake()) Schedule(s);
    }
    if (strand) {
      After(strand, strand->Run(workspace));
      ++runs;
    }
  }
}

void WorkerPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    work_.SignalAll();
  }
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
  if (threads_ == 0) RunUntilIdle(/*fire_timers=*/true);
}

}  // namespace lstmserve::server
