// The client's record of inputs since the server's durable_step.
#include "client/resend_log.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lstmserve::client::internal {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;

// Chunk of `steps` rows of width 2 starting at `first`: row r is {r, -r}.
std::vector<float> Rows(int64_t first, int steps) {
  std::vector<float> v;
  for (int64_t r = first; r < first + steps; ++r) {
    v.push_back(static_cast<float>(r));
    v.push_back(static_cast<float>(-r));
  }
  return v;
}

TEST(ResendLogTest, KeepsNothingForAServerWithoutAStore) {
  ResendLog log(100);
  log.Answered(0, 3, Rows(0, 3), std::nullopt);
  EXPECT_FALSE(log.active());
  EXPECT_EQ(log.kept_steps(), 0);
}

TEST(ResendLogTest, KeepsFromTheDurableStepAndCutsAStraddlingChunk) {
  ResendLog log(100);
  log.Answered(0, 3, Rows(0, 3), -1);  // nothing durable yet: all kept
  log.Answered(3, 4, Rows(3, 4), 0);
  log.Answered(7, 2, Rows(7, 2), 5);  // steps 0..4 durable
  EXPECT_TRUE(log.active());
  EXPECT_EQ(log.kept_steps(), 6);  // the chunk at 3 (straddles 5), and 7
  auto between = log.Between(5, 9);
  ASSERT_TRUE(between.ok()) << between.status();
  ASSERT_EQ(between->size(), 2u);
  EXPECT_EQ((*between)[0].first_step, 5);
  EXPECT_EQ((*between)[0].inputs, Rows(5, 2));
  EXPECT_EQ((*between)[1].first_step, 7);
  EXPECT_EQ((*between)[1].inputs, Rows(7, 2));
  EXPECT_THAT(*log.Between(9, 9), IsEmpty());
}

TEST(ResendLogTest, StepsDroppedForRoomAreDataLossNamingWhatIsKept) {
  ResendLog log(4);
  for (int64_t first = 0; first < 10; first += 2) {
    log.Answered(first, 2, Rows(first, 2), 0);
  }
  EXPECT_EQ(log.kept_steps(), 4);  // steps 6..9
  auto between = log.Between(2, 10);
  ASSERT_FALSE(between.ok());
  EXPECT_EQ(between.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(between.status().message(), HasSubstr("steps 6 to 9"));
  EXPECT_THAT(between.status().message(), HasSubstr("max_resend_steps"));
  EXPECT_TRUE(log.Between(6, 10).ok());
}

TEST(ResendLogTest, AGapStartsTheRecordAfresh) {
  ResendLog log(100);
  log.Answered(0, 2, Rows(0, 2), 0);
  log.Answered(5, 2, Rows(5, 2), 0);  // steps 2..4 went elsewhere
  EXPECT_EQ(log.kept_steps(), 2);
  EXPECT_FALSE(log.Between(0, 7).ok());
  EXPECT_TRUE(log.Between(5, 7).ok());
}

}  // namespace
}  // namespace lstmserve::client::internal
