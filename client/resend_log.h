// The inputs a session has had answered since the server's durable_step:
// what to send again when the server comes back from its last checkpoint
// (a crash lost the steps after it). Internal to the client library.
//
// Kept only while the server reports durable_step (a server without a
// state store keeps nothing across a restart, so there is nothing to
// resend); trimmed as durable_step advances; at most `max_steps` steps, the
// oldest dropped first.
//
// Thread-safety: not thread-safe; its owner's lock guards it.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"

namespace lstmserve::client::internal {

class ResendLog {
 public:
  struct Chunk {
    int64_t first_step = 0;
    int steps = 0;
    std::vector<float> inputs;  // steps rows
  };

  explicit ResendLog(int64_t max_steps) : max_steps_(max_steps) {}

  // A chunk the server answered, with the durable_step of its answer
  // (nullopt: the server keeps no store; -1: nothing durable yet).
  void Answered(int64_t first_step, int steps, std::vector<float> inputs,
                std::optional<int64_t> durable);
  // A durable_step seen in an answer: drops what it covers.
  void Durable(std::optional<int64_t> durable);

  // The chunks that take a session the server holds at step `from` back to
  // step `to` (a chunk that straddles `from` is cut to its rows from
  // there). DATA_LOSS when the steps were not kept.
  absl::StatusOr<std::vector<Chunk>> Between(int64_t from, int64_t to) const;

  // The server has reported durable_step for this session (it keeps a
  // store), so a restart can be recovered from.
  bool active() const { return active_; }
  // The largest durable_step reported (-1: none yet or not active).
  int64_t durable() const { return durable_; }
  int64_t kept_steps() const { return steps_; }

 private:
  void Trim();

  const int64_t max_steps_;
  std::deque<Chunk> kept_;  // contiguous, oldest first
  int64_t steps_ = 0;
  bool active_ = false;
  int64_t durable_ = -1;
  int64_t dropped_until_ = 0;  // steps before this were dropped for room
};

}  // namespace lstmserve::client::internal
