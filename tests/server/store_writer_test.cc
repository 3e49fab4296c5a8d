// StoreWriter: what reaches the store when several writes of one session
// wait for the same commit (one write per session, in the order of each
// session's first write, with the effect of applying them all in order).
#include "server/core/store_writer.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lstmserve::server {
namespace {

using ::testing::ElementsAre;

// Records each transaction's writes as "kind id/incarnation@next_step".
class RecordingStore final : public StateStore {
 public:
  absl::Status Apply(std::span<const StoreWrite> writes) override {
    absl::MutexLock lock(&mu_);
    if (failing_) return absl::UnavailableError("disk full (test)");
    std::vector<std::string>& t = transactions_.emplace_back();
    for (const StoreWrite& w : writes) {
      const char* kind = w.kind == StoreWrite::Kind::kPut      ? "put"
                         : w.kind == StoreWrite::Kind::kUpdate ? "update"
                                                               : "delete";
      t.push_back(absl::StrCat(kind, " ", w.record.id, "/",
                               w.record.incarnation, "@", w.record.next_step));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<Contents> LoadAll() override { return Contents{}; }
  std::string Describe() const override { return "recording"; }

  void set_failing(bool failing) {
    absl::MutexLock lock(&mu_);
    failing_ = failing;
  }
  std::vector<std::vector<std::string>> transactions() const {
    absl::MutexLock lock(&mu_);
    return transactions_;
  }

 private:
  mutable absl::Mutex mu_;
  bool failing_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::vector<std::string>> transactions_ ABSL_GUARDED_BY(mu_);
};

StoreWriter::Item Write(StoreWrite::Kind kind, std::string id,
                        uint64_t incarnation, int64_t next_step) {
  StoreWriter::Item item;
  item.write.kind = kind;
  item.write.record.id = std::move(id);
  item.write.record.incarnation = incarnation;
  item.write.record.next_step = next_step;
  return item;
}

constexpr auto kPut = StoreWrite::Kind::kPut;
constexpr auto kUpdate = StoreWrite::Kind::kUpdate;
constexpr auto kDelete = StoreWrite::Kind::kDelete;

TEST(StoreWriterTest, WritesOfOneSessionInOneCommitAreMergedInOrder) {
  RecordingStore store;
  StoreWriter writer(store);
  // A round of two parts holds back the commit until both are in, so that
  // everything below goes into one transaction.
  writer.BeginRound(2);
  std::vector<StoreWriter::Item> created;
  created.push_back(Write(kPut, "a", 1, 0));
  writer.Submit(std::move(created));
  writer.SubmitRoundPart({});
  std::vector<StoreWriter::Item> part;
  part.push_back(Write(kUpdate, "a", 1, 3));
  part.push_back(Write(kUpdate, "b", 1, 5));
  part.push_back(Write(kDelete, "c", 7, 0));
  // An id longer than a short string's inline buffer: the merge keys on
  // views of the ids, which must stay valid while records move.
  const std::string long_id(40, 'x');
  part.push_back(Write(kUpdate, long_id, 2, 1));
  part.push_back(Write(kUpdate, "a", 1, 4));  // a put stays a put
  part.push_back(Write(kPut, "c", 8, 1));     // another incarnation
  part.push_back(Write(kUpdate, "b", 1, 6));
  part.push_back(Write(kDelete, "b", 1, 0));  // a delete wins
  part.push_back(Write(kUpdate, long_id, 2, 2));
  part.push_back(Write(kUpdate, "c", 7, 9));  // nothing after a delete
  writer.SubmitRoundPart(std::move(part));
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_THAT(store.transactions(),
              ElementsAre(ElementsAre(
                  "put a/1@4", "delete b/1@0", "delete c/7@0",
                  absl::StrCat("update ", long_id, "/2@2"), "put c/8@1")));
}

TEST(StoreWriterTest, AFailedCommitIsMergedWithWhatComesNext) {
  RecordingStore store;
  // Not retried by itself meanwhile: only with the next submission.
  StoreWriter writer(store, absl::Hours(1));
  store.set_failing(true);
  writer.Submit({});  // nothing to write: no transaction
  std::vector<StoreWriter::Item> first;
  first.push_back(Write(kUpdate, "a", 1, 1));
  first.push_back(Write(kUpdate, "b", 1, 1));
  writer.Submit(std::move(first));
  EXPECT_FALSE(writer.Flush().ok());
  EXPECT_EQ(writer.stats().pending, 2);
  store.set_failing(false);
  std::vector<StoreWriter::Item> second;
  second.push_back(Write(kUpdate, "c", 1, 1));
  second.push_back(Write(kUpdate, "a", 1, 2));
  writer.Submit(std::move(second));
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_THAT(
      store.transactions(),
      ElementsAre(ElementsAre("update a/1@2", "update b/1@1", "update c/1@1")));
  EXPECT_EQ(writer.stats().pending, 0);
}

}  // namespace
}  // namespace lstmserve::server
