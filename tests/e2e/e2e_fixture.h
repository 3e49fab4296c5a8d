// A real lstm-server (in-process) on 127.0.0.1 with an ephemeral port, a
// gRPC stub connected to it, and references computed by the engine itself.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lstmserve/v1/lstmserve.grpc.pb.h"
#include "model/model.h"
#include "server/server.h"
#include "testutil/testutil.h"

namespace lstmserve::e2e {

inline server::ServerOptions TestOptions() {
  server::ServerOptions o;
  o.model_repo = testutil::SourcePath("models");
  o.listen = "127.0.0.1:0";
  o.threads = 2;
  o.metrics_listen = "127.0.0.1:0";                // tests run side by side
  o.expiry_sweep_interval = absl::ZeroDuration();  // tests expire by hand
  return o;
}

inline std::unique_ptr<server::Server> StartServer(
    const server::ServerOptions& options = TestOptions()) {
  auto server = server::Server::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

inline std::unique_ptr<v1::LstmServe::Stub> Connect(
    const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return v1::LstmServe::NewStub(grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args));
}

// A context with a deadline, so no test call can hang.
inline std::unique_ptr<grpc::ClientContext> Ctx(int seconds = 30) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(seconds));
  return ctx;
}

inline v1::Tensor MakeTensor(const std::vector<float>& values, int width) {
  v1::Tensor t;
  t.add_shape(static_cast<int64_t>(values.size() / width));
  t.add_shape(width);
  t.mutable_values()->Assign(values.begin(), values.end());
  return t;
}

inline std::vector<float> Values(const v1::Tensor& t) {
  return std::vector<float>(t.values().begin(), t.values().end());
}

// The engine run directly on a whole sequence from the zero state.
inline std::vector<float> Reference(const std::string& model_name,
                                    const std::vector<float>& inputs) {
  auto m =
      model::Model::Load(testutil::SourcePath("models/" + model_name + "/1"));
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return {};
  const int steps = static_cast<int>(inputs.size() / (*m)->input_size());
  std::vector<float> state((*m)->state_size(), 0.0f);
  std::vector<float> out(static_cast<size_t>(steps) * (*m)->output_size());
  model::Workspace ws;
  EXPECT_TRUE(
      (*m)->RunChunk(inputs.data(), steps, state.data(), out.data(), ws).ok());
  return out;
}

// 1e-5 in the network's units: the bundled models denormalize their outputs
// (sunspot numbers in the hundreds), so the bound scales with magnitude.
inline void ExpectClose(const std::vector<float>& actual,
                        const std::vector<float>& expected,
                        float scale = 50.0f) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_LE(std::abs(actual[i] - expected[i]),
              1e-5f * std::max({1.0f, std::abs(expected[i]), scale}))
        << "value " << i << ": got " << actual[i] << ", expected "
        << expected[i];
  }
}

// Plausible raw inputs for the bundled one-feature models.
inline std::vector<float> SeriesInputs(int steps, uint32_t seed) {
  std::vector<float> v = testutil::RandomInputs(steps, seed);
  for (float& x : v) x = 60.0f + 40.0f * x;
  return v;
}

}  // namespace lstmserve::e2e
