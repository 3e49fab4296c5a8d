// The /metrics endpoint over real loopback sockets: what it answers, what it
// refuses, and how it fails to start.
#include "server/metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "http_client.h"
#include "server/metrics/logger.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"

namespace lstmserve::metrics {
namespace {

using test_http::HttpResponse;
using test_http::Request;

constexpr char kExpositionType[] = "text/plain; version=0.0.4; charset=utf-8";

class EndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    requests_ =
        *registry_.AddCounter("t_requests_total", "Requests.", {"method"});
    requests_->WithLabels({"Predict"}).Increment(3);
    MetricsEndpoint::Options options;
    options.listen_address = "127.0.0.1:0";
    options.registry = &registry_;
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
        MetricsEndpoint::Start(options);
    ASSERT_TRUE(endpoint.ok()) << endpoint.status();
    endpoint_ = *std::move(endpoint);
    ASSERT_GT(endpoint_->port(), 0);
  }

  absl::StatusOr<HttpResponse> Get(const std::string& path) {
    return Request(endpoint_->port(), "GET", path);
  }

  Registry registry_;
  CounterFamily* requests_ = nullptr;
  std::unique_ptr<MetricsEndpoint> endpoint_;
};

TEST_F(EndpointTest, GetMetricsAnswersTheRegistry) {
  absl::StatusOr<HttpResponse> r = Get("/metrics");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], kExpositionType);
  EXPECT_EQ(r->headers["content-length"], std::to_string(r->body.size()));
  EXPECT_EQ(r->body,
            "# HELP t_requests_total Requests.\n"
            "# TYPE t_requests_total counter\n"
            "t_requests_total{method=\"Predict\"} 3\n");

  // Rendered per request.
  requests_->WithLabels({"Stream"}).Increment();
  r = Get("/metrics?name[]=ignored");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, registry_.Render());
  EXPECT_NE(r->body.find("t_requests_total{method=\"Stream\"} 1\n"),
            std::string::npos);
}

TEST_F(EndpointTest, HeadHasTheHeadersButNoBody) {
  absl::StatusOr<HttpResponse> get = Get("/metrics");
  absl::StatusOr<HttpResponse> head =
      Request(endpoint_->port(), "HEAD", "/metrics");
  ASSERT_TRUE(get.ok()) << get.status();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["content-type"], kExpositionType);
  EXPECT_EQ(head->headers["content-length"], std::to_string(get->body.size()));
  EXPECT_EQ(head->body, "");
}

TEST_F(EndpointTest, OtherPathsAreNotFoundAndNoFilesAreServed) {
  for (const char* path :
       {"/", "/metrics/", "/metricsx", "/index.html", "/../../../../etc/passwd",
        "/etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/favicon.ico"}) {
    absl::StatusOr<HttpResponse> r = Get(path);
    ASSERT_TRUE(r.ok()) << path << ": " << r.status();
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(r->body.find("root:"), std::string::npos) << path;
  }
  absl::StatusOr<HttpResponse> head = Request(endpoint_->port(), "HEAD", "/");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 404);
  EXPECT_EQ(head->body, "");
}

TEST_F(EndpointTest, OtherMethodsAreNotAllowed) {
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    absl::StatusOr<HttpResponse> r =
        Request(endpoint_->port(), method, "/metrics");
    ASSERT_TRUE(r.ok()) << method << ": " << r.status();
    EXPECT_EQ(r->status, 405) << method;
    EXPECT_EQ(r->headers["allow"], "GET, HEAD") << method;
  }
}

TEST_F(EndpointTest, ConcurrentScrapesAllSucceed) {
  constexpr int kClients = 4;
  constexpr int kEach = 10;
  std::vector<int> ok(kClients, 0);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        absl::StatusOr<HttpResponse> r = Get("/metrics");
        if (r.ok() && r->status == 200 &&
            r->body.find("t_requests_total") != std::string::npos) {
          ++ok[c];
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(ok[c], kEach) << c;
}

TEST_F(EndpointTest, StopIsIdempotentAndFreesThePort) {
  const int port = endpoint_->port();
  endpoint_->Stop();
  endpoint_->Stop();
  EXPECT_EQ(Request(port, "GET", "/metrics").status().code(),
            absl::StatusCode::kUnavailable);

  // The same port can be listened on again, and the destructor stops.
  MetricsEndpoint::Options options;
  options.listen_address = "127.0.0.1:" + std::to_string(port);
  options.registry = &registry_;
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> again =
      MetricsEndpoint::Start(options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->port(), port);
  absl::StatusOr<HttpResponse> r = Request(port, "GET", "/metrics");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  again->reset();
  EXPECT_EQ(Request(port, "GET", "/metrics").status().code(),
            absl::StatusCode::kUnavailable);
}

// A listening socket of the test's own on an ephemeral loopback port.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
        listen(fd_, 1) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~Listener() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(EndpointStart, BusyPortIsUnavailable) {
  Registry registry;
  Listener busy;
  ASSERT_GT(busy.port(), 0);
  MetricsEndpoint::Options options;
  options.listen_address = "127.0.0.1:" + std::to_string(busy.port());
  options.registry = &registry;
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start(options);
  EXPECT_EQ(endpoint.status().code(), absl::StatusCode::kUnavailable)
      << endpoint.status();
  EXPECT_NE(endpoint.status().message().find(options.listen_address),
            std::string::npos)
      << endpoint.status();

  // Two endpoints on one port: the second is refused, the first serves on.
  options.listen_address = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> first =
      MetricsEndpoint::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  options.listen_address = "127.0.0.1:" + std::to_string((*first)->port());
  EXPECT_EQ(MetricsEndpoint::Start(options).status().code(),
            absl::StatusCode::kUnavailable);
  absl::StatusOr<HttpResponse> r = Request((*first)->port(), "GET", "/metrics");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST(EndpointStart, AddressNotOnThisMachineIsUnavailable) {
  Registry registry;
  MetricsEndpoint::Options options;
  options.listen_address = "192.0.2.1:0";  // TEST-NET-1, never local
  options.registry = &registry;
  EXPECT_EQ(MetricsEndpoint::Start(options).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(EndpointStart, CivetwebMessagesGoToTheMetricsLoggerNotStderr) {
  Registry registry;
  Listener busy;
  MetricsEndpoint::Options options;
  options.listen_address = "127.0.0.1:" + std::to_string(busy.port());
  options.registry = &registry;
  std::shared_ptr<spdlog::logger> logger = Logger();
  ASSERT_EQ(logger, spdlog::get("metrics"));
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  logger->sinks().push_back(sink);
  const spdlog::level::level_enum level = logger->level();
  logger->set_level(spdlog::level::debug);

  ::testing::internal::CaptureStderr();
  const absl::Status status = MetricsEndpoint::Start(options).status();
  const std::string stderr_text = ::testing::internal::GetCapturedStderr();
  logger->set_level(level);
  logger->sinks().pop_back();

  // civetweb's reason is in the status, and on the logger at debug (the
  // caller logs the status), and nothing went to stderr.
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("Address already in use"), std::string::npos)
      << status;
  EXPECT_EQ(stderr_text, "");
  std::vector<std::string> lines = sink->last_formatted();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("[debug] civetweb: cannot bind to"),
            std::string::npos)
      << lines.front();
}

TEST(EndpointStart, InvalidOptionsSayWhatIsExpected) {
  Registry registry;
  MetricsEndpoint::Options options;
  options.registry = &registry;
  for (const char* address :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:-1",
        "127.0.0.1:+80", "127.0.0.1:abc", "metrics.example:9464", "::1:9464",
        "[::1]9464", "[::1", "[not-v6]:1", "1.2.3:80", ":9464"}) {
    options.listen_address = address;
    const absl::Status s = MetricsEndpoint::Start(options).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_NE(s.message().find("expected host:port"), std::string::npos) << s;
  }

  options.listen_address = "127.0.0.1:0";
  options.threads = 0;
  EXPECT_EQ(MetricsEndpoint::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.threads = 65;
  EXPECT_EQ(MetricsEndpoint::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.threads = 2;
  options.request_timeout = absl::ZeroDuration();
  EXPECT_EQ(MetricsEndpoint::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.request_timeout = absl::Seconds(1);
  options.registry = nullptr;
  EXPECT_EQ(MetricsEndpoint::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EndpointStart, TlsIsNotImplementedYet) {
  Registry registry;
  MetricsEndpoint::Options options;
  options.listen_address = "127.0.0.1:0";
  options.registry = &registry;
  options.tls.certificate_file = "server.crt";
  options.tls.private_key_file = "server.key";
  EXPECT_EQ(MetricsEndpoint::Start(options).status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(EndpointStart, LocalhostAndIpv6) {
  Registry registry;
  MetricsEndpoint::Options options;
  options.registry = &registry;
  options.listen_address = "localhost:0";
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> local =
      MetricsEndpoint::Start(options);
  ASSERT_TRUE(local.ok()) << local.status();
  absl::StatusOr<HttpResponse> r = Request((*local)->port(), "GET", "/metrics");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);

  options.listen_address = "[::1]:0";
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> v6 =
      MetricsEndpoint::Start(options);
  if (MetricsEndpoint::Ipv6Supported()) {
    // Unavailable only where the machine has no ::1.
    if (v6.ok()) {
      EXPECT_GT((*v6)->port(), 0);
    } else {
      EXPECT_EQ(v6.status().code(), absl::StatusCode::kUnavailable);
    }
  } else {
    EXPECT_EQ(v6.status().code(), absl::StatusCode::kUnimplemented)
        << v6.status();
    EXPECT_NE(v6.status().message().find("without IPv6"), std::string::npos);
  }
}

}  // namespace
}  // namespace lstmserve::metrics
