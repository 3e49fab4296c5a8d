// The bearer tokens of an --auth-tokens file, and the identity each one
// stands for.
//
// File format: one token a line, `TOKEN IDENTITY [admin]`, separated by
// spaces or tabs; blank lines and lines starting with '#' are ignored.
// Tokens are 16 to 4096 printable ASCII characters without spaces; an
// identity is 1 to 128 characters of [A-Za-z0-9._@:/+=-]. The same token
// twice is an error; one identity may have several tokens (rotation).
//
// Only SHA-256 digests of the tokens are kept, and a lookup compares the
// digest of the presented token with every entry in constant time (no
// early exit), so the time a lookup takes does not depend on how much of a
// token is right.
//
// Thread-safety: immutable after Parse; safe to share.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/auth/identity.h"

namespace lstmserve::server {

class TokenTable {
 public:
  static constexpr size_t kMinTokenLength = 16;
  static constexpr size_t kMaxTokenLength = 4096;

  // INVALID_ARGUMENT naming `source` and the line for a malformed line; the
  // message never contains a token.
  static absl::StatusOr<TokenTable> Parse(absl::string_view text,
                                          absl::string_view source);

  // The identity of `token`, or nullopt.
  std::optional<Identity> Find(absl::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  static Digest Hash(absl::string_view token);
  struct Entry {
    Digest digest;
    Identity identity;
  };
  std::vector<Entry> entries_;
};

}  // namespace lstmserve::server
