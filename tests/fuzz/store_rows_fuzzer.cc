// The SQLite store reading rows whose bytes it did not write: a store is
// made with one session whose replay record is in a segment (schema 2),
// then the row's `replay` column and the segment's bytes are replaced with
// the input's, and the store is opened again (BuildIndex), read
// (LoadAll: DecodeRefs, SegmentReader) and written through (Apply, which
// reuses or relocates the chunks the row refers to).
//
// Input: byte 0 is flags (bit 0: delete the segment, so the references
// dangle; bit 1: also write an update through the store after reading;
// bit 2: set the row's next_step to 0), bytes 1-2 the length n of the
// replay column (little-endian, cut to what is there), then n bytes of it,
// then the segment's bytes.
//
// Properties: nothing crashes or leaks; every record LoadAll returns has
// chunks whose value counts are whole multiples of their steps (what
// DecodeRefs promises), and a record that passes the restore's checks
// (ValidateSnapshot against the tiny model) is read back the same after an
// update through the store.
#include <sqlite3.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/core/record_codec.h"
#include "server/core/validation.h"
#include "server/store/sqlite_state_store.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lstmserve;
using server::store::SqliteStateStore;

namespace {

// The store's directory, one per process, removed at exit (never
// destroyed itself, so that the exit handler can still read it).
const std::string& Dir() {
  static const std::string* const dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = std::filesystem::exists("/dev/shm")
                           ? "/dev/shm"
                           : (tmp != nullptr ? tmp : "/tmp");
    auto* made =
        new std::string(absl::StrCat(base, "/lstmserve-fuzz-store-", getpid()));
    std::atexit([] { std::filesystem::remove_all(Dir()); });
    return made;
  }();
  return *dir;
}

server::SessionRecord Session() {
  const server::LoadedModel& tiny = fuzz::TinyModel();
  server::SessionRecord r;
  r.id = "s";
  r.owner = "anonymous";
  r.incarnation = 7;
  r.model = tiny.name;
  r.version = tiny.version;
  r.next_step = 2;
  r.state.assign(tiny.model->state_size(), 0.5f);
  r.replay.push_back(server::ReplayChunk{0, 1, {1.0f, 2.0f}, {3.0f, 4.0f}});
  r.replay.push_back(server::ReplayChunk{1, 1, {5.0f, 6.0f}, {7.0f, 8.0f}});
  return r;
}

// Runs `sql` with the blob bound to ?1; false if SQLite refused it.
bool Exec(sqlite3* db, const char* sql, absl::string_view blob) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) return false;
  sqlite3_bind_blob(st, 1, blob.data(), static_cast<int>(blob.size()),
                    SQLITE_TRANSIENT);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE;
}

// Bit for bit (a replay chunk may hold NaNs: inputs with
// --allow-non-finite).
bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

void CheckShapes(const server::SessionRecord& r) {
  for (const server::ReplayChunk& c : r.replay) {
    fuzz::Check(c.steps > 0, "a loaded chunk has steps");
    fuzz::Check(c.inputs.size() % static_cast<size_t>(c.steps) == 0 &&
                    c.outputs.size() % static_cast<size_t>(c.steps) == 0,
                "a loaded chunk's values are whole steps");
  }
}

bool Valid(const server::SessionRecord& r) {
  server::RequestLimits limits;
  limits.max_replay_chunks = server::kMaxReplayChunksStored;
  return server::ValidateRecord(r, fuzz::TinyModel(), limits).ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  const size_t n = std::min<size_t>(data[1] | (size_t{data[2]} << 8), size - 3);
  const absl::string_view replay(reinterpret_cast<const char*>(data) + 3, n);
  const absl::string_view segment(reinterpret_cast<const char*>(data) + 3 + n,
                                  size - 3 - n);

  std::filesystem::remove_all(Dir());
  std::filesystem::create_directory(Dir());
  {
    auto store = SqliteStateStore::Open({.dir = Dir()});
    fuzz::Check(store.ok(), "a new store opens");
    server::StoreWrite put{server::StoreWrite::Kind::kPut, Session()};
    fuzz::Check((*store)->Apply({&put, 1}).ok(), "the first session is put");
  }
  {
    sqlite3* db = nullptr;
    const std::string path = Dir() + "/sessions.db";
    fuzz::Check(sqlite3_open(path.c_str(), &db) == SQLITE_OK,
                "the database opens");
    bool ok = Exec(db, "UPDATE sessions SET replay = ?1", replay);
    ok =
        ok && ((flags & 1) != 0
                   ? Exec(db, "DELETE FROM replay_segments", "")
                   : Exec(db, "UPDATE replay_segments SET data = ?1", segment));
    if ((flags & 4) != 0) {
      ok = ok && Exec(db, "UPDATE sessions SET next_step = 0", "");
    }
    sqlite3_close(db);
    if (!ok) return 0;
  }

  auto store = SqliteStateStore::Open({.dir = Dir()});
  if (!store.ok()) return 0;
  auto contents = (*store)->LoadAll();
  if (!contents.ok()) return 0;
  for (const server::SessionRecord& r : contents->records) CheckShapes(r);
  if ((flags & 2) == 0) return 0;

  // Written through: the row's chunks are kept or moved, a new one added.
  for (server::SessionRecord& r : contents->records) {
    const bool valid = Valid(r);
    r.replay.push_back(
        server::ReplayChunk{r.next_step, 1, {9.0f, 9.5f}, {10.0f, 10.5f}});
    r.next_step += 1;
    server::StoreWrite update{server::StoreWrite::Kind::kUpdate, r};
    if (!(*store)->Apply({&update, 1}).ok()) continue;
    auto again = (*store)->LoadAll();
    if (!again.ok()) continue;
    for (const server::SessionRecord& back : again->records) {
      CheckShapes(back);
      if (valid && back.id == r.id) {
        fuzz::Check(back.replay.size() == r.replay.size() &&
                        back.next_step == r.next_step,
                    "a valid session is read back as it was written");
        for (size_t i = 0; i < back.replay.size(); ++i) {
          fuzz::Check(
              SameBits(back.replay[i].inputs, r.replay[i].inputs) &&
                  SameBits(back.replay[i].outputs, r.replay[i].outputs) &&
                  back.replay[i].first_step == r.replay[i].first_step,
              "a valid session's chunks are read back as written");
        }
      }
    }
  }
  return 0;
}
