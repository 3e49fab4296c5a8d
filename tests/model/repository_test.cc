#include "model/repository.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"

namespace lstmserve::model {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;

void Touch(const std::string& path) { testutil::WriteFile(path, "{}"); }

TEST(RepositoryTest, ListsModelsAndVersionsSkippingNoise) {
  testutil::TempDir repo;
  Touch(repo.Join("alpha/1/config.json"));
  Touch(repo.Join("alpha/10/config.json"));
  Touch(repo.Join("alpha/2/config.json"));
  Touch(repo.Join("alpha/v3/config.json"));  // not a version
  Touch(repo.Join("alpha/03/config.json"));  // leading zero: not a version
  Touch(repo.Join("alpha/data.csv"));        // files are skipped
  Touch(repo.Join("beta/7/config.json"));
  std::filesystem::create_directories(repo.Join("empty"));
  Touch(repo.Join("README.md"));
  auto models = ListModels(repo.path());
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].name, "alpha");
  EXPECT_THAT((*models)[0].versions, ElementsAre(1, 2, 10));
  EXPECT_EQ((*models)[1].name, "beta");
  EXPECT_THAT((*models)[1].versions, ElementsAre(7));
}

TEST(RepositoryTest, HighestVersionIsTheDefault) {
  testutil::TempDir repo;
  Touch(repo.Join("m/2/config.json"));
  Touch(repo.Join("m/11/config.json"));
  auto dir = VersionDir(repo.path(), "m");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(*dir, repo.Join("m/11"));
  auto resolved = ResolveVersionDir(repo.Join("m"));
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(*resolved, repo.Join("m/11"));
  resolved = ResolveVersionDir(repo.Join("m/2"));
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(*resolved, repo.Join("m/2"));
}

TEST(RepositoryTest, ErrorsNameWhatIsMissing) {
  testutil::TempDir repo;
  Touch(repo.Join("m/2/config.json"));
  auto v = VersionDir(repo.path(), "m", 5);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(v.status().message(), HasSubstr("no version 5; versions: 2"));
  v = VersionDir(repo.path(), "nope");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(v.status().message(), HasSubstr("\"nope\" not found"));
  EXPECT_EQ(VersionDir(repo.path(), "../m").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ListModels(repo.Join("missing")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ResolveVersionDir(repo.Join("missing")).status().code(),
            absl::StatusCode::kNotFound);
  std::filesystem::create_directories(repo.Join("hollow"));
  EXPECT_EQ(ResolveVersionDir(repo.Join("hollow")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(RepositoryTest, BundledRepositoryServesTheLstmForecaster) {
  auto models = ListModels(testutil::SourcePath("models"));
  ASSERT_TRUE(models.ok()) << models.status();
  bool found = false;
  for (const auto& m : *models) found |= m.name == "sunspots";
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace lstmserve::model
