// Checks on client-supplied values, in one place so that every call applies
// the same rules: session ids, chunk shapes and values, snapshots, and the
// quoting of client strings echoed into error messages.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/model_registry.h"
#include "server/core/state_store.h"
#include "server/core/types.h"

namespace lstmserve::server {

// Limits on what one request may carry.
struct RequestLimits {
  int max_steps_per_request = 4096;
  bool allow_non_finite = false;
  // Applied chunks a session keeps for exact retries (--max-replay-chunks).
  int max_replay_chunks = 8;
  // Floats of explain records one response may carry: steps x the model's
  // explain record size (--max-explain-values).
  int64_t max_explain_values = 1 << 20;
  // Forecast: rows per path (--max-forecast-horizon), sample paths
  // (--max-forecast-samples), and floats per response, horizon x (samples
  // + 1) x the model's output size (--max-forecast-values).
  int max_forecast_horizon = 4096;
  int max_forecast_samples = 64;
  int64_t max_forecast_values = 1 << 20;
};

// A client string for an error message: in double quotes, non-printable
// bytes escaped, and cut after kMaxQuotedChars characters with a note of the
// full length, so that no error can outgrow gRPC's metadata limits however
// long the client's string was.
inline constexpr size_t kMaxQuotedChars = 64;
std::string Quote(absl::string_view s);

// Client-chosen session ids: 1-128 characters of [A-Za-z0-9._:-].
inline constexpr size_t kMaxSessionIdChars = 128;
absl::Status ValidateSessionId(absl::string_view id);

// A model name as the repository holds it: a directory name, 1 to 255
// bytes, not "." or "..", no '/' or NUL.
absl::Status ValidateModelName(absl::string_view name);

// A chunk from a [T, input_size] tensor: T in [1, max_steps_per_request],
// values finite unless allowed, and with `explain` at most
// max_explain_values floats of explain records. The message names the
// model.
absl::StatusOr<Chunk> MakeChunk(std::span<const int64_t> shape,
                                std::span<const float> values,
                                std::optional<int64_t> first_step, bool explain,
                                const LoadedModel& model,
                                const RequestLimits& limits);

// A forecast's horizon in [1, max_forecast_horizon], samples in [0,
// max_forecast_samples], and its values within max_forecast_values for the
// model; INVALID_ARGUMENT naming the limit otherwise.
absl::Status ValidateForecast(const ForecastSpec& spec,
                              const LoadedModel& model,
                              const RequestLimits& limits);

// Range-checks every field of a snapshot against the model it names: state
// size and finiteness, next_step in [0, kMaxStepIndex], and the replay
// record (at most max_replay_chunks chunks, each of 1 to
// max_steps_per_request steps with matching input and output sizes,
// contiguous and ending at next_step).
absl::Status ValidateSnapshot(const SessionSnapshot& snapshot,
                              const LoadedModel& model,
                              const RequestLimits& limits);

// What a restore checks of a stored session before bringing it back (its
// model version resolved): its id, the fields ValidateSnapshot checks, and
// its initial state, when it has one.
absl::Status ValidateRecord(const SessionRecord& record,
                            const LoadedModel& model,
                            const RequestLimits& limits);

// A FAILED_PRECONDITION for a chunk's first_step carries the step the
// session expects, so that the service can tell the client (the stream's
// next_step) without parsing the message.
absl::Status WithExpectedStep(absl::Status status, int64_t expected);
std::optional<int64_t> ExpectedStepOf(const absl::Status& status);

// A state vector of the model's state size with finite values (`what`
// names it in the message).
absl::Status ValidateState(std::span<const float> state, int expected,
                           absl::string_view what);

}  // namespace lstmserve::server
