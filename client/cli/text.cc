#include "client/cli/text.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lstmserve::client::cli {
namespace {

// The valid range of the byte at `position` (1..3) of a UTF-8 sequence led
// by `lead` (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF).
bool ValidContinuation(unsigned char lead, int position, unsigned char byte) {
  if (position == 1) {
    if (lead == 0xE0) return byte >= 0xA0 && byte <= 0xBF;
    if (lead == 0xED) return byte >= 0x80 && byte <= 0x9F;
    if (lead == 0xF0) return byte >= 0x90 && byte <= 0xBF;
    if (lead == 0xF4) return byte >= 0x80 && byte <= 0x8F;
  }
  return byte >= 0x80 && byte <= 0xBF;
}

// Bytes in the sequence led by `lead`; 0 for a byte that cannot lead one.
int SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// The length of the valid UTF-8 sequence at the start of `s`, 0 if there is
// none.
size_t ValidPrefix(std::string_view s) {
  if (s.empty()) return 0;
  const auto lead = static_cast<unsigned char>(s[0]);
  const int n = SequenceLength(lead);
  if (n == 0 || s.size() < static_cast<size_t>(n)) return 0;
  for (int i = 1; i < n; ++i) {
    if (!ValidContinuation(lead, i, static_cast<unsigned char>(s[i]))) return 0;
  }
  return static_cast<size_t>(n);
}

// The code point of a valid sequence of `n` bytes.
uint32_t CodePoint(std::string_view s, size_t n) {
  if (n == 1) return static_cast<unsigned char>(s[0]);
  uint32_t cp = static_cast<unsigned char>(s[0]) & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3F);
  }
  return cp;
}

}  // namespace

std::string QuoteCharacter(std::string_view bytes) {
  std::string out = "'";
  while (!bytes.empty()) {
    const size_t n = ValidPrefix(bytes);
    if (n == 0) {
      absl::StrAppendFormat(&out, "\\x%02X",
                            static_cast<unsigned char>(bytes[0]));
      bytes.remove_prefix(1);
      continue;
    }
    const uint32_t cp = CodePoint(bytes, n);
    switch (cp) {
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\'':
        out += "\\'";
        break;
      default:
        if (cp < 0x20 || cp == 0x7F) {
          absl::StrAppendFormat(&out, "\\x%02X", cp);
        } else if (cp >= 0x80 && cp <= 0x9F) {  // C1 controls
          absl::StrAppendFormat(&out, "\\u%04X", cp);
        } else {
          out.append(bytes.substr(0, n));
        }
    }
    bytes.remove_prefix(n);
  }
  return out + "'";
}

bool IsSingleCharacter(std::string_view name) {
  return !name.empty() && ValidPrefix(name) == name.size();
}

std::string DisplayName(std::string_view name) {
  return IsSingleCharacter(name) ? QuoteCharacter(name) : std::string(name);
}

bool ReadUtf8Char(std::istream& in, std::string* character) {
  character->clear();
  char c = 0;
  if (!in.get(c)) return false;
  character->push_back(c);
  const auto lead = static_cast<unsigned char>(c);
  const int n = SequenceLength(lead);
  for (int i = 1; i < n; ++i) {
    const int next = in.peek();
    if (next == std::char_traits<char>::eof() ||
        !ValidContinuation(lead, i, static_cast<unsigned char>(next))) {
      // Invalid: the bytes so far are one character that is not UTF-8.
      in.clear(in.rdstate() & ~std::ios::failbit & ~std::ios::eofbit);
      return true;
    }
    in.get(c);
    character->push_back(c);
  }
  return true;
}

absl::StatusOr<TextAlphabet> TextAlphabet::Create(const ModelInfo& model) {
  auto invalid = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model \"", model.name, "\" is not a text model for --text: ", what,
        " (docs/MODEL_FORMAT.md, \"Text models\")"));
  };
  if (model.input_names.empty()) return invalid("it has no input_names");
  if (static_cast<int>(model.input_names.size()) != model.input_size) {
    return invalid(absl::StrCat("it has ", model.input_names.size(),
                                " input_names for ", model.input_size,
                                " inputs"));
  }
  if (static_cast<int>(model.output_names.size()) != model.output_size) {
    return invalid(absl::StrCat("it has ", model.output_names.size(),
                                " output_names for ", model.output_size,
                                " outputs"));
  }
  TextAlphabet a;
  a.input_size_ = model.input_size;
  for (int i = 0; i < model.input_size; ++i) {
    const std::string& name = model.input_names[static_cast<size_t>(i)];
    if (name == kUnknownName) {
      if (a.unknown_ >= 0) {
        return invalid(
            absl::StrCat("input ", i, " is a second \"", kUnknownName, "\""));
      }
      a.unknown_ = i;
      continue;
    }
    if (!IsSingleCharacter(name)) {
      return invalid(absl::StrCat("input ", i, " is named \"", name,
                                  "\", not a single character or \"",
                                  kUnknownName, "\""));
    }
    if (!a.index_.emplace(name, i).second) {
      return invalid(absl::StrCat("input ", i, " repeats the character ",
                                  DisplayName(name)));
    }
  }
  a.outputs_ = model.output_names;
  return a;
}

std::optional<int> TextAlphabet::IndexOf(std::string_view character) const {
  auto it = index_.find(std::string(character));
  if (it != index_.end()) return it->second;
  if (unknown_ >= 0) return unknown_;
  return std::nullopt;
}

std::string FormatTopK(const std::string& shown_input,
                       std::span<const float> outputs,
                       const std::vector<std::string>& output_names, int k) {
  std::vector<int> order(outputs.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t shown =
      std::min(order.size(), static_cast<size_t>(std::max(0, k)));
  std::partial_sort(order.begin(), order.begin() + shown, order.end(),
                    [&](int a, int b) {
                      if (outputs[a] != outputs[b])
                        return outputs[a] > outputs[b];
                      return a < b;
                    });
  std::string line = shown_input;
  for (size_t i = 0; i < shown; ++i) {
    const int unit = order[i];
    const std::string name = static_cast<size_t>(unit) < output_names.size()
                                 ? DisplayName(output_names[unit])
                                 : absl::StrCat("#", unit);
    absl::StrAppendFormat(&line, "\t%s %.3f", name, outputs[unit]);
  }
  return line;
}

}  // namespace lstmserve::client::cli
