#include "client/resend_log.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lstmserve::client::internal {

void ResendLog::Durable(std::optional<int64_t> durable) {
  if (!durable) {
    // A server without a store (or one restarted without it): nothing it
    // holds survives a crash, so nothing kept here could help.
    active_ = false;
    kept_.clear();
    steps_ = 0;
    return;
  }
  active_ = true;
  durable_ = std::max(durable_, *durable);
  Trim();
}

void ResendLog::Answered(int64_t first_step, int steps,
                         std::vector<float> inputs,
                         std::optional<int64_t> durable) {
  Durable(durable);
  if (!active_) return;
  if (!kept_.empty() &&
      kept_.back().first_step + kept_.back().steps != first_step) {
    // Not contiguous (the session was moved by someone else): what is kept
    // no longer leads here.
    kept_.clear();
    steps_ = 0;
    dropped_until_ = first_step;
  }
  kept_.push_back(Chunk{first_step, steps, std::move(inputs)});
  steps_ += steps;
  Trim();
}

void ResendLog::Trim() {
  while (!kept_.empty() &&
         kept_.front().first_step + kept_.front().steps <= durable_) {
    steps_ -= kept_.front().steps;
    kept_.pop_front();
  }
  while (steps_ > max_steps_ && !kept_.empty()) {
    steps_ -= kept_.front().steps;
    dropped_until_ = kept_.front().first_step + kept_.front().steps;
    kept_.pop_front();
  }
}

absl::StatusOr<std::vector<ResendLog::Chunk>> ResendLog::Between(
    int64_t from, int64_t to) const {
  std::vector<Chunk> out;
  if (from >= to) return out;
  const bool covered = !kept_.empty() && kept_.front().first_step <= from &&
                       kept_.back().first_step + kept_.back().steps >= to;
  if (!covered) {
    return absl::DataLossError(absl::StrCat(
        "the server came back with the session at step ", from,
        " (its last checkpoint) but this client holds its inputs only ",
        kept_.empty()
            ? std::string("for none of the steps")
            : absl::StrCat("for steps ", kept_.front().first_step, " to ",
                           kept_.back().first_step + kept_.back().steps - 1),
        dropped_until_ > 0
            ? absl::StrCat(" (older ones were dropped: max_resend_steps)")
            : std::string(),
        "; steps ", from, " to ", to - 1, " cannot be resent"));
  }
  for (const Chunk& c : kept_) {
    const int64_t end = c.first_step + c.steps;
    if (end <= from || c.first_step >= to) continue;
    const int64_t begin = std::max(c.first_step, from);
    const int64_t stop = std::min(end, to);
    const size_t width = c.inputs.size() / c.steps;
    Chunk part;
    part.first_step = begin;
    part.steps = static_cast<int>(stop - begin);
    part.inputs.assign(c.inputs.begin() + (begin - c.first_step) * width,
                       c.inputs.begin() + (stop - c.first_step) * width);
    out.push_back(std::move(part));
  }
  return out;
}

}  // namespace lstmserve::client::internal
