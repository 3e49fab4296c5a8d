// The LstmServe gRPC service on the callback API. Handlers do I/O and cheap
// bookkeeping only (lookups, input checks, session management); every chunk
// of steps is handed to the Scheduler and the call completes from the worker
// that ran it. One StreamReactor per bidirectional stream.
//
// Thread-safety: thread-safe, as gRPC requires. Borrows the registry, store
// and scheduler, which must outlive it.
#pragma once

#include <string>

#include "lstmserve/v1/lstmserve.grpc.pb.h"
#include "server/model_registry.h"
#include "server/scheduler.h"
#include "server/session_store.h"

namespace lstmserve::server {

struct ServiceOptions {
  int max_steps_per_request = 4096;
  int max_stream_inflight = 256;
  bool allow_non_finite = false;
};

class LstmServeService final : public v1::LstmServe::CallbackService {
 public:
  LstmServeService(const ModelRegistry& models, SessionStore& sessions,
                   Scheduler& scheduler, ServiceOptions options);

  grpc::ServerUnaryReactor* ListModels(
      grpc::CallbackServerContext* ctx, const v1::ListModelsRequest* request,
      v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const v1::GetModelRequest* request,
                                     v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* ctx,
                                    const v1::PredictRequest* request,
                                    v1::PredictResponse* response) override;
  grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* Stream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* CreateSession(
      grpc::CallbackServerContext* ctx, const v1::CreateSessionRequest* request,
      v1::SessionInfo* response) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* ctx,
                                       const v1::GetSessionRequest* request,
                                       v1::SessionInfo* response) override;
  grpc::ServerUnaryReactor* ResetSession(grpc::CallbackServerContext* ctx,
                                         const v1::ResetSessionRequest* request,
                                         v1::SessionInfo* response) override;
  grpc::ServerUnaryReactor* CloseSession(
      grpc::CallbackServerContext* ctx, const v1::CloseSessionRequest* request,
      v1::CloseSessionResponse* response) override;
  grpc::ServerUnaryReactor* ListSessions(
      grpc::CallbackServerContext* ctx, const v1::ListSessionsRequest* request,
      v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* ExportSession(
      grpc::CallbackServerContext* ctx, const v1::ExportSessionRequest* request,
      v1::SessionSnapshot* response) override;
  grpc::ServerUnaryReactor* ImportSession(
      grpc::CallbackServerContext* ctx, const v1::ImportSessionRequest* request,
      v1::SessionInfo* response) override;
  grpc::ServerUnaryReactor* GetServerStats(
      grpc::CallbackServerContext* ctx,
      const v1::GetServerStatsRequest* request,
      v1::ServerStats* response) override;

 private:
  class StreamReactor;

  // The session a stream message or Predict addresses, created first when
  // the message asks for it (create_model).
  absl::StatusOr<std::shared_ptr<Session>> FindSession(
      const std::string& id, const std::string& owner,
      const std::string& create_model, int64_t create_version);
  // Checks a chunk's shape and values against the model and the limits.
  absl::StatusOr<Chunk> MakeChunk(const v1::Tensor& inputs,
                                  const LoadedModel& model) const;

  const ModelRegistry& models_;
  SessionStore& sessions_;
  Scheduler& scheduler_;
  const ServiceOptions options_;
  const absl::Time started_ = absl::Now();
};

}  // namespace lstmserve::server
