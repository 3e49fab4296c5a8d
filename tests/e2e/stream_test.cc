// Streams that cannot be made to hold unbounded memory or hang: back-pressure
// against a client that does not read, cancel of a paused stream, shutdown
// with idle and busy streams, duplicate request ids.
#include <atomic>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "e2e_fixture.h"
#include "gmock/gmock.h"

namespace lstmserve::e2e {
namespace {

using testing::HasSubstr;

constexpr int kSteps = 1024;  // per message: 4 kB in, 4 kB out

v1::StreamRequest Chunk(uint64_t id, const std::string& session) {
  v1::StreamRequest r;
  r.set_request_id(id);
  r.set_session_id(session);
  r.set_create_model("sunspots");
  *r.mutable_inputs() = MakeTensor(SeriesInputs(kSteps, id), 1);
  return r;
}

int64_t RequestsDone(v1::LstmServe::Stub& stub) {
  v1::ServerStats stats;
  EXPECT_TRUE(stub.GetServerStats(Ctx().get(), {}, &stats).ok());
  int64_t n = 0;
  for (const v1::ModelStats& m : stats.models()) n += m.requests();
  return n;
}

// Waits until `count` has not moved for a while: the writer is blocked by
// flow control. Bounded, so a writer that never blocks fails the test
// instead of hanging it.
void WaitUntilStalled(const std::atomic<int>& count) {
  int last = -1;
  for (int i = 0; i < 300; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int now = count.load();
    if (now == last) return;
    last = now;
  }
}

class StreamTest : public testing::Test {
 protected:
  void Start(server::ServerOptions options) {
    server_ = StartServer(options);
    ASSERT_NE(server_, nullptr);
    stub_ = Connect(server_->address());
  }
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<v1::LstmServe::Stub> stub_;
};

TEST_F(StreamTest, AClientThatDoesNotReadStopsTheServerReadingUntilItReads) {
  server::ServerOptions options = TestOptions();
  options.max_stream_inflight = 1;
  Start(options);
  // 48 MB each way: more than gRPC's flow-control windows can grow to (its
  // BDP probing takes them to 16 MB on a fast loopback) plus the sockets'
  // buffers. At 12 MB a busy machine sometimes let everything through.
  constexpr int kMessages = 12000;
  auto ctx = Ctx(120);
  auto stream = stub_->Stream(ctx.get());
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < kMessages; ++i) {
      if (!stream->Write(Chunk(i, "bp"))) return;
      ++written;
    }
    stream->WritesDone();
  });
  WaitUntilStalled(written);
  // The server stopped reading: what it ran is bounded by what the
  // transport's windows hold, far short of everything the client sent.
  const int64_t done_while_stalled = RequestsDone(*stub_);
  EXPECT_LT(written.load(), kMessages);
  EXPECT_LT(done_while_stalled, kMessages);
  // Reading resumes the stream: every request is answered, in order.
  v1::StreamResponse out;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(stream->Read(&out)) << "response " << i;
    ASSERT_EQ(out.request_id(), static_cast<uint64_t>(i));
    ASSERT_FALSE(out.has_error()) << out.error().message();
  }
  writer.join();
  EXPECT_FALSE(stream->Read(&out));
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(RequestsDone(*stub_), kMessages);
}

TEST_F(StreamTest, ACancelledPausedStreamFinishes) {
  server::ServerOptions options = TestOptions();
  options.max_stream_inflight = 1;
  Start(options);
  auto ctx = Ctx(120);
  auto stream = stub_->Stream(ctx.get());
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < 3000; ++i) {
      if (!stream->Write(Chunk(i, "paused"))) return;
      ++written;
    }
  });
  WaitUntilStalled(written);
  ctx->TryCancel();
  writer.join();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server let go of the stream: it still serves, and shuts down
  // without waiting for it.
  EXPECT_GT(RequestsDone(*stub_), 0);
  server_->Shutdown(absl::Seconds(60));
  server_->Wait();
}

TEST_F(StreamTest, ShutdownFinishesIdleStreamsAtOnceAndBusyOnesWhenDone) {
  server::ServerOptions options = TestOptions();
  // A chunk waits 2 s in the queue for partners: the busy stream is surely
  // busy when the shutdown begins.
  options.max_queue_delay = absl::Seconds(2);
  options.batch_peer_window = absl::InfiniteDuration();
  Start(options);
  auto idle_ctx = Ctx(), busy_ctx = Ctx();
  auto idle = stub_->Stream(idle_ctx.get());
  auto busy = stub_->Stream(busy_ctx.get());
  v1::StreamResponse out;
  ASSERT_TRUE(idle->Write(Chunk(1, "idle")));
  ASSERT_TRUE(idle->Read(&out));
  ASSERT_TRUE(busy->Write(Chunk(1, "busy")));
  for (int i = 0; i < 3000; ++i) {  // until the server holds it
    v1::ServerStats stats;
    ASSERT_TRUE(stub_->GetServerStats(Ctx().get(), {}, &stats).ok());
    if (stats.queued_steps() > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  const absl::Time start = absl::Now();
  std::thread stopper([&] { server_->Shutdown(absl::Seconds(60)); });
  absl::Cleanup join = [&] { stopper.join(); };
  // The idle stream ends at once, telling the client why.
  EXPECT_FALSE(idle->Read(&out));
  grpc::Status idle_status = idle->Finish();
  EXPECT_EQ(idle_status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(idle_status.error_message(), HasSubstr("shutting down"));
  // The busy stream's request is answered, then the stream ends.
  ASSERT_TRUE(busy->Read(&out));
  EXPECT_EQ(out.request_id(), 1u);
  EXPECT_FALSE(out.has_error()) << out.error().message();
  EXPECT_FALSE(busy->Read(&out));
  EXPECT_EQ(busy->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  std::move(join).Invoke();
  // It returned when the streams were done, far inside the 60 s grace (the
  // queued chunk ran at once: a stopping server does not wait for
  // partners).
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
}

TEST_F(StreamTest, ADuplicateRequestIdInFlightIsInvalidArgument) {
  server::ServerOptions options = TestOptions();
  // The first chunk waits in its queue (always, for 2 s) so that the second
  // surely arrives while it is in flight.
  options.max_queue_delay = absl::Seconds(2);
  options.batch_peer_window = absl::InfiniteDuration();
  Start(options);
  auto ctx = Ctx();
  auto stream = stub_->Stream(ctx.get());
  ASSERT_TRUE(stream->Write(Chunk(5, "dup")));
  ASSERT_TRUE(stream->Write(Chunk(5, "dup")));
  stream->WritesDone();
  v1::StreamResponse first, second;
  ASSERT_TRUE(stream->Read(&first));
  ASSERT_TRUE(stream->Read(&second));
  EXPECT_EQ(first.request_id(), 5u);
  EXPECT_EQ(first.error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(first.error().message(), HasSubstr("already in flight"));
  EXPECT_EQ(second.request_id(), 5u);
  EXPECT_FALSE(second.has_error()) << second.error().message();
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace lstmserve::e2e
