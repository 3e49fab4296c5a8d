#include "server/auth/authenticator.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace lstmserve::server {
namespace {

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(
      absl::StrCat(why,
                   "; send the metadata \"authorization: Bearer TOKEN\" with "
                   "a token of the server's --auth-tokens file"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(
    Options options) {
  std::unique_ptr<Authenticator> auth(new Authenticator(std::move(options)));
  if (!auth->options_.tokens_file.empty()) {
    absl::MutexLock reload(&auth->reload_mu_);
    auth->stamp_ = StampOf(auth->options_.tokens_file);
    absl::StatusOr<std::shared_ptr<const TokenTable>> table =
        auth->Read(auth->stamp_);
    if (!table.ok()) return table.status();
    absl::MutexLock lock(&auth->mu_);
    auth->tokens_ = *std::move(table);
  }
  auth->next_check_ns_.store(
      absl::ToUnixNanos(absl::Now() + auth->options_.reload_interval));
  return auth;
}

void Authenticator::Report(bool error, const std::string& message) const {
  if (options_.report) options_.report(error, message);
}

Authenticator::FileStamp Authenticator::StampOf(const std::string& path) {
  FileStamp stamp;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    stamp.size = st.st_size;
    stamp.mtime_ns =
        int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    stamp.inode = static_cast<int64_t>(st.st_ino);
    stamp.mode = st.st_mode & 0777;
  }
  return stamp;
}

absl::StatusOr<std::shared_ptr<const TokenTable>> Authenticator::Read(
    const FileStamp& stamp) {
  const std::string& path = options_.tokens_file;
  if (stamp.size < 0) {
    return absl::NotFoundError(
        absl::StrCat("--auth-tokens ", path, ": cannot read the file"));
  }
  if ((stamp.mode & (S_IRWXG | S_IRWXO)) != 0) {
    Report(true, absl::StrFormat("--auth-tokens %s can be read or written by "
                                 "users other than its owner (mode %03o); "
                                 "chmod 600 it",
                                 path, stamp.mode));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--auth-tokens ", path, ": cannot open the file"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  absl::StatusOr<TokenTable> table =
      TokenTable::Parse(text.str(), absl::StrCat("--auth-tokens ", path));
  if (!table.ok()) return table.status();
  if (table->size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--auth-tokens ", path,
        " has no tokens; every call would be refused. Expected lines "
        "\"TOKEN IDENTITY [admin]\""));
  }
  return std::make_shared<const TokenTable>(*std::move(table));
}

void Authenticator::ReloadIfChanged() {
  if (options_.tokens_file.empty()) return;
  absl::MutexLock reload(&reload_mu_);
  const FileStamp now = StampOf(options_.tokens_file);
  if (now == stamp_) return;
  stamp_ = now;  // a broken file is reported once, not at every check
  absl::StatusOr<std::shared_ptr<const TokenTable>> table = Read(now);
  if (!table.ok()) {
    Report(true, absl::StrCat(table.status().message(),
                              "; the tokens read before stay in force"));
    return;
  }
  const size_t count = (*table)->size();
  {
    absl::MutexLock lock(&mu_);
    tokens_ = *std::move(table);
  }
  Report(false, absl::StrCat("--auth-tokens ", options_.tokens_file,
                             " reloaded: ", count, " tokens"));
}

absl::StatusOr<Identity> Authenticator::Authenticate(
    std::optional<absl::string_view> authorization,
    absl::string_view cert_identity) {
  if (!options_.tokens_file.empty()) {
    const int64_t now = absl::ToUnixNanos(absl::Now());
    int64_t due = next_check_ns_.load(std::memory_order_relaxed);
    if (now >= due &&
        next_check_ns_.compare_exchange_strong(
            due, now + absl::ToInt64Nanoseconds(options_.reload_interval))) {
      ReloadIfChanged();
    }
  }
  if (authorization.has_value() && !options_.tokens_file.empty()) {
    absl::string_view value = absl::StripAsciiWhitespace(*authorization);
    const size_t space = value.find(' ');
    if (space == absl::string_view::npos ||
        !absl::EqualsIgnoreCase(value.substr(0, space), "bearer")) {
      return Unauthenticated(
          "the authorization metadata is not \"Bearer TOKEN\"");
    }
    const absl::string_view token =
        absl::StripLeadingAsciiWhitespace(value.substr(space + 1));
    std::shared_ptr<const TokenTable> tokens;
    {
      absl::MutexLock lock(&mu_);
      tokens = tokens_;
    }
    std::optional<Identity> identity = tokens->Find(token);
    if (!identity) return Unauthenticated("the bearer token is not valid");
    return *identity;
  }
  if (options_.identity_from_cert && !cert_identity.empty()) {
    Identity identity;
    identity.name = std::string(cert_identity);
    identity.admin = options_.admin_identities.count(identity.name) > 0;
    return identity;
  }
  if (required()) {
    return Unauthenticated(options_.identity_from_cert
                               ? "the call has no bearer token and no client "
                                 "certificate identity"
                               : "the call has no bearer token");
  }
  return Identity{.name = "", .admin = true};
}

}  // namespace lstmserve::server
