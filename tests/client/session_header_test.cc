// Every unary call on a session carries its id as the x-session-id
// metadata (a front proxy routes by it: docs/DEPLOY.md), and calls on no
// session carry none. A generic gRPC server records what arrives.
#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "client_fixture.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"

namespace lstmserve::client_test {
namespace {

// Answers every call UNIMPLEMENTED, after noting its method and
// x-session-id ("-" when absent).
class RecordingService final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* ctx) override {
    {
      absl::MutexLock lock(&mu_);
      const auto& md = ctx->client_metadata();
      auto it = md.find("x-session-id");
      seen_[ctx->method()] =
          it == md.end() ? "-"
                         : std::string(it->second.data(), it->second.size());
    }
    class Refuse : public grpc::ServerGenericBidiReactor {
     public:
      Refuse() { Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "")); }
      void OnDone() override { delete this; }
    };
    return new Refuse;
  }
  std::map<std::string, std::string> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::string> seen_ ABSL_GUARDED_BY(mu_);
};

TEST(SessionHeaderTest, EverySessionCallCarriesItsId) {
  RecordingService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ClientOptions options = FastOptions("127.0.0.1:" + std::to_string(port));
  options.max_retries = 0;
  auto client = ConnectTo(options);
  ASSERT_NE(client, nullptr);

  (void)client->GetSession("s-get");
  (void)client->ResetSession("s-reset");
  (void)client->CloseSession("s-close");
  (void)client->ExportSession("s-export");
  (void)client->ListModels();
  client::PredictRequest predict;
  predict.session_id = "s-predict";
  predict.inputs = {1.0f};
  predict.steps = 1;
  (void)client->Predict(predict);

  const std::string prefix = "/lstmserve.v1.LstmServe/";
  const auto seen = service.seen();
  EXPECT_EQ(seen.at(prefix + "GetSession"), "s-get");
  EXPECT_EQ(seen.at(prefix + "ResetSession"), "s-reset");
  EXPECT_EQ(seen.at(prefix + "CloseSession"), "s-close");
  EXPECT_EQ(seen.at(prefix + "ExportSession"), "s-export");
  EXPECT_EQ(seen.at(prefix + "Predict"), "s-predict");
  EXPECT_EQ(seen.at(prefix + "ListModels"), "-");
  server->Shutdown();
}

}  // namespace
}  // namespace lstmserve::client_test
