// A session's identity and what its owning shard publishes about it.
//
// Thread-safety: the plain fields are immutable after creation; the atomics
// are written only by the session's shard (and durable_step by the
// StoreWriter) and may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/explain.h"
#include "server/core/model_registry.h"
#include "server/core/types.h"

namespace lstmserve::server {

class ModelExecutor;

// A session's identity, shared by the session directory and the operations in
// flight. Immutable but for the published counters, which only the owning
// shard writes (after each operation, before completing it), so that
// GetSession, ListSessions and idle expiry read them without posting.
struct SessionHandle {
  std::string id;
  std::string owner;
  // Unique among all sessions this process ever made (ids come back after
  // close; a shard keys its slots by serial, so a stale handle finds none).
  uint64_t serial = 0;
  std::shared_ptr<const LoadedModel> model;  // the exact version, pinned
  // The version's executor: kept alive (while draining, too) by its
  // sessions.
  std::shared_ptr<ModelExecutor> executor;
  absl::Time created;
  // Random, fixed at creation: tells this session's stored record from a
  // later session's that reuses the id (state_store.h).
  uint64_t incarnation = 0;
  // The server keeps sessions in a state store, so durable_step means
  // something (Info and chunk results carry it).
  bool stored = false;

  std::atomic<int64_t> next_step{0};
  std::atomic<int64_t> last_used_unix_us{0};
  // Steps before this index are in the last committed checkpoint
  // (kNotDurable: none yet). Published by the StoreWriter after a commit.
  std::atomic<int64_t> durable_step{kNotDurable};

  SessionInfo Info() const;
  // durable_step when the server keeps a store, else nullopt.
  std::optional<int64_t> Durable() const;

  // The gate summary over the steps run with explain on. The shard adds
  // each explained chunk's records and resets it with the session;
  // GetSession reads it from another thread, hence the lock (taken only by
  // explained chunks, resets and GetSession).
  void AddToSummary(const float* records, int steps);
  void ResetSummary();
  // Sets info.explained_steps and info.gate_summary.
  void ReadSummary(SessionInfo& info) const;

 private:
  mutable absl::Mutex summary_mu_;
  // Null until the first explained step: most sessions never have one.
  std::unique_ptr<model::GateSummary> summary_ ABSL_GUARDED_BY(summary_mu_);
};

}  // namespace lstmserve::server
