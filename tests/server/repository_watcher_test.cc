// The repository watcher over a real directory: version policies, the
// completeness rule (stable across two polls, or READY), broken versions
// refused while the old one serves, removed versions unloaded, and the
// admin LoadModel / UnloadModel.
#include "server/core/repository_watcher.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core_fixture.h"

namespace lstmserve::server {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;
using Kind = RepositoryWatcher::Event::Kind;

model::ModelConfig TinyConfig() {
  model::ModelConfig c;
  c.cell = model::CellType::kLstm;
  c.input_size = 2;
  c.hidden_size = 4;
  c.num_layers = 1;
  c.head = model::HeadConfig{1, model::Activation::kIdentity};
  return c;
}

class WatcherTest : public CoreTest {
 protected:
  void SetUp() override {
    registry_ = std::make_unique<ModelRegistry>();
    Start();
  }

  void Write(const std::string& model, int64_t version, uint32_t seed = 1) {
    const std::string dir = absl::StrCat(repo(), "/", model, "/", version);
    std::filesystem::create_directories(dir);
    testutil::WriteVersionDir(dir, TinyConfig(),
                              model::RandomTensors(TinyConfig(), seed));
  }
  void Break(const std::string& model, int64_t version) {
    testutil::WriteFile(
        absl::StrCat(repo(), "/", model, "/", version, "/config.json"),
        "{ not json");
  }
  std::string repo() const { return tmp_.Join("repo"); }

  std::unique_ptr<RepositoryWatcher> Watcher(
      VersionPolicy policy = VersionPolicy{},
      std::map<std::string, VersionPolicy> per_model = {}) {
    WatcherOptions o;
    o.repo = repo();
    o.default_policy = policy;
    o.policies = std::move(per_model);
    o.drain = absl::Hours(1);
    return std::make_unique<RepositoryWatcher>(*core_, o);
  }

  std::vector<RepositoryWatcher::Event> Poll(RepositoryWatcher& w,
                                             bool start = false) {
    auto events = w.Poll(start);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<RepositoryWatcher::Event>{};
  }

  testutil::TempDir tmp_;
};

TEST_F(WatcherTest, PoliciesPickTheVersionsServedAtStart) {
  for (int64_t v : {1, 2, 3}) Write("a", v);
  for (int64_t v : {1, 2, 3}) Write("b", v);
  for (int64_t v : {1, 2, 3}) Write("c", v);
  VersionPolicy two{VersionPolicy::Kind::kLatest, 2, {}};
  VersionPolicy list{VersionPolicy::Kind::kSpecific, 1, {1, 3}};
  auto w = Watcher(VersionPolicy{}, {{"b", two}, {"c", list}});
  Poll(*w, /*start=*/true);
  EXPECT_THAT(registry_->Versions("a"), ElementsAre(3));  // latest:1
  EXPECT_THAT(registry_->Versions("b"), ElementsAre(2, 3));
  EXPECT_THAT(registry_->Versions("c"), ElementsAre(1, 3));
}

TEST_F(WatcherTest, AllServesEveryVersion) {
  for (int64_t v : {1, 2, 3}) Write("a", v);
  auto w = Watcher(VersionPolicy{VersionPolicy::Kind::kAll, 1, {}});
  Poll(*w, true);
  EXPECT_THAT(registry_->Versions("a"), ElementsAre(1, 2, 3));
}

TEST_F(WatcherTest, ANewVersionLoadsOnceItsFilesStopChanging) {
  Write("m", 1);
  auto w = Watcher();
  Poll(*w, true);
  ASSERT_TRUE(Create("", "s", "m", 0, {}).ok());
  Write("m", 2, 7);
  std::vector<RepositoryWatcher::Event> events = Poll(*w);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kWaiting);
  EXPECT_THAT(registry_->Versions("m"), ElementsAre(1));
  events = Poll(*w);  // the same files as last time: complete
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kLoaded);
  EXPECT_EQ(events[0].version, 2);
  EXPECT_EQ(events[1].kind, Kind::kUnloaded);
  EXPECT_THAT(events[1].detail, HasSubstr("latest:1"));
  EXPECT_THAT(registry_->Versions("m"), ElementsAre(2));
  // The live session stays on version 1; new ones get 2.
  EXPECT_EQ(core_->GetSession("", "s")->version, 1);
  EXPECT_EQ(Create("", "t", "m", 0, {})->version, 2);
  EXPECT_EQ(core_->draining_versions(), 1);
  EXPECT_THAT(Poll(*w), IsEmpty());
}

TEST_F(WatcherTest, AReadyMarkerLoadsAtTheFirstPoll) {
  Write("m", 1);
  auto w = Watcher();
  Poll(*w, true);
  Write("m", 2);
  testutil::WriteFile(repo() + "/m/2/READY", "");
  Poll(*w);
  EXPECT_THAT(registry_->Versions("m"), ElementsAre(2));
}

TEST_F(WatcherTest, AHalfWrittenVersionIsNotLoaded) {
  Write("m", 1);
  auto w = Watcher();
  Poll(*w, true);
  std::filesystem::create_directories(repo() + "/m/2");
  testutil::WriteFile(repo() + "/m/2/config.json", "{}");  // no weights yet
  for (int i = 0; i < 3; ++i) Poll(*w);
  EXPECT_THAT(registry_->Versions("m"), ElementsAre(1));
}

TEST_F(WatcherTest, ABrokenVersionIsRefusedTheOldOneServesAndAFixLoads) {
  Write("m", 1);
  auto w = Watcher();
  Poll(*w, true);
  Write("m", 2);
  Break("m", 2);
  Poll(*w);
  std::vector<RepositoryWatcher::Event> events = Poll(*w);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kRefused);
  EXPECT_EQ(events[0].version, 2);
  EXPECT_THAT(registry_->Versions("m"), ElementsAre(1));
  EXPECT_THAT(Poll(*w), IsEmpty());  // not tried again while unchanged
  Write("m", 2, 9);                  // fixed
  Poll(*w);
  Poll(*w);
  EXPECT_THAT(registry_->Versions("m"), ElementsAre(2));
}

TEST_F(WatcherTest, RemovedVersionsAndModelsAreUnloaded) {
  VersionPolicy all{VersionPolicy::Kind::kAll, 1, {}};
  Write("m", 1);
  Write("m", 2);
  Write("n", 1);
  auto w = Watcher(all);
  Poll(*w, true);
  std::filesystem::remove_all(repo() + "/m/1");
  std::vector<RepositoryWatcher::Event> events = Poll(*w);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kUnloaded);
  EXPECT_THAT(events[0].detail, HasSubstr("gone"));
  std::filesystem::remove_all(repo() + "/n");
  Poll(*w);
  EXPECT_THAT(registry_->Names(), ElementsAre("m"));
  EXPECT_THAT(registry_->Versions("m"), ElementsAre(2));
}

TEST_F(WatcherTest, UnloadModelSticksUntilLoadModel) {
  Write("m", 1);
  Write("m", 2);
  auto w = Watcher();
  Poll(*w, true);
  auto unloaded = w->UnloadModel("m", 0);
  ASSERT_TRUE(unloaded.ok()) << unloaded.status();
  EXPECT_THAT(registry_->Names(), IsEmpty());
  Poll(*w);
  Poll(*w);
  EXPECT_THAT(registry_->Names(), IsEmpty());
  EXPECT_EQ(w->UnloadModel("m", 0).status().code(),
            absl::StatusCode::kNotFound);
  auto loaded = w->LoadModel("m");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(registry_->Versions("m"), ElementsAre(2));
  // Unloading the newest version alone rolls back to the one before.
  ASSERT_TRUE(w->UnloadModel("m", 2).ok());
  Poll(*w);
  EXPECT_THAT(registry_->Versions("m"), ElementsAre(1));
}

TEST_F(WatcherTest, LoadModelErrorsNameWhatIsWrong) {
  Write("m", 1);
  Break("m", 1);
  auto w = Watcher();
  Poll(*w, true);
  EXPECT_EQ(w->LoadModel("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(w->LoadModel("../etc").status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<RepositoryWatcher::Event>> r = w->LoadModel("m");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("version=1 not loaded"));
  EXPECT_EQ(w->UnloadModel("m", -1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(WatcherTest, AMissingRepositoryIsNotFound) {
  auto w = Watcher();
  EXPECT_EQ(w->Poll(true).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace lstmserve::server
