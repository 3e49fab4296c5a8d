// The one thread that writes session records to the StateStore.
//
// Writes are applied in the order they were submitted. Everything waiting
// when the thread comes round is committed in one transaction (a checkpoint
// round, plus any creates, resets or closes that came meanwhile), so many
// sessions cost one commit. After a commit, each written session's
// durable_step is published (SessionHandle::durable_step) and the
// submitters' callbacks run.
//
// A commit that fails (a full disk, say) is logged, its callbacks get
// UNAVAILABLE, and its writes stay pending: they are retried, merged with
// whatever comes next, at most once per retry_interval. Pending writes are
// merged per session (its id and incarnation), so a store that stays broken
// holds at most one pending record per session, not one per round.
//
// Thread-safety: thread-safe. Callbacks run on the writer thread and must
// not block.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/state_store.h"

namespace lstmserve::server {

struct SessionHandle;

class StoreWriter {
 public:
  struct Item {
    StoreWrite write;
    // Whose durable_step to publish once the write is committed; null:
    // none (a delete, or a record of a session that is gone).
    std::shared_ptr<SessionHandle> session;
  };
  using Done = absl::AnyInvocable<void(absl::Status)>;

  struct Stats {
    int64_t commits = 0;           // transactions committed
    int64_t failures = 0;          // transactions that failed
    int64_t records = 0;           // records written (puts and updates)
    int64_t deletes = 0;           // records deleted
    int64_t bytes = 0;             // of state and replay floats written
    absl::Duration last_duration;  // of the last committed transaction
    absl::Time last_success = absl::InfinitePast();
    int64_t pending = 0;  // writes waiting now (retries included)
  };

  // `store` must outlive the writer.
  explicit StoreWriter(StateStore& store,
                       absl::Duration retry_interval = absl::Seconds(1));
  ~StoreWriter();  // Stop()
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Queues writes; `done` (may be null) runs after they are committed, or
  // with UNAVAILABLE after the first attempt to commit them failed.
  void Submit(std::vector<Item> items, Done done = nullptr);

  // A checkpoint round: `parts` shards will each SubmitRoundPart their
  // records. Until the last part is in, nothing queued is committed, so the
  // round goes into one transaction together with whatever was submitted
  // meanwhile, each session's writes still in the order they were made.
  // One round at a time.
  void BeginRound(int parts);
  void SubmitRoundPart(std::vector<Item> items);

  // Waits until everything submitted before the call has been attempted;
  // returns the status of the last attempt (OK: all of it is committed).
  absl::Status Flush();

  // Commits what is queued (one attempt for what keeps failing), then ends
  // the thread. Idempotent; Submit afterwards runs `done` with UNAVAILABLE.
  void Stop();

  Stats stats() const;

  // Tops `spares` up to `n` buffers (fewer if the writer has fewer): the
  // state vectors of records already committed, so that a checkpoint's
  // records reuse them instead of allocating. Any thread.
  void TakeSpareStates(size_t n, std::vector<std::vector<float>>& spares);

 private:
  struct Batch {
    std::vector<Item> items;
    Done done;
  };
  void Run();
  // Commits `pending` (merged), publishing and calling back. Returns the
  // commit's status; on failure the writes are kept in retry_.
  absl::Status Commit(std::vector<Batch> batches) ABSL_LOCKS_EXCLUDED(mu_);

  StateStore& store_;
  const absl::Duration retry_interval_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<Batch> queue_ ABSL_GUARDED_BY(mu_);
  // Writes whose commit failed, merged per session, oldest first.
  std::vector<Item> retry_ ABSL_GUARDED_BY(mu_);
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;  // batches
  uint64_t attempted_ ABSL_GUARDED_BY(mu_) = 0;  // batches
  absl::Status last_status_ ABSL_GUARDED_BY(mu_);
  // The writer has taken writes (a batch or the retries) and not yet
  // published their outcome: Flush must not answer from last_status_.
  bool committing_ ABSL_GUARDED_BY(mu_) = false;
  int round_parts_ ABSL_GUARDED_BY(mu_) = 0;  // outstanding
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  // State buffers of committed records, for TakeSpareStates; at most
  // about as many as the largest recent commit wrote. Its own lock: the
  // shards take from it while the writer commits.
  absl::Mutex spare_mu_;
  std::vector<std::vector<float>> spare_states_ ABSL_GUARDED_BY(spare_mu_);
  size_t spare_cap_ ABSL_GUARDED_BY(spare_mu_) = 0;
  // Commit's buffers, used by the writer thread only, kept from commit to
  // commit so that a round of many thousand records does not allocate (and
  // fault in) them anew.
  std::vector<Item> items_;
  std::vector<StoreWrite> writes_;
  std::thread thread_;
};

}  // namespace lstmserve::server
