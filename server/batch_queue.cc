#include "server/batch_queue.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"

namespace lstmserve::server {

BatchQueue::BatchQueue(Options options) : options_(options) {}

absl::Status BatchQueue::Push(std::shared_ptr<Session> session, Task& task,
                              absl::Time now) {
  if (queued_steps_ + task.chunk.steps > options_.max_queued_steps) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the server's queue holds ", queued_steps_, " steps; ",
        task.chunk.steps, " more would pass its limit of ",
        options_.max_queued_steps, " (--max-queued-steps); retry later"));
  }
  Session* key = session.get();
  auto [it, inserted] = sessions_.try_emplace(key);
  if (inserted) it->second.session = std::move(session);
  queued_steps_ += task.chunk.steps;
  if (task.sender == 0) task.sender = key->serial();
  RecordArrival(&key->model(), task.sender, now);
  task.enqueued = now;
  it->second.tasks.push_back(std::move(task));
  if (inserted) MakeReady(key, now);  // a running session re-queues itself
  return absl::OkStatus();
}

void BatchQueue::MakeReady(Session* session, absl::Time now) {
  ready_[&session->model()].push_back(ReadySession{session, now});
}

uint64_t StatelessSender(std::string_view peer) {
  // Session serials count up from 1 and never reach the top bit.
  return std::hash<std::string_view>{}(peer) | (uint64_t{1} << 63);
}

void BatchQueue::RecordArrival(const LoadedModel* model, uint64_t sender,
                               absl::Time now) {
  Arrivals& a = arrivals_[model];
  if (a.last != sender) {
    a.other_at = a.last_at;
    a.last = sender;
  }
  a.last_at = now;
}

bool BatchQueue::PeersSending(Session* session, absl::Time now) const {
  if (options_.peer_window == absl::InfiniteDuration()) return true;
  auto it = arrivals_.find(&session->model());
  if (it == arrivals_.end()) return false;
  const Arrivals& a = it->second;
  const uint64_t sender = sessions_.at(session).tasks.front().sender;
  const absl::Time peer_at = a.last != sender ? a.last_at : a.other_at;
  return now - peer_at <= options_.peer_window;
}

void BatchQueue::DropExpired(
    absl::Time now, std::vector<std::pair<const LoadedModel*, Task>>& expired) {
  for (auto& [model, fifo] : ready_) {
    for (auto it = fifo.begin(); it != fifo.end();) {
      SessionQueue& q = sessions_.at(it->session);
      while (!q.tasks.empty()) {
        Task& t = q.tasks.front();
        const bool cancelled = t.cancelled && t.cancelled();
        if (!cancelled && now < t.deadline) break;
        queued_steps_ -= t.chunk.steps;
        expired.emplace_back(model, std::move(t));
        q.tasks.pop_front();
      }
      if (q.tasks.empty()) {
        sessions_.erase(it->session);
        it = fifo.erase(it);
      } else {
        ++it;
      }
    }
  }
}

BatchQueue::Next BatchQueue::TakeBatch(absl::Time now) {
  Next next;
  DropExpired(now, next.expired);
  // The model whose front session has waited longest.
  std::deque<ReadySession>* best = nullptr;
  for (auto& [model, fifo] : ready_) {
    if (fifo.empty()) continue;
    if (!best || fifo.front().ready_since < best->front().ready_since) {
      best = &fifo;
    }
  }
  if (!best) {
    next.wake_at = EarliestDeadline();
    return next;
  }
  const bool full = static_cast<int>(best->size()) >= options_.max_batch;
  const absl::Time due = best->front().ready_since + options_.max_queue_delay;
  if (!full && now < due && PeersSending(best->front().session, now)) {
    next.wake_at = std::min(due, EarliestDeadline());
    return next;
  }
  Batch batch;
  while (!best->empty() &&
         static_cast<int>(batch.sessions.size()) < options_.max_batch) {
    Session* key = best->front().session;
    best->pop_front();
    SessionQueue& q = sessions_.at(key);
    q.running = true;
    batch.model = &key->model();
    batch.sessions.push_back(q.session);
    queued_steps_ -= q.tasks.front().chunk.steps;
    batch.tasks.push_back(std::move(q.tasks.front()));
    q.tasks.pop_front();
  }
  next.batch = std::move(batch);
  return next;
}

absl::Time BatchQueue::EarliestDeadline() const {
  absl::Time earliest = absl::InfiniteFuture();
  for (const auto& [key, q] : sessions_) {
    if (!q.running && !q.tasks.empty()) {
      earliest = std::min(earliest, q.tasks.front().deadline);
    }
  }
  return earliest;
}

void BatchQueue::Finish(const Batch& batch, absl::Time now) {
  for (const std::shared_ptr<Session>& s : batch.sessions) {
    auto it = sessions_.find(s.get());
    it->second.running = false;
    if (it->second.tasks.empty()) {
      sessions_.erase(it);
    } else {
      MakeReady(s.get(), now);  // to the back: FIFO across sessions
    }
  }
}

std::vector<Task> BatchQueue::Drain() {
  std::vector<Task> tasks;
  for (auto& [key, q] : sessions_) {
    for (Task& t : q.tasks) tasks.push_back(std::move(t));
    q.tasks.clear();
  }
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = it->second.running ? std::next(it) : sessions_.erase(it);
  }
  ready_.clear();
  queued_steps_ = 0;
  return tasks;
}

}  // namespace lstmserve::server
