// The LstmServe gRPC service on the callback API. It only converts messages
// and runs reactors: every decision (validation, sessions, exactly-once,
// limits) is the core's (server/core/session_manager.h), and every chunk of
// steps runs on the core's workers; a call completes from the worker that
// ran it.
//
// Methods are registered raw (grpc::ByteBuffer) so that the service parses
// requests itself: a message that does not parse is INVALID_ARGUMENT, on a
// unary call and on a stream (where gRPC's own parsing would end the stream
// as if the client had half-closed it).
//
// Streams are bounded: a request counts against --max-stream-inflight until
// its response has been written, and responses waiting to be written are
// held to --max-stream-buffered-bytes; past either, the stream stops reading
// from its client until the client reads. On shutdown, messages on open
// streams get an in-band UNAVAILABLE and each stream is finished as soon as
// it is idle.
//
// Thread-safety: thread-safe, as gRPC requires. Borrows the core, which must
// outlive it.
#pragma once

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lstmserve/v1/lstmserve.grpc.pb.h"
#include "server/auth/authenticator.h"
#include "server/core/rate_limiter.h"
#include "server/core/session_manager.h"
#include "server/maintenance.h"

namespace lstmserve::server {

// One answered request: a unary call, or one message of a stream (method
// "Stream"), for metrics and the access log.
struct RequestRecord {
  const char* method = "";
  std::string model;    // the served model that ran it; "" if none did
  std::string session;  // the client's session id; "" for stateless calls
  int64_t steps = 0;    // steps run (or answered from the replay record)
  absl::StatusCode code = absl::StatusCode::kOk;
  absl::Duration duration;  // arrival to answer
};

// Told of every answered request, on the thread that answers it (a gRPC or
// worker thread): must be thread-safe and quick.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void Record(const RequestRecord& record) = 0;
};

struct ServiceOptions {
  // Who may call (null: everyone, as the anonymous identity with the admin
  // role). Must outlive the service.
  Authenticator* auth = nullptr;
  // Requests a second per identity (null: no limit). Must outlive the
  // service.
  RateLimiter* rate_limiter = nullptr;
  // Stream calls open at once, in all; one more is RESOURCE_EXHAUSTED.
  int max_streams = 10000;
  // Requests of one stream read and not yet answered (response written).
  int max_stream_inflight = 256;
  // Bytes of responses of one stream waiting to be written.
  int64_t max_stream_buffered_bytes = 4 << 20;
  // Told of every answered request (may be null). Must outlive the
  // service.
  RequestObserver* observer = nullptr;
};

namespace internal {
using v1::LstmServe;
// Every method raw: the service parses and serializes its messages itself.
using RawLstmServeService = LstmServe::WithRawCallbackMethod_ListModels<
    LstmServe::WithRawCallbackMethod_GetModel<LstmServe::WithRawCallbackMethod_Predict<
        LstmServe::WithRawCallbackMethod_Stream<LstmServe::WithRawCallbackMethod_CreateSession<
            LstmServe::WithRawCallbackMethod_GetSession<
                LstmServe::WithRawCallbackMethod_ResetSession<
                    LstmServe::WithRawCallbackMethod_CloseSession<
                        LstmServe::WithRawCallbackMethod_ListSessions<
                            LstmServe::WithRawCallbackMethod_ExportSession<
                                LstmServe::WithRawCallbackMethod_ImportSession<
                                    LstmServe::WithRawCallbackMethod_Forecast<
                                        LstmServe::WithRawCallbackMethod_GetServerStats<
                                            LstmServe::WithRawCallbackMethod_LoadModel<
                                                LstmServe::
                                                    WithRawCallbackMethod_UnloadModel<
                                                        LstmServe::
                                                            Service>>>>>>>>>>>>>>>;
}  // namespace internal

class LstmServeService final : public internal::RawLstmServeService {
 public:
  // `admin` runs LoadModel and UnloadModel (off gRPC's threads).
  LstmServeService(SessionManager& core, Maintenance& admin,
                   ServiceOptions options);
  ~LstmServeService() override;

  // No new chunks (the core answers them UNAVAILABLE); finishes every open
  // stream that is idle now, and each other one when it becomes idle.
  void BeginShutdown();

  using Raw = grpc::ByteBuffer;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* ctx,
                                       const Raw* request,
                                       Raw* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const Raw* request,
                                     Raw* response) override;
  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* ctx,
                                    const Raw* request, Raw* response) override;
  grpc::ServerBidiReactor<Raw, Raw>* Stream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* CreateSession(grpc::CallbackServerContext* ctx,
                                          const Raw* request,
                                          Raw* response) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* ctx,
                                       const Raw* request,
                                       Raw* response) override;
  grpc::ServerUnaryReactor* ResetSession(grpc::CallbackServerContext* ctx,
                                         const Raw* request,
                                         Raw* response) override;
  grpc::ServerUnaryReactor* CloseSession(grpc::CallbackServerContext* ctx,
                                         const Raw* request,
                                         Raw* response) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* ctx,
                                         const Raw* request,
                                         Raw* response) override;
  grpc::ServerUnaryReactor* ExportSession(grpc::CallbackServerContext* ctx,
                                          const Raw* request,
                                          Raw* response) override;
  grpc::ServerUnaryReactor* ImportSession(grpc::CallbackServerContext* ctx,
                                          const Raw* request,
                                          Raw* response) override;
  grpc::ServerUnaryReactor* Forecast(grpc::CallbackServerContext* ctx,
                                     const Raw* request,
                                     Raw* response) override;
  grpc::ServerUnaryReactor* GetServerStats(grpc::CallbackServerContext* ctx,
                                           const Raw* request,
                                           Raw* response) override;
  grpc::ServerUnaryReactor* LoadModel(grpc::CallbackServerContext* ctx,
                                      const Raw* request,
                                      Raw* response) override;
  grpc::ServerUnaryReactor* UnloadModel(grpc::CallbackServerContext* ctx,
                                        const Raw* request,
                                        Raw* response) override;

 private:
  class StreamReactor;
  enum class Access { kUser, kAdmin };

  // Who the call comes from, or why it may not proceed: UNAUTHENTICATED
  // (no or a bad token), PERMISSION_DENIED (an admin method without the
  // admin role), RESOURCE_EXHAUSTED (the identity's request rate).
  absl::StatusOr<Identity> Admit(grpc::CallbackServerContext* ctx,
                                 Access access);
  absl::Status RateLimit(const std::string& identity);

  SessionManager& core_;
  Maintenance& admin_;
  const ServiceOptions options_;
  RequestObserver* const observer_;
  const absl::Time started_ = absl::Now();

  absl::Mutex streams_mu_;
  // Open streams, for shutdown. A reactor removes itself in OnDone.
  absl::flat_hash_set<StreamReactor*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool shutting_down_ ABSL_GUARDED_BY(streams_mu_) = false;
};

}  // namespace lstmserve::server
