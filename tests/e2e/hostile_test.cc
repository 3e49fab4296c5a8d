// Hostile and broken input over real gRPC, as classes: messages that do not
// parse, 100 kB strings echoed into errors, inconsistent stream messages,
// and a repository with a broken model version.
#include <filesystem>

#include "e2e_fixture.h"
#include "gmock/gmock.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "grpcpp/impl/codegen/sync_stream.h"
#include "server/core/model_registry.h"

namespace lstmserve::e2e {
namespace {

using testing::HasSubstr;

// Bytes that no protobuf message parses: a field header whose varint never
// ends.
grpc::ByteBuffer Garbage() {
  static const char bytes[] = "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
  grpc::Slice slice(bytes, sizeof(bytes) - 1);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::Status RawUnary(grpc::Channel* channel, const std::string& method) {
  grpc::internal::RpcMethod rpc(method.c_str(),
                                grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::ByteBuffer response;
  return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel, rpc, Ctx().get(), Garbage(), &response);
}

class HostileTest : public testing::Test {
 protected:
  void SetUp() override {
    server_ = StartServer();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::LstmServe::NewStub(channel_);
  }
  std::unique_ptr<server::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LstmServe::Stub> stub_;
};

TEST_F(HostileTest, UnparseableUnaryRequestsAreInvalidArgumentOnEveryMethod) {
  for (const char* method :
       {"ListModels", "GetModel", "Predict", "CreateSession", "GetSession",
        "ResetSession", "CloseSession", "ListSessions", "ExportSession",
        "ImportSession", "Forecast", "GetServerStats"}) {
    grpc::Status s = RawUnary(channel_.get(),
                              std::string("/lstmserve.v1.LstmServe/") + method);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_THAT(s.error_message(), HasSubstr("not a valid lstmserve.v1."))
        << method;
  }
}

TEST_F(HostileTest, AnUnparseableStreamMessageEndsTheStreamInvalidArgument) {
  grpc::internal::RpcMethod rpc("/lstmserve.v1.LstmServe/Stream",
                                grpc::internal::RpcMethod::BIDI_STREAMING);
  auto ctx = Ctx();
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>>
      stream(grpc::internal::ClientReaderWriterFactory<
             grpc::ByteBuffer, grpc::ByteBuffer>::Create(channel_.get(), rpc,
                                                         ctx.get()));
  // A good message first: it is answered.
  v1::StreamRequest good;
  good.set_request_id(1);
  good.set_session_id("ok");
  good.set_create_model("sunspots");
  *good.mutable_inputs() = MakeTensor({1.0f}, 1);
  grpc::ByteBuffer raw;
  bool own;
  ASSERT_TRUE(
      grpc::SerializationTraits<v1::StreamRequest>::Serialize(good, &raw, &own)
          .ok());
  ASSERT_TRUE(stream->Write(raw));
  grpc::ByteBuffer answer;
  ASSERT_TRUE(stream->Read(&answer));
  // Then garbage: the stream ends with INVALID_ARGUMENT, never OK.
  stream->Write(Garbage());
  stream->WritesDone();
  while (stream->Read(&answer)) {
  }
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("stream message 2"));
}

TEST_F(HostileTest, HundredKilobyteStringsAreCutInEveryError) {
  const std::string huge(100000, 'q');
  constexpr size_t kBound = 400;
  auto expect_short = [&](const grpc::Status& s, const char* what) {
    EXPECT_FALSE(s.ok()) << what;
    EXPECT_NE(s.error_code(), grpc::StatusCode::INTERNAL) << what;
    EXPECT_NE(s.error_code(), grpc::StatusCode::UNKNOWN) << what;
    EXPECT_LT(s.error_message().size(), kBound) << what;
  };
  {
    v1::GetModelRequest r;
    r.set_name(huge);
    v1::ModelInfo out;
    expect_short(stub_->GetModel(Ctx().get(), r, &out), "GetModel");
  }
  {
    v1::PredictRequest r;
    r.set_model(huge);
    *r.mutable_inputs() = MakeTensor({1.0f}, 1);
    v1::PredictResponse out;
    expect_short(stub_->Predict(Ctx().get(), r, &out), "Predict model");
    r.set_session_id(huge);
    expect_short(stub_->Predict(Ctx().get(), r, &out), "Predict session");
  }
  {
    v1::CreateSessionRequest r;
    r.set_session_id(huge);
    r.set_model("sunspots");
    v1::SessionInfo out;
    expect_short(stub_->CreateSession(Ctx().get(), r, &out), "Create id");
    r.set_session_id("fine");
    r.set_model(huge);
    expect_short(stub_->CreateSession(Ctx().get(), r, &out), "Create model");
  }
  {
    v1::SessionInfo info;
    v1::GetSessionRequest g;
    g.set_session_id(huge);
    expect_short(stub_->GetSession(Ctx().get(), g, &info), "GetSession");
    v1::ResetSessionRequest r;
    r.set_session_id(huge);
    expect_short(stub_->ResetSession(Ctx().get(), r, &info), "ResetSession");
    v1::CloseSessionRequest c;
    c.set_session_id(huge);
    v1::CloseSessionResponse closed;
    expect_short(stub_->CloseSession(Ctx().get(), c, &closed), "Close");
    v1::ExportSessionRequest e;
    e.set_session_id(huge);
    v1::SessionSnapshot snap;
    expect_short(stub_->ExportSession(Ctx().get(), e, &snap), "Export");
    v1::ImportSessionRequest i;
    i.mutable_snapshot()->set_session_id(huge);
    i.mutable_snapshot()->set_model(huge);
    i.mutable_snapshot()->set_version(1);
    expect_short(stub_->ImportSession(Ctx().get(), i, &info), "Import id");
    i.mutable_snapshot()->set_session_id("fine");
    expect_short(stub_->ImportSession(Ctx().get(), i, &info), "Import model");
  }
  {
    v1::ListSessionsRequest r;
    r.set_page_token(huge);
    v1::ListSessionsResponse out;
    EXPECT_TRUE(stub_->ListSessions(Ctx().get(), r, &out).ok());
  }
  {  // On a stream, each error is in-band and short.
    auto ctx = Ctx();
    auto stream = stub_->Stream(ctx.get());
    v1::StreamRequest r;
    r.set_request_id(1);
    r.set_session_id(huge);
    *r.mutable_inputs() = MakeTensor({1.0f}, 1);
    ASSERT_TRUE(stream->Write(r));
    r.set_request_id(2);
    r.set_create_model(huge);
    ASSERT_TRUE(stream->Write(r));
    r.set_request_id(3);
    r.set_session_id("fine");
    ASSERT_TRUE(stream->Write(r));
    stream->WritesDone();
    v1::StreamResponse out;
    int answered = 0;
    while (stream->Read(&out)) {
      ++answered;
      EXPECT_TRUE(out.has_error());
      EXPECT_LT(out.error().message().size(), kBound);
    }
    EXPECT_EQ(answered, 3);
    EXPECT_TRUE(stream->Finish().ok());
  }
}

TEST_F(HostileTest, StreamMessagesMustAgreeWithTheSessionAndCarryUniqueIds) {
  auto ctx = Ctx();
  auto stream = stub_->Stream(ctx.get());
  v1::StreamRequest r;
  r.set_request_id(1);
  r.set_session_id("s1");
  r.set_create_model("sunspots");
  *r.mutable_inputs() = MakeTensor({1.0f}, 1);
  ASSERT_TRUE(stream->Write(r));
  v1::StreamResponse out;
  ASSERT_TRUE(stream->Read(&out));
  ASSERT_FALSE(out.has_error()) << out.error().message();
  // The session runs sunspots; a message creating it on elnino disagrees.
  r.set_request_id(2);
  r.set_create_model("elnino");
  ASSERT_TRUE(stream->Write(r));
  ASSERT_TRUE(stream->Read(&out));
  EXPECT_EQ(out.error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(out.error().message(), HasSubstr("runs model \"sunspots\""));
  r.set_request_id(3);
  r.set_create_model("sunspots");
  r.set_create_version(7);
  ASSERT_TRUE(stream->Write(r));
  ASSERT_TRUE(stream->Read(&out));
  EXPECT_EQ(out.error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&out));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(HostileTest, StatelessPredictWithFirstStepIsInvalidArgument) {
  v1::PredictRequest r;
  r.set_model("sunspots");
  r.set_first_step(0);
  *r.mutable_inputs() = MakeTensor({1.0f}, 1);
  v1::PredictResponse out;
  grpc::Status s = stub_->Predict(Ctx().get(), r, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("stateless"));
}

TEST(HostileRepositoryTest, ABrokenModelVersionIsSkippedAndTheRestServed) {
  testutil::TempDir repo;
  std::filesystem::copy(testutil::SourcePath("models/sunspots"),
                        repo.Join("sunspots"),
                        std::filesystem::copy_options::recursive);
  std::filesystem::create_directories(repo.Join("broken/1"));
  testutil::WriteFile(repo.Join("broken/1/config.json"), "{\"cell\": ");
  std::filesystem::create_directories(repo.Join("sunspots/2"));
  testutil::WriteFile(repo.Join("sunspots/2/config.json"),
                      std::string(100000, '[') + std::string(100000, ']'));
  server::ServerOptions options = TestOptions();
  options.model_repo = repo.path();
  auto server = StartServer(options);
  ASSERT_NE(server, nullptr);
  auto stub = Connect(server->address());
  v1::ListModelsResponse list;
  ASSERT_TRUE(stub->ListModels(Ctx().get(), {}, &list).ok());
  ASSERT_EQ(list.models_size(), 1);
  EXPECT_EQ(list.models(0).name(), "sunspots");
  EXPECT_EQ(list.models(0).version(), 1);
  // Each broken version is refused with its error, asked again.
  v1::LoadModelRequest load;
  load.set_name("broken");
  v1::LoadModelResponse loaded;
  grpc::Status status = stub->LoadModel(Ctx().get(), load, &loaded);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(),
              testing::HasSubstr("model=broken version=1 not loaded"));
  load.set_name("sunspots");
  ASSERT_TRUE(stub->LoadModel(Ctx().get(), load, &loaded).ok());
  EXPECT_THAT(loaded.versions(), testing::ElementsAre(1));
  ASSERT_EQ(loaded.events_size(), 1);
  EXPECT_THAT(loaded.events(0),
              testing::HasSubstr("model=sunspots version=2 not loaded"));
}

}  // namespace
}  // namespace lstmserve::e2e
