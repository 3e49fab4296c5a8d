#include "server/metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <exception>
#include <mutex>
#include <string_view>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "server/metrics/logger.h"

namespace lstmserve::metrics {
namespace {

constexpr char kMetricsPath[] = "/metrics";
constexpr char kExpositionType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr int kMaxThreads = 64;

struct ListenAddress {
  std::string civetweb;  // civetweb's listening_ports syntax
  bool ipv6 = false;
  std::string host;  // the numeric address, without brackets
};

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& address) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics listen address \"", address, "\": ", std::string(why),
        "; expected host:port with an IPv4 address, localhost or a "
        "bracketed IPv6 address, e.g. 127.0.0.1:9464, 0.0.0.0:9464 or "
        "[::1]:9464"));
  };
  ListenAddress out;
  std::string host, port;
  if (!address.empty() && address[0] == '[') {
    const size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return bad("no \"]:port\" after the IPv6 address");
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    in6_addr parsed;
    if (inet_pton(AF_INET6, host.c_str(), &parsed) != 1) {
      return bad(absl::StrCat("\"", host, "\" is not an IPv6 address"));
    }
    out.ipv6 = true;
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) return bad("no port");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host == "localhost") host = "127.0.0.1";
    in_addr parsed;
    if (inet_pton(AF_INET, host.c_str(), &parsed) != 1) {
      return bad(absl::StrCat("\"", host, "\" is not an IPv4 address",
                              host.find(':') != std::string::npos
                                  ? " (IPv6 goes in brackets)"
                                  : ""));
    }
  }
  int number = -1;
  const bool digits = !port.empty() && port.size() <= 5 &&
                      port.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || !absl::SimpleAtoi(port, &number) || number > 65535) {
    return bad(
        absl::StrCat("port \"", port, "\" is not a number from 0 to 65535"));
  }
  out.civetweb = out.ipv6 ? absl::StrCat("[", host, "]:", number)
                          : absl::StrCat(host, ":", number);
  out.host = host;
  return out;
}

// While Start() runs mg_start2 on this thread: where civetweb's messages
// go, so that the error Start() returns says why (mg_start2's own error text
// is only "Failed to setup server ports").
thread_local std::string* start_messages = nullptr;

// civetweb's log_message callback. Messages about the server itself come
// with a stand-in connection that has no client (remote port 0).
int LogMessage(const mg_connection* conn, const char* message) {
  std::string text(message != nullptr ? message : "");
  absl::StripTrailingAsciiWhitespace(&text);
  const mg_request_info* info =
      conn != nullptr ? mg_get_request_info(conn) : nullptr;
  if (start_messages != nullptr) {
    // Returned in Start()'s status; the caller decides how loud to be.
    absl::StrAppend(start_messages, start_messages->empty() ? "" : "; ", text);
    Logger()->debug("civetweb: {}", text);
  } else if (info == nullptr || info->remote_port == 0) {
    Logger()->warn("civetweb: {}", text);
  } else {
    Logger()->debug("civetweb: client {}:{}: {}", info->remote_addr,
                    info->remote_port, text);
  }
  return 1;  // logged here: civetweb writes nothing itself
}

// Connects to the endpoint's own listening socket and hangs up at once,
// which wakes civetweb's accept loop. A wildcard address is knocked on
// through loopback.
void Knock(const std::string& host, bool ipv6, int port) {
  sockaddr_storage address = {};
  socklen_t length = 0;
  if (ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&address);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) return;
    if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)) a->sin6_addr = in6addr_loopback;
    length = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&address);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) return;
    if (a->sin_addr.s_addr == htonl(INADDR_ANY)) {
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    length = sizeof(*a);
  }
  const int fd =
      socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  // Non-blocking: on loopback the handshake is done within connect().
  connect(fd, reinterpret_cast<const sockaddr*>(&address), length);
  close(fd);
}

int Reply(mg_connection* conn, int status, bool head, const char* content_type,
          const std::string& body, const char* allow = nullptr) {
  const std::string length = absl::StrCat(body.size());
  mg_response_header_start(conn, status);
  mg_response_header_add(conn, "Content-Type", content_type, -1);
  mg_response_header_add(conn, "Content-Length", length.c_str(), -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  if (allow != nullptr) mg_response_header_add(conn, "Allow", allow, -1);
  mg_response_header_send(conn);
  // A client that went away makes this fail; nothing to do about it.
  if (!head) mg_write(conn, body.data(), body.size());
  return status;
}

}  // namespace

int MetricsEndpoint::HandleRequest(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const auto* self = static_cast<const MetricsEndpoint*>(info->user_data);
  const std::string_view method =
      info->request_method != nullptr ? info->request_method : "";
  const std::string_view path =
      info->local_uri != nullptr ? info->local_uri : "";
  const bool head = method == "HEAD";
  constexpr char kText[] = "text/plain; charset=utf-8";
  if (path != kMetricsPath) {
    return Reply(conn, 404, head, kText,
                 absl::StrCat("404 not found: metrics are served at ",
                              kMetricsPath, "\n"));
  }
  if (method != "GET" && !head) {
    return Reply(conn, 405, false, kText,
                 absl::StrCat("405 method not allowed: ", kMetricsPath,
                              " answers GET and HEAD\n"),
                 "GET, HEAD");
  }
  std::string body;
  try {
    body = self->registry_->Render();
  } catch (const std::exception& e) {  // bad_alloc: not across civetweb's C
    Logger()->error("rendering /metrics failed: {}", e.what());
    return Reply(conn, 500, head, kText, "500 internal server error\n");
  }
  return Reply(conn, 200, head, kExpositionType, body);
}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const Options& options) {
  if (options.registry == nullptr) {
    return absl::InvalidArgumentError(
        "metrics endpoint: no registry; expected Options::registry to point "
        "at the Registry to serve");
  }
  if (options.threads < 1 || options.threads > kMaxThreads) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics endpoint: threads is ", options.threads,
                     "; expected 1 to ", kMaxThreads));
  }
  const int64_t timeout_ms = absl::ToInt64Milliseconds(options.request_timeout);
  if (timeout_ms < 1 || timeout_ms > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics endpoint: request timeout is ",
                     absl::FormatDuration(options.request_timeout),
                     "; expected at least 1ms and at most ", INT_MAX, "ms"));
  }
  if (!options.tls.certificate_file.empty() ||
      !options.tls.private_key_file.empty()) {
    return absl::UnimplementedError(
        "metrics endpoint: TLS is not implemented yet; leave Options::tls "
        "empty");
  }
  absl::StatusOr<ListenAddress> address =
      ParseListenAddress(options.listen_address);
  if (!address.ok()) return address.status();
  if (address->ipv6 && !Ipv6Supported()) {
    return absl::UnimplementedError(
        absl::StrCat("metrics listen address \"", options.listen_address,
                     "\": this civetweb (", mg_version(),
                     ") was built without IPv6; expected an IPv4 address"));
  }

  static std::once_flag init_library;
  std::call_once(init_library, [] { mg_init_library(MG_FEATURES_DEFAULT); });

  auto endpoint = std::unique_ptr<MetricsEndpoint>(
      new MetricsEndpoint(options.registry, address->host, address->ipv6));
  mg_callbacks callbacks = {};
  callbacks.begin_request = &MetricsEndpoint::HandleRequest;
  callbacks.log_message = &LogMessage;
  const std::string threads = absl::StrCat(options.threads);
  const std::string timeout = absl::StrCat(timeout_ms);
  // No document_root: civetweb serves no files (and runs no CGI).
  const char* config[] = {"listening_ports",
                          address->civetweb.c_str(),
                          "num_threads",
                          threads.c_str(),
                          "request_timeout_ms",
                          timeout.c_str(),
                          "enable_keep_alive",
                          "no",
                          nullptr};
  mg_init_data init = {};
  init.callbacks = &callbacks;
  init.user_data = endpoint.get();
  init.configuration_options = config;
  unsigned error_code = 0;
  char error_text[256] = "";
  mg_error_data error = {};
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);

  std::string messages;
  start_messages = &messages;
  mg_context* context = mg_start2(&init, &error);
  start_messages = nullptr;
  if (context == nullptr) {
    if (messages.empty()) messages = error_text;
    if (messages.empty()) messages = "civetweb did not start";
    return absl::UnavailableError(
        absl::StrCat("metrics endpoint: cannot listen on ",
                     options.listen_address, ": ", messages));
  }
  mg_server_port ports[2] = {};
  const int n = mg_get_server_ports(context, 2, ports);
  if (n < 1 || ports[0].port <= 0) {
    mg_stop(context);
    return absl::InternalError(
        absl::StrCat("metrics endpoint: civetweb started on ",
                     options.listen_address, " but reports no listening port"));
  }
  endpoint->port_ = ports[0].port;
  {
    absl::MutexLock lock(&endpoint->mu_);
    endpoint->context_ = context;
  }
  Logger()->debug("metrics endpoint listening on {} (port {}), civetweb {}",
                  options.listen_address, endpoint->port_, mg_version());
  return endpoint;
}

bool MetricsEndpoint::Ipv6Supported() {
  return mg_check_feature(MG_FEATURES_IPV6) != 0;
}

MetricsEndpoint::~MetricsEndpoint() { Stop(); }

void MetricsEndpoint::Stop() {
  absl::MutexLock lock(&mu_);
  if (context_ == nullptr) return;
  // civetweb's accept loop polls the listening socket 2 s at a time and
  // looks at its stop flag only between polls. Knocking on the socket while
  // mg_stop() waits for that loop makes Stop() take milliseconds, not
  // seconds. (A knock that comes before the flag is set is accepted as a
  // connection that closes without a request; the next knock wakes the
  // loop.)
  absl::Notification stopped;
  std::thread knocker([&] {
    while (!stopped.WaitForNotificationWithTimeout(absl::Milliseconds(10))) {
      Knock(host_, ipv6_, port_);
    }
  });
  mg_stop(context_);
  stopped.Notify();
  knocker.join();
  context_ = nullptr;
}

}  // namespace lstmserve::metrics
