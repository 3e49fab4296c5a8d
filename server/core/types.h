// Plain values that cross the core's boundary: a chunk of steps to run, its
// result, a session's public description and its snapshot. No gRPC, no
// protobuf: the service converts messages to and from these.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "model/explain.h"

namespace lstmserve::server {

struct LoadedModel;

// A chunk of steps to apply to a session, already checked against its
// model's input width and the server's limits.
struct Chunk {
  std::vector<float> inputs;  // steps x input_size, row-major
  int steps = 0;
  // Exactly-once: the index of the chunk's first step, if the client sent it.
  std::optional<int64_t> first_step;
  // Also record each step's gates and states (ChunkResult::explain) and add
  // them to the session's gate summary.
  bool explain = false;
};

struct ChunkResult {
  std::vector<float> outputs;  // steps x output_size
  int steps = 0;
  int output_size = 0;
  int64_t next_step = 0;  // the session's next expected step after this one
  bool replayed = false;  // an exact retry answered from the replay record
  const LoadedModel* model = nullptr;  // the exact version that ran
  // Steps before this index are in the session's last committed checkpoint
  // (kNotDurable: none yet); nullopt without a state store.
  std::optional<int64_t> durable_step;
  // With Chunk::explain, steps x the model's explain_size() floats (its
  // explain_layout()); empty otherwise and for replayed results.
  std::vector<float> explain;
};

struct SessionInfo {
  std::string id;
  std::string owner;  // the identity it belongs to ("": anonymous)
  std::string model;
  int64_t version = 0;
  int64_t next_step = 0;
  absl::Time created;
  absl::Time last_used;
  int state_size = 0;
  std::optional<int64_t> durable_step;  // as in ChunkResult
  // Filled by GetSession only: the gate summary over the steps the session
  // ran with explain on since it was created, reset or restored.
  int64_t explained_steps = 0;
  std::vector<model::GateSummary::Layer> gate_summary;
};

// One applied chunk kept for exact retries: its first step, inputs and
// outputs.
struct ReplayChunk {
  int64_t first_step = 0;
  int steps = 0;
  std::vector<float> inputs;
  std::vector<float> outputs;
  // Unique among the chunks a server's sessions keep (0: none given, as for
  // chunks read from a store or a snapshot): a store tells by it the chunks
  // it has written already from new ones without keeping them alive.
  uint64_t serial = 0;
};

// Everything needed to continue the session elsewhere, exactly once.
struct SessionSnapshot {
  std::string id;
  std::string model;
  int64_t version = 0;
  int64_t next_step = 0;
  std::vector<float> state;
  // The most recently applied chunks that a client may still retry, oldest
  // first, contiguous and ending at next_step (empty: none).
  std::vector<ReplayChunk> replay;
  // Set by an export: the version the session runs on, which may no longer
  // be served (a draining version), so the registry may not have it.
  std::shared_ptr<const LoadedModel> ran_on;
};

// A forecast of a session from its current state (SessionManager::Forecast),
// already checked against the server's limits and the model.
struct ForecastSpec {
  int horizon = 1;  // rows per path
  int samples = 0;  // noisy sample paths besides the deterministic one
  uint64_t seed = 0;
};

// What a forecast returns (model/forecast.h says what the rows are).
struct ForecastResult {
  int horizon = 0;
  int output_size = 0;
  std::vector<float> forecast;              // horizon x output_size
  std::vector<std::vector<float>> samples;  // each horizon x output_size
  // The session's next_step when the forecast ran: row i is the path's
  // value for the input at step from_step + i.
  int64_t from_step = 0;
  const LoadedModel* model = nullptr;  // the exact version that ran
};

// The largest step index a session may reach. Far beyond any real sequence,
// and far from int64 overflow in any sum of a step index and a chunk length.
inline constexpr int64_t kMaxStepIndex = int64_t{1} << 62;

// durable_step of a session that has no committed checkpoint yet.
inline constexpr int64_t kNotDurable = -1;

}  // namespace lstmserve::server
