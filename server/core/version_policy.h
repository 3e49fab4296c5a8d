// Which versions of a model the server serves: the newest N, all of them, or
// a fixed list (Triton's and TF Serving's model version policy). A plain
// value type; lstm-server reads it from --version-policy and from the config
// file's [models.NAME] tables (server/config/).
//
// Thread-safety: a value; thread-compatible.
#pragma once

#include <cstdint>
#include <vector>

namespace lstmserve::server {

struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  // kLatest: how many of the highest versions are served (>= 1).
  int64_t latest = 1;
  // kSpecific: the versions served, ascending, each >= 1, no repeats.
  std::vector<int64_t> specific;

  bool operator==(const VersionPolicy&) const = default;
};

}  // namespace lstmserve::server
