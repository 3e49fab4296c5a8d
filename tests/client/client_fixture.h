// Helpers for the client tests: a real lstm-server in-process on an
// ephemeral port, clients connected to it, references and comparisons, and
// bounded waits.
//
// Thread-safety: test-only helpers; use from the test's thread.
#pragma once

#include <bit>
#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lstmserve/client.h"
#include "server/server.h"
#include "testutil/testutil.h"

namespace lstmserve::client_test {

using client::Client;
using client::ClientOptions;

inline server::ServerOptions ServerOptionsOn(
    const std::string& listen = "127.0.0.1:0") {
  server::ServerOptions o;
  o.model_repo = testutil::SourcePath("models");
  o.listen = listen;
  o.threads = 2;
  o.metrics_listen = "127.0.0.1:0";  // tests run side by side
  return o;
}

inline std::unique_ptr<server::Server> StartServer(
    const server::ServerOptions& options = ServerOptionsOn()) {
  auto server = server::Server::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// Fast retries so that failure paths finish quickly.
inline ClientOptions FastOptions(const std::string& target) {
  ClientOptions o;
  o.target = target;
  o.deadline = std::chrono::seconds(20);
  o.max_retries = 8;
  o.initial_backoff = std::chrono::milliseconds(10);
  o.max_backoff = std::chrono::milliseconds(200);
  return o;
}

inline std::unique_ptr<Client> ConnectTo(const ClientOptions& options) {
  auto client = Client::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

inline std::unique_ptr<Client> ConnectTo(const std::string& target) {
  return ConnectTo(FastOptions(target));
}

// Plausible inputs for the bundled models (both take one float per step):
// sunspot-number-like values.
inline std::vector<float> SequenceInputs(int steps, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(0.0f, 150.0f);
  std::vector<float> v(static_cast<size_t>(steps));
  for (float& x : v) x = value(rng);
  return v;
}

// The whole sequence in one stateless Predict: the reference a session fed
// the same steps in any chunking must reproduce.
inline std::vector<float> StatelessReference(Client& client,
                                             const std::string& model,
                                             const std::vector<float>& inputs,
                                             int width = 1) {
  client::PredictRequest request;
  request.model = model;
  request.inputs = inputs;
  request.steps = static_cast<int>(inputs.size()) / width;
  auto result = client.Predict(request);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->outputs : std::vector<float>{};
}

// Bit for bit: the engine is batch- and chunk-invariant (MODEL_FORMAT.md,
// "Numeric contract"), so however the server batched or chunked a
// session's steps, before or after a restart, its outputs equal the
// reference's exactly.
inline void ExpectIdentical(const std::vector<float>& got,
                            const std::vector<float>& want,
                            const std::string& what = "") {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
        << what << " at index " << i << ": got " << got[i] << ", want "
        << want[i];
  }
}

// Waits at most `timeout` for a future; fails the test if it is not ready.
template <typename T>
T Await(std::future<T>& future,
        std::chrono::seconds timeout = std::chrono::seconds(30)) {
  if (future.wait_for(timeout) != std::future_status::ready) {
    ADD_FAILURE() << "no result within " << timeout.count() << " s";
    return T(absl::DeadlineExceededError("test wait timed out"));
  }
  return future.get();
}

// Random chunk sizes in [1, max_chunk] that add up to `total`.
inline std::vector<int> RandomChunks(int total, int max_chunk, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> size(1, max_chunk);
  std::vector<int> chunks;
  for (int done = 0; done < total;) {
    const int n = std::min(size(rng), total - done);
    chunks.push_back(n);
    done += n;
  }
  return chunks;
}

// A test with a fresh in-process server and a client connected to it.
class ServerAndClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartServer();
    ASSERT_NE(server_, nullptr);
    client_ = ConnectTo(server_->address());
    ASSERT_NE(client_, nullptr);
  }

  std::unique_ptr<server::Server> server_;
  std::unique_ptr<Client> client_;
};

}  // namespace lstmserve::client_test
