// Text mode of `lstm-client stream --text`: a character-level model's
// alphabet, read from its input_names/output_names, one-hot encoding of the
// characters read from stdin, and the top-k display of each step's output.
//
// Conventions (docs/MODEL_FORMAT.md, "Text models"): every input name is one
// character (one Unicode code point, UTF-8 encoded), except at most one name
// "<unk>", the unit any other character is sent as. Output names are shown
// as they are (single characters quoted and escaped, other names bare).
//
// Thread-safety: TextAlphabet is immutable after Create and may be shared;
// the free functions keep no state.
#pragma once

#include <istream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "lstmserve/client.h"

namespace lstmserve::client::cli {

// The name of the input unit that stands for any character not in the
// alphabet.
inline constexpr char kUnknownName[] = "<unk>";

class TextAlphabet {
 public:
  // The model's alphabet, or INVALID_ARGUMENT naming the model and the
  // first offending name: input_names must be given, one per input, each a
  // single UTF-8 character or "<unk>" (at most once), without duplicates;
  // output_names must be given, one per output.
  static absl::StatusOr<TextAlphabet> Create(const ModelInfo& model);

  // The input unit of `character` (one UTF-8 character, or one byte that is
  // not valid UTF-8): its own unit, else the "<unk>" unit, else nullopt.
  std::optional<int> IndexOf(std::string_view character) const;
  // The "<unk>" unit, or -1 if the model has none.
  int unknown_index() const { return unknown_; }
  int input_size() const { return input_size_; }
  const std::vector<std::string>& output_names() const { return outputs_; }

 private:
  int input_size_ = 0;
  int unknown_ = -1;
  std::unordered_map<std::string, int> index_;
  std::vector<std::string> outputs_;
};

// The next character of `in`: one UTF-8 encoded code point (1-4 bytes), or
// a single byte where the input is not valid UTF-8. False at end of input.
bool ReadUtf8Char(std::istream& in, std::string* character);

// Whether `name` is exactly one UTF-8 encoded code point.
bool IsSingleCharacter(std::string_view name);

// Characters for display: in single quotes, with \n, \t, \r, \\ and \'
// escaped, other C0 control characters, DEL and bytes that are not valid
// UTF-8 as \xHH, C1 controls as \uHHHH, anything else as is:
// 'a', '\n', '\x0C', 'é'.
std::string QuoteCharacter(std::string_view bytes);

// An output name for display: QuoteCharacter for a single character, other
// names (e.g. "<unk>") as they are.
std::string DisplayName(std::string_view name);

// One output line (without '\n') for a step: `shown_input`, the input as
// read (QuoteCharacter, followed by "=<unk>" when it was sent as the unknown
// unit), then the k largest outputs in decreasing order (ties: lower unit
// first), each as DisplayName(output name), a space and the value with 3
// decimals; fields separated by tabs:  'd'<TAB>'e' 0.620<TAB>'a' 0.110<TAB>'i'
// 0.050
std::string FormatTopK(const std::string& shown_input,
                       std::span<const float> outputs,
                       const std::vector<std::string>& output_names, int k);

}  // namespace lstmserve::client::cli
