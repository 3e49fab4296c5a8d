// What a checkpoint round costs the session store on its own, against two
// floors for the same work: the SqliteStateStore (server/store/) applies
// rounds of --sessions records shaped like the benchmark model's (4 KiB of
// state; one-step replay chunks of 64 input and 256 output floats, 2 or 3
// new ones a round, the last 8 kept), as the server's lstm-store thread
// does at 10,000 sessions streaming, with no gRPC, engine or load
// generator sharing the cores. The floors, each run on its own after the
// store:
//   - the kernel's: the round's new bytes (state plus new chunks) written
//     with 64 KiB pwrite()s into a file reused every round, fdatasync()ed
//     every third round: the page-cache copy any store of them pays;
//   - SQLite's: one plain UPDATE by primary key per record, of a row
//     holding the session's state and its whole replay record inline (the
//     simplest row per session that keeps the record durable; what schema
//     1 stored), all in one transaction a round, with the store's settings
//     (WAL, 64 KiB pages, the same cache, checkpoint and synchronous
//     settings).
//
//   build/bench/store_bench [--sessions 10000] [--rounds 16] [--dir DIR]
//                           [--sync normal|full]
//
// Prints the store's CPU (user and system, its thread only) and the
// floors' per record, averaged over the rounds after four warm-up rounds
// (the WAL's copies into the database come every few rounds: an average
// over several rounds includes them, as the server's second-by-second
// cost does), and the store's page faults a counted round (near zero once
// warm: a larger figure says the rounds measured were not steady yet).
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "server/store/sqlite_state_store.h"
#include "sqlite3.h"

namespace {

using lstmserve::server::ReplayChunk;
using lstmserve::server::SessionRecord;
using lstmserve::server::StoreWrite;

struct Cpu {
  double user = 0;
  double system = 0;
  long page_faults = 0;  // minor and major
  double total() const { return user + system; }
};

Cpu ThreadCpu() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return Cpu{u.ru_utime.tv_sec + 1e-6 * u.ru_utime.tv_usec,
             u.ru_stime.tv_sec + 1e-6 * u.ru_stime.tv_usec,
             u.ru_minflt + u.ru_majflt};
}

Cpu Since(const Cpu& start) {
  const Cpu now = ThreadCpu();
  return Cpu{now.user - start.user, now.system - start.system,
             now.page_faults - start.page_faults};
}

// Removes the bench's own directory on every way out, after the databases
// in it are closed (declared before them, so destroyed after them).
struct RemoveOnExit {
  std::string dir;  // empty: the user's --dir, kept
  ~RemoveOnExit() {
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

// SQLite's floor: a table of one row per session, updated in place, with
// the settings the store's Configure() (server/store/) gives its database.
class SqliteFloor {
 public:
  // Returns an empty string, or what failed.
  std::string Open(const std::string& path, bool sync_full) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) return Error("open");
    for (const char* sql :
         {"PRAGMA page_size = 65536", "PRAGMA journal_mode = WAL",
          "PRAGMA cache_size = -131072", "PRAGMA wal_autocheckpoint = 4096",
          sync_full ? "PRAGMA synchronous = FULL"
                    : "PRAGMA synchronous = NORMAL",
          "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY NOT NULL, "
          "next_step INTEGER NOT NULL, data BLOB NOT NULL)"}) {
      if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
        return Error(sql);
    }
    if (sqlite3_prepare_v2(
            db_, "INSERT OR REPLACE INTO sessions VALUES (?1, ?2, ?3)", -1,
            &put_, nullptr) != SQLITE_OK ||
        sqlite3_prepare_v2(
            db_, "UPDATE sessions SET next_step = ?2, data = ?3 WHERE id = ?1",
            -1, &update_, nullptr) != SQLITE_OK) {
      return Error("prepare");
    }
    return "";
  }
  ~SqliteFloor() {
    sqlite3_finalize(put_);
    sqlite3_finalize(update_);
    sqlite3_close(db_);
  }
  std::string Exec(const char* sql) {
    return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK
               ? ""
               : Error(sql);
  }
  std::string Write(bool first, const std::string& id, int64_t step,
                    const void* data, size_t bytes) {
    sqlite3_stmt* st = first ? put_ : update_;
    sqlite3_bind_text(st, 1, id.data(), static_cast<int>(id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, step);
    sqlite3_bind_blob64(st, 3, data, bytes, SQLITE_STATIC);
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? "" : Error("write");
  }

 private:
  std::string Error(const char* what) {
    return absl::StrCat(what, ": ", db_ ? sqlite3_errmsg(db_) : "no memory");
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* put_ = nullptr;
  sqlite3_stmt* update_ = nullptr;
};

// Rounds not counted: the files, SQLite's page cache and the heap warm up.
// Until they have, a round pays thousands of page faults (37,000 in the
// first, ~7,000 in the third, none from the fifth on with 10,000 sessions).
constexpr int kWarmUpRounds = 4;

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

// One session as the server's shard holds it between checkpoints.
struct Session {
  std::string id;
  uint64_t incarnation = 0;
  int64_t next_step = 0;
  std::deque<std::shared_ptr<const ReplayChunk>> replay;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "The session store's CPU per checkpointed record, against SQLite's "
      "floor (a plain row update per record, state and replay record "
      "inline) and the kernel's (writing the new bytes to a file); "
      "docs/PERFORMANCE.md"};
  int sessions = 10000;
  int rounds = 16;
  std::string dir;
  std::string sync = "normal";
  // The benchmark model: 2 layers x (h, c) x 256 of state.
  const int state_floats = 1024;
  const int input_floats = 64;
  const int output_floats = 256;
  const int kept_chunks = 8;  // --max-replay-chunks' default
  app.add_option("--sessions", sessions, "records a round")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--rounds", rounds,
                 absl::StrCat("rounds, the first ", kWarmUpRounds,
                              " not counted (warm-up)"))
      ->check(CLI::Range(kWarmUpRounds + 1, 1000));
  app.add_option("--dir", dir,
                 "where the database goes (default: a new directory under "
                 "the system's temporary directory, removed at the end)");
  app.add_option("--sync", sync, "the store's --state-sync")
      ->check(CLI::IsMember({"normal", "full"}));
  CLI11_PARSE(app, argc, argv);

  RemoveOnExit cleanup;
  if (dir.empty()) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "store_bench.XXXXXX")
            .string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("store_bench: mkdtemp");
      return 1;
    }
    dir = pattern;
    cleanup.dir = dir;
  }
  auto store = lstmserve::server::store::SqliteStateStore::Open(
      {.dir = dir, .sync_full = sync == "full"});
  if (!store.ok()) {
    std::fprintf(stderr, "store_bench: %s\n",
                 std::string(store.status().message()).c_str());
    return 1;
  }
  const std::string floor_path = dir + "/floor.bin";
  const int floor_fd = open(floor_path.c_str(), O_RDWR | O_CREAT, 0600);
  if (floor_fd < 0) {
    std::perror("store_bench: floor file");
    return 1;
  }

  SqliteFloor sqlite_floor;
  if (std::string e = sqlite_floor.Open(dir + "/floor.db", sync == "full");
      !e.empty()) {
    std::fprintf(stderr, "store_bench: SQLite floor: %s\n", e.c_str());
    return 1;
  }

  std::vector<Session> all(sessions);
  for (int i = 0; i < sessions; ++i) {
    all[i].id = absl::StrCat("store-bench-", i);
    all[i].incarnation = 0x9e3779b97f4a7c15ull * (i + 1);
  }
  const std::vector<float> state(state_floats, 0.5f);
  std::vector<char> block(size_t{64} << 10, 1);
  // A row of the SQLite floor: state and every kept chunk.
  const std::vector<char> row(
      sizeof(float) *
          (state_floats + kept_chunks * (input_floats + output_floats)),
      2);
  std::vector<double> store_us, store_user_us, store_sys_us, floor_us;
  std::vector<double> store_faults;
  std::vector<double> sqlite_floor_us;
  // What each round wrote, for the floors.
  std::vector<size_t> round_bytes;
  std::vector<std::vector<size_t>> round_row_bytes;
  std::vector<std::vector<int64_t>> round_steps;
  const double per = 1e6 / sessions;  // seconds a round -> us a record
  std::vector<double> new_bytes;

  uint64_t last_serial = 0;
  for (int round = 0; round < rounds; ++round) {
    // The round's records, as the shards hand them over (not timed: the
    // server builds them on its shards, not on the store's thread).
    std::vector<StoreWrite> writes(sessions);
    size_t bytes = 0;
    std::vector<size_t> row_bytes(sessions);
    std::vector<int64_t> steps(sessions);
    for (int i = 0; i < sessions; ++i) {
      Session& s = all[i];
      const int fresh = (i + round) % 2 == 0 ? 2 : 3;  // 2.5 steps a round
      for (int k = 0; k < fresh; ++k) {
        auto chunk = std::make_shared<ReplayChunk>();
        chunk->first_step = s.next_step++;
        chunk->steps = 1;
        chunk->inputs.assign(input_floats, 0.25f + k);
        chunk->outputs.assign(output_floats, 0.75f + k);
        chunk->serial = ++last_serial;  // as the server's executor numbers them
        s.replay.push_back(std::move(chunk));
        if (static_cast<int>(s.replay.size()) > kept_chunks)
          s.replay.pop_front();
      }
      bytes += sizeof(float) *
               (state_floats + fresh * (input_floats + output_floats));
      row_bytes[i] =
          sizeof(float) *
          (state_floats + s.replay.size() * (input_floats + output_floats));
      steps[i] = s.next_step;
      StoreWrite& w = writes[i];
      w.kind = round == 0 ? StoreWrite::Kind::kPut : StoreWrite::Kind::kUpdate;
      SessionRecord& r = w.record;
      r.id = s.id;
      r.owner = "anonymous";
      r.incarnation = s.incarnation;
      r.model = "bench_lstm";
      r.version = 1;
      r.next_step = s.next_step;
      r.state = state;
      r.state[0] = static_cast<float>(s.next_step);
      r.replay_chunks.assign(s.replay.begin(), s.replay.end());
      r.created_unix_us = 1;
      r.last_used_unix_us = 2;
    }

    const Cpu store_start = ThreadCpu();
    if (absl::Status st = (*store)->Apply(writes); !st.ok()) {
      std::fprintf(stderr, "store_bench: round %d: %s\n", round,
                   std::string(st.message()).c_str());
      return 1;
    }
    const Cpu store_cpu = Since(store_start);
    round_bytes.push_back(bytes);
    round_row_bytes.push_back(row_bytes);
    round_steps.push_back(steps);
    if (round < kWarmUpRounds) continue;
    store_us.push_back(store_cpu.total() * per);
    store_user_us.push_back(store_cpu.user * per);
    store_sys_us.push_back(store_cpu.system * per);
    store_faults.push_back(static_cast<double>(store_cpu.page_faults));
    new_bytes.push_back(static_cast<double>(bytes));
  }
  // The floors run after the store, each on its own, so that none of them
  // pays for another's dirty pages.
  ::sync();

  for (int round = 0; round < rounds; ++round) {
    const Cpu sqlite_start = ThreadCpu();
    std::string failed = sqlite_floor.Exec("BEGIN");
    for (int i = 0; i < sessions && failed.empty(); ++i) {
      failed = sqlite_floor.Write(round == 0, all[i].id, round_steps[round][i],
                                  row.data(), round_row_bytes[round][i]);
    }
    if (failed.empty()) failed = sqlite_floor.Exec("COMMIT");
    if (!failed.empty()) {
      std::fprintf(stderr, "store_bench: SQLite floor: %s\n", failed.c_str());
      return 1;
    }
    const Cpu sqlite_cpu = Since(sqlite_start);
    if (round >= kWarmUpRounds)
      sqlite_floor_us.push_back(sqlite_cpu.total() * per);
  }
  ::sync();

  for (int round = 0; round < rounds; ++round) {
    const size_t bytes = round_bytes[round];
    const Cpu floor_start = ThreadCpu();
    for (size_t at = 0; at < bytes; at += block.size()) {
      block[0] = static_cast<char>(round);
      const size_t n = std::min(block.size(), bytes - at);
      if (pwrite(floor_fd, block.data(), n, static_cast<off_t>(at)) !=
          static_cast<ssize_t>(n)) {
        std::perror("store_bench: floor write");
        return 1;
      }
    }
    if (round % 3 == 2) fdatasync(floor_fd);
    const Cpu floor_cpu = Since(floor_start);
    if (round >= kWarmUpRounds) floor_us.push_back(floor_cpu.total() * per);
  }
  close(floor_fd);

  const double store_mean = Mean(store_us);
  const double floor_mean = Mean(floor_us);
  std::printf(
      "%d records a round, %.1f MB of new state and replay a round, "
      "--state-sync %s; CPU per record, mean of %d rounds:\n",
      sessions, Mean(new_bytes) / 1e6, sync.c_str(), rounds - kWarmUpRounds);
  std::printf(
      "  store (SqliteStateStore::Apply): %.1f us (user %.1f, system %.1f; "
      "%.0f page faults a round)\n",
      store_mean, Mean(store_user_us), Mean(store_sys_us), Mean(store_faults));
  const double sqlite_mean = Mean(sqlite_floor_us);
  std::printf(
      "  SQLite floor (a row update of the state and replay inline): %.1f "
      "us\n",
      sqlite_mean);
  std::printf("  kernel floor (pwrite of the same bytes): %.1f us\n",
              floor_mean);
  std::printf("  store / SQLite floor: %.1fx; store / kernel floor: %.1fx\n",
              sqlite_mean > 0 ? store_mean / sqlite_mean : 0.0,
              floor_mean > 0 ? store_mean / floor_mean : 0.0);
  return 0;
}
