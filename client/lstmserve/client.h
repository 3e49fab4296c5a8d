// The lstmserve C++ client: model listing, stateless predictions, server-side
// sessions driven step by step (unary or over one bidirectional stream), and
// session export/import. Installed as <lstmserve/client.h>; link
// `lstmserve::client` after `find_package(lstmserve CONFIG REQUIRED)`.
//
// This header exposes no gRPC or protobuf types. Errors are absl::Status
// values carrying the server's gRPC status code and message unchanged
// (NOT_FOUND, INVALID_ARGUMENT, ...); a call that runs out of time is
// DEADLINE_EXCEEDED and a server that cannot be reached is UNAVAILABLE.
//
// Retries: calls that are safe to repeat are retried on UNAVAILABLE with
// exponential backoff (ClientOptions::max_retries and the backoff bounds):
// ListModels, GetModel, GetSession, ListSessions, ExportSession, Forecast,
// GetServerStats, CheckHealth, and Predict when it carries `first_step` (the
// server then applies a chunk exactly once and answers an exact retry from
// its record of the last chunk). Predict without first_step, CreateSession,
// ResetSession, CloseSession and ImportSession are never retried: their
// effect may already have happened.
// Session::Step and StreamingSession always send first_step, so they are
// retried (and a StreamingSession reconnects its stream) without losing or
// doubling a step.
//
//   auto client = lstmserve::client::Client::Connect({.target = "host:50051"});
//   auto stream = (*client)->OpenStream({.model = "sunspots"});
//   auto result = (*stream)->Send({42.0f}, /*steps=*/1).get();
//   // result->outputs: one row of result->output_size floats per step.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lstmserve::client {

// Connection settings. Plain values with documented defaults.
struct ClientOptions {
  // host:port of the server (any gRPC target string, e.g. "dns:///svc:50051").
  std::string target = "127.0.0.1:50051";
  // Time allowed for one unary method call, retries and backoff included.
  // For a StreamingSession: the time allowed for each chunk's response once
  // it has been written (past it, the stream is cancelled and reconnected).
  std::chrono::milliseconds deadline{10000};
  // Attempts after the first, for calls that are safe to retry; for a
  // StreamingSession, consecutive failed stream attempts before its pending
  // chunks fail.
  int max_retries = 8;
  // Backoff before retry n (n >= 1): initial_backoff * 2^(n-1), capped at
  // max_backoff, with +-20% jitter. Also the channel's reconnect backoff.
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{2000};
  // Largest message sent or received.
  int max_message_bytes = 16 << 20;
  // Stream calls that all of this client's StreamingSessions share (each
  // session is carried by one of them). No thread per session: the client
  // runs one thread for all its streams.
  int streams = 1;
  // Chunks one StreamingSession may have on the wire, unanswered, at once
  // (pipelining). Must not exceed the server's --max-replay-chunks (default
  // 8), so that after a broken stream every resent chunk is still answered
  // exactly once.
  int max_inflight_chunks = 4;
  // Durable sessions (a server with --state-dir): steps of inputs each
  // Session and StreamingSession keeps from the server's durable_step on,
  // so that after the server comes back from its last checkpoint (a crash)
  // the steps it lost are resent and the caller sees every step once, with
  // the outputs of an uninterrupted run. Past this many the oldest are
  // dropped, and a recovery that would need them fails with DATA_LOSS.
  int64_t max_resend_steps = 65536;

  // Security (docs/SECURITY.md). TLS is used when `tls` is set or any
  // tls_* file is: tls_ca is the PEM file of the CAs that signed the
  // server's certificate (empty: the system's CAs); tls_cert and tls_key,
  // a client certificate and its key for mutual TLS (both or neither);
  // tls_server_name, the name the server's certificate must carry (empty:
  // the host of `target`).
  bool tls = false;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  // Sent as "authorization: Bearer TOKEN" on every call (empty: none).
  std::string token;
  // Each StreamingSession gets a Stream call of its own that carries its
  // session id as the x-session-id metadata, so that a front proxy hashing
  // on it (deploy/k8s/, docs/DEPLOY.md) sends the stream to the server that
  // holds the session; `streams` is then unused. Off: sessions share
  // `streams` calls, which carry no x-session-id (right for one server).
  // Unary calls on a session always carry x-session-id.
  bool session_affinity = false;
};

// One field of a model's explain record (lstmserve.v1.ExplainFieldInfo).
struct ExplainFieldInfo {
  int layer = 0;
  std::string name{};  // "i", "f", "g", "o", "c", "h", "r", "z" or "n"
  int units = 0;
};

// One field of a chunk's explain records: its values for every step of the
// chunk (lstmserve.v1.ExplainField; docs/INTERPRETABILITY.md).
struct ExplainField {
  int layer = 0;
  std::string name{};
  int units = 0;
  std::vector<float> values{};  // steps * units floats, row t is step t
};

// One model version's metadata (lstmserve.v1.ModelInfo).
struct ModelInfo {
  std::string name{};
  int64_t version = 0;              // the version described
  std::vector<int64_t> versions{};  // all loaded versions, ascending
  std::string cell{};               // "lstm", "gru" or "rnn"
  int input_size = 0;               // floats per input step
  int output_size = 0;              // floats per output step
  int hidden_size = 0;
  int num_layers = 0;
  int proj_size = 0;              // 0: none
  std::string head_activation{};  // empty without a head
  int state_size = 0;             // floats in a session's state
  std::vector<std::string> input_names{};
  std::vector<std::string> output_names{};
  std::string description{};
  std::string weights{};                           // "f32", "bf16" or "int8"
  std::vector<ExplainFieldInfo> explain_fields{};  // an explain record
};

// A chunk of `steps` time steps; `inputs` holds steps * input_size floats,
// row-major (one row per step).
struct PredictRequest {
  // Stateless calls name the model; session calls may leave it empty.
  std::string model{};
  int64_t version = 0;       // stateless only; 0: the highest version
  std::string session_id{};  // empty: stateless (zero state, nothing kept)
  std::vector<float> inputs{};
  int steps = 0;  // rows in `inputs`; must divide inputs.size()
  // Exactly-once: the session's index of this chunk's first step. When set,
  // the server applies the chunk only if it is the next expected index and
  // answers an exact retry of the last chunk without re-applying it.
  std::optional<int64_t> first_step{};
  // Also return each step's gates and states (PredictResult::explain) and
  // add them to the session's gate summary.
  bool explain = false;
};

struct PredictResult {
  std::vector<float> outputs{};  // steps * output_size floats, row-major
  int steps = 0;
  int output_size = 0;
  std::string model{};
  int64_t version = 0;       // the exact version that ran
  std::string session_id{};  // empty for stateless calls
  int64_t next_step = 0;     // the session's next expected step index
  bool replayed = false;     // an exact retry answered, not re-applied
  // Steps before this index survive a crash of the server (-1: none yet);
  // unset when the server keeps sessions in memory only.
  std::optional<int64_t> durable_step{};
  // With PredictRequest::explain, one entry per field of the model's
  // explain record; empty otherwise and when `replayed`.
  std::vector<ExplainField> explain{};
};

struct CreateSessionRequest {
  std::string session_id{};  // empty: the server makes a unique id
  std::string model{};
  int64_t version = 0;  // 0: the highest version
  // state_size floats (layout: docs/MODEL_FORMAT.md); empty: the zero state.
  std::vector<float> initial_state{};
};

// What one layer's gates did over a session's explained steps
// (lstmserve.v1.LayerGateSummary; docs/INTERPRETABILITY.md).
struct GateStats {
  std::string name{};     // "i", "f", "g", "o", "r", "z" or "n"
  double mean = 0;        // mean activation
  double saturation = 0;  // share saturated
};
struct LayerGateSummary {
  int layer = 0;
  int units = 0;
  std::optional<double> mean_forget{};           // LSTM f, GRU z; unset for RNN
  std::optional<double> memory_horizon_steps{};  // 1 / (1 - mean_forget)
  std::vector<GateStats> gates{};
};

struct SessionInfo {
  std::string session_id{};
  std::string model{};
  int64_t version = 0;
  int64_t next_step = 0;
  int64_t created_unix_ms = 0;
  int64_t last_used_unix_ms = 0;
  int state_size = 0;
  std::optional<int64_t> durable_step{};  // as in PredictResult
  // GetSession only: the gate summary over the steps run with explain on.
  int64_t explained_steps = 0;
  std::vector<LayerGateSummary> gate_summary{};
  // The identity it belongs to ("": anonymous; docs/SECURITY.md).
  std::string owner{};
};

struct SessionPage {
  std::vector<SessionInfo> sessions{};  // ordered by session id
  std::string next_page_token{};        // empty: no more pages
};

// One applied chunk a client may still retry (lstmserve.v1.ReplayChunk).
struct SnapshotChunk {
  int64_t first_step = 0;
  std::vector<float> inputs{};
  std::vector<int64_t> inputs_shape{};  // [T, input_size]
  std::vector<float> outputs{};
  std::vector<int64_t> outputs_shape{};  // [T, output_size]
};

// Everything needed to continue a session on this or another server,
// exactly once (lstmserve.v1.SessionSnapshot).
struct Snapshot {
  std::string session_id{};
  std::string model{};
  int64_t version = 0;
  int64_t next_step = 0;
  std::vector<float> state{};
  // The last applied chunk, so that a retry of it after an import is still
  // recognised. Empty shapes and values if there was none.
  int64_t last_first_step = 0;
  std::vector<float> last_inputs{};
  std::vector<int64_t> last_inputs_shape{};  // [T, input_size]
  std::vector<float> last_outputs{};
  std::vector<int64_t> last_outputs_shape{};  // [T, output_size]
  // Every applied chunk a pipelining client may still retry, oldest first
  // (the last one is also last_*). On import it wins over last_* when set.
  std::vector<SnapshotChunk> replay{};
};

// A forecast from a session's current state (lstmserve.v1.ForecastRequest;
// docs/API.md, "Forecast").
struct ForecastRequest {
  std::string session_id{};
  // Rows per path (1 to the server's --max-forecast-horizon): row i is the
  // value for the session's input at step from_step + i; row 0 is the
  // output of the session's last step.
  int horizon = 1;
  // Noisy sample paths besides the deterministic one (0 to the server's
  // --max-forecast-samples); the model must declare an output scale (or
  // have a softmax head).
  int samples = 0;
  uint64_t seed = 0;  // the same seed gives the same sample paths
};

struct ForecastResult {
  // horizon * output_size floats, row-major: the deterministic path (a
  // softmax model's rows are the one-hot of the most likely class).
  std::vector<float> forecast{};
  // One per sample path, each horizon * output_size floats.
  std::vector<std::vector<float>> samples{};
  int horizon = 0;
  int output_size = 0;
  std::string model{};
  int64_t version = 0;
  std::string session_id{};
  int64_t from_step = 0;  // the session's next step (unchanged)
};

// The outputs for one chunk sent through a Session or StreamingSession.
struct StepResult {
  std::vector<float> outputs{};  // steps * output_size floats, row-major
  int steps = 0;
  int output_size = 0;
  int64_t first_step = 0;  // the session's index of this chunk's first step
  int64_t next_step = 0;   // the session's next index after this chunk
  bool replayed = false;   // answered from the server's record of a retry
  std::optional<int64_t> durable_step{};  // as in PredictResult
  std::vector<ExplainField> explain{};    // with OpenSessionOptions::explain
};

struct OpenSessionOptions {
  std::string model{};       // required when the session may be created
  int64_t version = 0;       // 0: the highest version (for a new session)
  std::string session_id{};  // empty: a new session with a server-made id
  // If session_id names no session: create it (true) or fail with
  // NOT_FOUND (false).
  bool create_if_missing = true;
  // Every chunk also returns its gates and states (StepResult::explain)
  // and adds them to the session's gate summary (GetSession).
  bool explain = false;
};

// Counters for one model version since the server started
// (lstmserve.v1.ModelStats).
struct ModelStats {
  std::string model{};
  int64_t version = 0;
  int64_t requests = 0;  // chunks completed (run, replayed or failed)
  int64_t steps = 0;     // steps run by the engine
  int64_t batches = 0;   // engine calls
  // [k]: batches whose size is in (2^(k-1), 2^k]; [0]: batches of one.
  std::vector<int64_t> batch_size_histogram{};
  // [k]: chunks that waited (2^(k-1), 2^k] us for the engine; [0]: <= 1 us.
  std::vector<int64_t> queue_wait_us_histogram{};
  int64_t queue_wait_us_total = 0;
  int64_t compute_us_total = 0;
  int64_t rejected = 0;  // refused: the server's queue was full
  int64_t expired = 0;   // dropped: cancelled or past deadline
};

struct ServerStats {
  std::vector<ModelStats> models{};
  int sessions = 0;  // sessions held now
  int64_t uptime_ms = 0;
  int64_t queued_steps = 0;  // steps waiting for a worker now
};

class Session;
class StreamingSession;

// A connection to one server (one gRPC channel).
//
// Thread-safety: thread-safe; any number of threads may call its methods at
// once. The Sessions and StreamingSessions it opens share its channel and may
// outlive it.
class Client {
 public:
  // Creates the channel (insecure). Fails only for invalid options; an
  // unreachable server shows up as UNAVAILABLE on the first call.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ClientOptions& options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const;

  // Each model's default (highest) version, sorted by name.
  absl::StatusOr<std::vector<ModelInfo>> ListModels();
  // NOT_FOUND for an unknown model or version; version 0: the highest.
  absl::StatusOr<ModelInfo> GetModel(const std::string& name,
                                     int64_t version = 0);

  // Runs one chunk, stateless or on a session (see PredictRequest).
  // Retried on UNAVAILABLE only when request.first_step is set.
  absl::StatusOr<PredictResult> Predict(const PredictRequest& request);

  absl::StatusOr<SessionInfo> CreateSession(
      const CreateSessionRequest& request);
  absl::StatusOr<SessionInfo> GetSession(const std::string& session_id);
  // Back to the zero state and step index 0.
  absl::StatusOr<SessionInfo> ResetSession(const std::string& session_id);
  absl::Status CloseSession(const std::string& session_id);
  // page_size 0: the server's default; page_token from the previous page.
  absl::StatusOr<SessionPage> ListSessions(int page_size = 0,
                                           const std::string& page_token = "");
  absl::StatusOr<Snapshot> ExportSession(const std::string& session_id);
  // ALREADY_EXISTS if the server already has a session with that id.
  absl::StatusOr<SessionInfo> ImportSession(const Snapshot& snapshot);
  // Runs the session's model ahead on its own predictions, on a copy of its
  // state (the session does not move). FAILED_PRECONDITION for a model that
  // cannot forecast, or has no sample paths and samples > 0. Retried on
  // UNAVAILABLE (it changes nothing).
  absl::StatusOr<ForecastResult> Forecast(const ForecastRequest& request);

  // The server's counters (retried on UNAVAILABLE).
  absl::StatusOr<ServerStats> GetServerStats();

  // The standard gRPC health check (grpc.health.v1.Health/Check) for
  // `service` ("": the server as a whole). true: SERVING; false:
  // NOT_SERVING or UNKNOWN; NOT_FOUND: the server does not know `service`.
  // Retried on UNAVAILABLE; a server that cannot be reached is UNAVAILABLE.
  absl::StatusOr<bool> CheckHealth(const std::string& service = "");

  // A session driven by unary Predict calls (see Session). Creates the
  // session, or attaches to an existing one and continues from its step.
  absl::StatusOr<std::unique_ptr<Session>> OpenSession(
      const OpenSessionOptions& options);

  // A session driven over one bidirectional stream (see StreamingSession).
  // With an empty session_id a session is created first (CreateSession);
  // otherwise an existing session is continued from its step, and a missing
  // one is created by the stream's first message (create_if_missing).
  absl::StatusOr<std::unique_ptr<StreamingSession>> OpenStream(
      const OpenSessionOptions& options);

  struct Shared;  // channel, stub and options; shared with the sessions

 private:
  explicit Client(std::shared_ptr<Shared> shared);
  std::shared_ptr<Shared> shared_;
};

// A server-side session stepped with unary Predict calls carrying
// first_step, so a retry after UNAVAILABLE applies each chunk exactly once.
//
// Thread-safety: thread-safe; concurrent Step calls are serialised (each
// waits for the previous one). Destroying the object does not close the
// server-side session (it lives on until Close or the server's idle
// timeout, and can be re-attached by id).
class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs `steps` steps (inputs: steps * input_size floats, row-major) and
  // advances next_step(). FAILED_PRECONDITION if the session was advanced
  // by someone else since (the server names the index it expected). After
  // an error that is not about the request (e.g. DEADLINE_EXCEEDED) the
  // chunk may or may not have been applied; calling Step again with the
  // same inputs is safe either way.
  absl::StatusOr<StepResult> Step(const std::vector<float>& inputs, int steps);

  const std::string& id() const { return id_; }
  const std::string& model() const { return model_; }
  int64_t version() const { return version_; }
  // The index of the next step this object will send.
  int64_t next_step() const;

  // Closes the session on the server; Step fails afterwards.
  absl::Status Close();

 private:
  friend class Client;
  struct State;
  Session(std::shared_ptr<Client::Shared> shared, std::string id,
          std::string model, int64_t version, int64_t next_step, bool explain);

  std::shared_ptr<Client::Shared> shared_;
  const std::string id_;
  const std::string model_;
  const int64_t version_;
  const bool explain_;  // OpenSessionOptions::explain
  std::unique_ptr<State> state_;
};

// A server-side session stepped over one bidirectional Stream call, with an
// asynchronous interface: Send queues a chunk and returns at once; each
// chunk's result is delivered, in send order, to its callback or future.
//
// Delivery: exactly one chunk is on the wire at a time (the server keeps
// only the last applied chunk for exact retries), and the next queued chunk
// goes out when its predecessor's response arrives. Each chunk carries its
// first_step. If the stream breaks (UNAVAILABLE, cancelled, a server that
// went away or restarted, or no response within ClientOptions::deadline),
// the session reconnects with exponential backoff and resends the chunk
// that was on the wire with the same first_step; the server applies it or
// answers it from its record (StepResult::replayed), so no step is lost or
// applied twice. After max_retries consecutive failed attempts, every
// pending chunk fails with the last status; a later Send tries again. A
// request-level error (e.g. INVALID_ARGUMENT for a wrong input width) fails
// that chunk only and the session continues.
//
// Thread-safety: thread-safe; Send, Flush and Close may be called from any
// thread. Callbacks run on a gRPC thread, the session's own worker thread
// or a thread calling Send, one at a time, in send order. A callback may call
// Send but must not call Flush or Close or destroy the session, and should not
// block: the next result waits for it. The session owns a worker thread
// (reconnection, deadlines) and the stream; destroying it calls Close().
// Closing the stream does not close the server-side session (use
// Client::CloseSession).
class StreamingSession {
 public:
  using Callback = std::function<void(absl::StatusOr<StepResult>)>;

  ~StreamingSession();  // Close()
  StreamingSession(const StreamingSession&) = delete;
  StreamingSession& operator=(const StreamingSession&) = delete;

  // Queues `steps` steps (inputs: steps * input_size floats, row-major).
  // Never blocks on the network. After Close, `on_result` runs at once, on
  // this thread, with FAILED_PRECONDITION. A chunk with steps < 1 or a size
  // that is not a multiple of steps is not sent; it fails with
  // INVALID_ARGUMENT in its turn.
  void Send(std::vector<float> inputs, int steps, Callback on_result);
  std::future<absl::StatusOr<StepResult>> Send(std::vector<float> inputs,
                                               int steps);

  // Waits until every chunk sent before the call has its result delivered
  // (its callback returned).
  void Flush();

  // Flush(), then detaches the session from the client's shared stream (the
  // stream stays open for the client's other sessions). Idempotent; OK.
  absl::Status Close();

  // Stops waiting: every chunk not answered yet completes now with
  // CANCELLED (a chunk the server has already applied stays applied; its
  // late answer is ignored), then Close(). Returns at once.
  void Cancel();

  const std::string& id() const { return id_; }
  const std::string& model() const { return model_; }
  // The session's model version; 0 for a session the stream will create on
  // the model's highest version.
  int64_t version() const { return version_; }
  // The session's next step index as known from the last response.
  int64_t next_step() const;

  struct Core;  // the stream machinery (client/streaming_session.cc)

 private:
  friend class Client;
  StreamingSession(std::shared_ptr<Core> core, std::string id,
                   std::string model, int64_t version);

  std::shared_ptr<Core> core_;
  const std::string id_;
  const std::string model_;
  const int64_t version_;
};

}  // namespace lstmserve::client
