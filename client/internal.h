// Internals of the client library shared by client.cc and
// streaming_session.cc: the channel and stub, status conversion, proto
// conversions and backoff. Not installed; users see only
// <lstmserve/client.h>.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "lstmserve/client.h"
#include "lstmserve/v1/lstmserve.grpc.pb.h"
#include "lstmserve/v1/lstmserve.pb.h"

namespace lstmserve::client {

namespace pb = ::lstmserve::v1;

class StreamMux;

// Owned jointly by a Client and the sessions it opened.
// Thread-safety: immutable after construction but for the stream
// multiplexer, made on first use under mux_mu; the stub is thread-safe.
struct Client::Shared {
  Shared();
  ~Shared();  // stops the multiplexer's streams and thread
  ClientOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::LstmServe::Stub> stub;

  // The streams every StreamingSession of this client shares.
  StreamMux& Mux();
  absl::Mutex mux_mu;
  std::unique_ptr<StreamMux> mux ABSL_GUARDED_BY(mux_mu);
};

namespace internal {

// Same code, the server's message unchanged.
absl::Status FromGrpc(const grpc::Status& status);

// What every call's context carries: the bearer token, if any.
void PrepareContext(const ClientOptions& options, grpc::ClientContext* context);

// The channel credentials of `options`: TLS (files read now) or
// plaintext. INVALID_ARGUMENT naming a file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientOptions& options);

// The pause before retry number `retry` (1-based): initial * 2^(retry-1)
// capped at max, times a random factor in [0.8, 1.2].
std::chrono::milliseconds Backoff(const ClientOptions& options, int retry);

// INVALID_ARGUMENT unless steps >= 1 and steps divides inputs.size() > 0.
absl::Status CheckChunk(const std::vector<float>& inputs, int steps);

void ToProto(const std::vector<float>& values, int steps, pb::Tensor* out);

// Checks an output tensor is [steps, O] and moves it into `result`.
absl::Status OutputsFromProto(pb::Tensor* tensor, int steps,
                              std::vector<float>* outputs, int* output_size);

SessionInfo FromProto(const pb::SessionInfo& info);
// A response's explain records for a chunk of `steps` steps; INTERNAL if a
// field's shape is not [steps, units].
absl::StatusOr<std::vector<ExplainField>> ExplainFromProto(pb::Explain* explain,
                                                           int steps);

// A NOT_FOUND for a session that had already taken steps says so: the
// server lost it (restarted without its state, or it expired), and the
// client does not quietly start it again at step 0.
absl::Status SessionLost(const absl::Status& status,
                         const std::string& session_id, int64_t expected_step);

// grpc.health.v1.HealthCheckRequest{service} in protobuf wire format (no
// bytes for an empty service name).
std::string EncodeHealthCheckRequest(const std::string& service);

// The `status` field (a grpc.health.v1.HealthCheckResponse.ServingStatus
// value) of a wire-format HealthCheckResponse: 0 (UNKNOWN) when absent, the
// last one when repeated; other fields are skipped. INTERNAL for bytes that
// are not a well-formed message (truncated, bad wire type, field 0).
absl::StatusOr<int> DecodeHealthCheckResponse(const std::string& bytes);

// The session named by `options` as it stands on the server: created (with
// a server-made id when none is given) or found (checking its model and
// version against non-empty options). With `create_lazily`, a missing
// session is not created here: `*created_by_stream` is set and the returned
// info (next_step 0) describes the session the first stream message will
// create.
absl::StatusOr<SessionInfo> FindOrCreate(Client& client,
                                         const OpenSessionOptions& options,
                                         bool create_lazily,
                                         bool* created_by_stream);

}  // namespace internal
}  // namespace lstmserve::client
