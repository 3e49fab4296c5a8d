#include "server/store/sqlite_state_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

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

// One row (as selected with kColumns) into a record.
absl::StatusOr<SessionRecord> ReadRow(sqlite3_stmt* st) {
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
  absl::StatusOr<std::vector<ReplayChunk>> replay =
      DecodeReplay(ColumnBytes(st, 8));
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
  while (after < kMaxRowid) {
    st.Reset();
    sqlite3_bind_int64(st.get(), 1, after);
    const int rc = sqlite3_step(st.get());
    if (rc == SQLITE_DONE) break;  // nothing past `after`
    if (rc == SQLITE_ROW) {
      after = sqlite3_column_int64(st.get(), 0);
      failures_in_a_row = 0;
      jump = 1;
      // The row's columns start at 1 here; ReadRow reads from 0.
      Statement row;
      if (row.Prepare(db, absl::StrCat("SELECT ", kColumns,
                                       " FROM sessions WHERE rowid = ", after))
              .ok() &&
          sqlite3_step(row.get()) == SQLITE_ROW) {
        absl::StatusOr<SessionRecord> r = ReadRow(row.get());
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
  return Exec(db, sync_full ? "PRAGMA synchronous = FULL"
                            : "PRAGMA synchronous = NORMAL");
}

}  // namespace

struct SqliteStateStore::Statements {
  Statement put, update, erase, begin, commit, rollback;
};

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
           {&sql.begin, "BEGIN IMMEDIATE"},
           {&sql.commit, "COMMIT"},
           {&sql.rollback, "ROLLBACK"}}) {
    if (absl::Status s = stmt->Prepare(db, text); !s.ok()) return s;
  }

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
  absl::Status status;
  for (const StoreWrite& w : writes) {
    const SessionRecord& r = w.record;
    Statement& st = w.kind == StoreWrite::Kind::kPut      ? sql.put
                    : w.kind == StoreWrite::Kind::kUpdate ? sql.update
                                                          : sql.erase;
    sqlite3_stmt* s = st.get();
    sqlite3_bind_text(s, 1, r.id.data(), static_cast<int>(r.id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, static_cast<int64_t>(r.incarnation));
    if (w.kind != StoreWrite::Kind::kDelete) {
      // Encoded into one buffer reused for every record: a checkpoint
      // allocates nothing here.
      std::string& blob = replay_buffer_;
      if (!r.replay_chunks.empty()) {
        EncodeReplayTo(r.replay_chunks, blob);
      } else {
        blob = EncodeReplay(r.replay);
      }
      sqlite3_bind_text(s, 2, r.owner.data(), static_cast<int>(r.owner.size()),
                        SQLITE_STATIC);
      sqlite3_bind_text(s, 4, r.model.data(), static_cast<int>(r.model.size()),
                        SQLITE_STATIC);
      sqlite3_bind_int64(s, 5, r.version);
      sqlite3_bind_int64(s, 6, r.next_step);
      BindBytes(s, 7, r.state.data(), r.state.size() * sizeof(float));
      BindBytes(s, 8, r.initial_state.data(),
                r.initial_state.size() * sizeof(float));
      BindBytes(s, 9, blob.data(), blob.size());
      sqlite3_bind_int64(s, 10, r.created_unix_us);
      sqlite3_bind_int64(s, 11, r.last_used_unix_us);
      sqlite3_bind_int64(s, 12, now_us);
    }
    status = step(st, "writing a session");
    if (!status.ok()) break;
  }
  if (status.ok()) status = step(sql.commit, "committing");
  if (!status.ok()) {
    // After a failed COMMIT the transaction may still be open.
    if (!sqlite3_get_autocommit(db_)) {
      step(sql.rollback, "rolling back").IgnoreError();
    }
    return status;
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
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    absl::StatusOr<SessionRecord> r = ReadRow(st.get());
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
