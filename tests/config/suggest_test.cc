#include "server/config/suggest.h"

#include "gtest/gtest.h"

namespace lstmserve::config {
namespace {

TEST(EditDistance, CountsInsertsDeletesReplacementsAndSwaps) {
  EXPECT_EQ(EditDistance("max_sessions", "max_sessions"), 0);
  EXPECT_EQ(EditDistance("max_sesions", "max_sessions"), 1);    // insert
  EXPECT_EQ(EditDistance("max_sessionss", "max_sessions"), 1);  // delete
  EXPECT_EQ(EditDistance("max-sessions", "max_sessions"), 1);   // replace
  EXPECT_EQ(EditDistance("max_sessoins", "max_sessions"), 1);   // swap
  EXPECT_EQ(EditDistance("Max_Sessions", "max_sessions"), 0);   // case
  EXPECT_EQ(EditDistance("", "abc"), 3);
  EXPECT_EQ(EditDistance("abc", "xyz"), 3);
}

TEST(ClosestMatch, NearestWithinTwoEditsOrNothing) {
  const std::vector<std::string> keys = {"max_batch", "max_sessions",
                                         "threads"};
  EXPECT_EQ(ClosestMatch("max_sesions", keys), "max_sessions");
  EXPECT_EQ(ClosestMatch("max_bach", keys), "max_batch");
  EXPECT_EQ(ClosestMatch("thread", keys), "threads");
  EXPECT_EQ(ClosestMatch("treds", keys), "threads");  // 2 edits
  EXPECT_EQ(ClosestMatch("trds", keys), "");          // 3 edits
  EXPECT_EQ(ClosestMatch("colour", keys), "");
}

TEST(ClosestMatch, FirstOfEquallyNearCandidates) {
  EXPECT_EQ(ClosestMatch("ab", {"abc", "abd"}), "abc");
  EXPECT_EQ(ClosestMatch("ab", {"abd", "abc"}), "abd");
}

}  // namespace
}  // namespace lstmserve::config
