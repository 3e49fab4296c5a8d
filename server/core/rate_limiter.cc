#include "server/core/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lstmserve::server {

RateLimiter::RateLimiter(Options options) : options_(std::move(options)) {}

double RateLimiter::Refilled(const Bucket& bucket, absl::Time now) const {
  const double elapsed = absl::ToDoubleSeconds(now - bucket.updated);
  return std::min(options_.burst,
                  bucket.tokens + std::max(0.0, elapsed) * options_.rate);
}

void RateLimiter::PruneLocked(absl::Time now) {
  absl::erase_if(buckets_, [&](const auto& entry) {
    return Refilled(entry.second, now) >= options_.burst;
  });
}

absl::Status RateLimiter::Admit(absl::string_view identity) {
  if (!enabled()) return absl::OkStatus();
  const absl::Time now = options_.clock->Now();
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = buckets_.try_emplace(identity);
  Bucket& bucket = it->second;
  if (inserted) {
    bucket.tokens = options_.burst;
    bucket.updated = now;
  }
  bucket.tokens = Refilled(bucket, now);
  bucket.updated = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    if (inserted && buckets_.size() > options_.max_identities) {
      PruneLocked(now);
    }
    return absl::OkStatus();
  }
  const double wait_ms = std::ceil((1 - bucket.tokens) / options_.rate * 1000);
  return absl::ResourceExhaustedError(absl::StrFormat(
      "identity %s is over its limit of %g requests a second (burst %g, "
      "--max-requests-per-second); retry in %.0f ms",
      identity.empty() ? "(anonymous)" : absl::StrCat("\"", identity, "\""),
      options_.rate, options_.burst, wait_ms));
}

}  // namespace lstmserve::server
