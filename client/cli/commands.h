// The `lstm-client` commands as library functions over a connected Client
// and streams, so main() only parses flags and the commands can be tested
// with string streams. Each returns the status to report: main prints
// `lstm-client: CODE: message` (FormatError) and exits 1.
//
// Thread-safety: each call is independent; they share no state. A call
// uses its Client from the calling thread (and, for StreamCommand, from the
// stream's callbacks, which write to `out` one at a time).
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lstmserve/client.h"

namespace lstmserve::client::cli {

// The server address: `flag_value` if not empty, else $LSTMSERVE_TARGET if
// set and not empty, else 127.0.0.1:50051.
// The bearer token: the first line of `token_file` (INVALID_ARGUMENT if it
// cannot be read or is empty), else $LSTMSERVE_TOKEN, else "".
absl::StatusOr<std::string> ResolveToken(const std::string& token_file);

std::string ResolveTarget(const std::string& flag_value);

// `CODE: message`, e.g. `NOT_FOUND: model "nope" not found`.
std::string FormatError(const absl::Status& status);

struct ModelsOptions {
  bool json = false;
};
// A table of the models (name, versions, cell, sizes), or a JSON array.
absl::Status ModelsCommand(Client& client, const ModelsOptions& options,
                           std::ostream& out);

struct HealthOptions {
  std::string service{};  // empty: the server as a whole
};
// The standard gRPC health check: prints SERVING or NOT_SERVING (for
// NOT_SERVING and UNKNOWN) and returns whether the server is serving, so
// main can exit 1 when it is not. NOT_FOUND for a service the server does
// not know.
absl::StatusOr<bool> HealthCommand(Client& client, const HealthOptions& options,
                                   std::ostream& out);

struct PredictOptions {
  std::string model{};
  int64_t version = 0;       // 0: the highest (stateless or a new session)
  std::string session_id{};  // empty: stateless
  bool create = false;       // create session_id if it does not exist
  bool all_steps = false;    // print every step's row, not just the last one
  int max_chunk = 1024;      // steps per request
};
// Reads all CSV steps from `in`, runs them and prints the last step's
// output row (or every row). Nothing is sent if any line is bad. With a
// session id the session continues from its next step (each chunk carries
// first_step: exactly once); a missing one is NOT_FOUND unless `create`.
// Without one, inputs longer than max_chunk run on a temporary session,
// closed after.
absl::Status PredictCommand(Client& client, const PredictOptions& options,
                            std::istream& in, std::ostream& out);

struct StreamOptions {
  std::string model{};
  int64_t version = 0;
  std::string session_id{};  // empty: a server-made session, closed at EOF
  bool create = false;       // create session_id if it does not exist
  bool text = false;         // text mode (below) instead of CSV
  int top_k = 3;             // text mode: outputs shown per step
  // Run every step with explain: print the session's gate summary to `err`
  // at the end; with explain_csv, also write each step's record there.
  bool explain = false;
  std::string explain_csv{};  // implies explain
};
// Reads `in` line by line, sends each step on one stream as soon as it is
// read and prints (and flushes) each output row as soon as it arrives.
// Stops at the first bad line or failed step, after printing the rows of
// the steps sent before it.
//
// Text mode, for character-level models (client/cli/text.h): `in` is read
// as UTF-8 text, one step per character, one-hot over the model's
// input_names (a character not among them goes to the "<unk>" input, or is
// an INVALID_ARGUMENT error if the model has none); characters that arrive
// together share a request. Each step prints one line: the character read,
// then the top_k largest outputs with their output names (FormatTopK). A
// model whose names do not declare an alphabet is an INVALID_ARGUMENT error
// naming it, before any session is made (unless --session names one).
absl::Status StreamCommand(Client& client, const StreamOptions& options,
                           std::istream& in, std::ostream& out,
                           std::ostream& err);

struct SessionCreateOptions {
  std::string model{};
  int64_t version = 0;
  std::string session_id{};  // empty: server-made
  std::string state_file{};  // JSON with a "state" array; empty: zero state
  bool json = false;
};
// Prints the new session's id (or its info as JSON).
absl::Status SessionCreateCommand(Client& client,
                                  const SessionCreateOptions& options,
                                  std::ostream& out);
// Prints the session's info, one `key: value` per line (or JSON).
absl::Status SessionInfoCommand(Client& client, const std::string& session_id,
                                bool json, std::ostream& out);
// Resets the session to the zero state and step 0; prints its info.
absl::Status SessionResetCommand(Client& client, const std::string& session_id,
                                 bool json, std::ostream& out);
// Closes the session; prints nothing.
absl::Status SessionCloseCommand(Client& client, const std::string& session_id);

struct SessionListOptions {
  int page_size = 0;  // 0: the server's default
  std::string page_token{};
  bool all = false;  // follow next_page_token to the end
  bool json = false;
};
// A table of sessions (or a JSON object with "sessions" and
// "next_page_token"). Without --all, a further page is announced on `err`.
absl::Status SessionListCommand(Client& client,
                                const SessionListOptions& options,
                                std::ostream& out, std::ostream& err);
// Writes the session's snapshot as JSON to `out_file`, or to `out` if empty.
absl::Status SessionExportCommand(Client& client, const std::string& session_id,
                                  const std::string& out_file,
                                  std::ostream& out);
// Reads a JSON snapshot from `in_file` ("" or "-": `in`), imports it and
// prints the session's id.
absl::Status SessionImportCommand(Client& client, const std::string& in_file,
                                  std::istream& in, std::ostream& out);

struct ForecastOptions {
  std::string session_id{};
  int horizon = 1;
  int samples = 0;
  uint64_t seed = 0;
  bool json = false;
};
// Forecasts from the session's current state (the session does not move)
// and prints one CSV row per step ahead: the deterministic forecast's
// outputs, then, with samples, each sample path's outputs in order on the
// same row (so a row holds (samples + 1) x output_size values). With json,
// one object: {"session_id", "model", "version", "from_step", "horizon",
// "output_size", "forecast": [[...] per row], "samples": [[[...] per row]
// per path]}.
absl::Status ForecastCommand(Client& client, const ForecastOptions& options,
                             std::ostream& out);

// The snapshot file format:
//   {"format": "lstmserve.snapshot/1", "session_id": "...", "model": "...",
//    "version": 1, "next_step": 120, "state": [...],
//    "last_first_step": 119,
//    "last_inputs": {"shape": [1, 1], "values": [...]},
//    "last_outputs": {"shape": [1, 1], "values": [...]}}
// Floats read back bit-exact.
std::string SnapshotToJson(const Snapshot& snapshot);
absl::StatusOr<Snapshot> SnapshotFromJson(const std::string& text,
                                          const std::string& source);

}  // namespace lstmserve::client::cli
