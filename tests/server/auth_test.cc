// Bearer tokens (server/auth/): the tokens file's format and its errors,
// lookups, the Authorization metadata, identities from certificates, and
// reloading the file when it changes.
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/authenticator.h"
#include "server/auth/token_table.h"
#include "testutil/testutil.h"

namespace lstmserve::server {
namespace {

using testing::HasSubstr;
using testing::Not;

constexpr char kAlice[] = "alice-token-0123456789";
constexpr char kRoot[] = "root-token-abcdefghijkl";

TEST(TokenTableTest, FindsEachTokensIdentityAndRole) {
  auto table = TokenTable::Parse(
      absl::StrCat("# comment\n\n", kAlice, " alice\n", kRoot,
                   "\troot   admin\r\nbob-token-zzzzzzzzzzzz bob\n"),
      "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 3u);
  EXPECT_EQ(table->Find(kAlice), (Identity{"alice", false}));
  EXPECT_EQ(table->Find(kRoot), (Identity{"root", true}));
  EXPECT_EQ(table->Find("bob-token-zzzzzzzzzzzz"), (Identity{"bob", false}));
  EXPECT_EQ(table->Find("alice-token-012345678"), std::nullopt);  // prefix
  EXPECT_EQ(table->Find(""), std::nullopt);
}

TEST(TokenTableTest, ABadLineIsNamedAndTheTokenIsNotQuoted) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"only-one-field-here-xx", "has 1 fields"},
      {"tok-aaaaaaaaaaaaaaaaa alice admin extra", "has 4 fields"},
      {"short alice", "the token has 5 characters"},
      {"tok-aaaaaaaaaaaaaaaaa al!ce", "has a character outside"},
      {"tok-aaaaaaaaaaaaaaaaa alice root", "not \"admin\""},
      {"tok-aaaaaaaaaaaaaaaaa alice\ntok-aaaaaaaaaaaaaaaaa bob",
       "already on an earlier line"},
  };
  for (const auto& [text, want] : cases) {
    auto table = TokenTable::Parse(text, "f.txt");
    ASSERT_FALSE(table.ok()) << text;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(table.status().message(), HasSubstr(want)) << text;
    EXPECT_THAT(table.status().message(), HasSubstr("f.txt line "));
    EXPECT_THAT(table.status().message(), Not(HasSubstr("tok-aaaa")));
  }
}

class AuthenticatorTest : public testing::Test {
 protected:
  void Write(const std::string& text, mode_t mode = 0600) {
    std::ofstream(path_, std::ios::trunc) << text;
    ::chmod(path_.c_str(), mode);
  }
  std::unique_ptr<Authenticator> Make(Authenticator::Options o = {}) {
    if (o.tokens_file.empty() && !o.identity_from_cert) o.tokens_file = path_;
    o.report = [this](bool error, const std::string& m) {
      (error ? errors_ : infos_).push_back(m);
    };
    auto auth = Authenticator::Create(std::move(o));
    EXPECT_TRUE(auth.ok()) << auth.status();
    return auth.ok() ? *std::move(auth) : nullptr;
  }
  testutil::TempDir tmp_;
  const std::string dir_ = tmp_.path();
  const std::string path_ = tmp_.Join("tokens");
  std::vector<std::string> errors_, infos_;
};

TEST_F(AuthenticatorTest, WithoutTokensOrCertificatesEveryoneIsAnonymous) {
  auto auth = Authenticator::Create({});
  ASSERT_TRUE(auth.ok());
  EXPECT_FALSE((*auth)->required());
  auto who = (*auth)->Authenticate(std::nullopt, "");
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(*who, (Identity{"", true}));
}

TEST_F(AuthenticatorTest, ABearerTokenIsRequiredAndChecked) {
  Write(absl::StrCat(kAlice, " alice\n", kRoot, " root admin\n"));
  auto auth = Make();
  ASSERT_NE(auth, nullptr);
  EXPECT_TRUE(errors_.empty());
  EXPECT_EQ(*auth->Authenticate(absl::StrCat("Bearer ", kAlice), ""),
            (Identity{"alice", false}));
  EXPECT_EQ(*auth->Authenticate(absl::StrCat("bearer  ", kRoot), ""),
            (Identity{"root", true}));
  for (const std::optional<absl::string_view> bad :
       std::vector<std::optional<absl::string_view>>{
           std::nullopt, "", "Bearer", "Basic abc", kAlice,
           "Bearer alice-token-0123456789x"}) {
    auto who = auth->Authenticate(bad, "cert-identity");
    ASSERT_FALSE(who.ok()) << bad.value_or("(none)");
    EXPECT_EQ(who.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(who.status().message(), Not(HasSubstr("alice-token")));
  }
}

TEST_F(AuthenticatorTest, OthersReadingTheFileIsReported) {
  Write(absl::StrCat(kAlice, " alice\n"), 0644);
  ASSERT_NE(Make(), nullptr);
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_THAT(errors_[0], HasSubstr("chmod 600"));
}

TEST_F(AuthenticatorTest, AnEmptyOrMissingFileIsAnError) {
  Write("# nobody\n");
  Authenticator::Options o;
  o.tokens_file = path_;
  auto empty = Authenticator::Create(o);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("has no tokens"));
  o.tokens_file = dir_ + "/missing";
  auto missing = Authenticator::Create(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AuthenticatorTest, AChangedFileIsReloadedAndABrokenOneIgnored) {
  Write(absl::StrCat(kAlice, " alice\n"));
  auto auth = Make();
  ASSERT_NE(auth, nullptr);
  // A different size, so the change shows even within one mtime tick.
  Write(absl::StrCat(kRoot, " root admin\n"));
  auth->ReloadIfChanged();
  EXPECT_FALSE(auth->Authenticate(absl::StrCat("Bearer ", kAlice), "").ok());
  EXPECT_EQ(*auth->Authenticate(absl::StrCat("Bearer ", kRoot), ""),
            (Identity{"root", true}));
  ASSERT_EQ(infos_.size(), 1u);
  EXPECT_THAT(infos_[0], HasSubstr("reloaded: 1 tokens"));

  Write("this line is broken\n");
  auth->ReloadIfChanged();
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_THAT(errors_[0], HasSubstr("the tokens read before stay in force"));
  EXPECT_TRUE(auth->Authenticate(absl::StrCat("Bearer ", kRoot), "").ok());
}

TEST_F(AuthenticatorTest, ACertificateIdentityIsUsedWithoutAToken) {
  Authenticator::Options o;
  o.identity_from_cert = true;
  o.admin_identities = {"ops"};
  auto auth = Make(o);
  ASSERT_NE(auth, nullptr);
  EXPECT_TRUE(auth->required());
  EXPECT_EQ(*auth->Authenticate(std::nullopt, "alice"),
            (Identity{"alice", false}));
  EXPECT_EQ(*auth->Authenticate(std::nullopt, "ops"), (Identity{"ops", true}));
  auto none = auth->Authenticate(std::nullopt, "");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace lstmserve::server
