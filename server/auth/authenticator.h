// Decides who a call comes from: its bearer token (--auth-tokens), else its
// client certificate (--identity-from-cert, with mutual TLS), else the
// anonymous identity when neither is required. Knows no gRPC: the service
// hands it the call's `authorization` metadata and the certificate's
// identity.
//
// The tokens file is re-read when it changes (its size, modification time
// or inode), checked at most once every `reload_interval`, on the thread of
// a call that finds the check due; a file that no longer parses is reported
// and the tokens read before stay in force.
//
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/auth/identity.h"
#include "server/auth/token_table.h"

namespace lstmserve::server {

class Authenticator {
 public:
  struct Options {
    // The tokens file; empty: no bearer tokens.
    std::string tokens_file;
    // With mutual TLS: a caller without a token is the identity of its
    // certificate (its first DNS/URI SAN, else its subject CN).
    bool identity_from_cert = false;
    // Certificate identities that have the admin role.
    std::set<std::string> admin_identities;
    // How often the tokens file is checked for changes, at most.
    absl::Duration reload_interval = absl::Seconds(5);
    // Told of reloads (error false) and of files that cannot be used
    // (error true). May be null.
    std::function<void(bool error, const std::string& message)> report;
  };

  // INVALID_ARGUMENT or NOT_FOUND if the tokens file cannot be read or
  // parsed. Warns (through report) when others can read the file.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(Options options);

  // Whether callers must prove who they are (a token or certificate).
  bool required() const {
    return !options_.tokens_file.empty() || options_.identity_from_cert;
  }

  // `authorization`: the call's authorization metadata, if it has one.
  // `cert_identity`: its verified client certificate's identity ("" none).
  // UNAUTHENTICATED when a token is malformed or unknown, or when a caller
  // who must prove who they are does not. Messages never contain tokens.
  absl::StatusOr<Identity> Authenticate(
      std::optional<absl::string_view> authorization,
      absl::string_view cert_identity);

  // Re-reads the tokens file if it changed (Authenticate calls it when a
  // check is due; tests call it directly).
  void ReloadIfChanged();

 private:
  explicit Authenticator(Options options) : options_(std::move(options)) {}
  // What tells a changed file: size, modification time, inode, mode (all
  // -1 when the file cannot be stat'ed).
  struct FileStamp {
    int64_t size = -1, mtime_ns = -1, inode = -1, mode = -1;
    bool operator==(const FileStamp&) const = default;
  };
  static FileStamp StampOf(const std::string& path);
  // Reads and parses the file `stamp` describes; warns about its
  // permissions.
  absl::StatusOr<std::shared_ptr<const TokenTable>> Read(
      const FileStamp& stamp);
  void Report(bool error, const std::string& message) const;

  const Options options_;
  std::atomic<int64_t> next_check_ns_{0};
  absl::Mutex reload_mu_;  // one reload at a time
  FileStamp stamp_ ABSL_GUARDED_BY(reload_mu_);
  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenTable> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lstmserve::server
