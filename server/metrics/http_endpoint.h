// The HTTP endpoint Prometheus scrapes: GET (or HEAD) /metrics answers
// Registry::Render() as "text/plain; version=0.0.4; charset=utf-8"; any
// other path is 404 and any other method on /metrics is 405. Served by
// civetweb (Debian libcivetweb-dev) on a few threads of its own. It serves
// no files (there is no document root) and its log messages go to the
// "metrics" spdlog logger: warn for the server's own, debug for a
// connection's (a client can cause those).
//
// Thread-safety: thread-safe. Owns the civetweb server and its threads; does
// not own the Registry, which must outlive it.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/metrics/metrics.h"

struct mg_context;
struct mg_connection;

namespace lstmserve::metrics {

class MetricsEndpoint {
 public:
  struct Options {
    // "host:port": an IPv4 address ("127.0.0.1", "0.0.0.0" for all
    // interfaces), "localhost" (127.0.0.1), or an IPv6 address in brackets
    // ("[::1]:9464"). Port 0 asks for an ephemeral port; port() tells which.
    std::string listen_address = "127.0.0.1:9464";
    // What /metrics renders. Required; not owned; must outlive the endpoint.
    const Registry* registry = nullptr;
    // civetweb worker threads, each serving one connection at a time
    // (1 to 64). Connections are not kept alive, so a scrape holds a thread
    // only while it is being answered.
    int threads = 2;
    // How long a connection may take to send its request and read the
    // answer before civetweb closes it.
    absl::Duration request_timeout = absl::Seconds(10);

    // TLS: reserved for the security issue, not implemented yet. Start()
    // answers UNIMPLEMENTED when either file is set. (Debian 12's civetweb
    // 1.15 is compiled with TLS, but loads OpenSSL at run time under the
    // names libssl.so/libcrypto.so, found only with libssl-dev, and expects
    // OpenSSL 1.1's symbols, so it fails against Debian 12's OpenSSL 3.)
    struct Tls {
      std::string certificate_file;  // PEM: certificate chain
      std::string private_key_file;  // PEM: its private key
    };
    Tls tls;
  };

  // Listens on options.listen_address and serves until Stop(). Errors:
  // INVALID_ARGUMENT for a malformed address, a port above 65535, threads
  // out of range, a non-positive timeout or a null registry; UNIMPLEMENTED
  // for TLS, or for IPv6 when this civetweb was built without it (Debian
  // 12's is); UNAVAILABLE when the address cannot be listened on (in use,
  // not an address of this machine, a privileged port).
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const Options& options);

  // Whether this civetweb was built with IPv6 (Debian 12's is not).
  static bool Ipv6Supported();

  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;
  ~MetricsEndpoint();  // Stop()

  // Closes the listening socket, lets requests being answered finish, and
  // joins civetweb's threads. Idempotent; returns once stopped.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // The port listened on (the ephemeral one picked for port 0).
  int port() const { return port_; }

 private:
  MetricsEndpoint(const Registry* registry, std::string host, bool ipv6)
      : registry_(registry), host_(std::move(host)), ipv6_(ipv6) {}
  // civetweb's begin_request callback: answers every request.
  static int HandleRequest(mg_connection* conn);

  const Registry* const registry_;
  const std::string host_;  // numeric, as listened on
  const bool ipv6_;
  int port_ = 0;  // set once, by Start()
  absl::Mutex mu_;
  mg_context* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace lstmserve::metrics
