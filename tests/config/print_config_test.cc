// --print-config: the effective configuration as a config file that reads
// back as the same configuration.
#include "server/config/print_config.h"

#include "config_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/option_table.h"

namespace lstmserve::config {
namespace {

using server::ModelOptions;
using server::VersionPolicy;
using server::WeightFormat;
using testing::FromToml;
using ::testing::HasSubstr;
using testing::ParseCommandLine;
using testing::TempDir;

// Values tried, in order, to move an option off its default.
const char* const kCandidates[] = {
    "7",      "2.5",          "0.125", "-1",   "true",
    "all",    "specific:1,3", "json",  "full", "debug",
    "/tmp/x", "10.1.2.3:99",  "off",   "1",    "4096"};

// A configuration in which every option of the file differs from its
// default (so a printer that dropped one would show), as text per key.
ServerConfig EveryOptionChanged() {
  const ServerConfig defaults;
  ServerConfig config;
  for (const Option& option : OptionTable()) {
    if (!(option.sources & kFile)) continue;
    bool changed = false;
    for (const char* candidate : kCandidates) {
      ServerConfig probe = config;
      if (option.set_from_text(candidate, probe).ok() &&
          option.to_toml(probe) != option.to_toml(defaults)) {
        config = probe;
        changed = true;
        break;
      }
    }
    EXPECT_TRUE(changed) << "add a value for " << option.key
                         << " to kCandidates";
  }
  auto& models = config.server.models;
  models["ecg"].versions = testing::LatestPolicy(2);
  models["ecg"].weights = WeightFormat::kBf16;
  models["needs quotes.v2"].versions = testing::SpecificPolicy({1, 3});
  models["int8-only"].weights = WeightFormat::kInt8;
  models["all"].versions = testing::AllPolicy();
  models["bare"] = ModelOptions();
  return config;
}

void ExpectSameConfig(const ServerConfig& a, const ServerConfig& b) {
  for (const Option& option : OptionTable()) {
    if (!(option.sources & kFile)) continue;
    EXPECT_EQ(option.to_toml(a), option.to_toml(b)) << option.key;
  }
  EXPECT_EQ(a.server.models, b.server.models);
}

TEST(PrintConfig, EveryKeyOnceThenTheModelTables) {
  const std::string text = FormatToml(ServerConfig());
  for (const Option& option : OptionTable()) {
    const std::string line = "\n" + option.key + " = ";
    const size_t at = text.find(line);
    if (option.sources & kFile) {
      EXPECT_NE(at, std::string::npos) << option.key;
      EXPECT_EQ(text.find(line, at + 1), std::string::npos) << option.key;
    } else {
      EXPECT_EQ(at, std::string::npos) << option.key;
    }
  }
  EXPECT_THAT(text, HasSubstr("\nsession_idle_timeout = 600.0  # seconds\n"));
  EXPECT_THAT(text, HasSubstr("\nmax_queue_delay = 100.0  # microseconds\n"));
  EXPECT_THAT(text, HasSubstr("\nversion_policy = { latest = 1 }\n"));
  EXPECT_EQ(text.find("[models"), std::string::npos);
}

TEST(PrintConfig, ReadsBackAsTheSameConfiguration) {
  const ServerConfig config = EveryOptionChanged();
  const std::string text = FormatToml(config);
  absl::StatusOr<ServerConfig> back = FromToml(text);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  ExpectSameConfig(*back, config);
  EXPECT_EQ(FormatToml(*back), text);
  // And the typed fields, beyond their printed form.
  EXPECT_EQ(back->server.max_sessions, config.server.max_sessions);
  EXPECT_EQ(back->server.session_idle_timeout,
            config.server.session_idle_timeout);
  EXPECT_EQ(back->server.batch_peer_window, config.server.batch_peer_window);
  EXPECT_EQ(back->server.version_policy, config.server.version_policy);
  EXPECT_EQ(back->server.state_sync, config.server.state_sync);
  EXPECT_EQ(back->log_format, config.log_format);
  EXPECT_EQ(back->server.models.size(), 5u);
}

TEST(PrintConfig, PrintsModelTables) {
  const std::string text = FormatToml(EveryOptionChanged());
  EXPECT_THAT(text, HasSubstr("\n[models.ecg]\nversions = { latest = 2 }\n"
                              "weights = \"bf16\"\n"));
  EXPECT_THAT(text, HasSubstr("\n[models.\"needs quotes.v2\"]\nversions = { "
                              "specific = [1, 3] }\n"));
  EXPECT_THAT(text, HasSubstr("\n[models.int8-only]\nweights = \"int8\"\n"));
  EXPECT_THAT(text, HasSubstr("\n[models.all]\nversions = \"all\"\n"));
  EXPECT_THAT(text, HasSubstr("\n[models.bare]\n"));
}

TEST(PrintConfig, DurationsReadBackExactly) {
  for (const char* number :
       {"0.1", "0.001", "123.456789", "9999999.75", "1e7", "7"}) {
    absl::StatusOr<ServerConfig> config = ParseCommandLine(
        {"--session-idle-timeout", number, "--max-queue-delay", number,
         "--version-drain-timeout", number, "--batch-peer-window", "0.5"});
    ASSERT_TRUE(config.ok()) << config.status();
    absl::StatusOr<ServerConfig> back = FromToml(FormatToml(*config));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->server.session_idle_timeout,
              config->server.session_idle_timeout)
        << number;
    EXPECT_EQ(back->server.max_queue_delay, config->server.max_queue_delay)
        << number;
    EXPECT_EQ(back->server.version_drain_timeout,
              config->server.version_drain_timeout)
        << number;
    EXPECT_EQ(back->server.batch_peer_window, absl::Nanoseconds(500));
  }
}

TEST(PrintConfig, StringsWithQuotesAndControlCharactersReadBack) {
  ServerConfig config;
  config.server.model_repo = "/a \"b\"\\c\td\x01";
  config.server.state_dir = "/data/états";
  absl::StatusOr<ServerConfig> back = FromToml(FormatToml(config));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->server.model_repo, config.server.model_repo);
  EXPECT_EQ(back->server.state_dir, config.server.state_dir);
}

TEST(PrintConfig, FileEnvironmentAndFlagsRoundTripThroughConfig) {
  // As an operator would: print the effective configuration, then start
  // from that file alone.
  TempDir dir;
  const std::string first = dir.Write("first.toml", R"(
threads = 3
max_batch = 20
[models.ecg]
versions = { specific = [2, 4] }
weights = "int8"
)");
  absl::StatusOr<ServerConfig> config = ParseCommandLine(
      {"--config", first, "--max-sessions", "12", "--version-policy", "all",
       "--allow-non-finite"},
      {{"LSTMSERVE_MAX_BATCH", "21"}, {"LSTMSERVE_STATE_SYNC", "full"}});
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string printed = dir.Write("printed.toml", FormatToml(*config));
  absl::StatusOr<ServerConfig> again = ParseCommandLine({"--config", printed});
  ASSERT_TRUE(again.ok()) << again.status();
  ExpectSameConfig(*again, *config);
  EXPECT_EQ(again->server.threads, 3);
  EXPECT_EQ(again->server.max_batch, 21);
  EXPECT_EQ(again->server.max_sessions, 12);
  EXPECT_TRUE(again->server.allow_non_finite);
  EXPECT_EQ(again->server.state_sync, server::StateSync::kFull);
  EXPECT_EQ(again->server.models.at("ecg").weights, WeightFormat::kInt8);
}

TEST(OptionsMarkdown, OneRowPerOption) {
  const std::string table = OptionsMarkdown();
  EXPECT_THAT(table, HasSubstr("| `max_sessions` | `--max-sessions` | "
                               "`LSTMSERVE_MAX_SESSIONS` | integer: 1 to "
                               "100000000 | `10000` | Sessions held at once"));
  EXPECT_THAT(table, HasSubstr("| `session_idle_timeout` | "
                               "`--session-idle-timeout` | "
                               "`LSTMSERVE_SESSION_IDLE_TIMEOUT` | float, "
                               "seconds: 0.001 to 1e+09 | `600.0` |"));
  EXPECT_THAT(table, HasSubstr("| — | `--print-config` | — | boolean: true "
                               "or false | `false` |"));
  EXPECT_THAT(table, HasSubstr("| — | `--config` | `LSTMSERVE_CONFIG` | "
                               "string | — |"));
  size_t rows = 0;
  for (size_t at = table.find("\n| "); at != std::string::npos;
       at = table.find("\n| ", at + 1)) {
    ++rows;
  }
  EXPECT_EQ(rows, OptionTable().size());
}

}  // namespace
}  // namespace lstmserve::config
