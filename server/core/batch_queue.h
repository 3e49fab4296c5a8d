// One executor shard's queue of pending chunks and its batching policy,
// without threads or clocks of its own, so the rules can be tested
// deterministically:
//
// - each session has its own FIFO of pending chunks (QueueEntry, embedded in
//   the session's slot); at most one of them is in a batch at a time, so a
//   session's chunks run in arrival order;
// - sessions with pending chunks and none running wait in one FIFO; a batch
//   takes up to max_batch of them from its front, so no session starves;
// - a batch runs when it is full or when its oldest session has waited
//   max_queue_delay (0: at once);
// - a partial batch waits only while others are sending: a sender other than
//   the front chunk's pushed a chunk within the last peer_window. Waiting
//   can only pay if another chunk may arrive, so a lone client is never
//   delayed (Task::sender says who sent a chunk);
// - the steps queued in every shard of the server are counted in one shared
//   counter (the executor checks it against --max-queued-steps when a chunk
//   is submitted; a task leaving the queue takes its steps off);
// - a chunk whose call was cancelled or whose deadline passed is dropped
//   from the queue and handed back to be completed with CANCELLED /
//   DEADLINE_EXCEEDED.
//
// Thread-safety: not thread-safe; owned by one shard, which only its strand
// runs. The shared step counter is atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/types.h"

namespace lstmserve::server {

// One queued chunk and how to complete it.
struct Task {
  using Done = absl::AnyInvocable<void(absl::StatusOr<ChunkResult>)>;
  Chunk chunk;
  Done done;
  // The call's cancellation; a task found cancelled while it waits is
  // completed with CANCELLED instead of run. Null: never cancelled.
  std::function<bool()> cancelled;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Time enqueued;
  // Who sent the chunk, for the peer window: the session's serial, or for
  // stateless calls (each an ephemeral session) their connection
  // (StatelessSender), so that one client's calls count as one sender.
  uint64_t sender = 0;
};

// The sender of a stateless call from the connection `peer` (gRPC's peer
// string): never equal to a session's serial.
uint64_t StatelessSender(absl::string_view peer);

// A session's place in the queue: its pending chunks, oldest first.
struct QueueEntry {
  // Pending from `head` on; emptied (capacity too) when the session idles.
  std::vector<Task> tasks;
  size_t head = 0;
  bool running = false;  // its chunk is in a batch now
  bool ready = false;    // in the ready FIFO
  size_t pending() const { return tasks.size() - head; }
};

// Chunks of different sessions of one shard, run as one engine call.
struct Batch {
  std::vector<QueueEntry*> entries;
  std::vector<Task> tasks;  // tasks[i] belongs to entries[i]
  void clear() {
    entries.clear();
    tasks.clear();
  }
};

class BatchQueue {
 public:
  struct Options {
    int max_batch = 64;
    absl::Duration max_queue_delay = absl::Microseconds(100);
    // A partial batch waits only if another sender pushed a chunk at most
    // this long ago (InfiniteDuration: always waits).
    absl::Duration peer_window = absl::Milliseconds(1);
  };

  // `queued_steps` counts steps queued in every shard of the server and
  // must outlive the queue.
  BatchQueue(Options options, std::atomic<int64_t>* queued_steps);

  // Queues a chunk for `entry` (its steps already counted in the shared
  // counter by the caller).
  void Push(QueueEntry* entry, Task task, absl::Time now);

  // Fills `batch` (cleared first) with what to run at `now`, if anything;
  // `flush`: a partial batch runs at once (shutting down). Returns when to
  // look again: `now` if a batch was taken, else a partial batch's due time
  // (InfiniteFuture: only when something is pushed). Tasks dropped as
  // cancelled or late are appended to `expired`, for the caller to complete.
  absl::Time TakeBatch(absl::Time now, bool flush, Batch& batch,
                       std::vector<Task>& expired);

  // The batch's sessions are done with their chunk: each with more pending
  // chunks goes to the back of the FIFO.
  void Finish(const Batch& batch, absl::Time now);

  // No chunk of `entry` is queued or running.
  static bool Idle(const QueueEntry& entry) {
    return !entry.running && entry.pending() == 0;
  }

  bool empty() const { return ready_.empty(); }

 private:
  struct ReadySession {
    QueueEntry* entry;
    absl::Time ready_since;
  };

  void MakeReady(QueueEntry* entry, absl::Time now);
  void RecordArrival(uint64_t sender, absl::Time now);
  // Whether a sender other than the one of `entry`'s next chunk pushed a
  // chunk within peer_window before `now`.
  bool PeersSending(const QueueEntry& entry, absl::Time now) const;
  void DropExpired(absl::Time now, std::vector<Task>& expired);
  Task PopFront(QueueEntry* entry);

  const Options options_;
  std::atomic<int64_t>* const queued_steps_;
  // Sessions with pending tasks and none running.
  std::deque<ReadySession> ready_;
  // The last chunk's sender and time, and the latest time of a chunk from
  // any other sender: enough to tell whether a sender other than a given
  // one has sent lately.
  uint64_t last_sender_ = 0;
  absl::Time last_at_ = absl::InfinitePast();
  absl::Time other_at_ = absl::InfinitePast();
};

}  // namespace lstmserve::server
