#include "testutil/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "testutil/testutil.h"

namespace lstmserve::testutil {
namespace {

// Waits for `pid` up to `timeout_s`; its wait status, or -1 on timeout.
int WaitFor(pid_t pid, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

}  // namespace

std::string LstmServerBinary() { return LSTMSERVE_LSTM_SERVER_BIN; }

ServerProcess::ServerProcess(std::vector<std::string> args,
                             std::string log_path)
    : args_(std::move(args)),
      log_path_(std::move(log_path)),
      port_file_(log_path_ + ".port") {}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop(SIGKILL, 10);
}

bool ServerProcess::Start(int port, double timeout_s) {
  std::remove(port_file_.c_str());
  std::vector<std::string> argv = {LstmServerBinary(), "--listen",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--port-file", port_file_};
  argv.insert(argv.end(), args_.begin(), args_.end());
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> raw;
    for (std::string& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    execv(raw[0], raw.data());
    _exit(127);
  }
  if (pid < 0) return false;
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(port_file_);
    int bound = 0;
    if (in >> bound && bound > 0) {
      port_ = bound;
      return true;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int ServerProcess::Stop(int signal, double timeout_s) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = WaitFor(pid_, timeout_s);
  int code;
  if (status == -1) {
    kill(pid_, SIGKILL);
    WaitFor(pid_, 10);
    code = -1;
  } else if (WIFEXITED(status)) {
    code = WEXITSTATUS(status);
  } else {
    code = 128 + WTERMSIG(status);
  }
  pid_ = -1;
  return code;
}

std::string ServerProcess::target() const {
  return "127.0.0.1:" + std::to_string(port_);
}

std::string ServerProcess::Log() const { return ReadFile(log_path_); }

}  // namespace lstmserve::testutil
