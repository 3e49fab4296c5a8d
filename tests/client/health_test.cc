// Client::CheckHealth and `lstm-client health`: the hand-encoded
// grpc.health.v1 messages, against lstm-server's default health service, a
// plain gRPC server whose serving status the test sets, a fake health
// service that answers chosen bytes, and an address with nothing listening.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "client/internal.h"
#include "client_fixture.h"
#include "grpcpp/ext/health_check_service_server_builder_option.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "lstmserve/client.h"
#include "lstmserve/v1/lstmserve.grpc.pb.h"

namespace lstmserve::client_test {
namespace {

using client::internal::DecodeHealthCheckResponse;
using client::internal::EncodeHealthCheckRequest;
using testutil::CommandResult;
using testutil::RunCommand;

const std::string kBinary = LSTMSERVE_LSTM_CLIENT_BIN;
constexpr char kCheckMethod[] = "/grpc.health.v1.Health/Check";

int CountLines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// A plain gRPC server running only gRPC's default health service, whose
// serving statuses the test sets.
class HealthOnlyServer {
 public:
  HealthOnlyServer() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_GT(port_, 0);
  }
  ~HealthOnlyServer() {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(100));
    }
  }
  grpc::HealthCheckServiceInterface* health() {
    return server_->GetHealthCheckService();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// A server whose Health/Check answers `answer` (raw bytes) with `status`,
// and records the request bytes it received. gRPC's own health service is
// disabled so the generic service sees the call.
class FakeHealthServer final : public grpc::CallbackGenericService {
 public:
  FakeHealthServer(std::string answer, grpc::Status status = grpc::Status::OK)
      : answer_(std::move(answer)), status_(std::move(status)) {
    grpc::ServerBuilder builder;
    builder.SetOption(
        std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterCallbackGenericService(this);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_GT(port_, 0);
  }
  ~FakeHealthServer() override {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(100));
    }
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    return new Reactor(this, context->method());
  }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    Reactor(FakeHealthServer* server, const std::string& method)
        : server_(server) {
      if (method != kCheckMethod) {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, method));
        return;
      }
      StartRead(&request_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::INTERNAL, "no request"));
        return;
      }
      {
        absl::MutexLock lock(&server_->mu_);
        server_->requests_.push_back(ToString(request_));
      }
      if (!server_->status_.ok()) {
        Finish(server_->status_);
        return;
      }
      grpc::Slice slice(server_->answer_);
      response_ = grpc::ByteBuffer(&slice, 1);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    FakeHealthServer* server_;
    grpc::ByteBuffer request_;
    grpc::ByteBuffer response_;
  };

  const std::string answer_;
  const grpc::Status status_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  mutable absl::Mutex mu_;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

// An address that had a server a moment ago and has nothing listening now.
int FreePort() {
  auto s = StartServer();
  EXPECT_NE(s, nullptr);
  return s ? s->port() : 1;
}

// --- the wire format ---

TEST(HealthWireTest, RequestEncoding) {
  EXPECT_EQ(EncodeHealthCheckRequest(""), "");
  EXPECT_EQ(EncodeHealthCheckRequest("abc"), std::string("\x0a\x03") + "abc");
  // A length of 200 takes a two-byte varint: 0xC8 0x01.
  const std::string long_name(200, 'x');
  EXPECT_EQ(EncodeHealthCheckRequest(long_name),
            std::string("\x0a\xc8\x01") + long_name);
}

TEST(HealthWireTest, ResponseDecoding) {
  EXPECT_EQ(*DecodeHealthCheckResponse(""), 0);  // absent: UNKNOWN
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x01")), 1);
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x02")), 2);
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x03")), 3);
  // Repeated: the last one wins.
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x02\x08\x01")), 1);
  // Unknown fields of every wire type are skipped.
  const std::string unknown =
      std::string("\x10\x96\x01")                  // field 2, varint 150
      + std::string("\x19") + std::string(8, 'a')  // field 3, fixed64
      + std::string("\x22\x02hi")                  // field 4, 2 bytes
      + std::string("\x2d") + std::string(4, 'b')  // field 5, fixed32
      + std::string("\x08\x01");
  EXPECT_EQ(*DecodeHealthCheckResponse(unknown), 1);
  // A two-byte varint value and a negative enum (10 bytes, low 32 bits).
  EXPECT_EQ(*DecodeHealthCheckResponse(std::string("\x08\x81\x01")), 129);
  EXPECT_EQ(*DecodeHealthCheckResponse(
                std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")),
            -1);
}

TEST(HealthWireTest, MalformedResponsesAreInternal) {
  for (const std::string& bad : {
           std::string("\x08"),              // value missing
           std::string("\x08\x81"),          // varint cut short
           std::string("\x80"),              // key cut short
           std::string("\x00\x01", 2),       // field number 0
           std::string("\x0b\x01"),          // start group
           std::string("\x0e\x01"),          // wire type 6
           std::string("\x12\x05") + "abc",  // length past the end
           std::string("\x12\xff\xff\xff\xff\xff\xff\xff\xff\x7f"),  // huge
           std::string("\x19") + "1234567",  // fixed64 short by one
           std::string("\x1d") + "123",      // fixed32 short by one
           std::string(11, '\xff'),          // key longer than 10 bytes
       }) {
    auto decoded = DecodeHealthCheckResponse(bad);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInternal)
        << "bytes of size " << bad.size() << " decoded as "
        << (decoded.ok() ? std::to_string(*decoded) : "error");
  }
}

// --- Client::CheckHealth ---

using HealthTest = ServerAndClientTest;

TEST_F(HealthTest, RunningServerIsServing) {
  auto serving = client_->CheckHealth();
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
}

TEST_F(HealthTest, TheServiceAndEachServedModelHaveTheirOwnStatus) {
  auto service = client_->CheckHealth("lstmserve.v1.LstmServe");
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_TRUE(*service);
  for (const char* model : {"sunspots", "elnino"}) {
    auto m =
        client_->CheckHealth(std::string("lstmserve.v1.LstmServe/") + model);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_TRUE(*m) << model;
  }
  EXPECT_EQ(client_->CheckHealth("lstmserve.v1.LstmServe/nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(HealthModelTest, AnUnloadedModelIsNotServing) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto stub = lstmserve::v1::LstmServe::NewStub(grpc::CreateChannel(
      server->address(), grpc::InsecureChannelCredentials()));
  lstmserve::v1::UnloadModelRequest unload;
  unload.set_name("elnino");
  lstmserve::v1::UnloadModelResponse unloaded;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(stub->UnloadModel(&ctx, unload, &unloaded).ok());
  auto client = ConnectTo(server->address());
  auto m = client->CheckHealth("lstmserve.v1.LstmServe/elnino");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(*m);
  auto whole = client->CheckHealth();
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_TRUE(*whole);  // the server still serves sunspots
}

TEST_F(HealthTest, UnknownServiceIsNotFound) {
  auto r = client_->CheckHealth("no.such.Service");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
}

TEST(HealthStatusTest, ServingStatusesAsSetOnTheServer) {
  HealthOnlyServer server;
  server.health()->SetServingStatus("lstmserve.test.Up", true);
  server.health()->SetServingStatus("lstmserve.test.Down", false);
  auto client = ConnectTo(server.address());
  ASSERT_NE(client, nullptr);

  auto whole = client->CheckHealth();
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_TRUE(*whole);
  auto up = client->CheckHealth("lstmserve.test.Up");
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_TRUE(*up);
  auto down = client->CheckHealth("lstmserve.test.Down");
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_FALSE(*down);
  EXPECT_EQ(client->CheckHealth("lstmserve.test.Other").status().code(),
            absl::StatusCode::kNotFound);

  server.health()->SetServingStatus(false);  // every service, "" included
  whole = client->CheckHealth();
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_FALSE(*whole);
}

TEST(HealthStatusTest, AnswersOfAFakeHealthService) {
  struct Case {
    std::string answer;
    grpc::Status status;
    absl::StatusCode want_code;
    bool want_serving;
  };
  const Case cases[] = {
      {std::string("\x08\x01"), grpc::Status::OK, absl::StatusCode::kOk, true},
      {std::string("\x08\x02"), grpc::Status::OK, absl::StatusCode::kOk, false},
      {"", grpc::Status::OK, absl::StatusCode::kOk, false},  // UNKNOWN
      {std::string("\x08\x03"), grpc::Status::OK, absl::StatusCode::kNotFound,
       false},  // SERVICE_UNKNOWN
      {std::string("\x08\x81"), grpc::Status::OK, absl::StatusCode::kInternal,
       false},  // truncated
      {"", grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "go away"),
       absl::StatusCode::kPermissionDenied, false},
  };
  for (const Case& c : cases) {
    FakeHealthServer server(c.answer, c.status);
    auto client = ConnectTo(server.address());
    ASSERT_NE(client, nullptr);
    auto r = client->CheckHealth("svc.A");
    EXPECT_EQ(r.status().code(), c.want_code) << r.status();
    if (r.ok()) {
      EXPECT_EQ(*r, c.want_serving);
    }
    if (c.status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      EXPECT_EQ(std::string(r.status().message()), "go away");
    }
    // Exactly one call (not retried), carrying the encoded service name.
    EXPECT_EQ(server.requests(),
              std::vector<std::string>({std::string("\x0a\x05svc.A")}));
  }
}

TEST(HealthNoServerTest, NothingListeningIsUnavailableWithinTheDeadline) {
  ClientOptions options =
      FastOptions("127.0.0.1:" + std::to_string(FreePort()));
  options.deadline = std::chrono::milliseconds(2000);
  options.max_retries = 3;
  auto client = ConnectTo(options);
  ASSERT_NE(client, nullptr);
  const auto start = std::chrono::steady_clock::now();
  auto r = client->CheckHealth();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_LT(elapsed, options.deadline);
}

TEST(HealthNoServerTest, RetriedUntilTheServerComesUp) {
  const int port = FreePort();
  ClientOptions options = FastOptions("127.0.0.1:" + std::to_string(port));
  options.deadline = std::chrono::seconds(20);
  options.max_retries = 100;
  options.max_backoff = std::chrono::milliseconds(100);
  auto client = ConnectTo(options);
  ASSERT_NE(client, nullptr);
  // Nothing listens for the first 500 ms; a call that is not retried fails.
  auto late = std::async(std::launch::async, [port] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return StartServer(ServerOptionsOn("127.0.0.1:" + std::to_string(port)));
  });
  auto r = client->CheckHealth();
  auto server = late.get();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(*r);
}

// --- lstm-client health ---

TEST_F(HealthTest, CliPrintsServingAndExitsZero) {
  CommandResult r = RunCommand("'" + kBinary + "' --target " +
                               server_->address() + " health");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "SERVING\n");
  EXPECT_EQ(r.stderr_text, "");
}

TEST(HealthCliTest, NotServingExitsOneAndErrorsAreOneLine) {
  HealthOnlyServer server;
  server.health()->SetServingStatus("lstmserve.test.Up", true);
  server.health()->SetServingStatus(false);
  const std::string base = "'" + kBinary + "' --target " + server.address();

  CommandResult r = RunCommand(base + " health");
  EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "NOT_SERVING\n");
  EXPECT_EQ(r.stderr_text, "");

  server.health()->SetServingStatus("lstmserve.test.Up", true);
  r = RunCommand(base + " health --service lstmserve.test.Up");
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "SERVING\n");

  r = RunCommand(base + " health --service no.such.Service");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.stdout_text, "");
  EXPECT_EQ(CountLines(r.stderr_text), 1) << r.stderr_text;
  EXPECT_EQ(r.stderr_text.rfind("lstm-client: NOT_FOUND: ", 0), 0u)
      << r.stderr_text;

  r = RunCommand("'" + kBinary + "' --target 127.0.0.1:" +
                 std::to_string(FreePort()) + " --timeout 2 health");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.stdout_text, "");
  EXPECT_EQ(CountLines(r.stderr_text), 1) << r.stderr_text;
  EXPECT_EQ(r.stderr_text.rfind("lstm-client: UNAVAILABLE: ", 0), 0u)
      << r.stderr_text;

  r = RunCommand("'" + kBinary + "' health --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.stdout_text.find("--service"), std::string::npos);
  r = RunCommand("'" + kBinary + "' --help");
  EXPECT_NE(r.stdout_text.find("health"), std::string::npos);
}

}  // namespace
}  // namespace lstmserve::client_test
