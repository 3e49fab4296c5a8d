#include "server/store/sqlite_state_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/record_codec.h"

namespace lstmserve::server::store {
namespace {

// "LSTM" in ASCII: PRAGMA application_id marks the file as ours.
constexpr int kApplicationId = 0x4C53544D;

constexpr const char* kCreateSchema = R"sql(
CREATE TABLE lstmserve_schema (version INTEGER NOT NULL);
CREATE TABLE sessions (
  id TEXT PRIMARY KEY NOT NULL,
  owner TEXT NOT NULL,
  incarnation INTEGER NOT NULL,
  model TEXT NOT NULL,
  version INTEGER NOT NULL,
  next_step INTEGER NOT NULL,
  state BLOB NOT NULL,
  initial_state BLOB NOT NULL,
  replay BLOB NOT NULL,
  created_unix_us INTEGER NOT NULL,
  last_used_unix_us INTEGER NOT NULL,
  written_unix_us INTEGER NOT NULL
);
)sql";

// Schema 2: the floats of replay chunks live in segments, one per commit
// that applied new chunks, and a session's `replay` column refers to them
// (kRefTag below) instead of holding them; schema 1's inline records
// ("LRP1") are still read, and replaced when their row is next written.
constexpr const char* kCreateSegments = R"sql(
CREATE TABLE IF NOT EXISTS replay_segments (
  id INTEGER PRIMARY KEY,
  data BLOB NOT NULL
);
)sql";

// A `replay` column that refers to segments:
//   "LRR1", count u32, then per chunk: first_step i64, steps u32,
//   input_floats u32, output_floats u32, segment i64, offset u64
// (little-endian); the chunk's inputs then outputs are at `offset` in the
// segment's data.
constexpr absl::string_view kRefTag = "LRR1";
constexpr size_t kRefBytes = 8 + 4 + 4 + 4 + 8 + 8;

constexpr const char* kColumns =
    "id, owner, incarnation, model, version, next_step, state, "
    "initial_state, replay, created_unix_us, last_used_unix_us";

absl::Status SqlError(sqlite3* db, absl::string_view what) {
  const int code = db ? sqlite3_extended_errcode(db) : SQLITE_ERROR;
  std::string message =
      absl::StrCat(what, ": ", db ? sqlite3_errmsg(db) : "out of memory");
  if ((code & 0xff) == SQLITE_FULL || (code & 0xff) == SQLITE_IOERR) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

// A prepared statement, finalized when it goes.
class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  absl::Status Prepare(sqlite3* db, const std::string& sql) {
    db_ = db;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
      return SqlError(db, "preparing a statement");
    }
    return absl::OkStatus();
  }
  sqlite3_stmt* get() { return stmt_; }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

absl::Status Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    absl::Status s = SqlError(db, sql.substr(0, 40));
    return absl::Status(s.code(),
                        absl::StrCat(sql.substr(0, 40), ": ", message));
  }
  return absl::OkStatus();
}

// The single integer a query like "PRAGMA application_id" returns.
absl::StatusOr<int64_t> QueryInt(sqlite3* db, const std::string& sql) {
  Statement st;
  if (absl::Status s = st.Prepare(db, sql); !s.ok()) return s;
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_ROW) return sqlite3_column_int64(st.get(), 0);
  if (rc == SQLITE_DONE) return 0;
  return SqlError(db, sql);
}

absl::string_view ColumnBytes(sqlite3_stmt* st, int col) {
  const void* data = sqlite3_column_blob(st, col);
  const int size = sqlite3_column_bytes(st, col);
  if (data == nullptr || size <= 0) return {};
  return {static_cast<const char*>(data), static_cast<size_t>(size)};
}

std::string ColumnText(sqlite3_stmt* st, int col) {
  const unsigned char* text = sqlite3_column_text(st, col);
  const int size = sqlite3_column_bytes(st, col);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text), size);
}

// A chunk's place in a segment.
struct ChunkRef {
  int64_t first_step = 0;
  uint32_t steps = 0, inputs = 0, outputs = 0;
  int64_t segment = 0;
  uint64_t offset = 0;
  uint64_t bytes() const { return (uint64_t{inputs} + outputs) * 4; }
};

template <typename T>
void PutRaw(std::string& out, T value) {
  char b[sizeof(T)];
  std::memcpy(b, &value, sizeof(T));
  out.append(b, sizeof(T));
}
template <typename T>
T GetRaw(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

bool IsRefs(absl::string_view bytes) {
  return bytes.substr(0, kRefTag.size()) == kRefTag;
}

absl::StatusOr<std::vector<ChunkRef>> DecodeRefs(absl::string_view bytes) {
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("the stored replay record is damaged: ", what));
  };
  if (bytes.size() < kRefTag.size() + 4) return bad("it is too short");
  const uint32_t count = GetRaw<uint32_t>(bytes.data() + kRefTag.size());
  if (count == 0 || count > kMaxReplayChunksStored ||
      bytes.size() != kRefTag.size() + 4 + size_t{count} * kRefBytes) {
    return bad(absl::StrCat("it holds ", bytes.size(), " bytes for ", count,
                            " chunk references"));
  }
  std::vector<ChunkRef> refs(count);
  const char* p = bytes.data() + kRefTag.size() + 4;
  for (ChunkRef& r : refs) {
    r.first_step = GetRaw<int64_t>(p);
    r.steps = GetRaw<uint32_t>(p + 8);
    r.inputs = GetRaw<uint32_t>(p + 12);
    r.outputs = GetRaw<uint32_t>(p + 16);
    r.segment = GetRaw<int64_t>(p + 20);
    r.offset = GetRaw<uint64_t>(p + 28);
    p += kRefBytes;
    if (r.steps < 1 || r.steps > (1u << 24) || r.inputs % r.steps != 0 ||
        r.outputs % r.steps != 0 || r.segment < 1 ||
        r.offset > (uint64_t{1} << 40)) {
      return bad("a chunk reference is out of range");
    }
  }
  return refs;
}

// Reads chunks out of replay_segments (incremental blob I/O: one open
// handle, moved from segment to segment).
class SegmentReader {
 public:
  explicit SegmentReader(sqlite3* db) : db_(db) {}
  ~SegmentReader() { sqlite3_blob_close(blob_); }
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  absl::StatusOr<std::vector<ReplayChunk>> Read(
      const std::vector<ChunkRef>& refs) {
    std::vector<ReplayChunk> replay;
    replay.reserve(refs.size());
    for (const ChunkRef& r : refs) {
      if (absl::Status s = Open(r.segment); !s.ok()) return s;
      const int size = sqlite3_blob_bytes(blob_);
      if (r.offset + r.bytes() > static_cast<uint64_t>(size)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the stored replay record is damaged: a chunk lies past the end "
            "of replay segment ",
            r.segment));
      }
      ReplayChunk c;
      c.first_step = r.first_step;
      c.steps = static_cast<int>(r.steps);
      c.inputs.resize(r.inputs);
      c.outputs.resize(r.outputs);
      const int off = static_cast<int>(r.offset);
      if ((r.inputs > 0 && sqlite3_blob_read(blob_, c.inputs.data(),
                                             static_cast<int>(r.inputs * 4),
                                             off) != SQLITE_OK) ||
          (r.outputs > 0 &&
           sqlite3_blob_read(
               blob_, c.outputs.data(), static_cast<int>(r.outputs * 4),
               off + static_cast<int>(r.inputs * 4)) != SQLITE_OK)) {
        return SqlError(db_,
                        absl::StrCat("reading replay segment ", r.segment));
      }
      replay.push_back(std::move(c));
    }
    return replay;
  }

 private:
  absl::Status Open(int64_t segment) {
    if (blob_ != nullptr && segment == open_) return absl::OkStatus();
    const int rc = blob_ == nullptr
                       ? sqlite3_blob_open(db_, "main", "replay_segments",
                                           "data", segment, 0, &blob_)
                       : sqlite3_blob_reopen(blob_, segment);
    if (rc != SQLITE_OK) {
      if (blob_ != nullptr) sqlite3_blob_close(blob_);
      blob_ = nullptr;
      return absl::InvalidArgumentError(
          absl::StrCat("the stored replay record is damaged: replay segment ",
                       segment, " cannot be read (", sqlite3_errmsg(db_), ")"));
    }
    open_ = segment;
    return absl::OkStatus();
  }

  sqlite3* db_;
  sqlite3_blob* blob_ = nullptr;
  int64_t open_ = 0;
};

// One row (as selected with kColumns) into a record.
absl::StatusOr<SessionRecord> ReadRow(sqlite3_stmt* st,
                                      SegmentReader& segments) {
  SessionRecord r;
  r.id = ColumnText(st, 0);
  r.owner = ColumnText(st, 1);
  r.incarnation = static_cast<uint64_t>(sqlite3_column_int64(st, 2));
  r.model = ColumnText(st, 3);
  r.version = sqlite3_column_int64(st, 4);
  r.next_step = sqlite3_column_int64(st, 5);
  absl::StatusOr<std::vector<float>> state = DecodeFloats(ColumnBytes(st, 6));
  if (!state.ok()) return state.status();
  r.state = *std::move(state);
  absl::StatusOr<std::vector<float>> initial = DecodeFloats(ColumnBytes(st, 7));
  if (!initial.ok()) return initial.status();
  r.initial_state = *std::move(initial);
  const absl::string_view replay_bytes = ColumnBytes(st, 8);
  absl::StatusOr<std::vector<ReplayChunk>> replay;
  if (IsRefs(replay_bytes)) {
    absl::StatusOr<std::vector<ChunkRef>> refs = DecodeRefs(replay_bytes);
    if (!refs.ok()) return refs.status();
    replay = segments.Read(*refs);
  } else {
    replay = DecodeReplay(replay_bytes);
  }
  if (!replay.ok()) return replay.status();
  r.replay = *std::move(replay);
  r.created_unix_us = sqlite3_column_int64(st, 9);
  r.last_used_unix_us = sqlite3_column_int64(st, 10);
  return r;
}

void Note(SqliteStateStore::Report* report, std::string line) {
  if (report) report->warnings.push_back(std::move(line));
}

// A BLOB parameter; an empty one is a zero-length blob, not NULL (which a
// null data pointer would bind).
void BindBytes(sqlite3_stmt* st, int index, const void* data, size_t size) {
  static const char kNothing = 0;
  sqlite3_bind_blob64(st, index, size == 0 ? &kNothing : data, size,
                      SQLITE_STATIC);
}

enum class FileKind { kMissing, kEmpty, kSqlite, kNotSqlite };

absl::StatusOr<FileKind> Inspect(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return FileKind::kMissing;
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a regular file"));
  }
  if (st.st_size == 0) return FileKind::kEmpty;
  char header[16] = {};
  std::ifstream in(path, std::ios::binary);
  in.read(header, sizeof(header));
  if (in.gcount() == sizeof(header) &&
      std::memcmp(header, "SQLite format 3", 16) == 0) {
    return FileKind::kSqlite;
  }
  return FileKind::kNotSqlite;
}

sqlite3* OpenDb(const std::string& path, absl::Status* status) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    *status = SqlError(db, absl::StrCat("opening ", path));
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_extended_result_codes(db, 1);
  return db;
}

// What an existing SQLite file holds: ours (and its schema version), or
// not. Errors mean the file could not be read as a whole (damaged).
struct Identity {
  bool ours = false;
  bool blank = false;  // no tables at all
  int64_t schema_version = 0;
};

absl::StatusOr<Identity> Identify(sqlite3* db) {
  Identity id;
  absl::StatusOr<int64_t> app = QueryInt(db, "PRAGMA application_id");
  if (!app.ok()) return app.status();
  absl::StatusOr<int64_t> tables =
      QueryInt(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'");
  if (!tables.ok()) return tables.status();
  id.blank = *tables == 0 && *app == 0;
  id.ours = *app == kApplicationId;
  if (id.ours) {
    absl::StatusOr<int64_t> v =
        QueryInt(db, "SELECT max(version) FROM lstmserve_schema");
    if (!v.ok()) return v.status();
    id.schema_version = *v;
  }
  return id;
}

// "ok" from PRAGMA quick_check, or what it found.
absl::Status QuickCheck(sqlite3* db) {
  Statement st;
  if (absl::Status s = st.Prepare(db, "PRAGMA quick_check"); !s.ok()) {
    return s;
  }
  std::string found;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    std::string line = ColumnText(st.get(), 0);
    if (line != "ok") absl::StrAppend(&found, found.empty() ? "" : "; ", line);
  }
  if (rc != SQLITE_DONE) return SqlError(db, "checking the database");
  if (!found.empty()) return absl::DataLossError(found.substr(0, 300));
  return absl::OkStatus();
}

absl::Status CreateSchema(sqlite3* db) {
  if (absl::Status s = Exec(db, "BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = Exec(db, kCreateSchema);
  if (s.ok()) s = Exec(db, kCreateSegments);
  if (s.ok()) {
    s = Exec(db, absl::StrCat("INSERT INTO lstmserve_schema VALUES (",
                              SqliteStateStore::kSchemaVersion, ")"));
  }
  if (s.ok())
    s = Exec(db, absl::StrCat("PRAGMA application_id = ", kApplicationId));
  if (s.ok()) return Exec(db, "COMMIT");
  Exec(db, "ROLLBACK").IgnoreError();
  return s;
}

// Reads every row of a damaged database that can still be reached, in
// rowid order. Where a seek past a row fails (a damaged page), the rows
// behind it are skipped one at a time, then in growing jumps, so that a bad
// page loses only what lies under it. `skipped` counts failed seeks.
std::vector<SessionRecord> Salvage(sqlite3* db, int64_t* skipped) {
  std::vector<SessionRecord> saved;
  *skipped = 0;
  // Lets SQLite read a file shorter than its header says (a truncated one)
  // instead of refusing it whole. Nothing is written to this file.
  Exec(db, "PRAGMA writable_schema = ON").IgnoreError();
  Statement st;
  if (!st.Prepare(db, absl::StrCat("SELECT rowid, ", kColumns,
                                   " FROM sessions WHERE rowid > ?1 "
                                   "ORDER BY rowid LIMIT 1"))
           .ok()) {
    *skipped = -1;  // the table itself cannot be read
    return saved;
  }
  constexpr int64_t kMaxRowid = int64_t{1} << 62;
  int64_t after = 0;  // the last rowid read or given up on
  int64_t jump = 1;
  int failures_in_a_row = 0;
  SegmentReader segments(db);
  while (after < kMaxRowid) {
    st.Reset();
    sqlite3_bind_int64(st.get(), 1, after);
    const int rc = sqlite3_step(st.get());
    if (rc == SQLITE_DONE) break;  // nothing past `after`
    // A damaged page can answer with a rowid that is not past `after` (0,
    // read from zeros): taken as a failed seek, so that the scan always
    // moves forward.
    if (rc == SQLITE_ROW && sqlite3_column_int64(st.get(), 0) > after) {
      after = sqlite3_column_int64(st.get(), 0);
      failures_in_a_row = 0;
      jump = 1;
      // The row's columns start at 1 here; ReadRow reads from 0.
      Statement row;
      if (row.Prepare(db, absl::StrCat("SELECT ", kColumns,
                                       " FROM sessions WHERE rowid = ", after))
              .ok() &&
          sqlite3_step(row.get()) == SQLITE_ROW) {
        absl::StatusOr<SessionRecord> r = ReadRow(row.get(), segments);
        if (r.ok()) saved.push_back(*std::move(r));
      }
      continue;
    }
    ++*skipped;
    if (++failures_in_a_row > 1000) jump = std::min(jump * 2, kMaxRowid);
    after += jump;
  }
  return saved;
}

absl::Status Configure(sqlite3* db, bool sync_full) {
  sqlite3_busy_timeout(db, 5000);
  // A session's record (4 KiB of state and a few KiB of replay for the
  // benchmark model) fits in one 64 KiB page, with no overflow chain, and a
  // checkpoint of thousands of them is a few thousand page writes: about
  // half the CPU of 4 KiB pages, measured. Takes effect on a new file only
  // (before its first table); an existing file keeps its page size.
  if (absl::Status s = Exec(db, "PRAGMA page_size = 65536"); !s.ok()) {
    return s;
  }

  absl::StatusOr<int64_t> mode = QueryInt(db, "PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.status();
  // A checkpoint rewrites every busy session's row: with SQLite's default
  // 2 MiB page cache each of those pages is read back from the file first.
  // Up to 128 MiB (allocated as pages are used) holds the rows of 10,000
  // sessions of the benchmark model. And the WAL is copied into the
  // database every 4096 pages (256 MiB; SQLite's default is 1000), so that
  // a page rewritten by several checkpoints in a row is copied once:
  // measured at 10,000 streaming sessions, the bytes written to files fell
  // from ~110 to ~46 MB/s, those read from ~135 to ~20 MB/s.
  if (absl::Status s = Exec(db, "PRAGMA cache_size = -131072"); !s.ok()) {
    return s;
  }
  if (absl::Status s = Exec(db, "PRAGMA wal_autocheckpoint = 4096"); !s.ok()) {
    return s;
  }
  return Exec(db, sync_full ? "PRAGMA synchronous = FULL"
                            : "PRAGMA synchronous = NORMAL");
}

}  // namespace

struct SqliteStateStore::Statements {
  Statement put, update, erase, begin, commit, rollback;
  Statement put_segment, erase_segment, relocate;
};

// What the committed rows refer to in replay_segments, kept in memory so
// that a commit writes only chunks it has not written before, and knows
// which segments no row needs any more.
struct SqliteStateStore::Index {
  struct Ref {
    ChunkRef at;
    // The chunk's ReplayChunk::serial, compared with the next record's
    // chunks' (0: not known, as for a row read from disk). Not the chunk
    // itself: holding it would keep it alive past its session's window
    // and have this thread free it, and count references on every write.
    uint64_t serial = 0;
  };
  struct Row {
    uint64_t incarnation = 0;
    std::vector<Ref> refs;  // empty: no chunks in segments
  };
  struct Segment {
    uint64_t size = 0;
    uint64_t live = 0;  // bytes some row refers to
  };
  absl::flat_hash_map<std::string, Row> rows;  // rows with references
  std::map<int64_t, Segment> segments;
  int64_t next_segment = 1;
  // A row's references could not be read: which segments are unused is
  // not known, so none is ever deleted (until a restart that reads them).
  bool unsure = false;
  std::vector<int64_t> dead;      // unreferenced: deleted in the next commit
  std::vector<int64_t> relocate;  // mostly unreferenced: copied forward
  // Emptied refs vectors of replaced rows, for the next rows built.
  std::vector<std::vector<Ref>> spare_refs;

  void Count(const Row& row, int sign) {
    for (const Ref& r : row.refs) {
      Segment& seg = segments[r.at.segment];
      seg.live += sign > 0 ? r.at.bytes() : -r.at.bytes();
    }
  }
};

namespace {

// A segment holds at most this much (SQLite's BLOBs are limited to 1 GB);
// a commit with more new chunks writes several.
constexpr size_t kMaxSegmentBytes = size_t{64} << 20;
// A segment this many segments behind the newest, with less than half its
// bytes still referenced, has those copied forward (so that a few idle
// sessions do not keep a whole old segment alive).
constexpr int64_t kRelocateAge = 64;

// `refs`: Index::Refs.
template <typename Refs>
void AppendRefs(const Refs& refs, std::string& out) {
  out.clear();
  if (refs.empty()) return;
  out.reserve(kRefTag.size() + 4 + refs.size() * kRefBytes);
  out.append(kRefTag.data(), kRefTag.size());
  PutRaw<uint32_t>(out, static_cast<uint32_t>(refs.size()));
  for (const auto& ref : refs) {
    const ChunkRef& r = ref.at;
    PutRaw<int64_t>(out, r.first_step);
    PutRaw<uint32_t>(out, r.steps);
    PutRaw<uint32_t>(out, r.inputs);
    PutRaw<uint32_t>(out, r.outputs);
    PutRaw<int64_t>(out, r.segment);
    PutRaw<uint64_t>(out, r.offset);
  }
}

}  // namespace

absl::Status SqliteStateStore::BuildIndex() {
  index_ = std::make_unique<Index>();
  Index& index = *index_;
  Statement seg;
  if (absl::Status s =
          seg.Prepare(db_, "SELECT id, length(data) FROM replay_segments");
      !s.ok()) {
    return s;
  }
  int rc;
  while ((rc = sqlite3_step(seg.get())) == SQLITE_ROW) {
    const int64_t id = sqlite3_column_int64(seg.get(), 0);
    index.segments[id].size =
        static_cast<uint64_t>(sqlite3_column_int64(seg.get(), 1));
    index.next_segment = std::max(index.next_segment, id + 1);
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "reading replay segments");
  Statement st;
  if (absl::Status s =
          st.Prepare(db_, "SELECT id, incarnation, replay FROM sessions");
      !s.ok()) {
    return s;
  }
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    const absl::string_view bytes = ColumnBytes(st.get(), 2);
    if (!IsRefs(bytes)) continue;
    absl::StatusOr<std::vector<ChunkRef>> refs = DecodeRefs(bytes);
    if (!refs.ok()) {
      index.unsure = true;
      continue;
    }
    Index::Row row;
    row.incarnation = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 1));
    for (const ChunkRef& r : *refs) row.refs.push_back(Index::Ref{r, 0});
    index.Count(row, +1);
    index.rows[ColumnText(st.get(), 0)] = std::move(row);
  }
  // A damaged table: what the unread rows refer to is unknown.
  if (rc != SQLITE_DONE) index.unsure = true;
  if (!index.unsure) {
    for (const auto& [id, segment] : index.segments) {
      if (segment.live == 0) index.dead.push_back(id);
    }
  }
  return absl::OkStatus();
}

SqliteStateStore::SqliteStateStore(std::string path, sqlite3* db, int lock_fd)
    : path_(std::move(path)), db_(db), lock_fd_(lock_fd) {}

SqliteStateStore::~SqliteStateStore() {
  statements_.reset();  // finalized before the close
  sqlite3_close(db_);
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the lock
}

absl::StatusOr<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(
    const Options& options, Report* report) {
  const std::string& dir = options.dir;
  if (dir.empty()) return absl::InvalidArgumentError("--state-dir is empty");
  if (mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create the state directory ", dir, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--state-dir ", dir, " is not a directory"));
  }
  const std::string lock_path = dir + "/lock";
  const int lock_fd =
      open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", lock_path, ": ", std::strerror(errno)));
  }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    close(lock_fd);
    return absl::FailedPreconditionError(
        absl::StrCat("another lstm-server uses --state-dir ", dir, " (",
                     lock_path, " is locked)"));
  }
  auto fail = [&](absl::Status s) {
    close(lock_fd);
    return s;
  };

  const std::string path = dir + "/sessions.db";
  absl::StatusOr<FileKind> kind = Inspect(path);
  if (!kind.ok()) return fail(kind.status());
  if (*kind == FileKind::kNotSqlite) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat(path,
                     " is not an SQLite database (not written by lstm-server); "
                     "move it away or point --state-dir elsewhere")));
  }

  absl::Status status;
  sqlite3* db = OpenDb(path, &status);
  if (db == nullptr) return fail(status);
  std::vector<SessionRecord> salvaged;
  bool damaged = false;
  int64_t unreadable = 0;
  if (*kind == FileKind::kSqlite) {
    absl::Status check = QuickCheck(db);
    absl::StatusOr<Identity> id =
        check.ok() ? Identify(db) : absl::StatusOr<Identity>(check);
    if (id.ok() && !id->ours && !id->blank) {
      sqlite3_close(db);
      return fail(absl::FailedPreconditionError(absl::StrCat(
          path,
          " is another program's SQLite database (its application_id "
          "is not lstm-server's); move it away or point --state-dir "
          "elsewhere")));
    }
    if (id.ok() && id->ours && id->schema_version > kSchemaVersion) {
      sqlite3_close(db);
      return fail(absl::FailedPreconditionError(absl::StrCat(
          path, " has schema version ", id->schema_version,
          ", written by a newer lstm-server; this one reads version ",
          kSchemaVersion, ". Run the newer server, or move the file away")));
    }
    if (!id.ok()) {
      damaged = true;
      Note(report, absl::StrCat(path, " is damaged (", id.status().message(),
                                "); salvaging what can be read"));
      salvaged = Salvage(db, &unreadable);
      sqlite3_close(db);
      const std::string kept =
          absl::StrCat(path, ".damaged-", absl::ToUnixSeconds(absl::Now()));
      if (std::rename(path.c_str(), kept.c_str()) != 0) {
        return fail(absl::FailedPreconditionError(
            absl::StrCat(path, " is damaged and cannot be moved aside to ",
                         kept, ": ", std::strerror(errno))));
      }
      for (const char* suffix : {"-wal", "-shm"}) {
        std::rename((path + suffix).c_str(), (kept + suffix).c_str());
      }
      Note(report, absl::StrCat("the damaged file is kept as ", kept));
      db = OpenDb(path, &status);
      if (db == nullptr) return fail(status);
    }
  }

  if (absl::Status s = Configure(db, options.sync_full); !s.ok()) {
    sqlite3_close(db);
    return fail(s);
  }
  absl::StatusOr<Identity> id = Identify(db);
  if (!id.ok()) {
    sqlite3_close(db);
    return fail(id.status());
  }
  if (!id->ours) {
    if (absl::Status s = CreateSchema(db); !s.ok()) {
      sqlite3_close(db);
      return fail(s);
    }
    if (!damaged && report) report->created = true;
  } else if (id->schema_version < kSchemaVersion) {
    // Schema 1 to 2: the segments table; schema 1's rows are read as they
    // are and take the new form when next written.
    absl::Status s = Exec(db, "BEGIN IMMEDIATE");
    if (s.ok()) s = Exec(db, kCreateSegments);
    if (s.ok()) {
      s = Exec(db, absl::StrCat("UPDATE lstmserve_schema SET version = ",
                                kSchemaVersion));
    }
    if (s.ok()) s = Exec(db, "COMMIT");
    if (!s.ok()) {
      Exec(db, "ROLLBACK").IgnoreError();
      sqlite3_close(db);
      return fail(s);
    }
    Note(report, absl::StrCat(path, ": schema version ", id->schema_version,
                              " upgraded to ", kSchemaVersion));
  }

  auto store = std::unique_ptr<SqliteStateStore>(
      new SqliteStateStore(path, db, lock_fd));
  store->statements_ = std::make_unique<Statements>();
  Statements& sql = *store->statements_;
  for (auto [stmt, text] :
       std::initializer_list<std::pair<Statement*, std::string>>{
           {&sql.put,
            absl::StrCat(
                "INSERT OR REPLACE INTO sessions (", kColumns,
                ", written_unix_us) VALUES "
                "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")},
           {&sql.update,
            "UPDATE sessions SET owner = ?2, model = ?4, version = ?5, "
            "next_step = ?6, state = ?7, initial_state = ?8, replay = ?9, "
            "created_unix_us = ?10, last_used_unix_us = ?11, "
            "written_unix_us = ?12 WHERE id = ?1 AND incarnation = ?3"},
           {&sql.erase,
            "DELETE FROM sessions WHERE id = ?1 AND incarnation = ?3"},
           {&sql.put_segment,
            "INSERT INTO replay_segments (id, data) VALUES (?1, ?2)"},
           {&sql.erase_segment, "DELETE FROM replay_segments WHERE id = ?1"},
           {&sql.relocate,
            "UPDATE sessions SET replay = ?2 WHERE id = ?1 AND "
            "incarnation = ?3"},
           {&sql.begin, "BEGIN IMMEDIATE"},
           {&sql.commit, "COMMIT"},
           {&sql.rollback, "ROLLBACK"}}) {
    if (absl::Status s = stmt->Prepare(db, text); !s.ok()) return s;
  }
  if (absl::Status s = store->BuildIndex(); !s.ok()) return s;

  if (damaged) {
    std::vector<StoreWrite> writes;
    writes.reserve(salvaged.size());
    for (SessionRecord& r : salvaged) {
      writes.push_back(StoreWrite{StoreWrite::Kind::kPut, std::move(r)});
    }
    if (absl::Status s = store->Apply(writes); !s.ok()) return s;
    Note(report,
         unreadable < 0
             ? absl::StrCat("salvaged ", writes.size(),
                            " sessions; the sessions table itself could not "
                            "be read")
             : absl::StrCat("salvaged ", writes.size(), " sessions; ",
                            unreadable == 0
                                ? "every row could be read"
                                : "rows on damaged pages could not be read"));
  }
  return store;
}

absl::Status SqliteStateStore::Apply(std::span<const StoreWrite> writes) {
  Statements& sql = *statements_;
  Index& index = *index_;
  auto step = [&](Statement& st, absl::string_view what) -> absl::Status {
    const int rc = sqlite3_step(st.get());
    st.Reset();
    if (rc != SQLITE_DONE) return SqlError(db_, what);
    return absl::OkStatus();
  };
  if (absl::Status s = step(sql.begin, "beginning a transaction"); !s.ok()) {
    return s;
  }
  const int64_t now_us = absl::ToUnixMicros(absl::Now());

  // The rows this transaction changes (nullopt: deleted, or holding no
  // references any more), applied to the index once it commits.
  // Keyed by the writes' ids (or relocated_ids'), which outlive it.
  absl::flat_hash_map<absl::string_view, std::optional<Index::Row>> staged;
  staged.reserve(writes.size());
  std::deque<std::string> relocated_ids;
  auto current = [&](absl::string_view id) -> const Index::Row* {
    if (auto it = staged.find(id); it != staged.end()) {
      return it->second ? &*it->second : nullptr;
    }
    auto it = index.rows.find(id);
    return it == index.rows.end() ? nullptr : &it->second;
  };
  struct Written {
    int64_t id;
    uint64_t size;
  };
  std::vector<Written> new_segments;
  int64_t segment_id = index.next_segment;
  segment_buffer_.clear();
  auto flush_segment = [&]() -> absl::Status {
    if (segment_buffer_.empty()) return absl::OkStatus();
    // Inserted as zeros, then written through a blob handle: binding the
    // bytes would have SQLite copy all of them into a record first.
    sqlite3_bind_int64(sql.put_segment.get(), 1, segment_id);
    sqlite3_bind_zeroblob64(sql.put_segment.get(), 2, segment_buffer_.size());
    if (absl::Status s = step(sql.put_segment, "writing replay chunks");
        !s.ok()) {
      return s;
    }
    sqlite3_blob* blob = nullptr;
    int rc = sqlite3_blob_open(db_, "main", "replay_segments", "data",
                               segment_id, 1, &blob);
    if (rc == SQLITE_OK) {
      rc = sqlite3_blob_write(blob, segment_buffer_.data(),
                              static_cast<int>(segment_buffer_.size()), 0);
    }
    const int closed = sqlite3_blob_close(blob);
    if (rc != SQLITE_OK || closed != SQLITE_OK) {
      return SqlError(db_, "writing replay chunks");
    }
    new_segments.push_back(Written{segment_id, segment_buffer_.size()});
    ++segment_id;
    segment_buffer_.clear();
    return absl::OkStatus();
  };
  // Puts a chunk's floats into the segment being filled; sets `at`'s place.
  auto append = [&](ChunkRef& at, const void* inputs,
                    const void* outputs) -> absl::Status {
    if (!segment_buffer_.empty() &&
        segment_buffer_.size() + at.bytes() > kMaxSegmentBytes) {
      if (absl::Status s = flush_segment(); !s.ok()) return s;
    }
    if (segment_buffer_.capacity() == 0) {
      segment_buffer_.reserve(size_t{4} << 20);
    }
    at.segment = segment_id;
    at.offset = segment_buffer_.size();
    segment_buffer_.append(static_cast<const char*>(inputs),
                           size_t{at.inputs} * 4);
    segment_buffer_.append(static_cast<const char*>(outputs),
                           size_t{at.outputs} * 4);
    return absl::OkStatus();
  };

  absl::Status status;
  // Segments no row refers to any more.
  for (int64_t id : index.dead) {
    if (!status.ok()) break;
    sqlite3_bind_int64(sql.erase_segment.get(), 1, id);
    status = step(sql.erase_segment, "deleting replay chunks");
  }
  // Rows that keep chunks in old, mostly unreferenced segments: their
  // chunks are copied to the new segment, so that the old one goes.
  if (status.ok() && !index.relocate.empty()) {
    absl::flat_hash_set<int64_t> old(index.relocate.begin(),
                                     index.relocate.end());
    SegmentReader reader(db_);
    for (const auto& [id, row] : index.rows) {
      if (!status.ok()) break;
      bool touched = false;
      for (const Index::Ref& r : row.refs)
        touched |= old.contains(r.at.segment);
      if (!touched) continue;
      Index::Row moved = row;
      for (Index::Ref& r : moved.refs) {
        if (!status.ok()) break;
        if (!old.contains(r.at.segment)) continue;
        absl::StatusOr<std::vector<ReplayChunk>> c = reader.Read({r.at});
        if (!c.ok()) {
          status = c.status();
          break;
        }
        status = append(r.at, (*c)[0].inputs.data(), (*c)[0].outputs.data());
      }
      if (!status.ok()) break;
      sqlite3_stmt* st = sql.relocate.get();
      sqlite3_bind_text(st, 1, id.data(), static_cast<int>(id.size()),
                        SQLITE_STATIC);
      AppendRefs(moved.refs, replay_buffer_);
      BindBytes(st, 2, replay_buffer_.data(), replay_buffer_.size());
      sqlite3_bind_int64(st, 3, static_cast<int64_t>(moved.incarnation));
      status = step(sql.relocate, "moving replay chunks");
      if (status.ok())
        staged[relocated_ids.emplace_back(id)] = std::move(moved);
    }
  }

  for (const StoreWrite& w : writes) {
    if (!status.ok()) break;
    const SessionRecord& r = w.record;
    Statement& st = w.kind == StoreWrite::Kind::kPut      ? sql.put
                    : w.kind == StoreWrite::Kind::kUpdate ? sql.update
                                                          : sql.erase;
    sqlite3_stmt* s = st.get();
    sqlite3_bind_text(s, 1, r.id.data(), static_cast<int>(r.id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, static_cast<int64_t>(r.incarnation));
    std::optional<Index::Row> row;
    if (w.kind != StoreWrite::Kind::kDelete) {
      // The chunks the row refers to already are referred to again; only
      // the others are written, once, into the new segment.
      const Index::Row* was = current(r.id);
      if (was != nullptr && was->incarnation != r.incarnation) was = nullptr;
      row.emplace();
      row->incarnation = r.incarnation;
      if (!index.spare_refs.empty()) {  // no allocation per row
        row->refs = std::move(index.spare_refs.back());
        index.spare_refs.pop_back();
      }
      for (const auto& chunk : r.replay_chunks) {
        if (!status.ok()) break;
        const Index::Ref* known = nullptr;
        if (was != nullptr && chunk->serial != 0) {
          for (const Index::Ref& ref : was->refs) {
            if (ref.serial == chunk->serial) known = &ref;
          }
        }
        if (known != nullptr) {
          row->refs.push_back(*known);
          continue;
        }
        Index::Ref ref{
            ChunkRef{chunk->first_step, static_cast<uint32_t>(chunk->steps),
                     static_cast<uint32_t>(chunk->inputs.size()),
                     static_cast<uint32_t>(chunk->outputs.size())},
            chunk->serial};
        status = append(ref.at, chunk->inputs.data(), chunk->outputs.data());
        row->refs.push_back(std::move(ref));
      }
      if (r.replay_chunks.empty()) {
        for (const ReplayChunk& c : r.replay) {
          if (!status.ok()) break;
          Index::Ref ref{ChunkRef{c.first_step, static_cast<uint32_t>(c.steps),
                                  static_cast<uint32_t>(c.inputs.size()),
                                  static_cast<uint32_t>(c.outputs.size())},
                         0};
          status = append(ref.at, c.inputs.data(), c.outputs.data());
          row->refs.push_back(std::move(ref));
        }
      }
      if (!status.ok()) break;
      AppendRefs(row->refs, replay_buffer_);
      sqlite3_bind_text(s, 2, r.owner.data(), static_cast<int>(r.owner.size()),
                        SQLITE_STATIC);
      sqlite3_bind_text(s, 4, r.model.data(), static_cast<int>(r.model.size()),
                        SQLITE_STATIC);
      sqlite3_bind_int64(s, 5, r.version);
      sqlite3_bind_int64(s, 6, r.next_step);
      BindBytes(s, 7, r.state.data(), r.state.size() * sizeof(float));
      BindBytes(s, 8, r.initial_state.data(),
                r.initial_state.size() * sizeof(float));
      BindBytes(s, 9, replay_buffer_.data(), replay_buffer_.size());
      sqlite3_bind_int64(s, 10, r.created_unix_us);
      sqlite3_bind_int64(s, 11, r.last_used_unix_us);
      sqlite3_bind_int64(s, 12, now_us);
    }
    status = step(st, "writing a session");
    if (!status.ok()) break;
    // A put replaces the row of its id, whatever it was; an update or a
    // delete applies only to the same incarnation (changes() says whether
    // there was one).
    if (w.kind == StoreWrite::Kind::kPut || sqlite3_changes(db_) > 0) {
      if (row && row->refs.empty()) row.reset();
      staged[absl::string_view(r.id)] = std::move(row);
    }
  }
  if (status.ok()) status = flush_segment();
  if (status.ok()) status = step(sql.commit, "committing");
  if (!status.ok()) {
    // After a failed COMMIT the transaction may still be open.
    if (!sqlite3_get_autocommit(db_)) {
      step(sql.rollback, "rolling back").IgnoreError();
    }
    return status;  // the index still describes what is committed
  }

  // Committed: the index follows.
  for (int64_t id : index.dead) index.segments.erase(id);
  index.dead.clear();
  index.relocate.clear();
  for (const Written& w : new_segments) index.segments[w.id].size = w.size;
  index.next_segment = segment_id;
  for (auto& [id, row] : staged) {
    auto it = index.rows.find(id);
    if (it != index.rows.end()) {
      index.Count(it->second, -1);
      std::vector<Index::Ref> old = std::move(it->second.refs);
      if (row) {
        index.Count(*row, +1);
        it->second = std::move(*row);
      } else {
        index.rows.erase(it);
      }
      old.clear();
      if (index.spare_refs.size() < index.rows.size()) {
        index.spare_refs.push_back(std::move(old));
      }
    } else if (row) {
      index.Count(*row, +1);
      index.rows.emplace(std::string(id), std::move(*row));
    }
  }
  if (!index.unsure) {
    for (const auto& [id, segment] : index.segments) {
      if (segment.live == 0) {
        index.dead.push_back(id);
      } else if (id + kRelocateAge < index.next_segment &&
                 segment.live * 2 < segment.size) {
        index.relocate.push_back(id);
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<StateStore::Contents> SqliteStateStore::LoadAll() {
  Contents contents;
  Statement st;
  if (absl::Status s = st.Prepare(
          db_, absl::StrCat("SELECT ", kColumns, " FROM sessions ORDER BY id"));
      !s.ok()) {
    return s;
  }
  int rc;
  SegmentReader segments(db_);
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    absl::StatusOr<SessionRecord> r = ReadRow(st.get(), segments);
    if (r.ok()) {
      contents.records.push_back(*std::move(r));
    } else {
      contents.problems.push_back(
          absl::StrCat("session \"", ColumnText(st.get(), 0).substr(0, 64),
                       "\" not restored: ", r.status().message()));
    }
  }
  if (rc != SQLITE_DONE) {
    contents.problems.push_back(absl::StrCat(
        "reading ", path_, " stopped after ", contents.records.size(),
        " sessions: ", sqlite3_errmsg(db_),
        " (restart the server to salvage the rest)"));
  }
  return contents;
}

}  // namespace lstmserve::server::store
