// One client session: the model version it is pinned to, where it is in its
// sequence, and its recurrent state, plus the last applied chunk so that an
// exact retry can be answered without applying it twice.
//
// Thread-safety: thread-safe; every member is guarded by an internal mutex,
// which is never held while the engine runs. Chunks of one session must not
// be applied concurrently: the Scheduler guarantees it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/model.h"
#include "server/model_registry.h"

namespace lstmserve::server {

// A chunk of steps to apply to a session.
struct Chunk {
  std::vector<float> inputs;  // steps x input_size, row-major
  int steps = 0;
  // Exactly-once: the index of the chunk's first step, if the client sent it.
  std::optional<int64_t> first_step;
};

struct ChunkResult {
  std::vector<float> outputs;  // steps x output_size
  int steps = 0;
  int output_size = 0;
  int64_t next_step = 0;  // after this chunk
  bool replayed = false;  // an exact retry answered from the last chunk
};

struct SessionInfo {
  std::string id;
  std::string model;
  int64_t version = 0;
  int64_t next_step = 0;
  absl::Time created;
  absl::Time last_used;
  int state_size = 0;
};

// Everything needed to continue the session elsewhere.
struct SessionSnapshot {
  std::string id;
  std::string model;
  int64_t version = 0;
  int64_t next_step = 0;
  std::vector<float> state;
  // The last applied chunk; last_steps == 0 if there is none.
  int64_t last_first_step = 0;
  int last_steps = 0;
  std::vector<float> last_inputs;
  std::vector<float> last_outputs;
};

class Session {
 public:
  // A session at step 0 with the given state (empty: the zero state).
  // INVALID_ARGUMENT if the state has the wrong size or is not finite.
  static absl::StatusOr<std::shared_ptr<Session>> Create(
      std::string id, std::string owner,
      std::shared_ptr<const LoadedModel> model,
      std::vector<float> initial_state, absl::Time now);

  // A session continuing a snapshot; `model` must be its model version.
  static absl::StatusOr<std::shared_ptr<Session>> FromSnapshot(
      const SessionSnapshot& snapshot, std::string owner,
      std::shared_ptr<const LoadedModel> model, absl::Time now);

  const std::string& id() const { return id_; }
  // Unique among all sessions this process ever made (ids are empty for
  // the ephemeral sessions of stateless calls, and addresses get reused).
  uint64_t serial() const { return serial_; }
  const std::string& owner() const { return owner_; }
  const LoadedModel& model() const { return *model_; }

  // Applies a chunk under the exactly-once rules: with first_step unset, or
  // equal to the next expected step, the chunk runs; an exact retry of the
  // last applied chunk (same first_step and inputs) returns its outputs
  // again without running; anything else is FAILED_PRECONDITION naming the
  // expected step. The chunk's shape must already be checked.
  absl::StatusOr<ChunkResult> Apply(const Chunk& chunk,
                                    model::Workspace& workspace,
                                    absl::Time now);

  // Apply() for several sessions of one model version at once: the chunks
  // that run share one engine call (Model::RunBatch). sessions must be
  // distinct; results[i] is for sessions[i] and chunks[i].
  static std::vector<absl::StatusOr<ChunkResult>> ApplyBatch(
      const std::vector<Session*>& sessions,
      const std::vector<const Chunk*>& chunks, model::Workspace& workspace,
      absl::Time now);

  // Back to the initial state and step 0; forgets the last chunk.
  void Reset(absl::Time now);
  void Touch(absl::Time now);

  SessionInfo Info() const;
  SessionSnapshot Snapshot() const;
  absl::Time last_used() const;

 private:
  Session(std::string id, std::string owner,
          std::shared_ptr<const LoadedModel> model, absl::Time now);

  // The exactly-once decision for a chunk: a replayed result or an error,
  // or nullopt when the chunk is to run.
  std::optional<absl::StatusOr<ChunkResult>> CheckChunk(
      const Chunk& chunk) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a chunk that ran and advances the session.
  void CommitChunk(const Chunk& chunk, const std::vector<float>& outputs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string id_;
  const uint64_t serial_;
  const std::string owner_;
  // The exact version the session started on; a reload never changes it.
  const std::shared_ptr<const LoadedModel> model_;
  const absl::Time created_;

  mutable absl::Mutex mu_;
  std::vector<float> initial_state_ ABSL_GUARDED_BY(mu_);
  std::vector<float> state_ ABSL_GUARDED_BY(mu_);
  int64_t next_step_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by Reset, so a chunk that ran across a reset is not applied.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_used_ ABSL_GUARDED_BY(mu_);
  // The last applied chunk, for exact retries.
  int64_t last_first_step_ ABSL_GUARDED_BY(mu_) = 0;
  int last_steps_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<float> last_inputs_ ABSL_GUARDED_BY(mu_);
  std::vector<float> last_outputs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lstmserve::server
