// A bare gRPC callback server implementing lstmserve.v1.LstmServe/Stream
// with no compute: each StreamRequest is answered at once, on the gRPC
// thread, with a StreamResponse of the same request id and [T,
// --output-size] zero outputs. It is the transport's limit for
// bench/run_core_bench.sh: lstm-server's steps/s against it is the share
// of the time the server's own work leaves to gRPC.
//
//   build/bench/echo_server --listen 127.0.0.1:0 --port-file F --output-size
//   256
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "lstmserve/v1/lstmserve.grpc.pb.h"

namespace {

namespace v1 = lstmserve::v1;

// One stream: reads a request, queues its answer, writes one at a time.
class EchoReactor final
    : public grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  explicit EchoReactor(int output_size) : output_size_(output_size) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
        if (writing_) return;
      }
      Finish(grpc::Status::OK);
      return;
    }
    v1::StreamResponse response;
    response.set_request_id(request_.request_id());
    response.set_session_id(request_.session_id());
    const int64_t steps =
        request_.inputs().shape_size() > 0 ? request_.inputs().shape(0) : 1;
    response.mutable_outputs()->add_shape(steps);
    response.mutable_outputs()->add_shape(output_size_);
    response.mutable_outputs()->mutable_values()->Resize(
        static_cast<int>(steps) * output_size_, 0.0f);
    response.set_next_step(request_.first_step() + steps);
    const v1::StreamResponse* to_write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      writes_.push_back(std::move(response));
      if (!writing_) {
        writing_ = true;
        to_write = &writes_.front();
      }
    }
    if (to_write) StartWrite(to_write);
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    const v1::StreamResponse* next = nullptr;
    grpc::WriteOptions options;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      writes_.pop_front();
      if (!ok) writes_.clear();
      writing_ = !writes_.empty();
      if (writing_) next = &writes_.front();
      // As lstm-server does: answers queued behind this one leave in one
      // send (the reference must be as good at this as the server).
      if (writes_.size() > 1) options.set_buffer_hint();
      finish = !writing_ && reads_done_;
    }
    if (next) StartWrite(next, options);
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  const int output_size_;
  v1::StreamRequest request_;
  absl::Mutex mu_;
  std::deque<v1::StreamResponse> writes_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
};

class EchoService final : public v1::LstmServe::CallbackService {
 public:
  explicit EchoService(int output_size) : output_size_(output_size) {}
  grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* Stream(
      grpc::CallbackServerContext*) override {
    return new EchoReactor(output_size_);
  }
  // lstm-client bench asks for the model first.
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx,
                                     const v1::GetModelRequest* request,
                                     v1::ModelInfo* info) override {
    info->set_name(request->name());
    info->set_version(1);
    info->add_versions(1);
    info->set_cell("lstm");
    info->set_input_size(input_size_);
    info->set_output_size(output_size_);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* CreateSession(
      grpc::CallbackServerContext* ctx, const v1::CreateSessionRequest* request,
      v1::SessionInfo* info) override {
    info->set_session_id(request->session_id().empty()
                             ? "echo-" + std::to_string(next_id_++)
                             : request->session_id());
    info->set_model(request->model());
    info->set_version(1);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* CloseSession(grpc::CallbackServerContext* ctx,
                                         const v1::CloseSessionRequest*,
                                         v1::CloseSessionResponse*) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  int input_size_ = 64;

 private:
  const int output_size_;
  std::atomic<int64_t> next_id_{1};
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0", port_file;
  int output_size = 256, input_size = 64;
  CLI::App app{
      "echo_server: lstmserve.v1 Stream answered with zeros and no compute "
      "(the transport's limit)"};
  app.add_option("--listen", listen, "host:port")->capture_default_str();
  app.add_option("--port-file", port_file, "Write the bound port here");
  app.add_option("--output-size", output_size, "Floats per output step")
      ->capture_default_str();
  app.add_option("--input-size", input_size, "Input width GetModel reports")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  EchoService service(output_size);
  service.input_size_ = input_size;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "echo_server: cannot listen on " << listen << "\n";
    return 1;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << port << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  server->Wait();
}
