// A client that sends and never reads: opens one Stream to an lstmserve
// server and writes chunks for --seconds as fast as flow control lets it,
// reading nothing. bench/run_core_bench.sh samples the server's resident
// memory meanwhile: with the server's back-pressure it stays flat.
//
//   build/bench/stream_flood --target 127.0.0.1:PORT --model bench_lstm
//       --input-size 64 --seconds 30
#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "grpcpp/grpcpp.h"
#include "lstmserve/v1/lstmserve.grpc.pb.h"

int main(int argc, char** argv) {
  std::string target, model = "bench_lstm";
  int input_size = 64, steps = 1;
  double seconds = 30;
  CLI::App app{"stream_flood: a Stream client that writes and never reads"};
  app.add_option("--target", target, "host:port")->required();
  app.add_option("--model", model, "Model the session is created on")
      ->capture_default_str();
  app.add_option("--input-size", input_size, "Floats per step")
      ->capture_default_str();
  app.add_option("--steps", steps, "Steps per message")->capture_default_str();
  app.add_option("--seconds", seconds, "How long to write")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto stub = lstmserve::v1::LstmServe::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  auto stream = stub->Stream(&ctx);
  std::atomic<int64_t> written{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    lstmserve::v1::StreamRequest r;
    r.set_session_id("flood");
    r.set_create_model(model);
    r.mutable_inputs()->add_shape(steps);
    r.mutable_inputs()->add_shape(input_size);
    r.mutable_inputs()->mutable_values()->Resize(steps * input_size, 0.5f);
    for (uint64_t id = 1; !stop.load(); ++id) {
      r.set_request_id(id);
      if (!stream->Write(r)) return;
      ++written;
    }
  });
  const auto end =
      std::chrono::steady_clock::now() +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(seconds));
  std::this_thread::sleep_until(end);
  stop.store(true);
  ctx.TryCancel();  // unblocks a Write stuck on flow control
  writer.join();
  std::cout << "written " << written.load() << "\n";
  return 0;
}
