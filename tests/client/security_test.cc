// The client library and lstm-client against a server with mutual TLS and
// bearer tokens: ClientOptions' TLS files and token reach every call and
// stream; without them calls fail with the server's codes.
#include <sys/stat.h>

#include <fstream>

#include "client_fixture.h"
#include "gmock/gmock.h"
#include "testutil/pki.h"

namespace lstmserve::client_test {
namespace {

using testing::HasSubstr;

constexpr char kToken[] = "client-test-token-000001";

class SecureServerTest : public testing::Test {
 protected:
  void SetUp() override {
    pki_.MakeCa("ca");
    pki_.MakeCert("server", "ca", "localhost", "DNS:localhost");
    pki_.MakeCert("client", "ca", "client", "DNS:client");
    tokens_ = tmp_.Join("tokens");
    std::ofstream(tokens_) << kToken << " alice\n";
    ::chmod(tokens_.c_str(), 0600);
    server::ServerOptions o = ServerOptionsOn();
    o.tls_cert = pki_.Path("server.pem");
    o.tls_key = pki_.Path("server.key");
    o.tls_client_ca = pki_.Path("ca.pem");
    o.auth_tokens = tokens_;
    server_ = StartServer(o);
    ASSERT_NE(server_, nullptr);
  }
  ClientOptions Secure() {
    ClientOptions o = FastOptions(server_->address());
    o.tls_ca = pki_.Path("ca.pem");
    o.tls_cert = pki_.Path("client.pem");
    o.tls_key = pki_.Path("client.key");
    o.tls_server_name = "localhost";
    o.token = kToken;
    o.max_retries = 1;
    return o;
  }
  testutil::TempDir tmp_;
  testutil::Pki pki_{tmp_.path()};
  std::string tokens_;
  std::unique_ptr<server::Server> server_;
};

TEST_F(SecureServerTest, TheLibrarySendsTlsFilesAndTokenOnEveryCall) {
  auto client = ConnectTo(Secure());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->ListModels().ok());
  const std::vector<float> inputs = SequenceInputs(40, 3);
  const std::vector<float> reference =
      StatelessReference(*client, "sunspots", inputs);
  auto stream = client->OpenStream({.model = "sunspots"});
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::vector<float> outputs;
  for (int t = 0; t < 40; ++t) {
    auto f = (*stream)->Send({inputs[t]}, 1);
    absl::StatusOr<client::StepResult> r = Await(f);
    ASSERT_TRUE(r.ok()) << r.status();
    outputs.insert(outputs.end(), r->outputs.begin(), r->outputs.end());
  }
  ExpectIdentical(outputs, reference);
  auto info = client->GetSession((*stream)->id());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->owner, "alice");
}

TEST_F(SecureServerTest, MissingTokenOrCertificateFails) {
  ClientOptions no_token = Secure();
  no_token.token = "";
  auto a = ConnectTo(no_token);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->ListModels().status().code(),
            absl::StatusCode::kUnauthenticated);

  ClientOptions no_cert = Secure();
  no_cert.tls_cert = no_cert.tls_key = "";
  auto b = ConnectTo(no_cert);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->ListModels().status().code(), absl::StatusCode::kUnavailable);

  ClientOptions bad_file = Secure();
  bad_file.tls_ca = tmp_.Join("missing.pem");
  auto c = Client::Connect(bad_file);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("missing.pem"));
}

TEST_F(SecureServerTest, LstmClientTakesTheTlsFlagsAndATokenFile) {
  const std::string token_file = tmp_.Join("token");
  std::ofstream(token_file) << kToken << "\n";
  const std::string tls = absl::StrCat(
      " --tls-ca ", pki_.Path("ca.pem"), " --tls-cert ",
      pki_.Path("client.pem"), " --tls-key ", pki_.Path("client.key"),
      " --tls-server-name localhost --timeout 5 --target ", server_->address());
  const std::string bin = LSTMSERVE_LSTM_CLIENT_BIN;
  testutil::CommandResult ok = testutil::RunCommand(
      bin + tls + " --token-file " + token_file + " models");
  EXPECT_EQ(ok.exit_code, 0) << ok.stderr_text;
  EXPECT_THAT(ok.stdout_text, HasSubstr("sunspots"));

  testutil::CommandResult from_env = testutil::RunCommand(
      absl::StrCat("LSTMSERVE_TOKEN=", kToken, " ", bin, tls, " models"));
  EXPECT_EQ(from_env.exit_code, 0) << from_env.stderr_text;

  testutil::CommandResult none =
      testutil::RunCommand("LSTMSERVE_TOKEN= " + bin + tls + " models");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.stderr_text, HasSubstr("UNAUTHENTICATED"));

  testutil::CommandResult unreadable = testutil::RunCommand(
      bin + tls + " --token-file " + tmp_.Join("nope") + " models");
  EXPECT_EQ(unreadable.exit_code, 1);
  EXPECT_THAT(unreadable.stderr_text, HasSubstr("--token-file"));
}

}  // namespace
}  // namespace lstmserve::client_test
