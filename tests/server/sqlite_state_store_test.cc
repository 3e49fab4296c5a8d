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
  EXPECT_THAT(store.status().message(), HasSubstr("reads version 2"));
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
  // At most one 64 KiB page of rows is lost: up to 16 of these 4 KiB ones
  // (all of them when the scribble hits the page's header).
  EXPECT_GE(records.size(), 84u);
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

// What replay_segments holds: {segments, bytes}.
std::pair<int64_t, int64_t> Segments(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db,
                               "SELECT count(*), coalesce(sum(length(data)), "
                               "0) FROM replay_segments",
                               -1, &st, nullptr),
            SQLITE_OK);
  EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
  std::pair<int64_t, int64_t> result{sqlite3_column_int64(st, 0),
                                     sqlite3_column_int64(st, 1)};
  sqlite3_finalize(st);
  sqlite3_close(db);
  return result;
}

// A serial no other chunk of the test has, as the executor gives them.
uint64_t NextSerial() {
  static uint64_t last = 0;
  return ++last;
}

std::shared_ptr<const ReplayChunk> Chunk(int64_t first_step, float value) {
  return std::make_shared<const ReplayChunk>(
      ReplayChunk{.first_step = first_step,
                  .steps = 1,
                  .inputs = {value, value},
                  .outputs = {value, value, value},
                  .serial = NextSerial()});
}

// A record that holds its replay chunks as a session does (shared).
SessionRecord Shared(const std::string& id, uint64_t incarnation,
                     std::vector<std::shared_ptr<const ReplayChunk>> chunks) {
  SessionRecord r = Record(id, incarnation, 0, 1.0f);
  r.replay.clear();
  r.replay_chunks = std::move(chunks);
  r.next_step =
      r.replay_chunks.empty() ? 0 : r.replay_chunks.back()->first_step + 1;
  return r;
}

TEST_F(SqliteStoreTest, AReplayChunkIsWrittenOnceAndUnusedSegmentsGo) {
  auto a = Chunk(0, 1), b = Chunk(1, 2), c = Chunk(2, 3);
  constexpr int64_t kChunk = 5 * 4;  // bytes of a chunk's floats
  {
    auto store = Open();
    ASSERT_TRUE(
        store->Apply(std::vector<StoreWrite>{Put(Shared("s", 1, {a, b}))})
            .ok());
    EXPECT_EQ(Segments(DbPath()), std::make_pair(int64_t{1}, 2 * kChunk));
    // b is written already: only c is new.
    ASSERT_TRUE(
        store->Apply(std::vector<StoreWrite>{Update(Shared("s", 1, {b, c}))})
            .ok());
    EXPECT_EQ(Segments(DbPath()), std::make_pair(int64_t{2}, 3 * kChunk));
    // Nothing new: no segment; the first one still holds b.
    ASSERT_TRUE(
        store->Apply(std::vector<StoreWrite>{Update(Shared("s", 1, {c}))})
            .ok());
    EXPECT_EQ(Segments(DbPath()), std::make_pair(int64_t{2}, 3 * kChunk));
    // No row refers to the first segment now: deleted by the next commit.
    ASSERT_TRUE(
        store->Apply(std::vector<StoreWrite>{Put(Shared("t", 1, {}))}).ok());
    EXPECT_EQ(Segments(DbPath()), std::make_pair(int64_t{1}, 1 * kChunk));
  }
  auto store = Open();
  std::vector<SessionRecord> records = Load(*store);
  ASSERT_THAT(records, SizeIs(2));
  ASSERT_THAT(records[0].replay, SizeIs(1));
  EXPECT_EQ(records[0].replay[0].first_step, 2);
  EXPECT_EQ(records[0].replay[0].inputs, c->inputs);
  EXPECT_EQ(records[0].replay[0].outputs, c->outputs);
  EXPECT_THAT(records[1].replay, IsEmpty());
  // After a restart the chunks read back are new to the store: written
  // again once, and the old segment goes.
  ASSERT_TRUE(store->Apply(std::vector<StoreWrite>{Delete("s", 1)}).ok());
  ASSERT_TRUE(store->Apply(std::vector<StoreWrite>{Delete("t", 1)}).ok());
  EXPECT_EQ(Segments(DbPath()), std::make_pair(int64_t{0}, int64_t{0}));
}

TEST_F(SqliteStoreTest, OnlyTheSerialSaysAChunkIsWrittenAlready) {
  constexpr int64_t kChunk = 5 * 4;  // bytes of a chunk's floats
  auto store = Open();
  auto replay_inputs = [&] {
    std::vector<SessionRecord> records = Load(*store);
    EXPECT_THAT(records, SizeIs(1));
    EXPECT_THAT(records[0].replay, SizeIs(1));
    return records[0].replay[0].inputs;
  };
  auto a = Chunk(0, 1);
  ASSERT_TRUE(
      store->Apply(std::vector<StoreWrite>{Put(Shared("s", 1, {a}))}).ok());
  EXPECT_EQ(Segments(DbPath()), std::make_pair(int64_t{1}, kChunk));
  // After a reset the session applies step 0 again: the same first step,
  // another chunk (another serial), which is written, not taken for the
  // one stored.
  auto again = Chunk(0, 9);
  ASSERT_TRUE(
      store->Apply(std::vector<StoreWrite>{Update(Shared("s", 1, {again}))})
          .ok());
  EXPECT_EQ(Segments(DbPath()), std::make_pair(int64_t{2}, 2 * kChunk));
  EXPECT_EQ(replay_inputs(), (std::vector<float>{9, 9}));
  // A chunk without a serial is written by every write that holds it
  // (each commit adds a segment; the one before the last is deleted).
  auto unnumbered = std::make_shared<ReplayChunk>(*again);
  unnumbered->serial = 0;
  unnumbered->inputs = {7, 7};
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(store
                    ->Apply(std::vector<StoreWrite>{
                        Update(Shared("s", 1, {unnumbered}))})
                    .ok());
    EXPECT_EQ(Segments(DbPath()), std::make_pair(int64_t{2}, 2 * kChunk));
    EXPECT_EQ(replay_inputs(), (std::vector<float>{7, 7}));
  }
}

TEST_F(SqliteStoreTest, AFailedCommitLeavesTheChunksToWriteAgain) {
  auto a = Chunk(0, 1), b = Chunk(1, 2);
  auto store = Open();
  ASSERT_TRUE(
      store->Apply(std::vector<StoreWrite>{Put(Shared("s", 1, {a}))}).ok());
  // A write that fails (the same id twice as puts cannot fail; a closed
  // database handle would): simulated by a read-only transaction lock.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "PRAGMA busy_timeout = 0; BEGIN IMMEDIATE",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_FALSE(
      store->Apply(std::vector<StoreWrite>{Update(Shared("s", 1, {a, b}))})
          .ok());
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(other);
  ASSERT_TRUE(
      store->Apply(std::vector<StoreWrite>{Update(Shared("s", 1, {a, b}))})
          .ok());
  std::vector<SessionRecord> records = Load(*store);
  ASSERT_THAT(records, SizeIs(1));
  ASSERT_THAT(records[0].replay, SizeIs(2));
  EXPECT_EQ(records[0].replay[1].inputs, b->inputs);
}

TEST_F(SqliteStoreTest, AnIdleSessionsChunksAreMovedOutOfAnOldSegment) {
  auto store = Open();
  // The idle session's one small chunk shares the first segment with a
  // big chunk of a busy session, which then moves on for many commits.
  auto idle = Chunk(0, 7);
  auto big = std::make_shared<const ReplayChunk>(
      ReplayChunk{.first_step = 0,
                  .steps = 1,
                  .inputs = std::vector<float>(1000, 1.0f),
                  .outputs = {2.0f},
                  .serial = NextSerial()});
  ASSERT_TRUE(
      store
          ->Apply(std::vector<StoreWrite>{Put(Shared("idle", 1, {idle})),
                                          Put(Shared("busy", 2, {big}))})
          .ok());
  for (int i = 1; i < 80; ++i) {
    ASSERT_TRUE(store
                    ->Apply(std::vector<StoreWrite>{
                        Update(Shared("busy", 2, {Chunk(i, i)}))})
                    .ok());
  }
  // Only the newest segments are left: the first one went once its live
  // bytes (the idle chunk) were copied forward.
  auto [count, bytes] = Segments(DbPath());
  EXPECT_LE(count, 3);
  EXPECT_LT(bytes, 1000 * 4);
  store.reset();
  store = Open();
  std::vector<SessionRecord> records = Load(*store);
  ASSERT_THAT(records, SizeIs(2));
  EXPECT_EQ(records[1].id, "idle");
  ASSERT_THAT(records[1].replay, SizeIs(1));
  EXPECT_EQ(records[1].replay[0].inputs, idle->inputs);
  EXPECT_EQ(records[1].replay[0].outputs, idle->outputs);
}

TEST_F(SqliteStoreTest, ASchemaOneFileIsReadAndUpgraded) {
  // A file as schema 1 wrote it: the replay record inline.
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, R"sql(
PRAGMA page_size = 65536;
PRAGMA journal_mode = WAL;
CREATE TABLE lstmserve_schema (version INTEGER NOT NULL);
CREATE TABLE sessions (
  id TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL,
  incarnation INTEGER NOT NULL, model TEXT NOT NULL,
  version INTEGER NOT NULL, next_step INTEGER NOT NULL,
  state BLOB NOT NULL, initial_state BLOB NOT NULL, replay BLOB NOT NULL,
  created_unix_us INTEGER NOT NULL, last_used_unix_us INTEGER NOT NULL,
  written_unix_us INTEGER NOT NULL);
INSERT INTO lstmserve_schema VALUES (1);
PRAGMA application_id = 1280529485;
)sql",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  const SessionRecord old = Record("old", 9, 3, 1.5f);
  const std::string state = EncodeFloats(old.state);
  const std::string replay = EncodeReplay(old.replay);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(
                db,
                "INSERT INTO sessions VALUES ('old', 'alice', 9, 'tiny', 2, 3, "
                "?1, x'', ?2, 1700000000000000, 1700000000123456, 0)",
                -1, &st, nullptr),
            SQLITE_OK);
  sqlite3_bind_blob(st, 1, state.data(), state.size(), SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, replay.data(), replay.size(), SQLITE_STATIC);
  ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);

  SqliteStateStore::Report report;
  auto store = Open(&report);
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(report.warnings, SizeIs(1));
  EXPECT_THAT(report.warnings[0], HasSubstr("upgraded to 2"));
  std::vector<SessionRecord> records = Load(*store);
  ASSERT_THAT(records, SizeIs(1));
  ExpectSame(records[0], old);
  // Written again, it takes the new form, and reads back the same.
  SessionRecord next = Shared("old", 9, {Chunk(3, 4.0f)});
  ASSERT_TRUE(store->Apply(std::vector<StoreWrite>{Update(next)}).ok());
  store.reset();
  store = Open();
  records = Load(*store);
  ASSERT_THAT(records, SizeIs(1));
  ASSERT_THAT(records[0].replay, SizeIs(1));
  EXPECT_EQ(records[0].replay[0].first_step, 3);
  EXPECT_EQ(records[0].replay[0].outputs, next.replay_chunks[0]->outputs);
  EXPECT_EQ(Segments(DbPath()).first, 1);
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
