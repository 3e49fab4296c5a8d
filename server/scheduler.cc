#include "server/scheduler.h"

#include "model/model.h"

namespace lstmserve::server {

Scheduler::Scheduler(Options options) : options_(std::move(options)) {
  const int n = options_.threads > 0 ? options_.threads : 1;
  workers_.reserve(n);
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Submit(std::shared_ptr<Session> session, Chunk chunk,
                       Done done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      Session* key = session.get();
      auto [it, inserted] = queues_.try_emplace(key);
      if (inserted) {
        it->second.session = std::move(session);
        ready_.push_back(key);
      }
      it->second.tasks.push_back(Task{std::move(chunk), std::move(done)});
      return;
    }
  }
  done(absl::UnavailableError("the server is shutting down"));
}

void Scheduler::WorkerLoop() {
  // One workspace per worker, reused across models and calls.
  model::Workspace workspace;
  while (true) {
    std::shared_ptr<Session> session;
    Task task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Scheduler* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
            return s->stopping_ || !s->ready_.empty();
          },
          this));
      if (ready_.empty()) return;  // stopping, and nothing left to run
      Session* key = ready_.front();
      ready_.pop_front();
      SessionQueue& queue = queues_.at(key);
      session = queue.session;
      task = std::move(queue.tasks.front());
      queue.tasks.pop_front();
    }

    absl::StatusOr<ChunkResult> result =
        session->Apply(task.chunk, workspace, options_.clock->Now());
    task.done(std::move(result));

    {
      absl::MutexLock lock(&mu_);
      auto it = queues_.find(session.get());
      if (it->second.tasks.empty()) {
        queues_.erase(it);
      } else {
        ready_.push_back(session.get());  // to the back: FIFO across sessions
      }
    }
  }
}

void Scheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

}  // namespace lstmserve::server
