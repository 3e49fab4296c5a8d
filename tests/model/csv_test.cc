#include "model/csv.h"

#include <limits>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lstmserve::model {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;

TEST(CsvTest, ReadsRowsSkippingBlankAndCommentLines) {
  std::istringstream in("1,2.5\r\n\n# comment\n -3 , +4e-2 \n");
  CsvReader reader(in, "stdin", 2);
  std::vector<float> rows;
  auto more = reader.Next(rows);
  ASSERT_TRUE(more.ok() && *more);
  more = reader.Next(rows);
  ASSERT_TRUE(more.ok() && *more);
  more = reader.Next(rows);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
  EXPECT_THAT(rows, ElementsAre(1.0f, 2.5f, -3.0f, 0.04f));
}

TEST(CsvTest, WrongWidthNamesLineAndExpectation) {
  std::istringstream in("1,2\n3\n");
  CsvReader reader(in, "stdin", 2);
  std::vector<float> rows;
  ASSERT_TRUE(reader.Next(rows).ok());
  auto more = reader.Next(rows);
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(more.status().message(),
              HasSubstr("stdin:2: row has 1 value; expected 2"));
}

TEST(CsvTest, RejectsNonNumbersAndNonFinite) {
  for (const char* bad :
       {"1,x", "1,", ",1", "1,2x", "nan,1", "1,inf", "1,1e999"}) {
    auto v = ParseCsvLine(bad, "in:1");
    EXPECT_FALSE(v.ok()) << bad;
    EXPECT_THAT(v.status().message(), HasSubstr("in:1, column ")) << bad;
  }
}

TEST(CsvTest, FormatRoundTripsFloatsExactly) {
  const std::vector<float> values{0.1f, -1.0f / 3.0f, 1e-30f, 123456.78f,
                                  std::numeric_limits<float>::denorm_min()};
  auto parsed = ParseCsvLine(FormatCsvRow(values), "x");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, values);
  EXPECT_EQ(FormatCsvRow(std::vector<float>{1.5f, -2.0f}), "1.5,-2");
}

}  // namespace
}  // namespace lstmserve::model
