// The threads that run the engine. Work comes in as strands: a Strand is
// scheduled when it has something to do and is run by one worker at a time,
// so whatever a strand owns needs no lock. Strands are run in the order they
// became runnable (FIFO across models and shards), and a strand may ask to be
// woken at a time (a partial batch waiting for partners).
//
// Thread-safety: thread-safe. Strand::Run is never called concurrently for
// one strand: the strand itself decides, under its own lock, when it asks to
// be scheduled (see Shard in executor.cc).
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/model.h"

namespace lstmserve::server {

class Strand {
 public:
  // What a strand wants once a run is over.
  struct Next {
    bool again = false;  // to run again (it stays scheduled)
    // Else: to be woken then (InfiniteFuture: not at all).
    absl::Time wake = absl::InfiniteFuture();
  };
  virtual ~Strand() = default;
  // Does some of the strand's work with the running thread's workspace.
  virtual Next Run(model::Workspace& workspace) = 0;
  // A timer the strand asked for has come (it may no longer want it).
  // Returns true to be run now, by the caller, as if it had been scheduled;
  // false when it is scheduled or running already.
  virtual bool Wake() = 0;
};

class WorkerPool {
 public:
  // `threads` workers; 0: none, and the caller runs the strands itself with
  // RunUntilIdle (deterministic tests, no threads).
  explicit WorkerPool(int threads);
  ~WorkerPool();  // Stop()

  // Runs `strand` on the next free worker. The caller guarantees that a
  // strand is scheduled at most once at a time.
  void Schedule(Strand* strand);
  // Runs `strand` now on the calling thread instead of a worker, saving
  // the hand-over (a wake-up and a context switch each way), and returns
  // true; false, and nothing happens, when the caller is a worker, the
  // pool has no workers (tests run strands themselves) or is flushing or
  // stopping. Same guarantee as Schedule: the strand is not scheduled or
  // running. The caller must hold no lock that the strand's callbacks take.
  bool RunHere(Strand* strand);
  // Calls strand->Wake() from a worker at `when` (or soon after), and runs
  // it there if it asks to.
  void WakeAt(Strand* strand, absl::Time when);

  // From now on strands stop waiting for partners and run what they have
  // at once; timers fire now (the server is shutting down).
  void Flush();
  // True once Flush() or Stop() began.
  bool flushing() const;
  // Runs what is scheduled, then joins the workers. Strands must not be
  // scheduled afterwards (they would not run).
  void Stop();

  // Forgets `strands` (their timers and runs not yet started) and waits
  // until none of them is running or being woken, so that they can be
  // destroyed. The caller guarantees nothing schedules them any more.
  // Must not be called from a strand.
  void Quiesce(const std::vector<Strand*>& strands);

  // Strands to shard a model's sessions over: one per worker.
  int shards() const { return threads_ > 0 ? threads_ : 1; }

  // Without workers: runs scheduled strands, and timers that are due (or
  // all of them with `fire_timers`), on this thread until nothing is
  // scheduled. Returns how many strand runs it made.
  int RunUntilIdle(bool fire_timers = false);

 private:
  void WorkerLoop();
  // Schedules the strand again or sets its timer, as it asked.
  void After(Strand* strand, const Strand::Next& next);
  void Unbusy(Strand* strand) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the matching strands' runs not yet started and their timers.
  void ForgetLocked(const std::function<bool(Strand*)>& mine)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int threads_;
  mutable absl::Mutex mu_;
  absl::CondVar work_;
  absl::CondVar quiesce_cv_;  // a busy strand is done (Quiesce waits)
  std::deque<Strand*> runnable_ ABSL_GUARDED_BY(mu_);
  using Timer = std::pair<absl::Time, Strand*>;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_
      ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool flushing_ ABSL_GUARDED_BY(mu_) = false;
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // strands being run now
  // Strands being run or woken now, by the workers (Quiesce waits on it).
  std::vector<Strand*> busy_ ABSL_GUARDED_BY(mu_);
  int quiescing_ ABSL_GUARDED_BY(mu_) = 0;  // threads waiting in Quiesce
  std::vector<std::thread> workers_;
};

}  // namespace lstmserve::server
