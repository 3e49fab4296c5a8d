// Requests per second per identity: a token bucket for each identity that
// has called, refilled at `rate` tokens a second up to `burst`. A request
// takes one token; with none left it is refused with RESOURCE_EXHAUSTED
// and a retry hint (when the next token will be there).
//
// Buckets that have refilled completely are forgotten once there are more
// than `max_identities` of them, so identities that come and go cannot grow
// the table without bound (a full bucket is what a new identity gets
// anyway).
//
// Thread-safety: thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/clock.h"

namespace lstmserve::server {

class RateLimiter {
 public:
  struct Options {
    double rate = 0;  // tokens a second; 0: no limit
    double burst = 1;
    size_t max_identities = 100000;
    std::shared_ptr<Clock> clock = std::make_shared<RealClock>();
  };
  explicit RateLimiter(Options options);

  // OK, or RESOURCE_EXHAUSTED naming the limit and when to retry.
  absl::Status Admit(absl::string_view identity);
  bool enabled() const { return options_.rate > 0; }

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };
  double Refilled(const Bucket& bucket, absl::Time now) const;
  void PruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lstmserve::server
