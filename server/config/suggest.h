// "Did you mean ...?" for a misspelt config key.
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lstmserve::config {

// Edits (insert, delete or replace a character, or swap two neighbours) that
// turn `a` into `b`, ignoring ASCII case.
int EditDistance(absl::string_view a, absl::string_view b);

// The entry of `candidates` nearest to `word`, if it is at most
// `max_distance` edits away (the first of equally near ones); else "".
std::string ClosestMatch(absl::string_view word,
                         const std::vector<std::string>& candidates,
                         int max_distance = 2);

}  // namespace lstmserve::config
