// The per-identity token bucket (server/core/rate_limiter.h), on a fake
// clock.
#include "server/core/rate_limiter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lstmserve::server {
namespace {

using testing::HasSubstr;

TEST(RateLimiterTest, ABurstThenTheRateEachIdentityOnItsOwn) {
  auto clock = std::make_shared<FakeClock>();
  RateLimiter limiter({.rate = 10, .burst = 3, .clock = clock});
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit("alice").ok()) << i;
  absl::Status over = limiter.Admit("alice");
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(over.message(), HasSubstr("identity \"alice\""));
  EXPECT_THAT(over.message(), HasSubstr("retry in 100 ms"));
  EXPECT_TRUE(limiter.Admit("bob").ok());  // bob has his own bucket
  clock->Advance(absl::Milliseconds(50));
  over = limiter.Admit("alice");
  EXPECT_THAT(over.message(), HasSubstr("retry in 50 ms"));
  clock->Advance(absl::Milliseconds(50));
  EXPECT_TRUE(limiter.Admit("alice").ok());
  EXPECT_FALSE(limiter.Admit("alice").ok());
  clock->Advance(absl::Seconds(10));  // refills to the burst, not beyond
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit("alice").ok()) << i;
  EXPECT_FALSE(limiter.Admit("alice").ok());
}

TEST(RateLimiterTest, ZeroRateIsNoLimit) {
  RateLimiter limiter({.rate = 0});
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.Admit("").ok());
}

TEST(RateLimiterTest, FullBucketsAreForgottenPastTheTableBound) {
  auto clock = std::make_shared<FakeClock>();
  RateLimiter limiter(
      {.rate = 1, .burst = 1, .max_identities = 2, .clock = clock});
  EXPECT_TRUE(limiter.Admit("a").ok());
  EXPECT_TRUE(limiter.Admit("b").ok());
  clock->Advance(absl::Seconds(5));
  EXPECT_TRUE(limiter.Admit("c").ok());  // prunes a and b (full again)
  EXPECT_FALSE(limiter.Admit("c").ok());
  EXPECT_TRUE(limiter.Admit("a").ok());  // a new full bucket, as before
}

}  // namespace
}  // namespace lstmserve::server
