// The lstmserve gRPC server: the LstmServe service (callback API) over a
// model registry, a session store and a worker pool. lstm-server's main()
// reads its configuration (server/config/) into ServerOptions
// (server_options.h) and calls Start.
//
// Thread-safety: Start/Shutdown/Wait may be called from any thread; Shutdown
// is idempotent. The accessors are safe to call while serving.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/server_options.h"

namespace lstmserve::server {

class ModelRegistry;
class SessionManager;

class Server {
 public:
  // Loads every model version in the repository (a version that does not
  // load is logged and skipped), binds, and starts serving. NOT_FOUND when
  // no version loads, INVALID_ARGUMENT for bad options, UNAVAILABLE if the
  // address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options);

  ~Server();  // Shutdown() and Wait()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The port actually bound (useful with port 0).
  int port() const;
  // The metrics endpoint's port; 0 when --metrics-listen is off.
  int metrics_port() const;
  // "host:port" with the bound port.
  std::string address() const;

  // Stops taking new calls; messages on open streams get an in-band
  // UNAVAILABLE; in-flight work completes and each stream is finished as
  // soon as it is idle; calls still open after `grace` are cancelled. Then
  // stops the workers. Returns as soon as all of that is done.
  void Shutdown(absl::Duration grace = absl::Seconds(5));
  // Blocks until the server has shut down.
  void Wait();

  SessionManager& core();
  const ModelRegistry& models() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lstmserve::server
