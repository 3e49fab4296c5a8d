// The option table itself: names, defaults, ranges.
#include "server/config/option_table.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "config_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lstmserve::config {
namespace {

using server::StateSync;
using server::VersionPolicy;
using testing::FromToml;

bool Accepts(const std::string& key, const std::string& text) {
  ServerConfig config;
  return FindOption(key)->set_from_text(text, config).ok();
}

TEST(OptionTable, KeysAreSnakeCaseAndFlagsAndVariablesFollowFromThem) {
  std::set<std::string> keys;
  for (const Option& option : OptionTable()) {
    EXPECT_TRUE(keys.insert(option.key).second) << "twice: " << option.key;
    for (const char c : option.key) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
          << option.key;
    }
    EXPECT_NE(option.key, "models");  // the per-model tables' key
  }
  const Option* option = FindOption("max_stream_buffered_bytes");
  ASSERT_NE(option, nullptr);
  EXPECT_EQ(option->Flag(), "--max-stream-buffered-bytes");
  EXPECT_EQ(option->EnvVar(), "LSTMSERVE_MAX_STREAM_BUFFERED_BYTES");
  EXPECT_EQ(FindOption("max-stream-buffered-bytes"), nullptr);
}

TEST(OptionTable, EveryOptionIsExplained) {
  for (const Option& option : OptionTable()) {
    EXPECT_GT(option.help.size(), 10u) << option.key;
    EXPECT_FALSE(option.type.empty()) << option.key;
    EXPECT_FALSE(option.cli_type.empty()) << option.key;
    EXPECT_NE(option.sources, 0u) << option.key;
    if (option.type == "float") {
      // A duration names its unit in its help.
      EXPECT_THAT(absl::AsciiStrToLower(option.help),
                  ::testing::HasSubstr(option.unit))
          << option.key;
    }
  }
}

TEST(OptionTable, TheFlagsOfEarlierReleasesAreKept) {
  for (const char* flag :
       {"--model-repo", "--listen", "--port-file", "--threads",
        "--session-idle-timeout", "--max-sessions", "--max-steps-per-request",
        "--max-message-bytes", "--max-stream-inflight",
        "--max-stream-buffered-bytes", "--max-replay-chunks", "--max-batch",
        "--max-queue-delay", "--batch-peer-window", "--max-queued-steps",
        "--allow-non-finite", "--shutdown-grace", "--log-level"}) {
    bool found = false;
    for (const Option& option : OptionTable()) {
      found = found || (option.Flag() == flag && (option.sources & kFlag));
    }
    EXPECT_TRUE(found) << flag;
  }
}

TEST(OptionTable, DefaultsAreValidValuesOfTheirOwnOptions) {
  const ServerConfig defaults;
  for (const Option& option : OptionTable()) {
    ServerConfig config;
    ASSERT_TRUE(option.set_from_text(option.to_text(defaults), config).ok())
        << option.key << " = " << option.to_text(defaults);
    EXPECT_EQ(option.to_toml(config), option.to_toml(defaults)) << option.key;
    if (option.sources & kFile) {
      absl::StatusOr<ServerConfig> from_file =
          FromToml(option.key + " = " + option.to_toml(defaults) + "\n");
      ASSERT_TRUE(from_file.ok()) << from_file.status();
      EXPECT_EQ(option.to_toml(*from_file), option.to_toml(defaults));
    }
  }
}

TEST(OptionTable, DefaultsOfTheNewOptions) {
  const ServerConfig defaults;
  const server::ServerOptions& server = defaults.server;
  EXPECT_EQ(server.state_dir, "");
  EXPECT_EQ(server.checkpoint_interval, absl::Seconds(1));
  EXPECT_EQ(server.state_sync, StateSync::kNormal);
  EXPECT_EQ(server.repo_poll_interval, absl::Seconds(2));
  EXPECT_EQ(server.version_drain_timeout, absl::Seconds(3600));
  EXPECT_EQ(server.version_policy, testing::LatestPolicy(1));
  EXPECT_TRUE(server.models.empty());
  EXPECT_EQ(server.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(server.access_log, "off");
  EXPECT_EQ(defaults.log_format, LogFormat::kText);
  EXPECT_EQ(defaults.log_level, "info");
  EXPECT_EQ(defaults.shutdown_grace, absl::Seconds(5));
}

TEST(OptionTable, IntegerRangesAreInclusive) {
  for (const Option& option : OptionTable()) {
    if (option.type != "integer") continue;
    const std::vector<std::string> bounds =
        absl::StrSplit(option.accepted, " to ");
    ASSERT_EQ(bounds.size(), 2u) << option.key << ": " << option.accepted;
    int64_t min = 0, max = 0;
    ASSERT_TRUE(absl::SimpleAtoi(bounds[0], &min));
    ASSERT_TRUE(absl::SimpleAtoi(bounds[1], &max));
    EXPECT_TRUE(Accepts(option.key, std::to_string(min))) << option.key;
    EXPECT_TRUE(Accepts(option.key, std::to_string(max))) << option.key;
    EXPECT_FALSE(Accepts(option.key, std::to_string(min - 1))) << option.key;
    EXPECT_FALSE(Accepts(option.key, std::to_string(max + 1))) << option.key;
    EXPECT_FALSE(Accepts(option.key, "1.5")) << option.key;
    EXPECT_FALSE(Accepts(option.key, "")) << option.key;
  }
}

TEST(OptionTable, DurationRanges) {
  EXPECT_FALSE(Accepts("checkpoint_interval", "0"));
  EXPECT_TRUE(Accepts("checkpoint_interval", "0.001"));
  EXPECT_TRUE(Accepts("checkpoint_interval", "3600"));
  EXPECT_FALSE(Accepts("checkpoint_interval", "3600.5"));
  EXPECT_TRUE(Accepts("repo_poll_interval", "0"));  // no polling
  EXPECT_FALSE(Accepts("repo_poll_interval", "-1"));
  EXPECT_TRUE(Accepts("version_drain_timeout", "0"));  // at once
  EXPECT_FALSE(Accepts("session_idle_timeout", "0"));
  EXPECT_FALSE(Accepts("shutdown_grace", "nan"));
  EXPECT_FALSE(Accepts("shutdown_grace", "inf"));
  EXPECT_FALSE(Accepts("shutdown_grace", "5s"));
  EXPECT_TRUE(Accepts("batch_peer_window", "-1"));
  EXPECT_FALSE(Accepts("batch_peer_window", "-1.5"));

  ServerConfig config;
  ASSERT_TRUE(FindOption("max_queue_delay")->set_from_text("2.5", config).ok());
  EXPECT_EQ(config.server.max_queue_delay, absl::Nanoseconds(2500));
  ASSERT_TRUE(
      FindOption("version_drain_timeout")->set_from_text("90", config).ok());
  EXPECT_EQ(config.server.version_drain_timeout, absl::Seconds(90));
  ASSERT_TRUE(
      FindOption("batch_peer_window")->set_from_text("-1", config).ok());
  EXPECT_EQ(config.server.batch_peer_window, absl::InfiniteDuration());
  EXPECT_EQ(FindOption("batch_peer_window")->to_text(config), "-1");
}

TEST(OptionTable, MetricsListenIsHostPortOrOff) {
  for (const char* good :
       {"off", "127.0.0.1:9464", "0.0.0.0:0", "[::1]:9464", "metrics:65535"}) {
    EXPECT_TRUE(Accepts("metrics_listen", good)) << good;
  }
  for (const char* bad : {"", "9464", ":9464", "host:", "host:65536", "host:-1",
                          "host:http", "OFF"}) {
    EXPECT_FALSE(Accepts("metrics_listen", bad)) << bad;
  }
}

TEST(OptionTable, BooleansFromText) {
  for (const char* yes : {"true", "TRUE", "1", "yes", "on"}) {
    EXPECT_TRUE(Accepts("allow_non_finite", yes)) << yes;
  }
  ServerConfig config;
  ASSERT_TRUE(FindOption("allow_non_finite")->set_from_text("on", config).ok());
  EXPECT_TRUE(config.server.allow_non_finite);
  ASSERT_TRUE(FindOption("allow_non_finite")->set_from_text("No", config).ok());
  EXPECT_FALSE(config.server.allow_non_finite);
  EXPECT_FALSE(Accepts("allow_non_finite", "2"));
  EXPECT_FALSE(Accepts("allow_non_finite", ""));
}

}  // namespace
}  // namespace lstmserve::config
