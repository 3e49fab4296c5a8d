// The SQLite session store: records round-trip, incarnations keep a closed
// session's writes off a later one with its id, and every kind of bad file
// is refused or salvaged as documented (never a crash, never silent loss).
#include "server/store/sqlite_state_store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/record_codec.h"
#include "testutil/testutil.h"

namespace lstmserve::server::store {
namespace {

using testing::HasSubstr;
using testing::IsEmpty;
using testing::SizeIs;

SessionRecord Record(const std::string& id, uint64_t incarnation,
                     int64_t next_step, float value) {
  SessionRecord r;
  r.id = id;
  r.owner = "alice";
  r.incarnation = incarnation;
  r.model = "tiny";
  r.version = 2;
  r.next_step = next_step;
  r.state = {value, -value, 0.5f, 1e-30f};
  r.initial_state = {};
  if (next_step > 0) {
    r.replay.push_back(ReplayChunk{next_step - 1, 1, {value, 1}, {2 * value}});
  }
  r.created_unix_us = 1700000000000000;
  r.last_used_unix_us = 1700000000123456;
  return r;
}

void ExpectSame(const SessionRecord& a, const SessionRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.incarnation, b.incarnation);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.next_step, b.next_step);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.initial_state, b.initial_state);
  ASSERT_EQ(a.replay.size(), b.replay.size());
  for (size_t i = 0; i < a.replay.size(); ++i) {
    EXPECT_EQ(a.replay[i].first_step, b.replay[i].first_step);
    EXPECT_EQ(a.replay[i].steps, b.replay[i].steps);
    EXPECT_EQ(a.replay[i].inputs, b.replay[i].inputs);
    EXPECT_EQ(a.replay[i].outputs, b.replay[i].outputs);
  }
  EXPECT_EQ(a.created_unix_us, b.created_unix_us);
  EXPECT_EQ(a.last_used_unix_us, b.last_used_unix_us);
}

StoreWrite Put(SessionRecord r) { return {StoreWrite::Kind::kPut, r}; }
StoreWrite Update(SessionRecord r) { return {StoreWrite::Kind::kUpdate, r}; }
StoreWrite Delete(const std::string& id, uint64_t incarnation) {
  SessionRecord r;
  r.id = id;
  r.incarnation = incarnation;
  return {StoreWrite::Kind::kDelete, r};
}

class SqliteStoreTest : public testing::Test {
 protected:
  std::unique_ptr<SqliteStateStore> Open(
      SqliteStateStore::Report* report = nullptr) {
    auto store = SqliteStateStore::Open({.dir = dir_}, report);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  std::vector<SessionRecord> Load(SqliteStateStore& store) {
    auto contents = store.LoadAll();
    EXPECT_TRUE(contents.ok()) << contents.status();
    EXPECT_THAT(contents->problems, IsEmpty());
    return contents->records;
  }
  std::string DbPath() const { return dir_ + "/sessions.db"; }

  testutil::TempDir tmp_;
  std::string dir_ = tmp_.Join("state");
};

TEST_F(SqliteStoreTest, RecordsRoundTripAndSurviveReopening) {
  SqliteStateStore::Report report;
  {
    auto store = Open(&report);
    EXPECT_TRUE(report.created);
    ASSERT_TRUE(
        store
            ->Apply(std::vector<StoreWrite>{Put(Record("a", 7, 0, 1.5f)),
                                            Put(Record("b", 8, 3, 2.5f))})
            .ok());
    ASSERT_TRUE(
        store->Apply(std::vector<StoreWrite>{Update(Record("a", 7, 5, 3.5f))})
            .ok());
  }
  report = {};
  auto store = Open(&report);
  EXPECT_FALSE(report.created);
  EXPECT_THAT(report.warnings, IsEmpty());
  std::vector<SessionRecord> records = Load(*store);
  ASSERT_THAT(records, SizeIs(2));
  ExpectSame(records[0], Record("a", 7, 5, 3.5f));
  ExpectSame(records[1], Record("b", 8, 3, 2.5f));
}

TEST_F(SqliteStoreTest, WritesOfAnOlderIncarnationDoNotTouchANewerOne) {
  auto store = Open();
  ASSERT_TRUE(
      store->Apply(std::vector<StoreWrite>{Put(Record("x", 1, 4, 1.0f))}).ok());
  // The id is reused by a new session before the old one's last writes.
  ASSERT_TRUE(store
                  ->Apply(std::vector<StoreWrite>{
                      Put(Record("x", 2, 0, 9.0f)),
                      Update(Record("x", 1, 6, 1.0f)), Delete("x", 1)})
                  .ok());
  std::vector<SessionRecord> records = Load(*store);
  ASSERT_THAT(records, SizeIs(1));
  ExpectSame(records[0], Record("x", 2, 0, 9.0f));
  ASSERT_TRUE(store->Apply(std::vector<StoreWrite>{Delete("x", 2)}).ok());
  EXPECT_THAT(Load(*store), IsEmpty());
}

TEST_F(SqliteStoreTest, AnUpdateOfARecordNeverPutChangesNothing) {
  auto store = Open();
  ASSERT_TRUE(
      store->Apply(std::vector<StoreWrite>{Update(Record("ghost", 3, 1, 1.0f))})
          .ok());
  EXPECT_THAT(Load(*store), IsEmpty());
}

TEST_F(SqliteStoreTest, ASecondServerOnTheSameDirectoryIsRefused) {
  auto first = Open();
  auto second = SqliteStateStore::Open({.dir = dir_});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("another lstm-server"));
  first.reset();
  EXPECT_TRUE(SqliteStateStore::Open({.dir = dir_}).ok());
}

TEST_F(SqliteStoreTest, AFileThatIsNotSqliteIsRefusedAndLeftAlone) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  testutil::WriteFile(DbPath(), "name,value\nimportant,42\n");
  auto store = SqliteStateStore::Open({.dir = dir_});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("not an SQLite database"));
  EXPECT_EQ(testutil::ReadFile(DbPath()), "name,value\nimportant,42\n");
}

TEST_F(SqliteStoreTest, AnotherProgramsDatabaseIsRefusedAndLeftAlone) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE invoices (n INTEGER);", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = SqliteStateStore::Open({.dir = dir_});
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("another program's"));
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  EXPECT_EQ(
      sqlite3_exec(db, "SELECT n FROM invoices", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
}

TEST_F(SqliteStoreTest, ANewerSchemaIsRefusedNamingBothVersions) {
  { Open(); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE lstmserve_schema SET version = 7", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = SqliteStateStore::Open({.dir = dir_});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 7"));
  EXPECT_THAT(store.status().message(), HasSubstr("reads version 1"));
}

// Fills a store with many sessions, big enough to span many pages.
void Fill(SqliteStateStore& store, int n) {
  std::vector<StoreWrite> writes;
  for (int i = 0; i < n; ++i) {
    SessionRecord r = Record(absl::StrCat("s", 1000 + i), i + 1, i, i);
    r.state.assign(1024, static_cast<float>(i));  // 4 KiB: one page or more
    writes.push_back(Put(std::move(r)));
  }
  ASSERT_TRUE(store.Apply(writes).ok());
}

TEST_F(SqliteStoreTest, ATruncatedDatabaseIsSalvagedAndTheOriginalKept) {
  {
    auto store = Open();
    Fill(*store, 200);
  }
  const auto size = std::filesystem::file_size(DbPath());
  ASSERT_GT(size, 200u * 4096);
  std::filesystem::resize_file(DbPath(), size / 2);
  SqliteStateStore::Report report;
  auto store = Open(&report);
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(report.warnings, SizeIs(3));
  EXPECT_THAT(report.warnings[0], HasSubstr("is damaged"));
  EXPECT_THAT(report.warnings[1], HasSubstr("kept as"));
  EXPECT_THAT(report.warnings[2], HasSubstr("salvaged"));
  // Some sessions came back, each whole; the rest were on the lost half.
  std::vector<SessionRecord> records = Load(*store);
  EXPECT_GT(records.size(), 0u);
  EXPECT_LT(records.size(), 200u);
  for (const SessionRecord& r : records) {
    EXPECT_EQ(r.state, std::vector<float>(1024, r.next_step));
  }
  bool kept = false;
  for (const auto& f : std::filesystem::directory_iterator(dir_)) {
    kept |= f.path().filename().string().starts_with("sessions.db.damaged-");
  }
  EXPECT_TRUE(kept);
  // The new file is a healthy store that takes writes.
  EXPECT_TRUE(
      store->Apply(std::vector<StoreWrite>{Put(Record("new", 1, 0, 1.0f))})
          .ok());
}

TEST_F(SqliteStoreTest, ACorruptPageLosesOnlyTheRowsOnIt) {
  {
    auto store = Open();
    Fill(*store, 100);
  }
  // Scribble over one page in the middle of the file.
  const auto size = std::filesystem::file_size(DbPath());
  {
    std::fstream f(DbPath(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2 / 4096 * 4096));
    const std::string junk(4096, '\x5a');
    f.write(junk.data(), junk.size());
  }
  SqliteStateStore::Report report;
  auto store = Open(&report);
  ASSERT_NE(store, nullptr);
  ASSERT_FALSE(report.warnings.empty());
  std::vector<SessionRecord> records = Load(*store);
  EXPECT_GE(records.size(), 90u);
  EXPECT_LE(records.size(), 100u);
}

TEST_F(SqliteStoreTest, AnEmptyFileBecomesANewStore) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  testutil::WriteFile(DbPath(), "");
  SqliteStateStore::Report report;
  auto store = Open(&report);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(report.created);
  EXPECT_THAT(Load(*store), IsEmpty());
}

TEST_F(SqliteStoreTest, AStateDirectoryThatIsAFileIsAClearError) {
  testutil::WriteFile(dir_, "x");
  auto store = SqliteStateStore::Open({.dir = dir_});
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("is not a directory"));
}

TEST_F(SqliteStoreTest, ARowWithADamagedBlobIsReportedAndKept) {
  {
    auto store = Open();
    ASSERT_TRUE(
        store
            ->Apply(std::vector<StoreWrite>{Put(Record("good", 1, 2, 1.0f)),
                                            Put(Record("bad", 2, 2, 1.0f))})
            .ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE sessions SET replay = x'4C525031FFFFFFFF' "
                         "WHERE id = 'bad'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = Open();
  auto contents = store->LoadAll();
  ASSERT_TRUE(contents.ok());
  ASSERT_THAT(contents->records, SizeIs(1));
  EXPECT_EQ(contents->records[0].id, "good");
  ASSERT_THAT(contents->problems, SizeIs(1));
  EXPECT_THAT(contents->problems[0], HasSubstr("\"bad\""));
  EXPECT_THAT(contents->problems[0], HasSubstr("4294967295 chunks"));
}

TEST(RecordCodecTest, ReplayRoundTripsAndEveryTruncationIsAnError) {
  std::vector<ReplayChunk> replay = {{4, 2, {1, 2, 3, 4}, {5, 6}},
                                     {6, 1, {7, 8}, {9}}};
  const std::string bytes = EncodeReplay(replay);
  auto back = DecodeReplay(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_THAT(*back, SizeIs(2));
  EXPECT_EQ((*back)[1].inputs, replay[1].inputs);
  EXPECT_EQ((*back)[0].outputs, replay[0].outputs);
  for (size_t n = 1; n < bytes.size(); ++n) {
    EXPECT_FALSE(DecodeReplay(bytes.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(DecodeReplay(bytes + "x").ok());
  EXPECT_TRUE(DecodeReplay("").ok());
}

// Found by tests/fuzz/ (store_record): a chunk with no input floats made
// the decoder memcpy into an empty vector's null data(), undefined behaviour
// that the ASan + UBSan pass reports.
TEST(RecordCodecTest, AChunkWithNoFloatsDecodes) {
  const std::vector<ReplayChunk> replay = {{0, 1, {}, {2.5f, 3.5f}},
                                           {1, 1, {1.5f}, {}}};
  const std::string bytes = EncodeReplay(replay);
  auto back = DecodeReplay(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_THAT(*back, SizeIs(2));
  EXPECT_THAT((*back)[0].inputs, SizeIs(0));
  EXPECT_EQ((*back)[0].outputs, replay[0].outputs);
  EXPECT_EQ((*back)[1].inputs, replay[1].inputs);
  EXPECT_THAT((*back)[1].outputs, SizeIs(0));
  EXPECT_EQ(EncodeReplay(*back), bytes);
}

TEST(RecordCodecTest, HugeCountsAreRefusedBeforeAnythingIsAllocated) {
  std::string bytes = "LRP1";
  bytes += std::string("\x01\x00\x00\x00", 4);  // one chunk
  bytes += std::string(8, '\0');                // first_step
  bytes += std::string("\x01\x00\x00\x00", 4);  // 1 step
  bytes += std::string("\xff\xff\xff\x7f", 4);  // 2^31 inputs
  bytes += std::string("\x01\x00\x00\x00", 4);  // 1 output
  auto decoded = DecodeReplay(bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_THAT(decoded.status().message(), HasSubstr("are left"));
  EXPECT_FALSE(DecodeFloats("abc").ok());
}

}  // namespace
}  // namespace lstmserve::server::store
