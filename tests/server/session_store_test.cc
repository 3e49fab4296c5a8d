#include "server/session_store.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/test_models.h"

namespace lstmserve::server {
namespace {

using testing::HasSubstr;

struct StoreFixture {
  std::shared_ptr<FakeClock> clock = std::make_shared<FakeClock>();
  std::unique_ptr<SessionStore> store;
  explicit StoreFixture(int max = 100,
                        absl::Duration idle = absl::Minutes(10)) {
    SessionStore::Options o;
    o.max_sessions = max;
    o.idle_timeout = idle;
    o.clock = clock;
    store = std::make_unique<SessionStore>(o);
  }
};

TEST(SessionStoreTest, ClientAndServerIds) {
  StoreFixture f;
  auto a = f.store->Create("user-1", "", TinyLstm());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->id(), "user-1");
  auto b = f.store->Create("", "", TinyLstm());
  auto c = f.store->Create("", "", TinyLstm());
  ASSERT_TRUE(b.ok() && c.ok());
  EXPECT_NE((*b)->id(), (*c)->id());
  EXPECT_EQ(f.store->Create("user-1", "", TinyLstm()).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(f.store->Create("bad id!", "", TinyLstm()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      f.store->Create(std::string(129, 'x'), "", TinyLstm()).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(SessionStoreTest, MaxSessionsIsResourceExhausted) {
  StoreFixture f(/*max=*/2);
  ASSERT_TRUE(f.store->Create("a", "", TinyLstm()).ok());
  ASSERT_TRUE(f.store->Create("b", "", TinyLstm()).ok());
  auto c = f.store->Create("c", "", TinyLstm());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(c.status().message(), HasSubstr("--max-sessions"));
  ASSERT_TRUE(f.store->Close("a", "").ok());
  EXPECT_TRUE(f.store->Create("c", "", TinyLstm()).ok());
}

TEST(SessionStoreTest, IdleSessionsExpireOnTheInjectedClock) {
  StoreFixture f(100, absl::Minutes(10));
  ASSERT_TRUE(f.store->Create("old", "", TinyLstm()).ok());
  f.clock->Advance(absl::Minutes(6));
  ASSERT_TRUE(f.store->Create("young", "", TinyLstm()).ok());
  f.clock->Advance(absl::Minutes(5));  // old: 11 min idle, young: 5
  EXPECT_EQ(f.store->ExpireIdle(), 1);
  EXPECT_EQ(f.store->Get("old", "").status().code(),
            absl::StatusCode::kNotFound);
  auto young = f.store->Get("young", "");
  ASSERT_TRUE(young.ok());
  (*young)->Touch(f.clock->Now());  // use keeps it alive
  f.clock->Advance(absl::Minutes(9));
  EXPECT_EQ(f.store->ExpireIdle(), 0);
  f.clock->Advance(absl::Minutes(1));
  EXPECT_EQ(f.store->ExpireIdle(), 1);
  EXPECT_EQ(f.store->size(), 0);
}

TEST(SessionStoreTest, OtherOwnersSeeNotFound) {
  StoreFixture f;
  ASSERT_TRUE(f.store->Create("mine", "alice", TinyLstm()).ok());
  EXPECT_EQ(f.store->Get("mine", "bob").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(f.store->Close("mine", "bob").code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(f.store->List("bob", 10, "").sessions.empty());
  EXPECT_TRUE(f.store->Get("mine", "alice").ok());
}

TEST(SessionStoreTest, ListPagesInIdOrder) {
  StoreFixture f;
  for (const char* id : {"d", "a", "c", "b", "e"}) {
    ASSERT_TRUE(f.store->Create(id, "", TinyLstm()).ok());
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    SessionStore::Page page = f.store->List("", 2, token);
    for (const auto& s : page.sessions) seen.push_back(s.id);
    token = page.next_page_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(pages, 3);
}

}  // namespace
}  // namespace lstmserve::server
