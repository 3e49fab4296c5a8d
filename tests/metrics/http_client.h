// A minimal HTTP/1.1 client over a plain POSIX socket, for the endpoint
// tests: sends a raw request to 127.0.0.1:port and reads the answer until
// the server closes the connection.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lstmserve::metrics::test_http {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

inline absl::StatusOr<std::string> Exchange(int port,
                                            const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  // Only a guard against a hung server, not a timing assertion.
  timeval guard = {30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const std::string error = std::strerror(errno);
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect: ", error));
  }
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n =
        send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      close(fd);
      return absl::UnavailableError("send failed");
    }
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buffer[4096];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) break;
    if (n < 0) {
      const std::string error = std::strerror(errno);
      close(fd);
      return absl::UnavailableError(absl::StrCat("recv: ", error));
    }
    answer.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return answer;
}

inline absl::StatusOr<HttpResponse> Parse(const std::string& answer) {
  const size_t end = answer.find("\r\n\r\n");
  if (end == std::string::npos) {
    return absl::DataLossError(absl::StrCat("no end of headers in: ", answer));
  }
  HttpResponse response;
  response.body = answer.substr(end + 4);
  size_t line_start = 0;
  bool first = true;
  while (line_start < end) {
    size_t line_end = answer.find("\r\n", line_start);
    const std::string line = answer.substr(line_start, line_end - line_start);
    line_start = line_end + 2;
    if (first) {
      first = false;
      // "HTTP/1.1 200 OK"
      if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0 ||
          !absl::SimpleAtoi(line.substr(9, 3), &response.status)) {
        return absl::DataLossError(absl::StrCat("bad status line: ", line));
      }
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos) {
      return absl::DataLossError(absl::StrCat("bad header line: ", line));
    }
    std::string value = line.substr(colon + 1);
    absl::StripAsciiWhitespace(&value);
    response.headers[absl::AsciiStrToLower(line.substr(0, colon))] = value;
  }
  return response;
}

// `method` `path` HTTP/1.1 with Connection: close.
inline absl::StatusOr<HttpResponse> Request(int port, const std::string& method,
                                            const std::string& path) {
  absl::StatusOr<std::string> answer =
      Exchange(port, absl::StrCat(method, " ", path,
                                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                                  "close\r\n\r\n"));
  if (!answer.ok()) return answer.status();
  return Parse(*answer);
}

}  // namespace lstmserve::metrics::test_http
