#include "model/tensor_file.h"

#include <unistd.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace lstmserve::model {
namespace {

using TensorMap = std::map<std::string, Tensor>;

constexpr std::string_view kFile = "model.safetensors";

// A safetensors image: u64 little-endian header length, header, data.
std::string MakeFile(std::string_view header, std::string_view data = "") {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
  out.append(header);
  out.append(data);
  return out;
}

std::string Zeros(size_t n) { return std::string(n, '\0'); }

absl::StatusOr<TensorMap> Parse(std::string_view bytes,
                                const SafetensorsLimits& limits = {}) {
  return ParseSafetensors(bytes, kFile, limits);
}

// Checks that `result` failed with `code` and that its message names the file
// and contains every one of `parts`.
void ExpectError(const absl::StatusOr<TensorMap>& result,
                 std::initializer_list<std::string_view> parts,
                 absl::StatusCode code = absl::StatusCode::kInvalidArgument,
                 std::string_view file = kFile) {
  ASSERT_FALSE(result.ok())
      << "parsed " << result->size() << " tensors; expected an error";
  EXPECT_EQ(result.status().code(), code) << result.status();
  const std::string message(result.status().message());
  EXPECT_EQ(message.substr(0, file.size()), file) << message;
  for (std::string_view part : parts) {
    EXPECT_NE(message.find(part), std::string_view::npos)
        << "message: " << message << "\nexpected to contain: " << part;
  }
}

// A one-tensor header for tensor "w".
std::string OneTensor(absl::string_view dtype, absl::string_view shape,
                      absl::string_view offsets) {
  return absl::StrCat(R"({"w": {"dtype": )", dtype, R"(, "shape": )", shape,
                      R"(, "data_offsets": )", offsets, "}}");
}

// --- Layout and framing errors. ---

TEST(TensorFileTest, FileShorterThanLengthPrefix) {
  ExpectError(Parse(""), {"file is 0 bytes", "8-byte header length"});
  ExpectError(Parse(std::string_view("\x02\0\0\0\0\0\0", 7)),
              {"file is 7 bytes", "8-byte header length"});
}

TEST(TensorFileTest, HeaderLengthPastEndOfFile) {
  std::string file = MakeFile("{}");
  file[0] = 100;  // claims 100 header bytes; only 2 follow
  ExpectError(Parse(file),
              {"header length is 100 bytes but only 2 bytes follow"});
}

TEST(TensorFileTest, HugeHeaderLengthDoesNotOverflow) {
  std::string file = MakeFile("{}");
  for (int i = 0; i < 8; ++i) file[i] = '\xff';
  ExpectError(Parse(file),
              {"header length is 18446744073709551615 bytes", "truncated"});
  file[7] = '\x7f';
  ExpectError(Parse(file), {"header length is 9223372036854775807 bytes"});
}

TEST(TensorFileTest, HeaderLengthOverLimit) {
  const std::string file =
      MakeFile(OneTensor(R"("F32")", "[1]", "[0, 4]"), Zeros(4));
  ASSERT_TRUE(Parse(file).ok());
  SafetensorsLimits limits;
  limits.max_header_bytes = 16;
  ExpectError(Parse(file, limits), {"expected at most 16", "max_header_bytes"});
}

TEST(TensorFileTest, FileOverLimit) {
  const std::string file =
      MakeFile(OneTensor(R"("F32")", "[1]", "[0, 4]"), Zeros(4));
  SafetensorsLimits limits;
  limits.max_file_bytes = file.size() - 1;
  ExpectError(Parse(file, limits), {"max_file_bytes"});
}

TEST(TensorFileTest, EmptyHeader) {
  ExpectError(Parse(MakeFile("")), {"header is empty", "JSON object"});
}

TEST(TensorFileTest, HeaderNotAnObject) {
  ExpectError(Parse(MakeFile("[1, 2]")), {"0x5b", "expected a JSON object"});
  ExpectError(Parse(MakeFile("42")), {"0x34", "expected a JSON object"});
  // The spec requires the header to start with '{' (no leading whitespace).
  ExpectError(Parse(MakeFile(" {}")), {"0x20", "beginning with '{'"});
}

TEST(TensorFileTest, HeaderNotValidJson) {
  ExpectError(Parse(MakeFile(R"({"w": )")), {"header is not valid JSON"});
  ExpectError(Parse(MakeFile(R"({"w": {"dtype": F32}})")),
              {"header is not valid JSON", "header byte"});
  ExpectError(Parse(MakeFile("{} x")), {"header is not valid JSON"});
  // nlohmann's lexer treats a NUL byte as the end of input; it must not hide
  // whatever follows.
  ExpectError(Parse(MakeFile(std::string_view("{}\0", 3))),
              {"NUL byte at header byte 2"});
  ExpectError(Parse(MakeFile(std::string_view("{}\0{\"w\": 1}", 11))),
              {"NUL byte"});
  ExpectError(Parse(MakeFile("{\"\xff\": 1}")), {"header is not valid JSON"});
  ExpectError(Parse(MakeFile(R"({"w": 1e999})")), {"header is not valid JSON"});
}

TEST(TensorFileTest, HeaderMayBePaddedWithSpaces) {
  auto result = Parse(
      MakeFile(OneTensor(R"("F32")", "[1]", "[0, 4]") + "     ", Zeros(4)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->size(), 1u);
}

TEST(TensorFileTest, EmptyHeaderObjectIsAnEmptyFile) {
  auto result = Parse(MakeFile("{}"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->empty());
}

// --- Tensor entries. ---

TEST(TensorFileTest, TensorEntryNotAnObject) {
  ExpectError(
      Parse(MakeFile(R"({"w": 5})")),
      {R"(tensor "w" is a number)", R"(expected an object with "dtype")"});
  ExpectError(Parse(MakeFile(R"({"w": [1, 2]})")),
              {R"(tensor "w" is an array)"});
  ExpectError(Parse(MakeFile(R"({"w": "F32"})")),
              {R"(tensor "w" is a string)"});
  ExpectError(Parse(MakeFile(R"({"w": null})")), {R"(tensor "w" is null)"});
}

TEST(TensorFileTest, MissingFields) {
  ExpectError(Parse(MakeFile(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})",
                             Zeros(4))),
              {R"(tensor "w" has no "dtype")", "F32, F16, BF16, I8"});
  ExpectError(
      Parse(MakeFile(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})",
                     Zeros(4))),
      {R"(tensor "w" has no "shape")"});
  ExpectError(
      Parse(MakeFile(R"({"w": {"dtype": "F32", "shape": [1]}})", Zeros(4))),
      {R"(tensor "w" has no "data_offsets")"});
}

TEST(TensorFileTest, IllTypedFields) {
  ExpectError(Parse(MakeFile(OneTensor("5", "[1]", "[0, 4]"), Zeros(4))),
              {R"("dtype" that is a number)", "expected a string"});
  ExpectError(Parse(MakeFile(OneTensor(R"(["F32"])", "[1]", "[0, 4]"))),
              {R"("dtype" that is an array)"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", R"("1")", "[0, 4]"))),
              {R"("shape" that is a string)", "array of non-negative"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "{}", "[0, 4]"))),
              {R"("shape" that is an object)"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1]", "4"))),
              {R"("data_offsets" that is a number)", "[begin, end]"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1]", R"({"a": 1})"))),
              {R"("data_offsets" that is an object)"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", R"([[1]])", "[0, 4]"))),
              {R"(dimension in "shape" that is an array)"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1]", R"([0, "4"])"))),
              {R"(offset in "data_offsets" that is a string)"});
}

TEST(TensorFileTest, DuplicateFieldInEntry) {
  ExpectError(
      Parse(MakeFile(R"({"w": {"dtype": "F32", "dtype": "F16", "shape": [1], )"
                     R"("data_offsets": [0, 4]}})",
                     Zeros(4))),
      {R"(tensor "w" has "dtype" more than once)"});
  ExpectError(
      Parse(MakeFile(R"({"w": {"dtype": "F32", "shape": [1], "shape": [2], )"
                     R"("data_offsets": [0, 4]}})",
                     Zeros(4))),
      {R"("shape" more than once)"});
}

TEST(TensorFileTest, UnknownDType) {
  ExpectError(Parse(MakeFile(OneTensor(R"("I64")", "[1]", "[0, 8]"), Zeros(8))),
              {R"(tensor "w" has dtype "I64")",
               "supported dtypes are F32, F16, BF16, I8"});
  ExpectError(Parse(MakeFile(OneTensor(R"("f32")", "[1]", "[0, 4]"), Zeros(4))),
              {R"(dtype "f32")"});
}

TEST(TensorFileTest, BadShapeDimensions) {
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[2, -3]", "[0, 4]"))),
              {R"(tensor "w" has dimension in "shape" -3)",
               "expected non-negative integers"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1.5]", "[0, 4]"))),
              {R"(non-integer dimension in "shape" 1.5)"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1.0]", "[0, 4]"))),
              {"non-integer", "1.0"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[true]", "[0, 4]"))),
              {R"(dimension in "shape" that is a boolean)"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[null]", "[0, 4]"))),
              {R"(dimension in "shape" that is null)"});
}

TEST(TensorFileTest, RankOverLimit) {
  const std::string ok_shape = "[1, 1, 1, 1, 1, 1, 1, 1]";
  ASSERT_TRUE(
      Parse(MakeFile(OneTensor(R"("F32")", ok_shape, "[0, 4]"), Zeros(4)))
          .ok());
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")",
                                       "[1, 1, 1, 1, 1, 1, 1, 1, 1]", "[0, 4]"),
                             Zeros(4))),
              {R"(tensor "w" has more than 8 dimensions)", "max_rank"});
  SafetensorsLimits limits;
  limits.max_rank = 2;
  ExpectError(
      Parse(MakeFile(OneTensor(R"("F32")", "[1, 1, 1]", "[0, 4]"), Zeros(4)),
            limits),
      {"more than 2 dimensions"});
}

TEST(TensorFileTest, ElementCountOverflow) {
  ExpectError(Parse(MakeFile(
                  OneTensor(R"("F32")", "[4294967296, 4294967296]", "[0, 4]"),
                  Zeros(4))),
              {R"(tensor "w" has shape [4294967296, 4294967296])",
               "element count overflows"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[0, 18446744073709551615]",
                                       "[0, 0]"))),
              {"overflows"});
  // 2^62 elements fit int64 but not as F32 bytes.
  ExpectError(
      Parse(MakeFile(OneTensor(R"("F32")", "[4611686018427387904]", "[0, 4]"),
                     Zeros(4))),
      {"overflows 64 bits"});
}

TEST(TensorFileTest, ByteSizeDoesNotMatchOffsets) {
  const std::string header =
      R"({"rnn.weight_ih_l0": {"dtype": "F32", "shape": [8, 4], )"
      R"("data_offsets": [0, 120]}})";
  auto result = Parse(MakeFile(header, Zeros(120)));
  ExpectError(result, {R"(tensor "rnn.weight_ih_l0" has shape [8, 4] )"
                       R"((32 elements of F32 = 128 bytes) but data_offsets )"
                       R"([0, 120] span 120 bytes)"});
  ExpectError(
      Parse(MakeFile(OneTensor(R"("BF16")", "[3]", "[0, 4]"), Zeros(4))),
      {"3 elements of BF16 = 6 bytes", "span 4 bytes"});
}

TEST(TensorFileTest, OffsetsReversedOrPastEnd) {
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1]", "[8, 4]"), Zeros(8))),
              {"data_offsets [8, 4]", "expected begin <= end"});
  ExpectError(
      Parse(MakeFile(OneTensor(R"("F32")", "[4]", "[0, 16]"), Zeros(8))),
      {"data_offsets [0, 16] past the end of the data section (8 bytes)"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1]",
                                       "[18446744073709551612, "
                                       "18446744073709551615]"),
                             Zeros(4))),
              {"past the end"});
}

TEST(TensorFileTest, WrongNumberOfOffsets) {
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1]", "[4]"), Zeros(4))),
              {R"(has 1 "data_offsets"; expected 2)"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1]", "[]"), Zeros(4))),
              {R"(has 0 "data_offsets")"});
  ExpectError(
      Parse(MakeFile(OneTensor(R"("F32")", "[1]", "[0, 4, 8]"), Zeros(8))),
      {R"(more than 2 "data_offsets")"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1]", "[-1, 4]"))),
              {R"(offset in "data_offsets" -1)"});
  ExpectError(Parse(MakeFile(OneTensor(R"("F32")", "[1]", "[0, 4.0]"))),
              {R"(non-integer offset in "data_offsets" 4.0)"});
}

TEST(TensorFileTest, OverlappingTensors) {
  const std::string header =
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
      R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  ExpectError(Parse(MakeFile(header, Zeros(12))),
              {R"(tensors "a" (data_offsets [0, 8]) and "b" )"
               R"((data_offsets [4, 12]) overlap)"});
  // The same range twice.
  const std::string same =
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
      R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  ExpectError(Parse(MakeFile(same, Zeros(8))), {"overlap"});
  // An empty tensor inside another one.
  const std::string inside =
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
      R"( "b": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}})";
  ExpectError(Parse(MakeFile(inside, Zeros(8))), {"overlap"});
}

TEST(TensorFileTest, GapsAndTrailingBytes) {
  const std::string gap =
      R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
      R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})";
  ExpectError(Parse(MakeFile(gap, Zeros(12))),
              {R"(4 unindexed bytes after tensor "a" (which ends at 4))",
               R"(before tensor "b")", "fully indexed"});
  ExpectError(
      Parse(MakeFile(OneTensor(R"("F32")", "[1]", "[4, 8]"), Zeros(8))),
      {"4 unindexed bytes at the start of the data section", "fully indexed"});
  ExpectError(
      Parse(MakeFile(OneTensor(R"("F32")", "[1]", "[0, 4]"), Zeros(12))),
      {R"(8 trailing unindexed bytes after the last tensor "w")",
       "data section is 12 bytes"});
  ExpectError(Parse(MakeFile("{}", Zeros(3))),
              {"3 trailing unindexed bytes", "no tensors"});
}

TEST(TensorFileTest, TensorsInAnyOrderAndEmptyTensors) {
  // Listed out of offset order, with zero-size tensors at shared offsets.
  const std::string header =
      R"({"z": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
      R"( "e1": {"dtype": "F16", "shape": [0, 3], "data_offsets": [4, 4]},)"
      R"( "e2": {"dtype": "BF16", "shape": [0], "data_offsets": [4, 4]},)"
      R"( "a": {"dtype": "F16", "shape": [], "data_offsets": [4, 6]}})";
  const std::string data("\x00\x00\x80\x3f\x00\xc0", 6);  // F32 1, F16 -2
  auto result = Parse(MakeFile(header, data));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->size(), 4u);
  EXPECT_EQ(result->at("z").values, std::vector<float>{1.0f});
  EXPECT_EQ(result->at("a").values, std::vector<float>{-2.0f});
  EXPECT_TRUE(result->at("a").shape.empty());
  EXPECT_EQ(result->at("a").num_elements(), 1);
  EXPECT_EQ(result->at("e1").shape, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(result->at("e1").num_elements(), 0);
  EXPECT_TRUE(result->at("e1").values.empty());
  EXPECT_EQ(result->at("e2").stored_dtype, DType::kBF16);
}

TEST(TensorFileTest, TooManyTensors) {
  const std::string header =
      R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
      R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},)"
      R"( "c": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})";
  SafetensorsLimits limits;
  limits.max_tensors = 3;
  ASSERT_TRUE(Parse(MakeFile(header, Zeros(12)), limits).ok());
  limits.max_tensors = 2;
  ExpectError(Parse(MakeFile(header, Zeros(12)), limits),
              {"more than 2 tensors", "max_tensors"});
}

TEST(TensorFileTest, DuplicateTensorNames) {
  const std::string header =
      R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
      R"( "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
  ExpectError(Parse(MakeFile(header, Zeros(8))),
              {R"(tensor "a" appears more than once)", "unique"});
}

TEST(TensorFileTest, Metadata) {
  const std::string ok = R"({"__metadata__": {"format": "pt", "x": ""},)"
                         R"( "w": {"dtype": "F32", "shape": [1], )"
                         R"("data_offsets": [0, 4]}})";
  auto result = Parse(MakeFile(ok, Zeros(4)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->size(), 1u);
  EXPECT_EQ(result->count("__metadata__"), 0u);

  ExpectError(Parse(MakeFile(R"({"__metadata__": ["a"]})")),
              {R"("__metadata__" is an array)", "object of string values"});
  ExpectError(Parse(MakeFile(R"({"__metadata__": "pt"})")),
              {R"("__metadata__" is a string)"});
  ExpectError(
      Parse(MakeFile(R"({"__metadata__": {"format": 1}})")),
      {R"("__metadata__" entry "format" is a number)", "expected a string"});
  ExpectError(Parse(MakeFile(R"({"__metadata__": {"k": {"a": "b"}}})")),
              {R"("__metadata__" entry "k" is an object)"});
  ExpectError(Parse(MakeFile(R"({"__metadata__": {}, "__metadata__": {}})")),
              {R"("__metadata__" appears more than once)"});
}

TEST(TensorFileTest, UnknownKeysInEntriesAreIgnored) {
  const std::string header =
      R"({"w": {"extra": {"a": [1, {"b": null}]}, "dtype": "F32", )"
      R"("more": -1.5, "shape": [1], "data_offsets": [0, 4], "z": "s"}})";
  auto result = Parse(MakeFile(header, Zeros(4)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->at("w").values.size(), 1u);

  // ...but may not nest absurdly deep.
  const std::string deep = R"({"w": {"extra": )" + std::string(100000, '[') +
                           std::string(100000, ']') +
                           R"(, "dtype": "F32", "shape": [0], )"
                           R"("data_offsets": [0, 0]}})";
  ExpectError(Parse(MakeFile(deep)), {"nested more than 64 levels"});
}

TEST(TensorFileTest, HostileNamesAreEscapedAndShortened) {
  const std::string name = std::string(10000, 'x') + "\\n";
  const std::string header = absl::StrCat(
      R"({")", name,
      R"(": {"dtype": "I16", "shape": [1], "data_offsets": [0, 2]}})");
  auto result = Parse(MakeFile(header, Zeros(2)));
  ExpectError(result, {"xxx...", R"(dtype "I16")"});
  EXPECT_LT(result.status().message().size(), 600u);
  ExpectError(Parse(MakeFile(R"({"a\nb": 1})")), {R"(tensor "a\nb" is)"});
}

// --- Decoding values. ---

TEST(TensorFileTest, DecodesLittleEndianValuesAtUnalignedOffsets) {
  // A 13-byte header puts the data at file offset 21: nothing is aligned.
  const std::string header =
      R"({"f": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
      R"( "h": {"dtype": "F16", "shape": [2], "data_offsets": [8, 12]},)"
      R"( "b": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [12, 16]}})";
  const std::string data(
      "\x00\x00\x80\x3f"  // F32 1.0
      "\x00\x00\x20\xc1"  // F32 -10.0
      "\x00\x3c"          // F16 1.0
      "\x01\x00"          // F16 2^-24 (smallest subnormal)
      "\x80\x3f"          // BF16 1.0
      "\x80\xff",         // BF16 -inf
      16);
  const std::string file = MakeFile(header + std::string(13, ' '), data);
  ASSERT_NE((file.size() - data.size()) % 4, 0u);
  auto result = Parse(file);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->at("f").values, (std::vector<float>{1.0f, -10.0f}));
  EXPECT_EQ(result->at("f").stored_dtype, DType::kF32);
  EXPECT_EQ(result->at("h").values,
            (std::vector<float>{1.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(result->at("h").stored_dtype, DType::kF16);
  EXPECT_EQ(
      result->at("b").values,
      (std::vector<float>{1.0f, -std::numeric_limits<float>::infinity()}));
  EXPECT_EQ(result->at("b").shape, (std::vector<int64_t>{1, 2}));
}

TEST(TensorFileTest, DecodesI8AsItsIntegers) {
  const std::string header =
      R"({"q": {"dtype": "I8", "shape": [2, 2], "data_offsets": [0, 4]}})";
  auto result = Parse(MakeFile(header, std::string("\x00\x7f\x80\xff", 4)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->at("q").stored_dtype, DType::kI8);
  EXPECT_EQ(result->at("q").values,
            (std::vector<float>{0.0f, 127.0f, -128.0f, -1.0f}));
}

TEST(TensorFileTest, SerializeAsStoredKeepsEachTensorsDtype) {
  TensorMap tensors;
  tensors["q"] = Tensor{.stored_dtype = DType::kI8,
                        .shape = {4},
                        .values = {-127.0f, 3.0f, 126.6f, -300.0f}};
  tensors["q.scale"] =
      Tensor{.stored_dtype = DType::kF32, .shape = {1}, .values = {0.1f}};
  tensors["b"] =
      Tensor{.stored_dtype = DType::kBF16, .shape = {1}, .values = {1.5f}};
  auto result = Parse(SerializeSafetensorsAsStored(tensors));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->at("q").stored_dtype, DType::kI8);
  // Rounded to the nearest integer and clamped to I8's range.
  EXPECT_EQ(result->at("q").values,
            (std::vector<float>{-127.0f, 3.0f, 127.0f, -128.0f}));
  EXPECT_EQ(result->at("q.scale").stored_dtype, DType::kF32);
  EXPECT_EQ(result->at("q.scale").values, (std::vector<float>{0.1f}));
  EXPECT_EQ(result->at("b").stored_dtype, DType::kBF16);
  EXPECT_EQ(result->at("b").values, (std::vector<float>{1.5f}));
}

TEST(TensorFileTest, NonFiniteValuesAreConvertedFaithfully) {
  const std::string header =
      R"({"h": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]}})";
  auto result =
      Parse(MakeFile(header, std::string("\x00\x7c\x00\xfc\x01\x7e", 6)));
  ASSERT_TRUE(result.ok()) << result.status();
  const auto& v = result->at("h").values;
  EXPECT_EQ(v[0], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[1], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(v[2]));
}

// --- Writing. ---

TensorMap SampleTensors() {
  TensorMap tensors;
  tensors["rnn.weight_ih_l0"] = Tensor{
      .shape = {2, 3}, .values = {0.5f, -1.25f, 3.0f, 0.0f, -0.0f, 1024.0f}};
  tensors["rnn.bias_ih_l0"] = Tensor{.shape = {2}, .values = {1.0f, -2.0f}};
  tensors["head.weight"] =
      Tensor{.shape = {1, 1, 3}, .values = {65504.0f, -0.125f, 0.375f}};
  tensors["empty"] = Tensor{.shape = {0, 4}, .values = {}};
  tensors["scalar"] = Tensor{.shape = {}, .values = {7.0f}};
  return tensors;
}

void ExpectSameTensors(const TensorMap& actual, const TensorMap& expected,
                       DType dtype) {
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [name, tensor] : expected) {
    SCOPED_TRACE(name);
    ASSERT_EQ(actual.count(name), 1u);
    const Tensor& got = actual.at(name);
    EXPECT_EQ(got.stored_dtype, dtype);
    EXPECT_EQ(got.shape, tensor.shape);
    ASSERT_EQ(got.values.size(), tensor.values.size());
    for (size_t i = 0; i < got.values.size(); ++i) {
      EXPECT_EQ(std::bit_cast<uint32_t>(got.values[i]),
                std::bit_cast<uint32_t>(tensor.values[i]))
          << "element " << i << ": " << got.values[i] << " vs "
          << tensor.values[i];
    }
  }
}

TEST(TensorFileTest, SerializeRoundTripsExactlyRepresentableValues) {
  const TensorMap tensors = SampleTensors();
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(dtype));
    TensorMap expected = tensors;
    if (dtype == DType::kBF16) {
      // 65504 is not a bfloat16 value; everything else in the sample is.
      expected["head.weight"].values[0] = 65536.0f;
    }
    const std::string bytes = SerializeSafetensors(tensors, dtype);
    auto result = Parse(bytes);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectSameTensors(*result, expected, dtype);
  }
}

TEST(TensorFileTest, SerializeRoundsToNearestEven) {
  TensorMap tensors;
  const float third = 1.0f / 3.0f;
  tensors["t"] = Tensor{.shape = {3}, .values = {third, 0.1f, 1e-6f}};
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(dtype));
    auto result = Parse(SerializeSafetensors(tensors, dtype));
    ASSERT_TRUE(result.ok()) << result.status();
    for (size_t i = 0; i < 3; ++i) {
      const float v = tensors["t"].values[i];
      const float expected = dtype == DType::kF16
                                 ? HalfToFloat(FloatToHalf(v))
                                 : BFloat16ToFloat(FloatToBFloat16(v));
      EXPECT_EQ(result->at("t").values[i], expected);
      EXPECT_NE(result->at("t").values[i], v);  // really was rounded
    }
  }
  EXPECT_EQ(FloatToHalf(third), 0x3555);      // 0.33325195
  EXPECT_EQ(FloatToBFloat16(third), 0x3eab);  // 0.33398438
}

TEST(TensorFileTest, SerializedLayoutFollowsTheSpec) {
  const std::string bytes = SerializeSafetensors(SampleTensors(), DType::kF16);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) {
    header_size = (header_size << 8) | static_cast<unsigned char>(bytes[i]);
  }
  EXPECT_EQ(header_size % 8, 0u);
  ASSERT_LE(8 + header_size, bytes.size());
  const std::string header = bytes.substr(8, header_size);
  EXPECT_EQ(header.front(), '{');
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));
  // 6 + 2 + 3 + 0 + 1 elements of 2 bytes.
  EXPECT_EQ(bytes.size() - 8 - header_size, 24u);
  // Names in sorted order with contiguous offsets.
  EXPECT_LT(header.find("\"empty\""), header.find("\"head.weight\""));
  EXPECT_NE(header.find(R"("head.weight":{"data_offsets":[0,6])"),
            std::string::npos)
      << header;
  EXPECT_NE(header.find(R"("rnn.bias_ih_l0":{"data_offsets":[6,10])"),
            std::string::npos)
      << header;
}

TEST(TensorFileTest, SerializeEmptyMap) {
  auto result = Parse(SerializeSafetensors({}));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->empty());
}

// --- Files on disk. ---

class TensorFileDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat(
               "tensor_file_test_", ::getpid(), "_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(TensorFileDiskTest, ReadsAFile) {
  const std::string path =
      Write("model.safetensors", SerializeSafetensors(SampleTensors()));
  auto result = ReadSafetensors(path);
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectSameTensors(*result, SampleTensors(), DType::kF32);
}

TEST_F(TensorFileDiskTest, MissingFileIsNotFound) {
  const std::string path = (dir_ / "absent.safetensors").string();
  auto result = ReadSafetensors(path);
  ExpectError(result, {"no such file"}, absl::StatusCode::kNotFound, path);
}

TEST_F(TensorFileDiskTest, ErrorsNameThePath) {
  const std::string path = Write("bad.safetensors", "abc");
  ExpectError(ReadSafetensors(path), {"file is 3 bytes"},
              absl::StatusCode::kInvalidArgument, path);
}

TEST_F(TensorFileDiskTest, FileOverLimitIsRejectedBeforeReading) {
  const std::string bytes = SerializeSafetensors(SampleTensors());
  const std::string path = Write("model.safetensors", bytes);
  SafetensorsLimits limits;
  limits.max_file_bytes = bytes.size() - 1;
  ExpectError(
      ReadSafetensors(path, limits),
      {absl::StrCat("file is ", bytes.size(), " bytes"), "max_file_bytes"},
      absl::StatusCode::kInvalidArgument, path);
}

TEST_F(TensorFileDiskTest, DirectoryIsNotAFile) {
  ExpectError(ReadSafetensors(dir_.string()), {"not a regular file"},
              absl::StatusCode::kInvalidArgument, dir_.string());
}

// --- Half and bfloat16 conversions. ---

TEST(HalfTest, KnownBitPatterns) {
  EXPECT_EQ(HalfToFloat(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x8000), 0.0f);
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xc000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(HalfToFloat(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(HalfToFloat(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7c01)));  // signalling NaN
  EXPECT_TRUE(std::isnan(HalfToFloat(0xffff)));
  EXPECT_TRUE(std::signbit(HalfToFloat(0xfe00)));
}

TEST(HalfTest, FromFloatRoundsToNearestEven) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // tie: rounds to even (= inf)
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-1e6f), 0xfc00);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(FloatToHalf(inf), 0x7c00);
  EXPECT_EQ(FloatToHalf(-inf), 0xfc00);
  // Ties between neighbours near 1 (ulp 2^-10).
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // even
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // even
  EXPECT_EQ(FloatToHalf(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)),
            0x3c01);
  // Subnormals (unit 2^-24).
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie -> 0
  EXPECT_EQ(FloatToHalf(-std::ldexp(1.0f, -25)), 0x8000);
  EXPECT_EQ(FloatToHalf(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 units -> 2
  EXPECT_EQ(FloatToHalf(std::ldexp(5.0f, -25)), 0x0002);  // 2.5 units -> 2
  EXPECT_EQ(FloatToHalf(std::ldexp(1023.0f, -24)), 0x03ff);
  EXPECT_EQ(FloatToHalf(std::ldexp(2047.0f, -25)), 0x0400);  // tie -> normal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
  // NaN stays NaN (quiet), sign kept.
  const uint16_t nan = FloatToHalf(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  const uint16_t neg_nan =
      FloatToHalf(-std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(neg_nan & 0xfe00, 0xfe00);
  // A signalling NaN whose payload is only in the low bits must not become
  // infinity.
  const uint16_t snan = FloatToHalf(std::bit_cast<float>(0x7f800001u));
  EXPECT_EQ(snan & 0x7c00, 0x7c00);
  EXPECT_NE(snan & 0x03ff, 0);
}

TEST(HalfTest, EveryHalfRoundTrips) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    const float f = HalfToFloat(h);
    const bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0;
    if (is_nan) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << bits;
      ASSERT_TRUE(std::isnan(HalfToFloat(FloatToHalf(f)))) << std::hex << bits;
    } else {
      ASSERT_EQ(FloatToHalf(f), h) << std::hex << bits;
    }
  }
}

#if defined(__FLT16_MANT_DIG__)
// Cross-check against the compiler's IEEE binary16 type.
TEST(HalfTest, MatchesCompilerFloat16) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const _Float16 h = std::bit_cast<_Float16>(static_cast<uint16_t>(bits));
    const float reference = static_cast<float>(h);
    const float f = HalfToFloat(static_cast<uint16_t>(bits));
    if (std::isnan(reference)) {
      ASSERT_TRUE(std::isnan(f));
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(f), std::bit_cast<uint32_t>(reference))
          << std::hex << bits;
    }
  }
  std::mt19937 rng(1234);
  std::uniform_int_distribution<uint32_t> exponents(90, 150);
  std::uniform_int_distribution<uint32_t> mantissas(0, 0x7fffff);
  for (int i = 0; i < 200000; ++i) {
    // Mostly around half's range, with many exact ties (low mantissa bits 0).
    uint32_t mantissa = mantissas(rng);
    if (i % 4 == 0) mantissa &= ~0xfffu;
    if (i % 8 == 0) mantissa |= 0x1000u;
    const uint32_t bits =
        ((rng() & 1u) << 31) | (exponents(rng) << 23) | mantissa;
    const float f = std::bit_cast<float>(bits);
    const auto reference = std::bit_cast<uint16_t>(static_cast<_Float16>(f));
    ASSERT_EQ(FloatToHalf(f), reference) << std::hex << bits;
  }
}
#endif

TEST(BFloat16Test, KnownBitPatterns) {
  EXPECT_EQ(BFloat16ToFloat(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(BFloat16ToFloat(0x8000)));
  EXPECT_EQ(BFloat16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(BFloat16ToFloat(0xc000), -2.0f);
  EXPECT_EQ(BFloat16ToFloat(0x0001), std::ldexp(1.0f, -133));  // subnormal
  EXPECT_EQ(BFloat16ToFloat(0x0080), std::ldexp(1.0f, -126));
  EXPECT_EQ(BFloat16ToFloat(0x7f7f), std::ldexp(255.0f, 120));  // max
  EXPECT_EQ(BFloat16ToFloat(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(BFloat16ToFloat(0xff80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(0x7fc0)));
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(0x7f81)));

  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBFloat16(-0.0f), 0x8000);
  EXPECT_EQ(FloatToBFloat16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie
  EXPECT_EQ(FloatToBFloat16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(FloatToBFloat16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.f)),
            0x3f81);
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(FloatToBFloat16(std::ldexp(255.0f, 120)), 0x7f7f);
  EXPECT_EQ(FloatToBFloat16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(FloatToBFloat16(std::ldexp(1.0f, -133)), 0x0001);
  EXPECT_EQ(FloatToBFloat16(std::ldexp(1.0f, -134)), 0x0000);  // tie -> 0
  EXPECT_EQ(FloatToBFloat16(std::ldexp(3.0f, -134)), 0x0002);  // tie -> 2
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::denorm_min()), 0);
  const uint16_t snan = FloatToBFloat16(std::bit_cast<float>(0x7f800001u));
  EXPECT_EQ(snan & 0x7f80, 0x7f80);
  EXPECT_NE(snan & 0x007f, 0);
  const uint16_t neg_nan =
      FloatToBFloat16(-std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(neg_nan & 0xffc0, 0xffc0);
}

TEST(BFloat16Test, EveryBFloat16RoundTrips) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const uint16_t b = static_cast<uint16_t>(bits);
    const float f = BFloat16ToFloat(b);
    if (std::isnan(f)) {
      ASSERT_EQ(b & 0x7f80, 0x7f80);
      ASSERT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(f))));
    } else {
      ASSERT_EQ(FloatToBFloat16(f), b) << std::hex << bits;
    }
  }
}

// Reference: pick the nearer of the two bfloat16 neighbours in double
// arithmetic, ties to the even one; overflow counts the value past the
// largest finite one as 2^128.
uint16_t ReferenceBFloat16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t down = static_cast<uint16_t>(bits >> 16);
  const uint16_t up = static_cast<uint16_t>(down + 1);
  auto magnitude = [](uint16_t b) {
    if ((b & 0x7fff) == 0x7f80) return std::ldexp(1.0, 128);
    return std::fabs(static_cast<double>(BFloat16ToFloat(b)));
  };
  const double v = std::fabs(static_cast<double>(value));
  const double d_down = v - magnitude(down);
  const double d_up = magnitude(up) - v;
  if (d_down < d_up) return down;
  if (d_up < d_down) return up;
  return (down & 1) ? up : down;
}

TEST(BFloat16Test, MatchesReferenceRounding) {
  std::mt19937 rng(99);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = rng();
    if (i % 3 == 0) bits = (bits & ~0xffffu) | 0x8000u;  // exact tie
    if ((bits & 0x7f800000u) == 0x7f800000u) continue;   // inf/NaN
    const float f = std::bit_cast<float>(bits);
    ASSERT_EQ(FloatToBFloat16(f), ReferenceBFloat16(f)) << std::hex << bits;
  }
}

// --- Hostile input: random mutations never crash. ---

// Applies 1-4 random edits to `text`.
void Mutate(std::string& text, std::mt19937& rng) {
  static const std::string kTokens[] = {
      "[",       "]",         "{",
      "}",       ",",         ":",
      "\"",      "-1",        "1e308",
      "0.5",     "null",      "99999999999999999999",
      "\"F16\"", "\"BF16\"",  "[0,0]",
      "\\u0000", "\"shape\"", "\"__metadata__\"",
      "\xff"};
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !text.empty(); ++e) {
    const size_t pos = rng() % text.size();
    switch (rng() % 6) {
      case 0:  // flip a bit
        text[pos] = static_cast<char>(text[pos] ^ (1u << (rng() % 8)));
        break;
      case 1:  // random byte
        text[pos] = static_cast<char>(rng());
        break;
      case 2:  // truncate
        text.resize(pos);
        break;
      case 3:  // insert a JSON-ish token
        text.insert(pos, kTokens[rng() % std::size(kTokens)]);
        break;
      case 4:  // delete a run
        text.erase(pos, 1 + rng() % 8);
        break;
      case 5:  // change a digit: keeps the JSON valid but breaks the layout
        for (size_t i = pos; i < text.size(); ++i) {
          if (text[i] >= '0' && text[i] <= '9') {
            text[i] = static_cast<char>('0' + rng() % 10);
            break;
          }
        }
        break;
    }
  }
}

TEST(TensorFileFuzzTest, MutatedFilesReturnAStatus) {
  struct Seed {
    std::string header, data;
  };
  std::vector<Seed> seeds;
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    const std::string file = SerializeSafetensors(SampleTensors(), dtype);
    const size_t header_size = static_cast<unsigned char>(file[0]) |
                               static_cast<unsigned char>(file[1]) << 8;
    seeds.push_back(
        {file.substr(8, header_size), file.substr(8 + header_size)});
  }
  seeds.push_back(
      {R"({"__metadata__": {"format": "pt"}, "a": {"dtype": "BF16",)"
       R"( "shape": [2, 1], "data_offsets": [0, 4]}, "b": {"dtype":)"
       R"( "F32", "shape": [1], "data_offsets": [4, 8], "x": [[{}]]}})",
       std::string("\x80\x3f\x00\xc0\x00\x00\x80\x3f", 8)});
  for (const Seed& seed : seeds) {
    ASSERT_TRUE(Parse(MakeFile(seed.header, seed.data)).ok());
  }

  std::mt19937 rng(20240611);
  int ok = 0, invalid = 0;
  const auto start = std::chrono::steady_clock::now();
  constexpr int kIterations = 20000;
  for (int iteration = 0; iteration < kIterations; ++iteration) {
    const Seed& seed = seeds[iteration % seeds.size()];
    std::string file;
    switch (rng() % 4) {
      case 0:  // mutate the header, keep the framing consistent
      case 1: {
        std::string header = seed.header;
        Mutate(header, rng);
        file = MakeFile(header, seed.data);
        break;
      }
      case 2: {  // mutate the data (and so its size)
        std::string data = seed.data;
        Mutate(data, rng);
        file = MakeFile(seed.header, data);
        break;
      }
      case 3:  // mutate the raw file, length prefix included
        file = MakeFile(seed.header, seed.data);
        Mutate(file, rng);
        break;
    }
    auto result = Parse(file);
    if (result.ok()) {
      ++ok;
      for (const auto& [name, tensor] : *result) {
        ASSERT_EQ(static_cast<int64_t>(tensor.values.size()),
                  tensor.num_elements())
            << name;
      }
    } else {
      ++invalid;
      ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
          << result.status();
      ASSERT_EQ(std::string(result.status().message()).substr(0, kFile.size()),
                kFile);
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // The mutations must exercise both outcomes to mean anything.
  EXPECT_GT(ok, kIterations / 20);
  EXPECT_GT(invalid, kIterations / 2);
  RecordProperty("ok", ok);
  RecordProperty("invalid", invalid);
  RecordProperty(
      "ms", static_cast<int>(
                std::chrono::duration_cast<std::chrono::milliseconds>(elapsed)
                    .count()));
}

}  // namespace
}  // namespace lstmserve::model
