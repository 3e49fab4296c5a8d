#include "server/auth/token_table.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lstmserve::server {
namespace {

bool IsTokenChar(char c) { return c > ' ' && c < 0x7f; }

bool IsIdentityChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("._@:/+=-").find(c) != absl::string_view::npos;
}

}  // namespace

TokenTable::Digest TokenTable::Hash(absl::string_view token) {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         digest.data());
  return digest;
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text,
                                             absl::string_view source) {
  TokenTable table;
  absl::flat_hash_set<std::string> seen;  // digests, for duplicates
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const absl::string_view stripped = absl::StripAsciiWhitespace(line);
    if (stripped.empty() || stripped[0] == '#') continue;
    const std::vector<absl::string_view> fields =
        absl::StrSplit(stripped, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, " line ", line_number, ": ", what,
                       "; expected \"TOKEN IDENTITY [admin]\""));
    };
    if (fields.size() < 2 || fields.size() > 3) {
      return bad(absl::StrCat("has ", fields.size(), " fields"));
    }
    const absl::string_view token = fields[0];
    const absl::string_view name = fields[1];
    if (token.size() < kMinTokenLength || token.size() > kMaxTokenLength) {
      return bad(absl::StrCat("the token has ", token.size(),
                              " characters, not ", kMinTokenLength, " to ",
                              kMaxTokenLength));
    }
    for (char c : token) {
      if (!IsTokenChar(c))
        return bad("the token has a non-printable character");
    }
    if (name.size() > 128) return bad("the identity is over 128 characters");
    for (char c : name) {
      if (!IsIdentityChar(c)) {
        return bad(absl::StrCat("the identity \"", name,
                                "\" has a character outside "
                                "[A-Za-z0-9._@:/+=-]"));
      }
    }
    if (fields.size() == 3 && fields[2] != "admin") {
      return bad(absl::StrCat("the third field is \"", fields[2],
                              "\", not \"admin\""));
    }
    Entry entry;
    entry.digest = Hash(token);
    entry.identity.name = std::string(name);
    entry.identity.admin = fields.size() == 3;
    if (!seen.insert(std::string(entry.digest.begin(), entry.digest.end()))
             .second) {
      return bad("the token is already on an earlier line");
    }
    table.entries_.push_back(std::move(entry));
  }
  return table;
}

std::optional<Identity> TokenTable::Find(absl::string_view token) const {
  const Digest digest = Hash(token);
  const Entry* match = nullptr;
  // Every entry is compared, whatever matched before: the time does not
  // tell which entry (or how much of a digest) matched.
  for (const Entry& entry : entries_) {
    const bool equal =
        CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0;
    match = equal ? &entry : match;
  }
  if (match == nullptr) return std::nullopt;
  return match->identity;
}

}  // namespace lstmserve::server
