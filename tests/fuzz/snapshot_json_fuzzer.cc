// lstm-client's snapshot file (session export / import): text ->
// SnapshotFromJson. An accepted snapshot must write (SnapshotToJson) and
// read back to the same text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "client/cli/commands.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lstmserve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto snap = client::cli::SnapshotFromJson(text, "snapshot.json");
  if (!snap.ok()) return 0;
  const std::string written = client::cli::SnapshotToJson(*snap);
  auto again = client::cli::SnapshotFromJson(written, "written");
  fuzz::Check(again.ok(), "a written snapshot reads back");
  fuzz::Check(client::cli::SnapshotToJson(*again) == written,
              "a written snapshot reads back the same");
  return 0;
}
