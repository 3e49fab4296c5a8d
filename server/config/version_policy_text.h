// server::VersionPolicy as lstm-server reads and writes it.
//
// On the command line and in the environment (--version-policy,
// LSTMSERVE_VERSION_POLICY): "all", "latest:N" or "specific:V1,V2,...".
// In the config file (version_policy, [models.NAME] versions): "all",
// { latest = N } or { specific = [V1, V2, ...] }; a string in the
// command-line form is accepted too.
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/version_policy.h"
#include "toml++/toml.h"

namespace lstmserve::config {

// The command-line form. Errors say "expected ..., got \"TEXT\"".
absl::StatusOr<server::VersionPolicy> ParseVersionPolicy(
    absl::string_view text);
std::string FormatVersionPolicy(const server::VersionPolicy& policy);

// The config-file form of the value at `key_path`. Errors are whole:
// "FILE:LINE: key \"KEY_PATH\": expected ..., got ..." or an unknown key.
absl::StatusOr<server::VersionPolicy> VersionPolicyFromToml(
    const toml::node& value, absl::string_view key_path);
std::string VersionPolicyToToml(const server::VersionPolicy& policy);

}  // namespace lstmserve::config
