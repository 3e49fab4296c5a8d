// Streams CSV steps from stdin through an lstmserve session and prints one
// output row per step as it arrives.
//
//   stream_example HOST:PORT MODEL < steps.csv
//
// It lists the server's models, opens a streaming session on MODEL (a new
// server-made session), sends every line of stdin as one step (the
// library queues them and keeps one on the wire), and closes the session at
// the end of input. Only <lstmserve/client.h> is needed: no gRPC headers.
#include <lstmserve/client.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace lc = lstmserve::client;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: stream_example HOST:PORT MODEL < steps.csv\n";
    return 2;
  }
  lc::ClientOptions options;
  options.target = argv[1];
  auto client = lc::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "stream_example: " << client.status() << '\n';
    return 1;
  }

  auto models = (*client)->ListModels();
  if (!models.ok()) {
    std::cerr << "stream_example: " << models.status() << '\n';
    return 1;
  }
  std::cout << "models:";
  for (const lc::ModelInfo& m : *models) std::cout << ' ' << m.name;
  std::cout << std::endl;

  auto stream = (*client)->OpenStream({.model = argv[2]});
  if (!stream.ok()) {
    std::cerr << "stream_example: " << stream.status() << '\n';
    return 1;
  }

  std::cout.precision(9);
  int failures = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<float> step;
    std::stringstream fields(line);
    for (std::string field; std::getline(fields, field, ',');) {
      step.push_back(std::strtof(field.c_str(), nullptr));
    }
    // Results arrive in send order, on a library thread, one at a time.
    (*stream)->Send(
        std::move(step), 1, [&failures](absl::StatusOr<lc::StepResult> result) {
          if (!result.ok()) {
            std::cerr << "stream_example: " << result.status() << '\n';
            ++failures;
            return;
          }
          for (int i = 0; i < result->output_size; ++i) {
            std::cout << (i ? "," : "") << result->outputs[i];
          }
          std::cout << std::endl;
        });
  }
  (*stream)->Flush();
  const std::string id = (*stream)->id();
  absl::Status closed = (*stream)->Close();
  absl::Status removed = (*client)->CloseSession(id);
  if (!closed.ok() || !removed.ok() || failures > 0) return 1;
  return 0;
}
