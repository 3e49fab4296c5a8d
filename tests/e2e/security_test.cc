// Security over real gRPC: bearer tokens (UNAUTHENTICATED without one),
// sessions that other identities cannot see or probe (NOT_FOUND, the same
// message as for a missing id, on every session call), admin methods
// (PERMISSION_DENIED), TLS and mutual TLS with certificates made here by
// openssl, certificate rotation without a restart, the plaintext rule, and
// the per-identity limits.
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "e2e_fixture.h"
#include "gmock/gmock.h"
#include "grpcpp/security/credentials.h"
#include "testutil/pki.h"

namespace lstmserve::e2e {
namespace {

using testing::HasSubstr;
using testing::Not;

constexpr char kAliceToken[] = "alice-secret-token-0001";
constexpr char kBobToken[] = "bob-secret-token-000002";
constexpr char kRootToken[] = "root-secret-token-00003";

using testutil::Pki;

std::unique_ptr<v1::LstmServe::Stub> ConnectTls(
    const std::string& address, const grpc::SslCredentialsOptions& ssl) {
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  return v1::LstmServe::NewStub(
      grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args));
}

std::unique_ptr<grpc::ClientContext> AuthCtx(const std::string& token) {
  auto ctx = Ctx(10);
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

class TokensTest : public testing::Test {
 protected:
  void SetUp() override {
    tokens_ = tmp_.Join("tokens");
    WriteTokens(absl::StrCat(kAliceToken, " alice\n", kBobToken, " bob\n",
                             kRootToken, " root admin\n"));
    server::ServerOptions o = TestOptions();
    o.auth_tokens = tokens_;
    o.credentials_reload_interval = absl::Seconds(1);
    Configure(o);
    server_ = StartServer(o);
    ASSERT_NE(server_, nullptr);
    stub_ = Connect(server_->address());
  }
  virtual void Configure(server::ServerOptions&) {}
  void WriteTokens(const std::string& text) {
    std::ofstream(tokens_, std::ios::trunc) << text;
    ::chmod(tokens_.c_str(), 0600);
  }

  grpc::Status Create(const std::string& token, const std::string& id) {
    v1::CreateSessionRequest r;
    r.set_session_id(id);
    r.set_model("sunspots");
    v1::SessionInfo info;
    return stub_->CreateSession(AuthCtx(token).get(), r, &info);
  }

  // Every session call on `id` as `token`: method name -> status.
  std::vector<std::pair<std::string, grpc::Status>> EverySessionCall(
      const std::string& token, const std::string& id) {
    std::vector<std::pair<std::string, grpc::Status>> out;
    v1::PredictRequest predict;
    predict.set_session_id(id);
    *predict.mutable_inputs() = MakeTensor({1.0f}, 1);
    v1::PredictResponse predicted;
    out.emplace_back("Predict",
                     stub_->Predict(AuthCtx(token).get(), predict, &predicted));
    v1::GetSessionRequest get;
    get.set_session_id(id);
    v1::SessionInfo info;
    out.emplace_back("GetSession",
                     stub_->GetSession(AuthCtx(token).get(), get, &info));
    v1::ResetSessionRequest reset;
    reset.set_session_id(id);
    out.emplace_back("ResetSession",
                     stub_->ResetSession(AuthCtx(token).get(), reset, &info));
    v1::ExportSessionRequest exp;
    exp.set_session_id(id);
    v1::SessionSnapshot snapshot;
    out.emplace_back("ExportSession", stub_->ExportSession(AuthCtx(token).get(),
                                                           exp, &snapshot));
    v1::ForecastRequest forecast;
    forecast.set_session_id(id);
    forecast.set_horizon(2);
    v1::ForecastResponse forecasted;
    out.emplace_back("Forecast", stub_->Forecast(AuthCtx(token).get(), forecast,
                                                 &forecasted));
    v1::CloseSessionRequest close;
    close.set_session_id(id);
    v1::CloseSessionResponse closed;
    out.emplace_back("CloseSession",
                     stub_->CloseSession(AuthCtx(token).get(), close, &closed));
    // Stream: one message without create_model, then (last: for a missing
    // id it creates the session) one with it.
    for (const bool create : {false, true}) {
      auto ctx = AuthCtx(token);
      auto stream = stub_->Stream(ctx.get());
      v1::StreamRequest m;
      m.set_session_id(id);
      if (create) m.set_create_model("sunspots");
      *m.mutable_inputs() = MakeTensor({1.0f}, 1);
      v1::StreamResponse response;
      grpc::Status status;
      if (stream->Write(m) && stream->Read(&response)) {
        status =
            response.has_error()
                ? grpc::Status(
                      static_cast<grpc::StatusCode>(response.error().code()),
                      response.error().message())
                : grpc::Status::OK;
        stream->WritesDone();
        (void)stream->Finish();
      } else {
        status = stream->Finish();
      }
      out.emplace_back(create ? "Stream+create_model" : "Stream", status);
    }
    return out;
  }

  testutil::TempDir tmp_;
  std::string tokens_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<v1::LstmServe::Stub> stub_;
};

TEST_F(TokensTest, ACallWithoutAValidTokenIsUnauthenticated) {
  for (const std::string& token :
       {std::string(""), std::string("wrong-token-0000000000")}) {
    v1::ListModelsRequest r;
    v1::ListModelsResponse models;
    grpc::Status s = stub_->ListModels(AuthCtx(token).get(), r, &models);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << token;
    EXPECT_THAT(s.error_message(), Not(HasSubstr("wrong-token")));
    EXPECT_EQ(Create(token, "x").error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    auto ctx = AuthCtx(token);
    auto stream = stub_->Stream(ctx.get());
    v1::StreamRequest m;
    m.set_session_id("x");
    m.set_create_model("sunspots");
    *m.mutable_inputs() = MakeTensor({1.0f}, 1);
    stream->Write(m);
    v1::StreamResponse response;
    EXPECT_FALSE(stream->Read(&response));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  v1::ListModelsRequest r;
  v1::ListModelsResponse models;
  EXPECT_TRUE(stub_->ListModels(AuthCtx(kAliceToken).get(), r, &models).ok());
}

TEST_F(TokensTest, AnotherIdentitysSessionLooksExactlyLikeAMissingOne) {
  ASSERT_TRUE(Create(kAliceToken, "alices").ok());
  const auto as_bob = EverySessionCall(kBobToken, "alices");
  const auto missing = EverySessionCall(kBobToken, "nosuchs");
  ASSERT_EQ(as_bob.size(), missing.size());
  for (size_t i = 0; i < as_bob.size(); ++i) {
    const auto& [method, status] = as_bob[i];
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND)
        << method << ": " << status.error_message();
    if (method == "Stream+create_model") continue;  // created "nosuchs"
    EXPECT_EQ(status.error_code(), missing[i].second.error_code()) << method;
    EXPECT_EQ(
        absl::StrReplaceAll(status.error_message(), {{"alices", "nosuchs"}}),
        missing[i].second.error_message())
        << method;
  }
  // Importing or creating on the id is refused, and alice's session is
  // untouched by all of it.
  v1::GetSessionRequest get;
  get.set_session_id("alices");
  v1::SessionInfo info;
  ASSERT_TRUE(stub_->GetSession(AuthCtx(kAliceToken).get(), get, &info).ok());
  EXPECT_EQ(info.next_step(), 0);
  EXPECT_EQ(info.owner(), "alice");
}

TEST_F(TokensTest, ListSessionsShowsOnlyTheCallersUnlessAdmin) {
  ASSERT_TRUE(Create(kAliceToken, "a1").ok());
  ASSERT_TRUE(Create(kBobToken, "b1").ok());
  auto list = [&](const std::string& token) {
    v1::ListSessionsRequest r;
    v1::ListSessionsResponse out;
    EXPECT_TRUE(stub_->ListSessions(AuthCtx(token).get(), r, &out).ok());
    std::vector<std::string> ids;
    for (const auto& s : out.sessions()) {
      ids.push_back(s.owner() + "/" + s.session_id());
    }
    return ids;
  };
  EXPECT_THAT(list(kAliceToken), testing::ElementsAre("alice/a1"));
  EXPECT_THAT(list(kBobToken), testing::ElementsAre("bob/b1"));
  EXPECT_THAT(list(kRootToken), testing::ElementsAre("alice/a1", "bob/b1"));
}

TEST_F(TokensTest, AdminMethodsNeedTheAdminRole) {
  v1::LoadModelRequest load;
  load.set_name("sunspots");
  v1::LoadModelResponse loaded;
  grpc::Status s = stub_->LoadModel(AuthCtx(kAliceToken).get(), load, &loaded);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::UnloadModelRequest unload;
  unload.set_name("sunspots");
  v1::UnloadModelResponse unloaded;
  EXPECT_EQ(stub_->UnloadModel(AuthCtx(kBobToken).get(), unload, &unloaded)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(stub_->LoadModel(AuthCtx(kRootToken).get(), load, &loaded).ok());
}

TEST_F(TokensTest, AChangedTokensFileIsPickedUpWithoutARestart) {
  WriteTokens(absl::StrCat("carol-secret-token-00004 carol\n"));
  v1::ListModelsRequest r;
  v1::ListModelsResponse models;
  bool carol = false;
  for (int i = 0; i < 100 && !carol; ++i) {
    carol =
        stub_->ListModels(AuthCtx("carol-secret-token-00004").get(), r, &models)
            .ok();
    if (!carol) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(carol);
  EXPECT_EQ(
      stub_->ListModels(AuthCtx(kAliceToken).get(), r, &models).error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
}

class LimitsTest : public TokensTest {
 protected:
  void Configure(server::ServerOptions& o) override {
    o.max_sessions_per_identity = 2;
    o.max_requests_per_second = 1;
    o.request_burst = 4;
    o.max_streams = 1;
  }
};

TEST_F(LimitsTest, SessionsPerIdentityRequestRateAndStreams) {
  ASSERT_TRUE(Create(kAliceToken, "a1").ok());
  ASSERT_TRUE(Create(kAliceToken, "a2").ok());
  grpc::Status third = Create(kAliceToken, "a3");
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(third.error_message(), HasSubstr("--max-sessions-per-identity"));
  EXPECT_TRUE(Create(kBobToken, "b1").ok());  // bob has his own allowance
  // alice's burst is 4 requests, refilled at 1 a second: within a few
  // more calls one is refused for her rate, with a retry time.
  grpc::Status over;
  for (int i = 0;
       i < 10 && !absl::StrContains(over.error_message(), "retry in"); ++i) {
    over = Create(kAliceToken, "a4");
    EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  EXPECT_THAT(over.error_message(), HasSubstr("retry in"));
  EXPECT_THAT(over.error_message(), HasSubstr("--max-requests-per-second"));

  auto ctx1 = AuthCtx(kBobToken);
  auto first = stub_->Stream(ctx1.get());
  v1::StreamRequest m;
  m.set_session_id("b1");
  *m.mutable_inputs() = MakeTensor({1.0f}, 1);
  v1::StreamResponse response;
  ASSERT_TRUE(first->Write(m));
  ASSERT_TRUE(first->Read(&response));  // the stream is open
  auto ctx2 = AuthCtx(kRootToken);
  auto second = stub_->Stream(ctx2.get());
  EXPECT_FALSE(second->Read(&response));
  grpc::Status refused = second->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("--max-streams"));
  first->WritesDone();
  EXPECT_TRUE(first->Finish().ok());
}

TEST(PlaintextRuleTest, ANonLoopbackAddressNeedsTlsOrAllowInsecure) {
  server::ServerOptions o = TestOptions();
  o.listen = "0.0.0.0:0";
  auto refused = server::Server::Start(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("--allow-insecure"));

  o.listen = "127.0.0.1:0";
  o.metrics_listen = "0.0.0.0:0";
  auto metrics = server::Server::Start(o);
  ASSERT_FALSE(metrics.ok());
  EXPECT_THAT(metrics.status().message(), HasSubstr("metrics"));

  o.listen = "0.0.0.0:0";
  o.allow_insecure = true;
  auto allowed = server::Server::Start(o);
  EXPECT_TRUE(allowed.ok()) << allowed.status();
}

class TlsTest : public testing::Test {
 protected:
  void SetUp() override {
    pki_.MakeCa("ca");
    pki_.MakeCa("other-ca");
    pki_.MakeCert("server", "ca", "localhost", "DNS:localhost,IP:127.0.0.1");
    pki_.MakeCert("alice", "ca", "alice", "DNS:alice");
    pki_.MakeCert("mallory", "other-ca", "mallory", "DNS:mallory");
    pki_.MakeCert("server2", "other-ca", "localhost",
                  "DNS:localhost,IP:127.0.0.1");
  }
  server::ServerOptions TlsOptions() {
    server::ServerOptions o = TestOptions();
    o.tls_cert = pki_.Path("server.pem");
    o.tls_key = pki_.Path("server.key");
    o.credentials_reload_interval = absl::Seconds(1);
    return o;
  }
  grpc::SslCredentialsOptions Trusting(const std::string& ca) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pki_.Read(ca + ".pem");
    return ssl;
  }
  static grpc::Status Ping(v1::LstmServe::Stub& stub) {
    v1::ListModelsRequest r;
    v1::ListModelsResponse out;
    return stub.ListModels(Ctx(5).get(), r, &out);
  }
  testutil::TempDir tmp_;
  Pki pki_{tmp_.path()};
};

TEST_F(TlsTest, ServesOverTlsAndRefusesClientsThatDoNotTrustIt) {
  auto server = StartServer(TlsOptions());
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Ping(*ConnectTls(server->address(), Trusting("ca"))).ok());
  EXPECT_FALSE(Ping(*ConnectTls(server->address(), Trusting("other-ca"))).ok());
  EXPECT_FALSE(Ping(*Connect(server->address())).ok());  // plaintext
}

TEST_F(TlsTest, MutualTlsRequiresACertificateFromTheClientCa) {
  server::ServerOptions o = TlsOptions();
  o.tls_client_ca = pki_.Path("ca.pem");
  o.identity_from_cert = true;
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  EXPECT_FALSE(Ping(*ConnectTls(server->address(), Trusting("ca"))).ok());
  grpc::SslCredentialsOptions mallory = Trusting("ca");
  mallory.pem_cert_chain = pki_.Read("mallory.pem");
  mallory.pem_private_key = pki_.Read("mallory.key");
  EXPECT_FALSE(Ping(*ConnectTls(server->address(), mallory)).ok());

  grpc::SslCredentialsOptions alice = Trusting("ca");
  alice.pem_cert_chain = pki_.Read("alice.pem");
  alice.pem_private_key = pki_.Read("alice.key");
  auto stub = ConnectTls(server->address(), alice);
  ASSERT_TRUE(Ping(*stub).ok());
  // The certificate is the identity: the session belongs to "alice".
  v1::CreateSessionRequest create;
  create.set_model("sunspots");
  v1::SessionInfo info;
  ASSERT_TRUE(stub->CreateSession(Ctx().get(), create, &info).ok());
  EXPECT_EQ(info.owner(), "alice");
}

TEST_F(TlsTest, ARotatedCertificateIsUsedWithoutARestart) {
  // The server's files are copies, replaced the way a rotation tool does.
  const std::string cert = tmp_.Join("live.pem"), key = tmp_.Join("live.key");
  auto install = [&](const std::string& name) {
    std::ofstream(cert + ".tmp") << pki_.Read(name + ".pem");
    std::ofstream(key + ".tmp") << pki_.Read(name + ".key");
    std::rename((key + ".tmp").c_str(), key.c_str());
    std::rename((cert + ".tmp").c_str(), cert.c_str());
  };
  install("server");
  server::ServerOptions o = TlsOptions();
  o.tls_cert = cert;
  o.tls_key = key;
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Ping(*ConnectTls(server->address(), Trusting("ca"))).ok());
  EXPECT_FALSE(Ping(*ConnectTls(server->address(), Trusting("other-ca"))).ok());

  install("server2");  // signed by other-ca
  bool rotated = false;
  for (int i = 0; i < 100 && !rotated; ++i) {
    rotated = Ping(*ConnectTls(server->address(), Trusting("other-ca"))).ok();
    if (!rotated) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(rotated) << "the new certificate was not served within 10 s";
  EXPECT_FALSE(Ping(*ConnectTls(server->address(), Trusting("ca"))).ok());
}

}  // namespace
}  // namespace lstmserve::e2e
