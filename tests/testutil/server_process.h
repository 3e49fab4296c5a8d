// An lstm-server run as a child process, for tests that need what only a
// process has: signals (SIGTERM, SIGKILL), exit codes, a restart on the
// same port.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace lstmserve::testutil {

// Path of the built lstm-server binary.
std::string LstmServerBinary();

class ServerProcess {
 public:
  // `args` go to lstm-server after --listen and --port-file; the log goes
  // to `log_path`.
  ServerProcess(std::vector<std::string> args, std::string log_path);
  ~ServerProcess();  // SIGKILL if still running

  // Starts it on 127.0.0.1:`port` (0: any free port) and waits until it
  // listens (at most `timeout_s`). False if it exited or timed out.
  bool Start(int port = 0, double timeout_s = 20);
  // Sends `signal` and waits for the exit (at most `timeout_s`; then
  // SIGKILL). Returns the exit code, or 128 + the signal that ended it,
  // or -1 if it had to be killed after the timeout.
  int Stop(int signal, double timeout_s = 20);

  int port() const { return port_; }
  std::string target() const;
  bool running() const { return pid_ > 0; }
  std::string Log() const;

 private:
  std::vector<std::string> args_;
  std::string log_path_;
  std::string port_file_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace lstmserve::testutil
