#include "server/session_store.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lstmserve::server {

absl::Status ValidateSessionId(const std::string& id) {
  if (id.empty() || id.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat(
        "session id has ", id.size(), " characters; expected 1 to 128"));
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == ':' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "session id \"", id, "\" has a character outside [A-Za-z0-9._:-]"));
    }
  }
  return absl::OkStatus();
}

SessionStore::SessionStore(Options options) : options_(std::move(options)) {
  std::random_device rd;
  id_salt_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

absl::Status SessionStore::CheckCapacity() const {
  if (static_cast<int>(sessions_.size()) >= options_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the server holds ", sessions_.size(),
        " sessions, its limit (--max-sessions); close sessions or retry "
        "later"));
  }
  return absl::OkStatus();
}

std::string SessionStore::NewId() {
  // Unique within this process, and unlikely to collide with other servers'
  // ids (sessions move between servers by export/import).
  std::string id;
  do {
    id = absl::StrFormat("s-%016x-%x", id_salt_, ++id_counter_);
  } while (sessions_.count(id));
  return id;
}

absl::StatusOr<std::shared_ptr<Session>> SessionStore::Create(
    const std::string& id, const std::string& owner,
    std::shared_ptr<const LoadedModel> model,
    std::vector<float> initial_state) {
  if (!id.empty()) {
    if (absl::Status s = ValidateSessionId(id); !s.ok()) return s;
  }
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  if (!id.empty() && sessions_.count(id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("session \"", id, "\" already exists"));
  }
  if (absl::Status s = CheckCapacity(); !s.ok()) return s;
  const std::string new_id = id.empty() ? NewId() : id;
  absl::StatusOr<std::shared_ptr<Session>> session = Session::Create(
      new_id, owner, std::move(model), std::move(initial_state), now);
  if (!session.ok()) return session.status();
  sessions_[new_id] = *session;
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> SessionStore::Import(
    const SessionSnapshot& snapshot, const std::string& owner,
    std::shared_ptr<const LoadedModel> model) {
  if (absl::Status s = ValidateSessionId(snapshot.id); !s.ok()) return s;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  if (sessions_.count(snapshot.id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("session \"", snapshot.id, "\" already exists"));
  }
  if (absl::Status s = CheckCapacity(); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<Session>> session =
      Session::FromSnapshot(snapshot, owner, std::move(model), now);
  if (!session.ok()) return session.status();
  sessions_[snapshot.id] = *session;
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> SessionStore::Get(
    const std::string& id, const std::string& owner) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second->owner() != owner) {
    return absl::NotFoundError(absl::StrCat(
        "session \"", id, "\" not found (closed, expired, or never created)"));
  }
  return it->second;
}

absl::Status SessionStore::Close(const std::string& id,
                                 const std::string& owner) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second->owner() != owner) {
    return absl::NotFoundError(absl::StrCat("session \"", id, "\" not found"));
  }
  sessions_.erase(it);
  return absl::OkStatus();
}

SessionStore::Page SessionStore::List(const std::string& owner, int page_size,
                                      const std::string& page_token) const {
  Page page;
  absl::MutexLock lock(&mu_);
  auto it = page_token.empty() ? sessions_.begin()
                               : sessions_.upper_bound(page_token);
  for (; it != sessions_.end(); ++it) {
    if (it->second->owner() != owner) continue;
    if (static_cast<int>(page.sessions.size()) == page_size) {
      page.next_page_token = page.sessions.back().id;
      break;
    }
    page.sessions.push_back(it->second->Info());
  }
  return page;
}

int SessionStore::ExpireIdle() {
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  int expired = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second->last_used() >= options_.idle_timeout) {
      it = sessions_.erase(it);
      ++expired;
    } else {
      ++it;
    }
  }
  return expired;
}

int SessionStore::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(sessions_.size());
}

}  // namespace lstmserve::server
