// Config files: values of each kind, and every class of error with the file
// and line it names.
#include "server/config/toml_file.h"

#include "config_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lstmserve::config {
namespace {

using server::StateSync;
using server::VersionPolicy;
using server::WeightFormat;
using testing::FromToml;
using ::testing::HasSubstr;
using testing::Message;
using ::testing::StartsWith;
using testing::TempDir;

TEST(TomlFile, SetsTheKeysItHoldsAndLeavesTheRest) {
  absl::StatusOr<ServerConfig> config = FromToml(R"(
# a comment
model_repo = "/srv/models"
threads = 3
max_queued_steps = 1099511627776   # int64 option at its maximum
session_idle_timeout = 0.5
shutdown_grace = 10                # an integer is a number of seconds too
max_queue_delay = 250.5
batch_peer_window = -1
allow_non_finite = true
log_level = "debug"
log_format = "json"
state_sync = "full"
metrics_listen = "off"
access_log = "-"
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const ServerConfig defaults;
  EXPECT_EQ(config->server.model_repo, "/srv/models");
  EXPECT_EQ(config->server.threads, 3);
  EXPECT_EQ(config->server.max_queued_steps, int64_t{1} << 40);
  EXPECT_EQ(config->server.session_idle_timeout, absl::Milliseconds(500));
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(10));
  EXPECT_EQ(config->server.max_queue_delay, absl::Nanoseconds(250500));
  EXPECT_EQ(config->server.batch_peer_window, absl::InfiniteDuration());
  EXPECT_TRUE(config->server.allow_non_finite);
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->log_format, LogFormat::kJson);
  EXPECT_EQ(config->server.state_sync, StateSync::kFull);
  EXPECT_EQ(config->server.metrics_listen, "off");
  EXPECT_EQ(config->server.access_log, "-");
  // Untouched.
  EXPECT_EQ(config->server.listen, defaults.server.listen);
  EXPECT_EQ(config->server.max_sessions, defaults.server.max_sessions);
  EXPECT_EQ(config->server.checkpoint_interval,
            defaults.server.checkpoint_interval);
  EXPECT_TRUE(config->server.models.empty());
}

TEST(TomlFile, AnEmptyFileChangesNothing) {
  absl::StatusOr<ServerConfig> config = FromToml("\n# nothing\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.max_batch, ServerConfig().server.max_batch);
}

TEST(TomlFile, WrongTypeNamesFileLineKeyExpectedAndGot) {
  EXPECT_EQ(Message(FromToml("threads = 2\n\nmax_batch = \"10\"\n").status()),
            R"(test.toml:3: key "max_batch": expected an integer from 1 to )"
            R"(65536, got string "10")");
  EXPECT_EQ(Message(FromToml("max_batch = 10.0\n").status()),
            R"(test.toml:1: key "max_batch": expected an integer from 1 to )"
            "65536, got float 10.0");
  EXPECT_EQ(Message(FromToml("session_idle_timeout = \"10s\"\n").status()),
            R"(test.toml:1: key "session_idle_timeout": expected a number of )"
            R"(seconds from 0.001 to 1e+09, got string "10s")");
  EXPECT_EQ(Message(FromToml("allow_non_finite = \"yes\"\n").status()),
            R"(test.toml:1: key "allow_non_finite": expected true or false, )"
            R"(got string "yes")");
  EXPECT_EQ(Message(FromToml("listen = 50051\n").status()),
            R"(test.toml:1: key "listen": expected a string, got integer )"
            "50051");
  EXPECT_EQ(Message(FromToml("model_repo = [\"a\"]\n").status()),
            R"(test.toml:1: key "model_repo": expected a string, got array)");
  EXPECT_EQ(Message(FromToml("state_dir = { path = \"x\" }\n").status()),
            R"(test.toml:1: key "state_dir": expected a string, got table)");
}

TEST(TomlFile, OutOfRangeNamesFileLineKeyExpectedAndGot) {
  EXPECT_EQ(Message(FromToml("max_sessions = 0\n").status()),
            R"(test.toml:1: key "max_sessions": expected an integer from 1 )"
            "to 100000000, got integer 0");
  EXPECT_EQ(Message(FromToml("threads = 1025\n").status()),
            R"(test.toml:1: key "threads": expected an integer from 0 to )"
            "1024, got integer 1025");
  // Beyond int's range: checked before it is narrowed.
  EXPECT_EQ(Message(FromToml("max_batch = 4294967297\n").status()),
            R"(test.toml:1: key "max_batch": expected an integer from 1 to )"
            "65536, got integer 4294967297");
  EXPECT_EQ(Message(FromToml("session_idle_timeout = 0\n").status()),
            R"(test.toml:1: key "session_idle_timeout": expected a number of )"
            "seconds from 0.001 to 1e+09, got integer 0");
  EXPECT_EQ(Message(FromToml("checkpoint_interval = 0.0\n").status()),
            R"(test.toml:1: key "checkpoint_interval": expected a number of )"
            "seconds greater than 0, at most 3600, got float 0.0");
  EXPECT_EQ(Message(FromToml("shutdown_grace = nan\n").status()),
            R"(test.toml:1: key "shutdown_grace": expected a number of )"
            "seconds from 0 to 3600, got float nan");
  EXPECT_EQ(Message(FromToml("max_queue_delay = inf\n").status()),
            R"(test.toml:1: key "max_queue_delay": expected a number of )"
            "microseconds from 0 to 1e+07, got float inf");
  EXPECT_EQ(Message(FromToml("batch_peer_window = -2\n").status()),
            R"(test.toml:1: key "batch_peer_window": expected a number of )"
            "microseconds from -1 to 1e+09, got integer -2");
  EXPECT_EQ(Message(FromToml("log_format = \"xml\"\n").status()),
            R"(test.toml:1: key "log_format": expected one of "text", )"
            R"("json", got string "xml")");
  EXPECT_EQ(Message(FromToml("state_sync = \"FULL\"\n").status()),
            R"(test.toml:1: key "state_sync": expected one of "normal", )"
            R"("full", got string "FULL")");
  EXPECT_EQ(Message(FromToml("metrics_listen = \"9464\"\n").status()),
            R"(test.toml:1: key "metrics_listen": expected host:port or )"
            R"("off", got string "9464")");
}

TEST(TomlFile, UnknownKeySuggestsTheClosestKnownKey) {
  EXPECT_EQ(Message(FromToml("threads = 1\nmax_sesions = 5\n").status()),
            R"(test.toml:2: unknown key "max_sesions" (did you mean )"
            R"("max_sessions"?))");
  // A flag's spelling.
  EXPECT_EQ(Message(FromToml("max-sessions = 5\n").status()),
            R"(test.toml:1: unknown key "max-sessions" (did you mean )"
            R"("max_sessions"?))");
  EXPECT_EQ(Message(FromToml("modles = {}\n").status()),
            R"(test.toml:1: unknown key "modles" (did you mean "models"?))");
}

TEST(TomlFile, UnknownKeyWithNothingCloseHasNoSuggestion) {
  EXPECT_EQ(Message(FromToml("\ncolour = \"blue\"\n").status()),
            R"(test.toml:2: unknown key "colour")");
  EXPECT_EQ(Message(FromToml("[server]\nthreads = 2\n").status()),
            R"(test.toml:1: unknown key "server")");
}

TEST(TomlFile, CommandLineOnlyOptionsAreUnknownKeys) {
  EXPECT_EQ(Message(FromToml("print_config = true\n").status()),
            R"(test.toml:1: unknown key "print_config")");
  EXPECT_EQ(Message(FromToml("help_config = true\n").status()),
            R"(test.toml:1: unknown key "help_config")");
  EXPECT_THAT(Message(FromToml("config = \"other.toml\"\n").status()),
              StartsWith(R"(test.toml:1: unknown key "config")"));
}

TEST(TomlFile, FirstErrorInFileOrder) {
  // toml++ keeps keys sorted; the error reported is the first in the file.
  EXPECT_EQ(Message(FromToml("threads = -1\nmax_batch = 0\n").status()),
            R"(test.toml:1: key "threads": expected an integer from 0 to )"
            "1024, got integer -1");
  EXPECT_EQ(Message(FromToml("zzz = 1\naaa = 2\n").status()),
            R"(test.toml:1: unknown key "zzz")");
}

TEST(TomlFile, SyntaxErrorGivesLineAndColumn) {
  const std::string message =
      Message(FromToml("threads = 2\nmax_batch = \n").status());
  EXPECT_THAT(message, StartsWith("test.toml:2:13: "));
  EXPECT_THAT(message, HasSubstr("expected value"));
  EXPECT_THAT(Message(FromToml("threads = 2\n[models.ecg\n").status()),
              StartsWith("test.toml:2:"));
  // A key given twice is TOML's error too.
  EXPECT_THAT(Message(FromToml("threads = 2\nthreads = 3\n").status()),
              StartsWith("test.toml:2:"));
}

TEST(TomlFile, ReadsAFileByPathAndNamesItInErrors) {
  TempDir dir;
  const std::string good = dir.Write("good.toml", "max_batch = 7\n");
  ServerConfig config;
  ASSERT_TRUE(ApplyTomlFile(good, config).ok());
  EXPECT_EQ(config.server.max_batch, 7);

  const std::string bad = dir.Write("bad.toml", "\n\nmax_batch = 0\n");
  EXPECT_EQ(Message(ApplyTomlFile(bad, config)),
            bad + R"(:3: key "max_batch": expected an integer from 1 to )"
                  "65536, got integer 0");
}

TEST(TomlFile, MissingOrUnreadableFileIsAClearError) {
  TempDir dir;
  ServerConfig config;
  const std::string missing = dir.path() + "/none.toml";
  EXPECT_EQ(
      Message(ApplyTomlFile(missing, config)),
      "cannot read config file \"" + missing + "\": No such file or directory");
  EXPECT_EQ(Message(ApplyTomlFile(dir.path(), config)),
            "cannot read config file \"" + dir.path() + "\": Is a directory");
}

TEST(ModelTables, ReadEachModelsSettings) {
  absl::StatusOr<ServerConfig> config = FromToml(R"(
version_policy = "all"

[models.ecg]
versions = { latest = 2 }
weights = "bf16"

[models.sunspots]
versions = { specific = [3, 1] }

[models."elnino.v2"]
weights = "int8"

[models.empty]
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& models = config->server.models;
  ASSERT_EQ(models.size(), 4u);
  EXPECT_EQ(models.at("ecg").versions, testing::LatestPolicy(2));
  EXPECT_EQ(models.at("ecg").weights, WeightFormat::kBf16);
  EXPECT_EQ(models.at("sunspots").versions, testing::SpecificPolicy({1, 3}));
  EXPECT_EQ(models.at("sunspots").weights, std::nullopt);
  EXPECT_EQ(models.at("elnino.v2").versions, std::nullopt);
  EXPECT_EQ(models.at("elnino.v2").weights, WeightFormat::kInt8);
  EXPECT_EQ(models.at("empty"), server::ModelOptions());
  EXPECT_EQ(config->server.version_policy.kind, VersionPolicy::Kind::kAll);
}

TEST(ModelTables, ErrorsNameTheModelsKey) {
  EXPECT_EQ(Message(FromToml("[models.ecg]\nweights = \"fp16\"\n").status()),
            R"(test.toml:2: key "models.ecg.weights": expected one of )"
            R"("f32", "bf16", "int8", got string "fp16")");
  EXPECT_EQ(Message(FromToml("[models.ecg]\nweights = 8\n").status()),
            R"(test.toml:2: key "models.ecg.weights": expected one of )"
            R"("f32", "bf16", "int8", got integer 8)");
  EXPECT_EQ(
      Message(
          FromToml("[models.ecg]\n\nversions = { latest = -1 }\n").status()),
      R"(test.toml:3: key "models.ecg.versions.latest": expected an integer )"
      ">= 1, got integer -1");
  EXPECT_EQ(Message(FromToml("[models.ecg]\nversions = \"some\"\n").status()),
            R"(test.toml:2: key "models.ecg.versions": expected "all", )"
            R"({ latest = N } or { specific = [V1, V2, ...] }, got string )"
            R"("some")");
  EXPECT_EQ(
      Message(FromToml("[models.\"a b\"]\nversions = { specific = [2, 2] }\n")
                  .status()),
      R"(test.toml:2: key "models."a b".versions.specific": expected each )"
      "version once, got 2 twice");
}

TEST(ModelTables, UnknownKeysInAModelTableAreErrors) {
  EXPECT_EQ(Message(FromToml("[models.ecg]\nweight = \"bf16\"\n").status()),
            R"(test.toml:2: unknown key "models.ecg.weight" (did you mean )"
            R"("models.ecg.weights"?))");
  EXPECT_EQ(Message(FromToml("[models.ecg]\nthreads = 2\n").status()),
            R"(test.toml:2: unknown key "models.ecg.threads")");
  EXPECT_EQ(
      Message(
          FromToml("[models.ecg]\nversions = { specifc = [1] }\n").status()),
      R"(test.toml:2: unknown key "models.ecg.versions.specifc" (did you )"
      R"(mean "models.ecg.versions.specific"?))");
}

TEST(ModelTables, ModelNamesAreDirectoryNames) {
  const std::string rule =
      R"(in [models] is not valid; expected a model directory name (not )"
      R"(empty, not "." or "..", no "/"))";
  EXPECT_EQ(Message(FromToml("[models.\"a/b\"]\n").status()),
            R"(test.toml:1: model name "a/b" )" + rule);
  EXPECT_EQ(Message(FromToml("[models.\"..\"]\n").status()),
            R"(test.toml:1: model name ".." )" + rule);
  EXPECT_EQ(Message(FromToml("[models.\".\"]\n").status()),
            R"(test.toml:1: model name "." )" + rule);
  EXPECT_EQ(Message(FromToml("[models.\"\"]\n").status()),
            R"(test.toml:1: model name "" )" + rule);
}

TEST(ModelTables, ModelsMustBeTablesOfTables) {
  EXPECT_EQ(Message(FromToml("models = 5\n").status()),
            R"(test.toml:1: key "models": expected a table of model tables )"
            "([models.NAME]), got integer 5");
  EXPECT_EQ(Message(FromToml("[models]\necg = \"latest:1\"\n").status()),
            R"(test.toml:2: key "models.ecg": expected a table of the )"
            R"(model's settings (versions, weights), got string "latest:1")");
}

}  // namespace
}  // namespace lstmserve::config
