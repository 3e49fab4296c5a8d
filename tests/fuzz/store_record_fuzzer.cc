// A stored session row's blobs, as the SQLite store reads them back
// (server/store/sqlite_state_store.cc ReadRow, then SessionManager::
// Restore's checks). The first byte says which column the rest is: 0 the
// state (DecodeFloats), anything else the replay record (DecodeReplay).
// Accepted blobs must re-encode to the same bytes; an accepted replay is
// then checked as a restore checks it, against the tiny model.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/core/record_codec.h"
#include "server/core/validation.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lstmserve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool floats = data[0] == 0;
  const absl::string_view blob(reinterpret_cast<const char*>(data) + 1,
                               size - 1);
  const server::LoadedModel& tiny = fuzz::TinyModel();
  if (floats) {
    auto state = server::DecodeFloats(blob);
    if (!state.ok()) return 0;
    fuzz::Check(server::EncodeFloats(*state) == blob,
                "decoded floats encode to the same bytes");
    (void)server::ValidateState(*state, tiny.model->state_size(), "state");
    return 0;
  }
  auto replay = server::DecodeReplay(blob);
  if (!replay.ok()) return 0;
  fuzz::Check(server::EncodeReplay(*replay) == blob,
              "a decoded replay record encodes to the same bytes");
  server::SessionSnapshot snap;
  snap.id = "s";
  snap.model = tiny.name;
  snap.version = tiny.version;
  snap.state.assign(tiny.model->state_size(), 0.0f);
  if (!replay->empty()) {
    const server::ReplayChunk& last = replay->back();
    // The store keeps next_step in its own column; here it is where the
    // last chunk ends (if that is an int64 at all).
    if (__builtin_add_overflow(last.first_step, last.steps, &snap.next_step)) {
      snap.next_step = -1;
    }
  }
  snap.replay = *std::move(replay);
  server::RequestLimits limits;
  limits.max_replay_chunks = server::kMaxReplayChunksStored;
  (void)server::ValidateSnapshot(snap, tiny, limits);
  return 0;
}
