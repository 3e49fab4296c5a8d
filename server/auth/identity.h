// Who a call comes from, once authenticated (server/auth/authenticator.h).
//
// Thread-safety: a value; thread-compatible.
#pragma once

#include <string>

namespace lstmserve::server {

struct Identity {
  // Sessions belong to it. "" is the anonymous identity: every caller when
  // neither --auth-tokens nor --identity-from-cert is set.
  std::string name;
  // May call the admin methods (LoadModel, UnloadModel) and list every
  // session. The anonymous identity is an admin: without authentication
  // there is no one to tell apart (docs/SECURITY.md).
  bool admin = false;

  bool operator==(const Identity&) const = default;
};

}  // namespace lstmserve::server
