// ImportSession's snapshot as it arrives: bytes -> lstmserve.v1.
// SessionSnapshot -> SnapshotFromProto -> ValidateSnapshot against the tiny
// model. A snapshot the core accepts must export (SnapshotToProto) and
// import again to the same snapshot.
#include <cstddef>
#include <cstdint>

#include "server/core/validation.h"
#include "server/snapshot_proto.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lstmserve;

namespace {

bool Same(const server::SessionSnapshot& a, const server::SessionSnapshot& b) {
  if (a.id != b.id || a.model != b.model || a.version != b.version ||
      a.next_step != b.next_step || a.state != b.state ||
      a.replay.size() != b.replay.size()) {
    return false;
  }
  for (size_t i = 0; i < a.replay.size(); ++i) {
    const server::ReplayChunk& x = a.replay[i];
    const server::ReplayChunk& y = b.replay[i];
    if (x.first_step != y.first_step || x.steps != y.steps ||
        x.inputs.size() != y.inputs.size() ||
        x.outputs.size() != y.outputs.size()) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lstmserve::v1::SessionSnapshot message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto snap = server::SnapshotFromProto(message);
  if (!snap.ok()) return 0;
  const server::LoadedModel& tiny = fuzz::TinyModel();
  server::RequestLimits limits;
  limits.allow_non_finite = size % 2 == 1;
  if (!server::ValidateSnapshot(*snap, tiny, limits).ok()) return 0;

  lstmserve::v1::SessionSnapshot exported;
  server::SnapshotToProto(*snap, *tiny.model, &exported);
  std::string wire;
  fuzz::Check(exported.SerializeToString(&wire), "an export serializes");
  lstmserve::v1::SessionSnapshot reread;
  fuzz::Check(reread.ParseFromString(wire), "an export parses");
  auto again = server::SnapshotFromProto(reread);
  fuzz::Check(again.ok(), "an export imports");
  fuzz::Check(server::ValidateSnapshot(*again, tiny, limits).ok(),
              "an export validates");
  fuzz::Check(Same(*snap, *again), "an export imports as the same snapshot");
  return 0;
}
