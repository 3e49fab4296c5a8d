// How a session's floats and replay record are laid out in the store's
// BLOB columns. Decoding takes bytes from disk, which may be damaged or
// hostile: every length is checked against what is there before anything
// is read, and a bad blob is an error naming what was wrong, never a crash.
//
// Floats are IEEE-754 single precision, little-endian, back to back. A
// replay record is empty (no chunks), or:
//   "LRP1"                      4 bytes, the format's tag
//   count                       u32: chunks that follow, at most 1024
//   per chunk:
//     first_step                i64
//     steps                     u32, >= 1
//     input_floats              u32, a multiple of steps
//     output_floats             u32, a multiple of steps
//     inputs, outputs           that many floats
// All integers little-endian.
//
// Thread-safety: pure functions.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/types.h"

namespace lstmserve::server {

inline constexpr uint32_t kMaxReplayChunksStored = 1024;

std::string EncodeFloats(std::span<const float> values);
// INVALID_ARGUMENT unless the size is a multiple of 4 bytes.
absl::StatusOr<std::vector<float>> DecodeFloats(absl::string_view bytes);

std::string EncodeReplay(std::span<const ReplayChunk> replay);
// The same bytes, into `out` (replaced; its capacity is reused).
void EncodeReplayTo(std::span<const std::shared_ptr<const ReplayChunk>> replay,
                    std::string& out);
absl::StatusOr<std::vector<ReplayChunk>> DecodeReplay(absl::string_view bytes);

}  // namespace lstmserve::server
