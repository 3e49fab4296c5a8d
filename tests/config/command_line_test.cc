// Flags, LSTMSERVE_* variables and the config file together: precedence
// default < file < environment < flag, and the errors of each source. The
// environment is passed in, so the machine's own variables play no part.
#include "server/config/command_line.h"

#include <stdlib.h>

#include "config_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/option_table.h"

namespace lstmserve::config {
namespace {

using server::VersionPolicy;
using ::testing::HasSubstr;
using testing::Message;
using testing::ParseCommandLine;
using testing::TempDir;

TEST(CommandLine, NothingGivenIsTheDefaults) {
  absl::StatusOr<ServerConfig> config = ParseCommandLine({});
  ASSERT_TRUE(config.ok()) << config.status();
  const ServerConfig defaults;
  for (const Option& option : OptionTable()) {
    EXPECT_EQ(option.to_toml(*config), option.to_toml(defaults)) << option.key;
  }
  EXPECT_EQ(config->config_file, "");
}

TEST(CommandLine, FileThenEnvironmentThenFlags) {
  TempDir dir;
  const std::string file = dir.Write("server.toml", R"(
threads = 3
max_sessions = 10
max_batch = 20
session_idle_timeout = 30
version_policy = "all"
)");
  const Environment env = {{"LSTMSERVE_MAX_SESSIONS", "11"},
                           {"LSTMSERVE_MAX_BATCH", "21"},
                           {"LSTMSERVE_SESSION_IDLE_TIMEOUT", "31"}};
  absl::StatusOr<ServerConfig> config = ParseCommandLine(
      {"--config", file, "--max-sessions", "12", "--listen", "0.0.0.0:1"}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.threads, 3);          // file
  EXPECT_EQ(config->server.version_policy.kind,  // file
            VersionPolicy::Kind::kAll);
  EXPECT_EQ(config->server.max_batch, 21);  // environment over file
  EXPECT_EQ(config->server.session_idle_timeout, absl::Seconds(31));
  EXPECT_EQ(config->server.max_sessions, 12);  // flag over both
  EXPECT_EQ(config->server.listen, "0.0.0.0:1");
  EXPECT_EQ(config->server.max_queued_steps,  // nowhere: default
            ServerConfig().server.max_queued_steps);
  EXPECT_EQ(config->config_file, file);
}

TEST(CommandLine, AFlagGivenAtItsDefaultStillOverrides) {
  absl::StatusOr<ServerConfig> config =
      ParseCommandLine({"--max-batch", "64"}, {{"LSTMSERVE_MAX_BATCH", "21"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.max_batch, 64);
}

TEST(CommandLine, EnvironmentOverridesDefaults) {
  absl::StatusOr<ServerConfig> config =
      ParseCommandLine({}, {{"LSTMSERVE_STATE_DIR", "/var/lib/lstm"},
                            {"LSTMSERVE_VERSION_POLICY", "specific:2,1"},
                            {"LSTMSERVE_LOG_FORMAT", "json"},
                            {"LSTMSERVE_BATCH_PEER_WINDOW", "-1"},
                            {"LSTMSERVE_ALLOW_NON_FINITE", "yes"},
                            {"LSTMSERVE_PORT_FILE", "/run/port"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.state_dir, "/var/lib/lstm");
  EXPECT_EQ(config->server.version_policy, testing::SpecificPolicy({1, 2}));
  EXPECT_EQ(config->log_format, LogFormat::kJson);
  EXPECT_EQ(config->server.batch_peer_window, absl::InfiniteDuration());
  EXPECT_TRUE(config->server.allow_non_finite);
  EXPECT_EQ(config->port_file, "/run/port");
}

TEST(CommandLine, OtherLstmserveVariablesAreNotOptions) {
  // LSTMSERVE_ISA belongs to the engine (model/kernels.h).
  absl::StatusOr<ServerConfig> config =
      ParseCommandLine({}, {{"LSTMSERVE_ISA", "generic"}});
  EXPECT_TRUE(config.ok()) << config.status();
}

TEST(CommandLine, SwitchFlagsOverrideTheEnvironment) {
  const Environment env = {{"LSTMSERVE_ALLOW_NON_FINITE", "false"}};
  absl::StatusOr<ServerConfig> on =
      ParseCommandLine({"--allow-non-finite"}, env);
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->server.allow_non_finite);
  absl::StatusOr<ServerConfig> off = ParseCommandLine(
      {"--allow-non-finite=false"}, {{"LSTMSERVE_ALLOW_NON_FINITE", "1"}});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->server.allow_non_finite);
}

TEST(CommandLine, BadEnvironmentValueNamesTheVariable) {
  EXPECT_EQ(
      Message(ParseCommandLine({}, {{"LSTMSERVE_MAX_BATCH", "many"}}).status()),
      "environment variable LSTMSERVE_MAX_BATCH: expected an integer from 1 "
      "to 65536, got \"many\"");
  EXPECT_EQ(
      Message(ParseCommandLine({}, {{"LSTMSERVE_MAX_BATCH", ""}}).status()),
      "environment variable LSTMSERVE_MAX_BATCH: expected an integer from 1 "
      "to 65536, got \"\"");
  EXPECT_EQ(
      Message(ParseCommandLine({}, {{"LSTMSERVE_CHECKPOINT_INTERVAL", "0"}})
                  .status()),
      "environment variable LSTMSERVE_CHECKPOINT_INTERVAL: expected a "
      "number of seconds greater than 0, at most 3600, got \"0\"");
  EXPECT_EQ(
      Message(ParseCommandLine({}, {{"LSTMSERVE_ALLOW_NON_FINITE", "maybe"}})
                  .status()),
      "environment variable LSTMSERVE_ALLOW_NON_FINITE: expected true or "
      "false (or 1/0, yes/no, on/off), got \"maybe\"");
  EXPECT_EQ(
      Message(ParseCommandLine({}, {{"LSTMSERVE_VERSION_POLICY", "latest:0"}})
                  .status()),
      "environment variable LSTMSERVE_VERSION_POLICY: expected \"latest:N\" "
      "with N an integer >= 1, got \"latest:0\"");
  EXPECT_EQ(
      Message(
          ParseCommandLine({}, {{"LSTMSERVE_LOG_LEVEL", "verbose"}}).status()),
      "environment variable LSTMSERVE_LOG_LEVEL: expected one of \"trace\", "
      "\"debug\", \"info\", \"warn\", \"error\", \"off\", got \"verbose\"");
}

TEST(CommandLine, BadFlagValueIsCli11sValidationError) {
  try {
    (void)ParseCommandLine({"--max-batch", "0"});
    FAIL() << "no error";
  } catch (const CLI::ValidationError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--max-batch: expected an integer from 1 to 65536, got \"0\"");
    EXPECT_EQ(e.get_exit_code(),
              static_cast<int>(CLI::ExitCodes::ValidationError));
  }
  // The same rules as the environment's.
  EXPECT_THROW((void)ParseCommandLine({"--version-policy", "latest:0"}),
               CLI::ValidationError);
  EXPECT_THROW((void)ParseCommandLine({"--log-format", "xml"}),
               CLI::ValidationError);
  EXPECT_THROW((void)ParseCommandLine({"--metrics-listen", "9464"}),
               CLI::ValidationError);
  EXPECT_THROW((void)ParseCommandLine({"--session-idle-timeout", "x"}),
               CLI::ValidationError);
  EXPECT_THROW((void)ParseCommandLine({"--max-sesions", "3"}),
               CLI::ExtrasError);
}

TEST(CommandLine, ConfigFileFromTheEnvironment) {
  TempDir dir;
  const std::string file = dir.Write("a.toml", "max_batch = 5\n");
  absl::StatusOr<ServerConfig> config =
      ParseCommandLine({}, {{"LSTMSERVE_CONFIG", file}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.max_batch, 5);
  EXPECT_EQ(config->config_file, file);
}

TEST(CommandLine, ConfigFlagOverridesConfigVariable) {
  TempDir dir;
  const std::string file = dir.Write("a.toml", "max_batch = 5\n");
  // The variable's file is not even read.
  absl::StatusOr<ServerConfig> config = ParseCommandLine(
      {"--config", file}, {{"LSTMSERVE_CONFIG", dir.path() + "/missing.toml"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.max_batch, 5);
  EXPECT_EQ(config->config_file, file);
  // An empty --config reads no file at all.
  config = ParseCommandLine({"--config", ""}, {{"LSTMSERVE_CONFIG", file}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.max_batch, ServerConfig().server.max_batch);
}

TEST(CommandLine, ConfigFileErrorsComeBackWhole) {
  TempDir dir;
  const std::string file = dir.Write("a.toml", "threads = 1\nmax_batchh = 5\n");
  EXPECT_EQ(Message(ParseCommandLine({"--config", file}).status()),
            file + R"(:2: unknown key "max_batchh" (did you mean )"
                   R"("max_batch"?))");
  EXPECT_EQ(
      Message(
          ParseCommandLine({"--config", dir.path() + "/none.toml"}).status()),
      "cannot read config file \"" + dir.path() +
          "/none.toml\": No such file or directory");
}

TEST(CommandLine, APrintConfigOrHelpConfigFlagIsRecorded) {
  EXPECT_TRUE(ParseCommandLine({"--print-config"})->print_config);
  EXPECT_TRUE(ParseCommandLine({"--help-config"})->help_config);
  EXPECT_FALSE(ParseCommandLine({})->print_config);
  // Not from the environment: a variable left set must not stop a server.
  EXPECT_FALSE(
      ParseCommandLine({}, {{"LSTMSERVE_PRINT_CONFIG", "true"}})->print_config);
}

TEST(CommandLine, HelpShowsEveryFlagWithItsDefaultAndThePrecedence) {
  CLI::App app;
  CommandLine command_line(app);
  const std::string help = app.help();
  const ServerConfig defaults;
  for (const Option& option : OptionTable()) {
    EXPECT_THAT(help, HasSubstr(option.Flag() + " ")) << option.key;
    EXPECT_THAT(help, HasSubstr(option.help.substr(0, 40))) << option.key;
    const std::string default_text = option.to_text(defaults);
    if (!option.is_switch && !default_text.empty()) {
      EXPECT_THAT(help, HasSubstr("=" + default_text)) << option.key;
    }
  }
  // As before the option table: ranges and choices shown by CLI11.
  EXPECT_THAT(help,
              HasSubstr("--max-sessions INT:INT in [1 - 100000000]=10000"));
  EXPECT_THAT(help, HasSubstr("--session-idle-timeout FLOAT:FLOAT in [0.001 - "
                              "1e+09]=600"));
  EXPECT_THAT(help,
              HasSubstr("--log-level TEXT:{trace,debug,info,warn,error,off}="
                        "info"));
  EXPECT_THAT(help, HasSubstr("--version-policy TEXT=latest:1"));
  EXPECT_THAT(help, HasSubstr("A flag overrides the environment, which "
                              "overrides the file, which overrides the "
                              "defaults shown"));
}

TEST(ProcessEnvironment, ReadsTheLstmserveVariablesOnly) {
  ASSERT_EQ(setenv("LSTMSERVE_CONFIG_TEST_ONLY", "a=b", 1), 0);
  ASSERT_EQ(setenv("NOT_LSTMSERVE_CONFIG_TEST", "x", 1), 0);
  const Environment env = ProcessEnvironment();
  unsetenv("LSTMSERVE_CONFIG_TEST_ONLY");
  unsetenv("NOT_LSTMSERVE_CONFIG_TEST");
  ASSERT_TRUE(env.count("LSTMSERVE_CONFIG_TEST_ONLY"));
  EXPECT_EQ(env.at("LSTMSERVE_CONFIG_TEST_ONLY"), "a=b");
  for (const auto& [name, value] : env) {
    EXPECT_EQ(name.rfind("LSTMSERVE_", 0), 0u) << name;
  }
}

}  // namespace
}  // namespace lstmserve::config
