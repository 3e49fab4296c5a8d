#include "config_test_util.h"
#include "gtest/gtest.h"
#include "server/config/version_policy_text.h"

namespace lstmserve::config {
namespace {

using server::VersionPolicy;
using testing::FromToml;
using testing::Message;

VersionPolicy Latest(int64_t n) { return testing::LatestPolicy(n); }
VersionPolicy All() { return testing::AllPolicy(); }
VersionPolicy Specific(std::vector<int64_t> versions) {
  return testing::SpecificPolicy(std::move(versions));
}

TEST(VersionPolicyText, DefaultIsLatestOne) {
  EXPECT_EQ(VersionPolicy(), Latest(1));
  EXPECT_EQ(FormatVersionPolicy(VersionPolicy()), "latest:1");
}

TEST(VersionPolicyText, ParsesEachForm) {
  EXPECT_EQ(ParseVersionPolicy("all").value(), All());
  EXPECT_EQ(ParseVersionPolicy("latest:1").value(), Latest(1));
  EXPECT_EQ(ParseVersionPolicy("latest:12").value(), Latest(12));
  EXPECT_EQ(ParseVersionPolicy("specific:3").value(), Specific({3}));
  // Stored ascending, whatever the order given.
  EXPECT_EQ(ParseVersionPolicy("specific:3,1,20").value(),
            Specific({1, 3, 20}));
}

TEST(VersionPolicyText, FormatReadsBack) {
  for (const VersionPolicy& policy :
       {All(), Latest(1), Latest(7), Specific({1}), Specific({2, 5, 9})}) {
    const std::string text = FormatVersionPolicy(policy);
    EXPECT_EQ(ParseVersionPolicy(text).value(), policy) << text;
  }
  EXPECT_EQ(FormatVersionPolicy(Specific({1, 3})), "specific:1,3");
}

TEST(VersionPolicyText, ErrorsSayTheFormExpected) {
  const std::string any =
      R"(expected "all", "latest:N" or "specific:V1,V2,...", got )";
  EXPECT_EQ(Message(ParseVersionPolicy("newest").status()),
            any + R"("newest")");
  EXPECT_EQ(Message(ParseVersionPolicy("").status()), any + R"("")");
  EXPECT_EQ(Message(ParseVersionPolicy("ALL").status()), any + R"("ALL")");
  EXPECT_EQ(Message(ParseVersionPolicy("latest").status()),
            any + R"("latest")");
  const std::string latest = R"(expected "latest:N" with N an integer >= 1, )";
  EXPECT_EQ(Message(ParseVersionPolicy("latest:0").status()),
            latest + R"(got "latest:0")");
  EXPECT_EQ(Message(ParseVersionPolicy("latest:-2").status()),
            latest + R"(got "latest:-2")");
  EXPECT_EQ(Message(ParseVersionPolicy("latest:two").status()),
            latest + R"(got "latest:two")");
  EXPECT_EQ(Message(ParseVersionPolicy("latest:").status()),
            latest + R"(got "latest:")");
  const std::string specific =
      R"(expected "specific:V1,V2,..." with versions integers >= 1, got )";
  EXPECT_EQ(Message(ParseVersionPolicy("specific:").status()),
            specific + R"("specific:")");
  EXPECT_EQ(Message(ParseVersionPolicy("specific:1,,3").status()),
            specific + R"("specific:1,,3")");
  EXPECT_EQ(Message(ParseVersionPolicy("specific:0").status()),
            specific + R"("specific:0")");
  EXPECT_EQ(Message(ParseVersionPolicy("specific:1,x").status()),
            specific + R"("specific:1,x")");
  EXPECT_EQ(Message(ParseVersionPolicy("specific:3,1,3").status()),
            R"(expected "specific:V1,V2,..." with each version once, got )"
            R"("specific:3,1,3")");
}

// The config file's forms, through the version_policy key.
absl::StatusOr<VersionPolicy> PolicyFromFile(const std::string& value) {
  absl::StatusOr<ServerConfig> config =
      FromToml("threads = 1\nversion_policy = " + value + "\n");
  if (!config.ok()) return config.status();
  return config->server.version_policy;
}

TEST(VersionPolicyToml, ReadsEachForm) {
  EXPECT_EQ(PolicyFromFile(R"("all")").value(), All());
  EXPECT_EQ(PolicyFromFile("{ latest = 2 }").value(), Latest(2));
  EXPECT_EQ(PolicyFromFile("{ specific = [3, 1] }").value(), Specific({1, 3}));
  // The command-line form is accepted too.
  EXPECT_EQ(PolicyFromFile(R"("latest:4")").value(), Latest(4));
  EXPECT_EQ(PolicyFromFile(R"("specific:2,1")").value(), Specific({1, 2}));
  // A standard table is the same table as an inline one.
  absl::StatusOr<ServerConfig> config =
      FromToml("[version_policy]\nlatest = 3\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.version_policy, Latest(3));
}

TEST(VersionPolicyToml, ToTomlReadsBack) {
  for (const VersionPolicy& policy :
       {All(), Latest(1), Latest(7), Specific({1}), Specific({2, 5, 9})}) {
    const std::string toml = VersionPolicyToToml(policy);
    EXPECT_EQ(PolicyFromFile(toml).value(), policy) << toml;
  }
  EXPECT_EQ(VersionPolicyToToml(All()), R"("all")");
  EXPECT_EQ(VersionPolicyToToml(Latest(2)), "{ latest = 2 }");
  EXPECT_EQ(VersionPolicyToToml(Specific({1, 3})), "{ specific = [1, 3] }");
}

TEST(VersionPolicyToml, ErrorsNameFileLineAndKey) {
  const std::string forms =
      R"(expected "all", { latest = N } or { specific = [V1, V2, ...] }, )";
  EXPECT_EQ(Message(PolicyFromFile("1").status()),
            R"(test.toml:2: key "version_policy": )" + forms + "got integer 1");
  EXPECT_EQ(Message(PolicyFromFile(R"("newest")").status()),
            R"(test.toml:2: key "version_policy": )" + forms +
                R"(got string "newest")");
  EXPECT_EQ(Message(PolicyFromFile(R"("latest:0")").status()),
            R"(test.toml:2: key "version_policy": expected "latest:N" with N )"
            R"(an integer >= 1, got "latest:0")");
  EXPECT_EQ(Message(PolicyFromFile("{ latest = 0 }").status()),
            R"(test.toml:2: key "version_policy.latest": expected an integer )"
            ">= 1, got integer 0");
  EXPECT_EQ(Message(PolicyFromFile("{ latest = 1.0 }").status()),
            R"(test.toml:2: key "version_policy.latest": expected an integer )"
            ">= 1, got float 1.0");
  EXPECT_EQ(Message(PolicyFromFile("{ lates = 2 }").status()),
            R"(test.toml:2: unknown key "version_policy.lates" (did you mean )"
            R"("version_policy.latest"?))");
  EXPECT_EQ(Message(PolicyFromFile("{}").status()),
            R"(test.toml:2: key "version_policy": )" + forms +
                "got a table with neither latest nor specific");
  EXPECT_EQ(Message(PolicyFromFile("{ latest = 1, specific = [2] }").status()),
            R"(test.toml:2: key "version_policy": )" + forms +
                "got a table with both latest and specific");
  EXPECT_EQ(Message(PolicyFromFile("{ specific = [] }").status()),
            R"(test.toml:2: key "version_policy.specific": expected a )"
            "non-empty array of versions [V1, V2, ...], got array");
  EXPECT_EQ(Message(PolicyFromFile("{ specific = 3 }").status()),
            R"(test.toml:2: key "version_policy.specific": expected a )"
            "non-empty array of versions [V1, V2, ...], got integer 3");
  EXPECT_EQ(Message(PolicyFromFile(R"({ specific = [1, "2"] })").status()),
            R"(test.toml:2: key "version_policy.specific": expected versions )"
            R"(that are integers >= 1, got string "2")");
  EXPECT_EQ(Message(PolicyFromFile("{ specific = [0] }").status()),
            R"(test.toml:2: key "version_policy.specific": expected versions )"
            "that are integers >= 1, got integer 0");
  EXPECT_EQ(Message(PolicyFromFile("{ specific = [4, 2, 4] }").status()),
            R"(test.toml:2: key "version_policy.specific": expected each )"
            "version once, got 4 twice");
}

TEST(VersionPolicyToml, NestedErrorsGiveTheLineOfTheValue) {
  absl::StatusOr<ServerConfig> config =
      FromToml("threads = 1\n[version_policy]\nspecific = [\n  1,\n  -3,\n]\n");
  EXPECT_EQ(Message(config.status()),
            R"(test.toml:5: key "version_policy.specific": expected versions )"
            "that are integers >= 1, got integer -3");
}

}  // namespace
}  // namespace lstmserve::config
