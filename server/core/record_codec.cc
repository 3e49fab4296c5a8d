#include "server/core/record_codec.h"

#include <cstring>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"

namespace lstmserve::server {
namespace {

static_assert(ABSL_IS_LITTLE_ENDIAN,
              "the store's blobs are little-endian; a big-endian build would "
              "need byte swaps here");

constexpr absl::string_view kReplayTag = "LRP1";

template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

void PutFloats(std::string& out, std::span<const float> values) {
  out.append(reinterpret_cast<const char*>(values.data()),
             values.size() * sizeof(float));
}

// Reads from the front of a blob, refusing to read past its end.
class Reader {
 public:
  explicit Reader(absl::string_view bytes) : rest_(bytes) {}

  template <typename T>
  bool Get(T& value) {
    if (rest_.size() < sizeof(T)) return false;
    std::memcpy(&value, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return true;
  }

  bool GetFloats(uint32_t n, std::vector<float>& out) {
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    if (rest_.size() < bytes) return false;
    out.resize(n);
    // Not for n == 0: memcpy from or to an empty vector's null data() is
    // undefined even for no bytes.
    if (n != 0) std::memcpy(out.data(), rest_.data(), bytes);
    rest_.remove_prefix(bytes);
    return true;
  }

  bool GetTag(absl::string_view tag) {
    if (rest_.substr(0, tag.size()) != tag) return false;
    rest_.remove_prefix(tag.size());
    return true;
  }

  size_t left() const { return rest_.size(); }

 private:
  absl::string_view rest_;
};

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("the stored replay record is damaged: ", what));
}

}  // namespace

std::string EncodeFloats(std::span<const float> values) {
  std::string out;
  PutFloats(out, values);
  return out;
}

absl::StatusOr<std::vector<float>> DecodeFloats(absl::string_view bytes) {
  if (bytes.size() % sizeof(float) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("a stored float vector has ", bytes.size(),
                     " bytes, not a multiple of 4"));
  }
  std::vector<float> values(bytes.size() / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

namespace {

const ReplayChunk& Deref(const ReplayChunk& c) { return c; }
const ReplayChunk& Deref(const std::shared_ptr<const ReplayChunk>& c) {
  return *c;
}

template <typename Chunks>
void AppendReplay(const Chunks& replay, std::string& out) {
  if (replay.empty()) return;
  size_t size = out.size() + kReplayTag.size() + sizeof(uint32_t);
  for (const auto& chunk : replay) {
    const ReplayChunk& c = Deref(chunk);
    size += sizeof(int64_t) + 3 * sizeof(uint32_t) +
            (c.inputs.size() + c.outputs.size()) * sizeof(float);
  }
  out.reserve(size);  // one allocation: checkpoints encode thousands
  out.append(kReplayTag.data(), kReplayTag.size());
  Put<uint32_t>(out, static_cast<uint32_t>(replay.size()));
  for (const auto& chunk : replay) {
    const ReplayChunk& c = Deref(chunk);
    Put<int64_t>(out, c.first_step);
    Put<uint32_t>(out, static_cast<uint32_t>(c.steps));
    Put<uint32_t>(out, static_cast<uint32_t>(c.inputs.size()));
    Put<uint32_t>(out, static_cast<uint32_t>(c.outputs.size()));
    PutFloats(out, c.inputs);
    PutFloats(out, c.outputs);
  }
}

}  // namespace

std::string EncodeReplay(std::span<const ReplayChunk> replay) {
  std::string out;
  AppendReplay(replay, out);
  return out;
}

void EncodeReplayTo(std::span<const std::shared_ptr<const ReplayChunk>> replay,
                    std::string& out) {
  out.clear();
  AppendReplay(replay, out);
}

absl::StatusOr<std::vector<ReplayChunk>> DecodeReplay(absl::string_view bytes) {
  std::vector<ReplayChunk> replay;
  if (bytes.empty()) return replay;
  Reader in(bytes);
  if (!in.GetTag(kReplayTag)) return Bad("it does not start with \"LRP1\"");
  uint32_t count = 0;
  if (!in.Get(count)) return Bad("it ends before its chunk count");
  if (count == 0 || count > kMaxReplayChunksStored) {
    return Bad(absl::StrCat("it holds ", count, " chunks; expected 1 to ",
                            kMaxReplayChunksStored));
  }
  replay.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    ReplayChunk c;
    uint32_t steps = 0, inputs = 0, outputs = 0;
    if (!in.Get(c.first_step) || !in.Get(steps) || !in.Get(inputs) ||
        !in.Get(outputs)) {
      return Bad(absl::StrCat("it ends inside chunk ", i, "'s header"));
    }
    if (steps < 1 || steps > (1u << 24) || inputs % steps != 0 ||
        outputs % steps != 0) {
      return Bad(absl::StrCat("chunk ", i, " has ", steps, " steps, ", inputs,
                              " input and ", outputs,
                              " output floats (need steps in 1..2^24 "
                              "dividing both)"));
    }
    // Checked before allocating: a damaged count cannot ask for more memory
    // than the blob itself holds.
    const uint64_t need = (static_cast<uint64_t>(inputs) + outputs) * 4;
    if (need > in.left()) {
      return Bad(absl::StrCat("chunk ", i, " needs ", need, " bytes; ",
                              in.left(), " are left"));
    }
    c.steps = static_cast<int>(steps);
    in.GetFloats(inputs, c.inputs);
    in.GetFloats(outputs, c.outputs);
    replay.push_back(std::move(c));
  }
  if (in.left() != 0) {
    return Bad(absl::StrCat(in.left(), " bytes follow its last chunk"));
  }
  return replay;
}

}  // namespace lstmserve::server
