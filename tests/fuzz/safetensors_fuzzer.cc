// model.safetensors bytes -> ParseSafetensors; accepted tensors must
// serialize and parse back with the same dtypes, shapes and values, and are
// then offered to Model::Create for the tiny model's config (its checks of
// names, shapes and values; the seeds are that model's files).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "model/tensor_file.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lstmserve;

namespace {

bool SameValue(float a, float b) {
  if (std::isnan(a)) return std::isnan(b);
  return std::memcmp(&a, &b, sizeof a) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  model::SafetensorsLimits limits;
  limits.max_header_bytes = 1 << 20;
  auto tensors = model::ParseSafetensors(bytes, "model.safetensors", limits);
  if (!tensors.ok()) return 0;

  const std::string written = model::SerializeSafetensorsAsStored(*tensors);
  auto again = model::ParseSafetensors(written, "written", limits);
  fuzz::Check(again.ok(), "written tensors parse");
  fuzz::Check(again->size() == tensors->size(), "the same tensors read back");
  for (const auto& [name, t] : *tensors) {
    auto it = again->find(name);
    fuzz::Check(it != again->end(), "every tensor reads back");
    const model::Tensor& u = it->second;
    fuzz::Check(u.stored_dtype == t.stored_dtype && u.shape == t.shape &&
                    u.values.size() == t.values.size(),
                "a tensor reads back with its dtype and shape");
    for (size_t i = 0; i < t.values.size(); ++i) {
      fuzz::Check(SameValue(t.values[i], u.values[i]),
                  "a tensor reads back with its values");
    }
  }

  const model::Model& tiny = *fuzz::TinyModel().model;
  (void)model::Model::Create(tiny.config(), *tensors, "model.safetensors");
  return 0;
}
