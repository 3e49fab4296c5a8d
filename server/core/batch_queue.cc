#include "server/core/batch_queue.h"

#include <algorithm>
#include <functional>
#include <string_view>

namespace lstmserve::server {

uint64_t StatelessSender(absl::string_view peer) {
  // Session serials count up from 1 and never reach the top bit.
  return std::hash<std::string_view>{}(
             std::string_view(peer.data(), peer.size())) |
         (uint64_t{1} << 63);
}

BatchQueue::BatchQueue(Options options, std::atomic<int64_t>* queued_steps)
    : options_(options), queued_steps_(queued_steps) {}

void BatchQueue::Push(QueueEntry* entry, Task task, absl::Time now) {
  RecordArrival(task.sender, now);
  task.enqueued = now;
  if (entry->head == entry->tasks.size()) {  // reuse the vector from the top
    entry->tasks.clear();
    entry->head = 0;
  }
  entry->tasks.push_back(std::move(task));
  if (!entry->running && !entry->ready) MakeReady(entry, now);
}

void BatchQueue::MakeReady(QueueEntry* entry, absl::Time now) {
  entry->ready = true;
  ready_.push_back(ReadySession{entry, now});
}

void BatchQueue::RecordArrival(uint64_t sender, absl::Time now) {
  if (last_sender_ != sender) {
    other_at_ = last_at_;
    last_sender_ = sender;
  }
  last_at_ = now;
}

bool BatchQueue::PeersSending(const QueueEntry& entry, absl::Time now) const {
  if (options_.peer_window == absl::InfiniteDuration()) return true;
  const uint64_t sender = entry.tasks[entry.head].sender;
  const absl::Time peer_at = last_sender_ != sender ? last_at_ : other_at_;
  return now - peer_at <= options_.peer_window;
}

Task BatchQueue::PopFront(QueueEntry* entry) {
  Task t = std::move(entry->tasks[entry->head++]);
  queued_steps_->fetch_sub(t.chunk.steps);
  if (entry->head == entry->tasks.size()) {
    entry->tasks.clear();
    entry->head = 0;
  }
  return t;
}

void BatchQueue::DropExpired(absl::Time now, std::vector<Task>& expired) {
  for (auto it = ready_.begin(); it != ready_.end();) {
    QueueEntry* e = it->entry;
    while (e->pending() > 0) {
      const Task& t = e->tasks[e->head];
      const bool cancelled = t.cancelled && t.cancelled();
      if (!cancelled && now < t.deadline) break;
      expired.push_back(PopFront(e));
    }
    if (e->pending() == 0) {
      e->ready = false;
      it = ready_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::Time BatchQueue::TakeBatch(absl::Time now, bool flush, Batch& batch,
                                 std::vector<Task>& expired) {
  batch.clear();
  DropExpired(now, expired);
  if (ready_.empty()) return absl::InfiniteFuture();
  const bool full = static_cast<int>(ready_.size()) >= options_.max_batch;
  const absl::Time due = ready_.front().ready_since + options_.max_queue_delay;
  if (!full && !flush && now < due &&
      PeersSending(*ready_.front().entry, now)) {
    // A task whose deadline comes first must leave the queue then.
    absl::Time wake = due;
    for (const ReadySession& r : ready_) {
      wake = std::min(wake, r.entry->tasks[r.entry->head].deadline);
    }
    return wake;
  }
  while (!ready_.empty() &&
         static_cast<int>(batch.entries.size()) < options_.max_batch) {
    QueueEntry* e = ready_.front().entry;
    ready_.pop_front();
    e->ready = false;
    e->running = true;
    batch.entries.push_back(e);
    batch.tasks.push_back(PopFront(e));
  }
  return now;
}

void BatchQueue::Finish(const Batch& batch, absl::Time now) {
  for (QueueEntry* e : batch.entries) {
    e->running = false;
    if (e->pending() > 0) {
      MakeReady(e, now);  // to the back: FIFO
    } else {
      // An idle session keeps no room for tasks: ~190 B of each of
      // thousands of mostly idle sessions, for one allocation per chunk.
      std::vector<Task>().swap(e->tasks);
      e->head = 0;
    }
  }
}

}  // namespace lstmserve::server
