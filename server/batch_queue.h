// The scheduler's queues and batching policy, without threads or clocks of
// its own, so the rules can be tested deterministically:
//
// - each session has its own FIFO of pending chunks; at most one of them is
//   in a batch at a time, so a session's chunks run in arrival order and
//   never concurrently;
// - sessions with pending chunks and none running wait in one FIFO per model
//   version; a batch takes up to max_batch of them from the front of one
//   model's FIFO, so no session starves;
// - the model whose front session has waited longest goes first; its batch
//   runs when it is full or when that session has waited max_queue_delay
//   (0: at once);
// - a partial batch waits only while others are sending to its model:
//   another sender pushed a chunk within the last peer_window.
//   Waiting can only pay if another chunk may arrive, so a lone client is
//   never delayed (Task::sender says who sent a chunk);
// - at most max_queued_steps steps wait in all queues together; beyond that
//   Push fails fast with RESOURCE_EXHAUSTED;
// - a chunk whose call was cancelled or whose deadline passed is dropped
//   from the queue and completed with CANCELLED / DEADLINE_EXCEEDED.
//
// Thread-safety: not thread-safe; the Scheduler guards it with its mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/session.h"

namespace lstmserve::server {

// One queued chunk and how to complete it.
struct Task {
  using Done = std::function<void(absl::StatusOr<ChunkResult>)>;
  Chunk chunk;
  Done done;
  // The call's cancellation and deadline; a task found cancelled or late
  // while it waits is completed with the matching error instead of run.
  std::function<bool()> cancelled;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Time enqueued;
  // Who sent the chunk, for the peer window (Options::peer_window); 0: its
  // session (Session::serial()). Stateless calls, each an ephemeral session,
  // name their connection instead (StatelessSender), so that one client's
  // calls count as one sender.
  uint64_t sender = 0;
};

// The sender of a stateless call from the connection `peer` (gRPC's peer
// string): never equal to a session's serial.
uint64_t StatelessSender(std::string_view peer);

// Chunks of different sessions of one model version, run as one engine call.
struct Batch {
  const LoadedModel* model = nullptr;
  std::vector<std::shared_ptr<Session>> sessions;
  std::vector<Task> tasks;  // tasks[i] belongs to sessions[i]
};

class BatchQueue {
 public:
  struct Options {
    int max_batch = 64;
    absl::Duration max_queue_delay = absl::Microseconds(100);
    int64_t max_queued_steps = 1 << 20;
    // A partial batch waits only if another sender (Task::sender) pushed a
    // chunk for the same model at most this long ago (InfiniteDuration:
    // always waits).
    absl::Duration peer_window = absl::Milliseconds(1);
  };

  explicit BatchQueue(Options options);

  // Queues a chunk for `session`. RESOURCE_EXHAUSTED (and `task` untouched)
  // if it would take the queued steps past max_queued_steps.
  absl::Status Push(std::shared_ptr<Session> session, Task& task,
                    absl::Time now);

  // What a worker should do at `now`.
  struct Next {
    std::optional<Batch> batch;  // run this
    // Otherwise, when to look again: a partial batch's due time or a queued
    // task's deadline (InfiniteFuture: when something is pushed). Callers
    // also look again periodically, for cancelled calls.
    absl::Time wake_at = absl::InfiniteFuture();
    // Tasks dropped as cancelled or late, with their model; complete them
    // outside the lock.
    std::vector<std::pair<const LoadedModel*, Task>> expired;
  };
  Next TakeBatch(absl::Time now);

  // The batch's sessions are done with their chunk: each with more pending
  // chunks goes to the back of its model's FIFO.
  void Finish(const Batch& batch, absl::Time now);

  // Removes every queued task (for shutdown); the caller completes them.
  std::vector<Task> Drain();

  int64_t queued_steps() const { return queued_steps_; }
  bool empty() const { return sessions_.empty(); }

 private:
  struct SessionQueue {
    std::shared_ptr<Session> session;
    std::deque<Task> tasks;
    bool running = false;
  };
  struct ReadySession {
    Session* session;
    absl::Time ready_since;
  };

  // The last chunk pushed for one model, and the last one before it from
  // any other sender: enough to tell whether a sender other than a given
  // one has sent lately.
  struct Arrivals {
    uint64_t last = 0;  // sender
    absl::Time last_at = absl::InfinitePast();
    absl::Time other_at = absl::InfinitePast();  // latest from not `last`
  };

  void MakeReady(Session* session, absl::Time now);
  void RecordArrival(const LoadedModel* model, uint64_t sender, absl::Time now);
  // Whether a sender other than the one of `session`'s next chunk pushed a
  // chunk for its model within peer_window before `now`.
  bool PeersSending(Session* session, absl::Time now) const;
  // The earliest deadline among tasks that wait at the front of a ready
  // session's queue: when one must leave the queue.
  absl::Time EarliestDeadline() const;
  // Drops cancelled/late tasks at the front of ready sessions' queues.
  void DropExpired(absl::Time now,
                   std::vector<std::pair<const LoadedModel*, Task>>& expired);

  const Options options_;
  std::unordered_map<Session*, SessionQueue> sessions_;
  // Per model version: sessions with pending tasks and none running.
  std::unordered_map<const LoadedModel*, std::deque<ReadySession>> ready_;
  std::unordered_map<const LoadedModel*, Arrivals> arrivals_;
  int64_t queued_steps_ = 0;
};

}  // namespace lstmserve::server
