#include "model/tensor_file.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/file_reader.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"

namespace lstmserve::model {
namespace {

using json = nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";
constexpr absl::string_view kSupportedDTypes = "F32, F16, BF16, I8";
// Unknown keys inside a tensor entry are ignored, but their values may not
// nest deeper than this (bounds the parser's own bookkeeping).
constexpr int kMaxIgnoredNesting = 64;
// Longest excerpt of file-controlled text quoted in an error message.
constexpr size_t kMaxQuotedChars = 200;

// --- Little-endian loads and stores (memcpy: no alignment assumptions). ---

template <typename T>
T ByteSwap(T v) {
  T out = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    out = static_cast<T>((out << 8) | ((v >> (8 * i)) & 0xff));
  }
  return out;
}

template <typename T>
T LoadLE(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) v = ByteSwap(v);
  return v;
}

template <typename T>
void AppendLE(T v, std::string& out) {
  if constexpr (std::endian::native == std::endian::big) v = ByteSwap(v);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

// --- Message helpers. ---

// Debian's abseil has its own absl::string_view, distinct from
// std::string_view (ABSL_OPTION_USE_STD_STRING_VIEW is 0).
absl::string_view Av(std::string_view s) { return {s.data(), s.size()}; }

std::string Clip(std::string_view text) {
  if (text.size() <= kMaxQuotedChars) return std::string(text);
  return absl::StrCat(Av(text.substr(0, kMaxQuotedChars)), "...");
}

// A file-controlled name, quoted and escaped for an error message.
std::string Quote(std::string_view name) {
  return absl::StrCat("\"", absl::Utf8SafeCEscape(Clip(name)), "\"");
}

std::string ShapeString(const std::vector<uint64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
    case DType::kI8:
      return 1;
  }
  return 4;
}

std::optional<DType> ParseDType(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  if (name == "I8") return DType::kI8;
  return std::nullopt;
}

// --- Header parsing. ---

// One tensor entry of the header as written, before semantic validation.
struct HeaderEntry {
  std::string name;
  std::optional<std::string> dtype;
  bool has_shape = false;
  bool has_offsets = false;
  std::vector<uint64_t> shape;
  std::vector<uint64_t> offsets;
};

// SAX handler that checks the structure of a safetensors header while it is
// parsed and keeps only what the reader needs, so that memory stays bounded
// by the header size however hostile the header is: `__metadata__` is
// validated and dropped, unknown keys in tensor entries are skipped, shape and
// data_offsets arrays are cut off at their maximum lengths, and the number of
// tensors is capped. Duplicate tensor names and duplicate fields are detected
// here (a DOM parser would silently keep the last one).
//
// Depths: 0 = outside the root; 1 = inside the root object (tensor names);
// 2 = inside a tensor entry or __metadata__; 3 = inside shape/data_offsets.
class HeaderParser final : public json::json_sax_t {
 public:
  explicit HeaderParser(const SafetensorsLimits& limits) : limits_(limits) {}

  std::vector<HeaderEntry>& entries() { return entries_; }
  // The reason the last handler call returned false.
  const std::string& error() const { return error_; }

  bool null() override { return OnScalar("null"); }
  bool boolean(bool /*val*/) override { return OnScalar("a boolean"); }
  bool number_integer(number_integer_t val) override {
    if (val >= 0) return number_unsigned(static_cast<number_unsigned_t>(val));
    if (skip_depth_ > 0) return true;
    if (depth_ == 3) {
      return Fail(absl::StrCat("tensor ", Quote(current().name), " has ",
                               FieldDescription(), " ", val,
                               "; expected non-negative integers"));
    }
    return OnScalar("a number");
  }
  bool number_unsigned(number_unsigned_t val) override {
    if (skip_depth_ > 0) return true;
    if (depth_ != 3) return OnScalar("a number");
    HeaderEntry& entry = current();
    if (field_ == Field::kShape) {
      if (entry.shape.size() >=
          static_cast<size_t>(std::max(0, limits_.max_rank))) {
        return Fail(absl::StrCat(
            "tensor ", Quote(entry.name), " has more than ", limits_.max_rank,
            " dimensions in \"shape\"; expected rank <= ", limits_.max_rank,
            " (max_rank)"));
      }
      entry.shape.push_back(val);
    } else {
      if (entry.offsets.size() >= 2) {
        return Fail(absl::StrCat(
            "tensor ", Quote(entry.name),
            " has more than 2 \"data_offsets\"; expected [begin, end]"));
      }
      entry.offsets.push_back(val);
    }
    return true;
  }
  bool number_float(number_float_t /*val*/, const string_t& text) override {
    if (skip_depth_ > 0) return true;
    if (depth_ == 3) {
      return Fail(absl::StrCat("tensor ", Quote(current().name),
                               " has non-integer ", FieldDescription(), " ",
                               Clip(text), "; expected non-negative integers"));
    }
    return OnScalar("a number");
  }
  bool string(string_t& val) override {
    if (skip_depth_ > 0) return true;
    if (depth_ == 2 && !in_metadata_ && field_ == Field::kDType) {
      current().dtype = std::move(val);
      return true;
    }
    if (depth_ == 2 && in_metadata_) return true;  // a valid metadata value
    return OnScalar("a string");
  }
  bool binary(binary_t& /*val*/) override { return OnScalar("binary data"); }

  bool start_object(std::size_t /*elements*/) override {
    if (skip_depth_ > 0) return Skip();
    switch (depth_) {
      case 0:
        depth_ = 1;
        return true;
      case 1:
        depth_ = 2;
        return true;  // a tensor entry or __metadata__; keys handled below
      case 2:
        if (!in_metadata_ && field_ == Field::kOther) return Skip();
        return OnScalar("an object");
      default:
        return OnScalar("an object");
    }
  }
  bool start_array(std::size_t /*elements*/) override {
    if (skip_depth_ > 0) return Skip();
    if (depth_ == 2 && !in_metadata_) {
      if (field_ == Field::kOther) return Skip();
      if (field_ == Field::kShape || field_ == Field::kOffsets) {
        depth_ = 3;
        return true;
      }
    }
    return OnScalar("an array");
  }
  bool end_object() override {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    --depth_;
    if (depth_ == 1) {
      if (in_metadata_) {
        in_metadata_ = false;
        return true;
      }
      return CheckFieldsPresent(current());
    }
    return true;
  }
  bool end_array() override {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    --depth_;
    return true;
  }
  bool key(string_t& val) override {
    if (skip_depth_ > 0) return true;
    if (depth_ == 1) return TopLevelKey(std::move(val));
    // depth_ == 2: a key of a tensor entry or of __metadata__.
    if (in_metadata_) {
      metadata_key_ = std::move(val);
      return true;
    }
    HeaderEntry& entry = current();
    bool seen = false;
    if (val == "dtype") {
      field_ = Field::kDType;
      seen = entry.dtype.has_value();
    } else if (val == "shape") {
      field_ = Field::kShape;
      seen = std::exchange(entry.has_shape, true);
    } else if (val == "data_offsets") {
      field_ = Field::kOffsets;
      seen = std::exchange(entry.has_offsets, true);
    } else {
      field_ = Field::kOther;
    }
    if (seen) {
      return Fail(absl::StrCat("tensor ", Quote(entry.name), " has \"", val,
                               "\" more than once; expected it once"));
    }
    return true;
  }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) override {
    return Fail(absl::StrCat("header is not valid JSON (at header byte ",
                             position, "): ", Clip(ex.what())));
  }

 private:
  enum class Field { kDType, kShape, kOffsets, kOther };

  HeaderEntry& current() { return entries_.back(); }

  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  bool Skip() {
    if (++skip_depth_ > kMaxIgnoredNesting) {
      return Fail(absl::StrCat("tensor ", Quote(current().name),
                               " has a value nested more than ",
                               kMaxIgnoredNesting, " levels deep"));
    }
    return true;
  }

  std::string FieldDescription() const {
    return field_ == Field::kShape ? "dimension in \"shape\""
                                   : "offset in \"data_offsets\"";
  }

  bool TopLevelKey(std::string name) {
    if (name == kMetadataKey) {
      if (std::exchange(seen_metadata_, true)) {
        return Fail("\"__metadata__\" appears more than once in the header");
      }
      in_metadata_ = true;
      return true;
    }
    in_metadata_ = false;
    if (entries_.size() >=
        static_cast<size_t>(std::max(0, limits_.max_tensors))) {
      return Fail(absl::StrCat("header lists more than ", limits_.max_tensors,
                               " tensors; expected at most ",
                               limits_.max_tensors, " (max_tensors)"));
    }
    if (!names_.insert(name).second) {
      return Fail(absl::StrCat("tensor ", Quote(name),
                               " appears more than once in the header; "
                               "expected unique tensor names"));
    }
    entries_.emplace_back().name = std::move(name);
    field_ = Field::kOther;
    return true;
  }

  // A scalar (or a container where a scalar or different container was
  // expected) arrived at the current position.
  bool OnScalar(absl::string_view what) {
    if (skip_depth_ > 0) return true;
    switch (depth_) {
      case 0:
        return Fail(
            absl::StrCat("header is ", what, "; expected a JSON object"));
      case 1:
        if (in_metadata_) {
          return Fail(absl::StrCat("\"__metadata__\" is ", what,
                                   "; expected an object of string values"));
        }
        return Fail(absl::StrCat("tensor ", Quote(current().name), " is ", what,
                                 "; expected an object with \"dtype\", "
                                 "\"shape\" and \"data_offsets\""));
      case 2:
        if (in_metadata_) {
          return Fail(absl::StrCat("\"__metadata__\" entry ",
                                   Quote(metadata_key_), " is ", what,
                                   "; expected a string"));
        }
        switch (field_) {
          case Field::kDType:
            return Fail(absl::StrCat(
                "tensor ", Quote(current().name), " has \"dtype\" that is ",
                what, "; expected a string, one of ", kSupportedDTypes));
          case Field::kShape:
            return Fail(absl::StrCat(
                "tensor ", Quote(current().name), " has \"shape\" that is ",
                what, "; expected an array of non-negative integers"));
          case Field::kOffsets:
            return Fail(absl::StrCat("tensor ", Quote(current().name),
                                     " has \"data_offsets\" that is ", what,
                                     "; expected [begin, end]"));
          case Field::kOther:
            return true;  // unknown key: ignored
        }
        return true;
      default:
        return Fail(absl::StrCat("tensor ", Quote(current().name), " has ",
                                 FieldDescription(), " that is ", what,
                                 "; expected non-negative integers"));
    }
  }

  bool CheckFieldsPresent(const HeaderEntry& entry) {
    if (!entry.dtype) {
      return Fail(absl::StrCat("tensor ", Quote(entry.name),
                               " has no \"dtype\"; expected one of ",
                               kSupportedDTypes));
    }
    if (!entry.has_shape) {
      return Fail(absl::StrCat(
          "tensor ", Quote(entry.name),
          " has no \"shape\"; expected an array of non-negative integers"));
    }
    if (!entry.has_offsets) {
      return Fail(absl::StrCat("tensor ", Quote(entry.name),
                               " has no \"data_offsets\"; expected [begin, "
                               "end]"));
    }
    return true;
  }

  const SafetensorsLimits& limits_;
  std::vector<HeaderEntry> entries_;
  std::set<std::string> names_;
  std::string error_;
  int depth_ = 0;
  int skip_depth_ = 0;
  bool in_metadata_ = false;
  bool seen_metadata_ = false;
  std::string metadata_key_;
  Field field_ = Field::kOther;
};

// A header entry that passed validation: its dtype, shape and byte range in
// the data section.
struct TensorLayout {
  const HeaderEntry* entry;
  DType dtype;
  uint64_t begin;
  uint64_t end;
};

absl::Status Invalid(absl::string_view file_name, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(file_name, ": ", message));
}

absl::StatusOr<TensorLayout> ValidateEntry(const HeaderEntry& entry,
                                           uint64_t data_size,
                                           absl::string_view file_name) {
  const std::string name = Quote(entry.name);
  std::optional<DType> dtype = ParseDType(*entry.dtype);
  if (!dtype) {
    return Invalid(
        file_name,
        absl::StrCat("tensor ", name, " has dtype ", Quote(*entry.dtype),
                     "; supported dtypes are ", kSupportedDTypes));
  }
  uint64_t elements = 1;
  for (uint64_t dim : entry.shape) {
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(elements, dim, &elements) ||
        elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(
          file_name,
          absl::StrCat("tensor ", name, " has shape ", ShapeString(entry.shape),
                       " whose element count overflows int64"));
    }
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(elements, DTypeSize(*dtype), &bytes)) {
    return Invalid(file_name,
                   absl::StrCat("tensor ", name, " has shape ",
                                ShapeString(entry.shape), " whose size in ",
                                Av(DTypeName(*dtype)), " overflows 64 bits"));
  }
  if (entry.offsets.size() != 2) {
    return Invalid(file_name,
                   absl::StrCat("tensor ", name, " has ", entry.offsets.size(),
                                " \"data_offsets\"; expected 2 "
                                "([begin, end])"));
  }
  const uint64_t begin = entry.offsets[0];
  const uint64_t end = entry.offsets[1];
  const std::string offsets = ShapeString(entry.offsets);
  if (begin > end) {
    return Invalid(file_name,
                   absl::StrCat("tensor ", name, " has data_offsets ", offsets,
                                "; expected begin <= end"));
  }
  if (end > data_size) {
    return Invalid(file_name,
                   absl::StrCat("tensor ", name, " has data_offsets ", offsets,
                                " past the end of the data section (",
                                data_size, " bytes)"));
  }
  if (end - begin != bytes) {
    return Invalid(
        file_name,
        absl::StrCat("tensor ", name, " has shape ", ShapeString(entry.shape),
                     " (", elements, " elements of ", Av(DTypeName(*dtype)),
                     " = ", bytes, " bytes) but data_offsets ", offsets,
                     " span ", end - begin, " bytes"));
  }
  return TensorLayout{&entry, *dtype, begin, end};
}

// The data section must be covered exactly once: sorted by offset, each
// tensor begins where the previous one ended, the first at 0 and the last at
// the end of the data.
absl::Status CheckCoverage(std::vector<TensorLayout>& layouts,
                           uint64_t data_size, absl::string_view file_name) {
  std::sort(layouts.begin(), layouts.end(),
            [](const TensorLayout& a, const TensorLayout& b) {
              return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
            });
  uint64_t expected = 0;
  const TensorLayout* previous = nullptr;
  for (const TensorLayout& layout : layouts) {
    if (layout.begin < expected) {
      return Invalid(
          file_name,
          absl::StrCat("tensors ", Quote(previous->entry->name),
                       " (data_offsets [", previous->begin, ", ", previous->end,
                       "]) and ", Quote(layout.entry->name), " (data_offsets [",
                       layout.begin, ", ", layout.end,
                       "]) overlap; expected disjoint byte ranges"));
    }
    if (layout.begin > expected) {
      const std::string where =
          previous == nullptr
              ? std::string("at the start of the data section")
              : absl::StrCat("after tensor ", Quote(previous->entry->name),
                             " (which ends at ", expected, ")");
      return Invalid(
          file_name,
          absl::StrCat(layout.begin - expected, " unindexed bytes ", where,
                       " before tensor ", Quote(layout.entry->name),
                       " (which begins at ", layout.begin,
                       "); safetensors requires the data to be fully "
                       "indexed"));
    }
    expected = layout.end;
    previous = &layout;
  }
  if (expected != data_size) {
    return Invalid(
        file_name,
        absl::StrCat(data_size - expected, " trailing unindexed bytes after ",
                     previous == nullptr
                         ? std::string("the header (no tensors)")
                         : absl::StrCat("the last tensor ",
                                        Quote(previous->entry->name)),
                     " (data section is ", data_size,
                     " bytes); safetensors requires the data to be fully "
                     "indexed"));
  }
  return absl::OkStatus();
}

void ConvertValues(const char* data, DType dtype, std::vector<float>& out) {
  const size_t n = out.size();
  switch (dtype) {
    case DType::kF32:
      if constexpr (std::endian::native == std::endian::little) {
        if (n > 0) std::memcpy(out.data(), data, n * sizeof(float));
      } else {
        for (size_t i = 0; i < n; ++i) {
          out[i] = std::bit_cast<float>(LoadLE<uint32_t>(data + 4 * i));
        }
      }
      return;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) {
        out[i] = HalfToFloat(LoadLE<uint16_t>(data + 2 * i));
      }
      return;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        out[i] = BFloat16ToFloat(LoadLE<uint16_t>(data + 2 * i));
      }
      return;
    case DType::kI8:  // integers, exact in float
      for (size_t i = 0; i < n; ++i) {
        out[i] = static_cast<float>(static_cast<int8_t>(data[i]));
      }
      return;
  }
}

absl::StatusOr<std::map<std::string, Tensor>> ParseSafetensorsImpl(
    std::string_view bytes, absl::string_view file_name,
    const SafetensorsLimits& limits) {
  if (bytes.size() > limits.max_file_bytes) {
    return Invalid(
        file_name,
        absl::StrCat("file is ", bytes.size(), " bytes; expected at most ",
                     limits.max_file_bytes, " (max_file_bytes)"));
  }
  if (bytes.size() < 8) {
    return Invalid(file_name,
                   absl::StrCat("file is ", bytes.size(),
                                " bytes; a safetensors file starts with an "
                                "8-byte header length"));
  }
  const uint64_t header_size = LoadLE<uint64_t>(bytes.data());
  const uint64_t available = bytes.size() - 8;
  if (header_size > available) {
    return Invalid(file_name,
                   absl::StrCat("header length is ", header_size,
                                " bytes but only ", available,
                                " bytes follow the 8-byte length (truncated "
                                "file, or not safetensors)"));
  }
  if (header_size > limits.max_header_bytes) {
    return Invalid(file_name, absl::StrCat("header length is ", header_size,
                                           " bytes; expected at most ",
                                           limits.max_header_bytes,
                                           " (max_header_bytes)"));
  }
  const std::string_view header = bytes.substr(8, header_size);
  const std::string_view data = bytes.substr(8 + header_size);
  if (header.empty() || header.front() != '{') {
    return Invalid(
        file_name,
        header.empty()
            ? std::string("header is empty; expected a JSON object")
            : absl::StrCat("header begins with byte 0x",
                           absl::Hex(static_cast<unsigned char>(header[0]),
                                     absl::kZeroPad2),
                           "; expected a JSON object beginning with '{'"));
  }

  // nlohmann's lexer takes a NUL byte for the end of the input, which would
  // silently ignore whatever follows it. JSON never contains a raw NUL.
  if (const size_t nul = header.find('\0'); nul != header.npos) {
    return Invalid(file_name, absl::StrCat("header is not valid JSON: NUL byte "
                                           "at header byte ",
                                           nul));
  }

  HeaderParser parser(limits);
  bool parsed = false;
  try {
    parsed = json::sax_parse(header.begin(), header.end(), &parser);
  } catch (const json::exception& e) {
    return Invalid(file_name,
                   absl::StrCat("header is not valid JSON: ", Clip(e.what())));
  }
  if (!parsed) return Invalid(file_name, parser.error());

  std::vector<TensorLayout> layouts;
  layouts.reserve(parser.entries().size());
  for (const HeaderEntry& entry : parser.entries()) {
    ASSIGN_OR_RETURN(TensorLayout layout,
                     ValidateEntry(entry, data.size(), file_name));
    layouts.push_back(layout);
  }
  RETURN_IF_ERROR(CheckCoverage(layouts, data.size(), file_name));

  std::map<std::string, Tensor> tensors;
  for (const TensorLayout& layout : layouts) {
    Tensor tensor;
    tensor.stored_dtype = layout.dtype;
    tensor.shape.assign(layout.entry->shape.begin(), layout.entry->shape.end());
    // Bounded by the data size: the byte count was checked against it.
    tensor.values.resize((layout.end - layout.begin) / DTypeSize(layout.dtype));
    ConvertValues(data.data() + layout.begin, layout.dtype, tensor.values);
    tensors.emplace(layout.entry->name, std::move(tensor));
  }
  return tensors;
}

}  // namespace

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI8:
      return "I8";
  }
  return "unknown";
}

int64_t Tensor::num_elements() const {
  // Unsigned arithmetic: a (caller-built) shape that overflows wraps instead
  // of being undefined behaviour. Shapes from ParseSafetensors never do.
  uint64_t n = 1;
  for (int64_t dim : shape) n *= static_cast<uint64_t>(dim);
  return static_cast<int64_t>(n);
}

absl::StatusOr<std::map<std::string, Tensor>> ParseSafetensors(
    std::string_view bytes, std::string_view file_name,
    const SafetensorsLimits& limits) {
  const absl::string_view file = Av(file_name);
  try {
    return ParseSafetensorsImpl(bytes, file, limits);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(file, ": out of memory while reading tensors"));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(file, ": unexpected error: ", Clip(e.what())));
  }
}

absl::StatusOr<std::map<std::string, Tensor>> ReadSafetensors(
    const std::string& path, const SafetensorsLimits& limits) {
  absl::StatusOr<std::string> bytes =
      ReadWholeFile(path, limits.max_file_bytes,
                    {"file", "a safetensors file", "max_file_bytes"});
  if (!bytes.ok()) return bytes.status();
  return ParseSafetensors(*bytes, path, limits);
}

std::string SerializeSafetensors(const std::map<std::string, Tensor>& tensors,
                                 DType dtype) {
  std::map<std::string, Tensor> as_dtype;
  for (const auto& [name, tensor] : tensors) {
    Tensor t;
    t.stored_dtype = dtype;
    t.shape = tensor.shape;
    t.values = tensor.values;
    as_dtype.emplace(name, std::move(t));
  }
  return SerializeSafetensorsAsStored(as_dtype);
}

std::string SerializeSafetensorsAsStored(
    const std::map<std::string, Tensor>& tensors) {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const uint64_t size = tensor.values.size() * DTypeSize(tensor.stored_dtype);
    header[name] = {{"dtype", std::string(DTypeName(tensor.stored_dtype))},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  // Invalid UTF-8 in a name is replaced (U+FFFD) rather than throwing.
  std::string header_text =
      header.dump(-1, ' ', false, json::error_handler_t::replace);
  header_text.resize((header_text.size() + 7) / 8 * 8, ' ');

  std::string out;
  out.reserve(8 + header_text.size() + offset);
  AppendLE<uint64_t>(header_text.size(), out);
  out += header_text;
  for (const auto& [name, tensor] : tensors) {
    for (float value : tensor.values) {
      switch (tensor.stored_dtype) {
        case DType::kF32:
          AppendLE<uint32_t>(std::bit_cast<uint32_t>(value), out);
          break;
        case DType::kF16:
          AppendLE<uint16_t>(FloatToHalf(value), out);
          break;
        case DType::kBF16:
          AppendLE<uint16_t>(FloatToBFloat16(value), out);
          break;
        case DType::kI8: {
          // Rounded and clamped: I8 holds integers in [-128, 127] (NaN: 0).
          const float v = std::isnan(value) ? 0.0f : std::nearbyint(value);
          out.push_back(static_cast<char>(
              static_cast<int8_t>(std::clamp(v, -128.0f, 127.0f))));
          break;
        }
      }
    }
  }
  return out;
}

float HalfToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) {
    // Infinity (mantissa 0) or NaN (payload kept in the top mantissa bits).
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  return std::bit_cast<float>(sign | ((exponent - 15 + 127) << 23) |
                              (mantissa << 13));
}

float BFloat16ToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

uint16_t FloatToHalf(float value) {
  const uint32_t f = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t magnitude = f & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {
    // NaN: keep the top payload bits and set the quiet bit (as F16C does).
    return static_cast<uint16_t>(sign | 0x7e00u | ((f & 0x7fffffu) >> 13));
  }
  if (magnitude >= 0x38800000u) {
    // At least the smallest normal half (2^-14): rebias the exponent
    // (127 -> 15) and round the mantissa to nearest even. A carry out of the
    // mantissa correctly bumps the exponent; past 65504 it reaches infinity.
    const uint32_t rounded =
        magnitude - (112u << 23) + 0xfffu + ((magnitude >> 13) & 1u);
    const uint32_t half = rounded >> 13;
    return static_cast<uint16_t>(sign | std::min<uint32_t>(half, 0x7c00u));
  }
  // Subnormal half (or zero): the result counts units of 2^-24.
  const uint32_t exponent = magnitude >> 23;
  if (exponent < 102) return static_cast<uint16_t>(sign);  // below 2^-25
  const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - exponent;  // 14..24
  const uint32_t quotient = significand >> shift;
  const uint32_t remainder = significand & ((1u << shift) - 1);
  const uint32_t halfway = 1u << (shift - 1);
  const uint32_t round_up =
      remainder > halfway || (remainder == halfway && (quotient & 1u));
  return static_cast<uint16_t>(sign | (quotient + round_up));
}

uint16_t FloatToBFloat16(float value) {
  const uint32_t f = std::bit_cast<uint32_t>(value);
  if ((f & 0x7fffffffu) > 0x7f800000u) {
    // NaN: keep the sign and top payload bits, set the quiet bit.
    return static_cast<uint16_t>((f >> 16) | 0x0040u);
  }
  // Round to nearest even; overflow carries into the exponent and reaches
  // infinity exactly when IEEE rounding would.
  return static_cast<uint16_t>((f + 0x7fffu + ((f >> 16) & 1u)) >> 16);
}

}  // namespace lstmserve::model
