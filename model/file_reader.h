// Reads a whole file into memory, refusing anything that is not a regular
// file or is larger than a limit checked before a byte is allocated.
//
// Thread-safety: a free function with no shared state.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace lstmserve::model {

struct FileKind {
  std::string noun;        // in size errors: "config is 17 bytes"
  std::string expected;    // in NOT_FOUND / not-a-file errors: "a config.json"
  std::string limit_name;  // the option that sets max_bytes
};

// NOT_FOUND if `path` does not exist, INVALID_ARGUMENT if it is not a
// regular file or holds more than `max_bytes`, RESOURCE_EXHAUSTED if the
// memory cannot be had, the errno's status for other I/O errors. Every
// message starts with the path.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path,
                                          uint64_t max_bytes,
                                          const FileKind& kind);

}  // namespace lstmserve::model
