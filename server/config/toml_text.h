// Small helpers to write TOML values and to describe a config file's values
// in error messages.
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "toml++/toml.h"

namespace lstmserve::config {

// The shortest text that reads back as exactly `value` ("600", "0.001",
// "1e+09").
std::string FormatNumber(double value);
// `value` as a TOML float: FormatNumber with ".0" added where it would read
// as an integer ("600.0").
std::string FormatTomlFloat(double value);
// `text` as a TOML basic string, quoted and escaped.
std::string QuoteTomlString(absl::string_view text);
// `key` bare where TOML allows it (A-Z a-z 0-9 _ -), else quoted.
std::string FormatTomlKey(absl::string_view key);

// What a value in a config file is, for "got ..." in messages:
// `string "abc"`, `integer 5`, `float 1.5`, `boolean true`, `array`, `table`.
std::string DescribeNode(const toml::node& node);

// "FILE:LINE" of where `node` was defined.
std::string Location(const toml::node& node);
std::string Location(const toml::source_region& source);

// `FILE:LINE: key "key_path": expected EXPECTED, got DESCRIBENODE(node)`, as
// an InvalidArgument status.
absl::Status ExpectedError(const toml::node& node, absl::string_view key_path,
                           absl::string_view expected);

// A table's entries in the order they appear in the file (a toml::table
// iterates in key order).
std::vector<std::pair<const toml::key*, const toml::node*>> InFileOrder(
    const toml::table& table);

// `FILE:LINE: unknown key "PREFIX.KEY"`, followed by ` (did you mean
// "PREFIX.K"?)` when one of `known` is within edit distance 2 of KEY. An empty
// prefix means a top-level key.
absl::Status UnknownKeyError(const toml::key& key, absl::string_view prefix,
                             const std::vector<std::string>& known);

}  // namespace lstmserve::config
