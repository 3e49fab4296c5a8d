// The embedded StateStore: one SQLite database, DIR/sessions.db, in WAL
// mode, one row per session (schema in sqlite_state_store.cc, documented in
// docs/OPERATIONS.md).
//
// Replay chunks are written once: a commit appends the chunks it has not
// written before (a record's replay_chunks are compared by their serials
// with what its row already refers to) to one new segment, and the rows refer
// to their chunks there. A segment no row refers to any more is deleted in
// the next commit; one mostly unreferenced (idle sessions keeping a few
// old chunks) has its live chunks copied forward and is deleted too, so
// the segments hold at most a few times the live replay data.
//
// Opening decides what the file is, and never destroys data it cannot read:
//   - missing or empty: a new database is made;
//   - one of ours, this schema version: used as it is;
//   - one of ours from a newer schema, another program's SQLite database,
//     or a file that is not SQLite at all: FAILED_PRECONDITION naming the
//     file, so that the server refuses to start (nothing is touched);
//   - ours but damaged (truncated, corrupt pages): every row that can still
//     be read is salvaged into a new database, the damaged file is kept
//     beside it as sessions.db.damaged-<unix time>, and the open succeeds
//     with notes saying how many rows were saved and lost.
// A second server on the same directory is refused (an exclusive lock on
// DIR/lock).
//
// Thread-safety: not thread-safe (StateStore: one user at a time).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/state_store.h"

struct sqlite3;

namespace lstmserve::server::store {

class SqliteStateStore final : public StateStore {
 public:
  struct Options {
    std::string dir;  // created if missing (its parent must exist)
    // synchronous=FULL: a commit survives a power loss, at an fsync per
    // commit. NORMAL (default): a commit survives the process being
    // killed; a power loss may lose the last commits, never corrupts.
    bool sync_full = false;
  };

  // What opening found, for the log.
  struct Report {
    bool created = false;  // a new, empty database
    // Lines about damage found and what was salvaged.
    std::vector<std::string> warnings;
  };
  static absl::StatusOr<std::unique_ptr<SqliteStateStore>> Open(
      const Options& options, Report* report = nullptr);
  ~SqliteStateStore() override;

  absl::Status Apply(std::span<const StoreWrite> writes) override;
  absl::StatusOr<Contents> LoadAll() override;
  std::string Describe() const override { return path_; }

  // The schema version this build reads and writes.
  static constexpr int kSchemaVersion = 2;

 private:
  struct Statements;
  struct Index;
  SqliteStateStore(std::string path, sqlite3* db, int lock_fd);
  // Reads every row's references into index_ (at open).
  absl::Status BuildIndex();

  const std::string path_;
  sqlite3* db_;
  int lock_fd_;
  std::unique_ptr<Statements> statements_;
  std::string replay_buffer_;   // Apply's, reused from record to record
  std::string segment_buffer_;  // the new segment Apply is filling
  std::string chunk_buffer_;    // a relocated chunk's bytes
  std::unique_ptr<Index> index_;
};

}  // namespace lstmserve::server::store
