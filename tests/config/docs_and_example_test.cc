// The example config file and the docs list every option, so that neither
// falls behind the option table.
#include "config_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/option_table.h"
#include "toml++/toml.h"

namespace lstmserve::config {
namespace {

using ::testing::HasSubstr;
using testing::ReadFile;
using testing::SourcePath;

const char kExample[] = "deploy/lstm-server.toml";

TEST(ExampleConfig, LoadsWithNoUnknownKey) {
  ServerConfig config;
  const absl::Status status = ApplyTomlFile(SourcePath(kExample), config);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_FALSE(config.server.models.empty()) << "no [models.NAME] example";
}

TEST(ExampleConfig, SetsEveryKey) {
  const toml::table root = toml::parse_file(SourcePath(kExample));
  for (const Option& option : OptionTable()) {
    if (!(option.sources & kFile)) continue;
    EXPECT_TRUE(root.contains(option.key))
        << kExample << " does not set " << option.key;
  }
}

TEST(ExampleConfig, ItsValuesAreTheDefaults) {
  // Its comments tell each default; the values it sets must be those.
  ServerConfig config;
  ASSERT_TRUE(ApplyTomlFile(SourcePath(kExample), config).ok());
  config.server.models.clear();
  EXPECT_EQ(FormatToml(config), FormatToml(ServerConfig()));
}

TEST(OperationsDoc, ListsEveryOptionAsHelpConfigPrintsIt) {
  const std::string doc = ReadFile(SourcePath("docs/OPERATIONS.md"));
  const std::string begin = "<!-- BEGIN lstm-server --help-config -->\n";
  const std::string end = "<!-- END lstm-server --help-config -->";
  const size_t from = doc.find(begin);
  const size_t to = doc.find(end);
  ASSERT_NE(from, std::string::npos) << "no " << begin;
  ASSERT_NE(to, std::string::npos) << "no " << end;
  EXPECT_EQ(doc.substr(from + begin.size(), to - from - begin.size()),
            OptionsMarkdown())
      << "paste the output of `lstm-server --help-config` between the "
         "markers in docs/OPERATIONS.md";
}

TEST(ApiDoc, ItsFlagsTableListsEveryFlag) {
  const std::string doc = ReadFile(SourcePath("docs/API.md"));
  for (const Option& option : OptionTable()) {
    if (!(option.sources & kFlag)) continue;
    EXPECT_THAT(doc, HasSubstr("| `" + option.Flag() + "`"))
        << "docs/API.md's flags table lacks " << option.Flag();
  }
}

}  // namespace
}  // namespace lstmserve::config
