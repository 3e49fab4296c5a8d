// A test-only LstmServe server that forwards to a real one and misbehaves
// on cue: it drops a stream before or after forwarding a chunk (the chunk
// lost, or applied with its answer lost), withholds a chunk's answer while
// the stream goes on, stalls a stream until the client
// gives up, fails unary Predicts with UNAVAILABLE, or stalls GetModel. It
// makes the client's retry and resend paths deterministic.
//
// Stream messages are forwarded as unary Predict calls with the same
// session id and first_step, which the server treats exactly like stream
// chunks.
//
// Thread-safety: counters may be read from any thread while serving.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lstmserve/v1/lstmserve.grpc.pb.h"

namespace lstmserve::client_test {

namespace pb = ::lstmserve::v1;

struct ProxyPlan {
  // Indices (0-based, counted over all stream messages the proxy receives).
  std::set<int> drop_before_forward{};  // end the call, chunk not forwarded
  std::set<int> drop_after_forward{};   // forward (applied), end the call
  std::set<int> withhold_answer{};      // forward (applied), never answer it
  std::set<int> stall{};  // answer nothing until the client cancels
  // The first N unary Predict calls fail with UNAVAILABLE, not forwarded.
  int fail_predicts = 0;
  // GetModel answers nothing until the client cancels.
  bool stall_get_model = false;
};

class FlakyProxy final : public pb::LstmServe::Service {
 public:
  FlakyProxy(const std::string& backend, ProxyPlan plan)
      : plan_(std::move(plan)),
        backend_(pb::LstmServe::NewStub(
            grpc::CreateChannel(backend, grpc::InsecureChannelCredentials()))) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_GT(port_, 0);
  }
  ~FlakyProxy() override {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(100));
    }
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int stream_calls() const { return stream_calls_; }
  int stream_messages() const { return stream_messages_; }
  int forwarded() const { return forwarded_; }
  int replayed() const { return replayed_; }
  int predict_calls() const { return predict_calls_; }
  int get_model_calls() const { return get_model_calls_; }

  grpc::Status Stream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<pb::StreamResponse, pb::StreamRequest>* stream)
      override {
    ++stream_calls_;
    pb::StreamRequest request;
    while (stream->Read(&request)) {
      const int index = stream_messages_++;
      if (plan_.drop_before_forward.count(index)) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "proxy: dropped the stream before forwarding");
      }
      if (plan_.stall.count(index)) {
        WaitForCancel(ctx);
        return grpc::Status(grpc::StatusCode::CANCELLED, "proxy: stalled");
      }
      pb::StreamResponse response = Forward(request);
      if (plan_.drop_after_forward.count(index)) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "proxy: dropped the answer");
      }
      if (plan_.withhold_answer.count(index)) continue;
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status Predict(grpc::ServerContext* ctx,
                       const pb::PredictRequest* request,
                       pb::PredictResponse* response) override {
    if (predict_calls_++ < plan_.fail_predicts) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "proxy: failing this Predict");
    }
    auto c = Ctx();
    return backend_->Predict(c.get(), *request, response);
  }
  grpc::Status GetModel(grpc::ServerContext* ctx,
                        const pb::GetModelRequest* request,
                        pb::ModelInfo* response) override {
    ++get_model_calls_;
    if (plan_.stall_get_model) {
      WaitForCancel(ctx);
      return grpc::Status(grpc::StatusCode::CANCELLED, "proxy: stalled");
    }
    auto c = Ctx();
    return backend_->GetModel(c.get(), *request, response);
  }
  grpc::Status CreateSession(grpc::ServerContext*,
                             const pb::CreateSessionRequest* request,
                             pb::SessionInfo* response) override {
    auto c = Ctx();
    return backend_->CreateSession(c.get(), *request, response);
  }
  grpc::Status GetSession(grpc::ServerContext*,
                          const pb::GetSessionRequest* request,
                          pb::SessionInfo* response) override {
    auto c = Ctx();
    return backend_->GetSession(c.get(), *request, response);
  }

 private:
  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(20));
    return c;
  }

  static void WaitForCancel(grpc::ServerContext* ctx) {
    const auto give_up =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!ctx->IsCancelled() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  pb::StreamResponse Forward(const pb::StreamRequest& request) {
    ++forwarded_;
    pb::StreamResponse out;
    out.set_request_id(request.request_id());
    out.set_session_id(request.session_id());
    pb::PredictRequest p;
    p.set_session_id(request.session_id());
    *p.mutable_inputs() = request.inputs();
    if (request.has_first_step()) p.set_first_step(request.first_step());
    pb::PredictResponse r;
    auto c = Ctx();
    const grpc::Status status = backend_->Predict(c.get(), p, &r);
    if (!status.ok()) {
      out.mutable_error()->set_code(status.error_code());
      out.mutable_error()->set_message(status.error_message());
      return out;
    }
    if (r.replayed()) ++replayed_;
    *out.mutable_outputs() = r.outputs();
    out.set_next_step(r.next_step());
    out.set_replayed(r.replayed());
    return out;
  }

  const ProxyPlan plan_;
  std::unique_ptr<pb::LstmServe::Stub> backend_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<int> stream_calls_{0}, stream_messages_{0}, forwarded_{0},
      replayed_{0}, predict_calls_{0}, get_model_calls_{0};
};

}  // namespace lstmserve::client_test
