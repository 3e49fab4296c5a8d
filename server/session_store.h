// All live sessions by id: creation (client-chosen or server-made ids),
// lookup, close, paged listing, import, and idle expiry.
//
// Thread-safety: thread-safe. The store owns the map; callers get
// shared_ptr<Session> that stay valid after the session is closed or
// expired (a chunk already running finishes on it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/clock.h"
#include "server/session.h"

namespace lstmserve::server {

class SessionStore {
 public:
  struct Options {
    int max_sessions = 10000;
    absl::Duration idle_timeout = absl::Minutes(10);
    std::shared_ptr<Clock> clock = std::make_shared<RealClock>();
  };

  explicit SessionStore(Options options);

  // Creates a session. `id` empty: the store makes a unique one. Errors:
  // INVALID_ARGUMENT for a malformed id or state, ALREADY_EXISTS for a taken
  // id, RESOURCE_EXHAUSTED at max_sessions.
  absl::StatusOr<std::shared_ptr<Session>> Create(
      const std::string& id, const std::string& owner,
      std::shared_ptr<const LoadedModel> model,
      std::vector<float> initial_state = {});

  // Creates a session from a snapshot (same errors as Create).
  absl::StatusOr<std::shared_ptr<Session>> Import(
      const SessionSnapshot& snapshot, const std::string& owner,
      std::shared_ptr<const LoadedModel> model);

  // NOT_FOUND unless the session exists and belongs to `owner` (another
  // owner's session is indistinguishable from a missing one).
  absl::StatusOr<std::shared_ptr<Session>> Get(const std::string& id,
                                               const std::string& owner) const;

  absl::Status Close(const std::string& id, const std::string& owner);

  struct Page {
    std::vector<SessionInfo> sessions;  // ordered by id
    std::string next_page_token;        // empty: last page
  };
  // Sessions of `owner` with ids after `page_token`, at most page_size.
  Page List(const std::string& owner, int page_size,
            const std::string& page_token) const;

  // Closes sessions idle for at least idle_timeout; returns how many.
  int ExpireIdle();

  int size() const;
  absl::Time Now() const { return options_.clock->Now(); }

 private:
  absl::Status CheckCapacity() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
  uint64_t id_counter_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t id_salt_ = 0;
};

// Client-chosen ids: 1-128 characters of [A-Za-z0-9._:-].
absl::Status ValidateSessionId(const std::string& id);

}  // namespace lstmserve::server
