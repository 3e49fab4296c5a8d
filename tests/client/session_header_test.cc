// Every unary call on a session carries its id as the x-session-id
// metadata (a front proxy routes by it: docs/DEPLOY.md), calls on no
// session carry none, and with ClientOptions::session_affinity so does each
// streaming session's own stream. A generic gRPC server records what
// arrives.
#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "client_fixture.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "lstmserve/v1/lstmserve.pb.h"

namespace lstmserve::client_test {
namespace {

// GetSession: a session of model "m" at step 0, whatever was asked (so that
// a StreamingSession can be opened).
class AnswerGetSession : public grpc::ServerGenericBidiReactor {
 public:
  AnswerGetSession() { StartRead(&request_); }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    ::lstmserve::v1::SessionInfo info;
    info.set_session_id("s-stream");
    info.set_model("m");
    info.set_version(1);
    info.set_state_size(2);
    const std::string bytes = info.SerializeAsString();
    grpc::Slice slice(bytes);
    response_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }
  void OnDone() override { delete this; }

 private:
  grpc::ByteBuffer request_, response_;
};

// Answers GetSession as above and every other call UNIMPLEMENTED, after
// noting its method and x-session-id ("-" when absent).
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
    if (ctx->method() == "/lstmserve.v1.LstmServe/GetSession") {
      return new AnswerGetSession;
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

class SessionHeaderTest : public testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterCallbackGenericService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }
  ClientOptions Options() {
    ClientOptions o = FastOptions("127.0.0.1:" + std::to_string(port_));
    o.max_retries = 0;
    return o;
  }
  RecordingService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// With session_affinity, a streaming session's own stream carries its id;
// without, the shared stream carries none.
TEST_F(SessionHeaderTest, AStreamWithSessionAffinityCarriesItsSessionsId) {
  for (const bool affinity : {true, false}) {
    ClientOptions o = Options();
    o.session_affinity = affinity;
    auto client = ConnectTo(o);
    ASSERT_NE(client, nullptr);
    auto stream = client->OpenStream({.session_id = "s-stream"});
    ASSERT_TRUE(stream.ok()) << stream.status();
    auto result = (*stream)->Send({1.0f, 2.0f}, 1);
    EXPECT_FALSE(Await(result).ok());  // the recorder refuses the stream
    EXPECT_TRUE((*stream)->Close().ok());
    EXPECT_EQ(service_.seen().at("/lstmserve.v1.LstmServe/Stream"),
              affinity ? "s-stream" : "-");
    EXPECT_EQ(service_.seen().at("/lstmserve.v1.LstmServe/GetSession"),
              "s-stream");
  }
}

TEST_F(SessionHeaderTest, EveryUnarySessionCallCarriesItsId) {
  RecordingService& service = service_;
  auto client = ConnectTo(Options());
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
}

}  // namespace
}  // namespace lstmserve::client_test
