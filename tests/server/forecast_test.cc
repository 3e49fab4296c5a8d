// The core's Forecast: in order with the session's other operations (after
// the chunks posted before it), on a copy of the state, counted in the
// queue while it waits, refused while shutting down.
#include "model/forecast.h"

#include "core_fixture.h"
#include "gmock/gmock.h"

namespace lstmserve::server {
namespace {

using testing::HasSubstr;

// Two inputs, two outputs: forecasts by identity feedback.
std::shared_ptr<const LoadedModel> Square() {
  model::ModelConfig c;
  c.cell = model::CellType::kGru;
  c.input_size = 2;
  c.hidden_size = 4;
  c.head = model::HeadConfig{2, model::Activation::kIdentity};
  auto loaded = std::make_shared<LoadedModel>();
  loaded->name = "square";
  loaded->version = 1;
  loaded->model = testutil::RandomModel(c, 8);
  return loaded;
}

class ForecastCoreTest : public CoreTest {
 protected:
  void SetUp() override {
    registry_ = *ModelRegistry::FromModels({TinyLstm("tiny", 1), Square()});
    Start();
    ASSERT_TRUE(Create("", "s", "square", 1, {}).ok());
  }

  Result<absl::StatusOr<ForecastResult>>* PostForecast(absl::string_view id,
                                                       int horizon,
                                                       int samples = 0) {
    auto* r = &forecasts_.emplace_back();
    ForecastSpec spec;
    spec.horizon = horizon;
    spec.samples = samples;
    core_->Forecast(Caller{}, id, spec, r->Callback());
    return r;
  }

  std::deque<Result<absl::StatusOr<ForecastResult>>> forecasts_;
};

// A forecast's steps go through the shard's batch queue like any chunk:
// its path and another session's chunk share an engine call.
TEST_F(ForecastCoreTest, ItsStepsShareBatchesWithOtherSessionsChunks) {
  ASSERT_TRUE(Create("", "t", "square", 1, {}).ok());
  auto* f = PostForecast("s", 3);          // two engine steps
  auto* chunk = Post("t", {0.5f, -1.0f});  // one step of another session
  Run();
  ASSERT_TRUE(f->value->ok()) << f->value->status();
  ASSERT_TRUE(chunk->value->ok()) << chunk->value->status();
  EXPECT_EQ(core_->queued_steps(), 0);
  bool found = false;
  for (const ModelStats& m : core_->Stats()) {
    if (m.model != "square") continue;
    found = true;
    EXPECT_EQ(m.steps, 3);
    EXPECT_EQ(m.batches, 2);  // the first held the forecast's step and t's
    EXPECT_EQ(m.batched_chunks, 3);
  }
  EXPECT_TRUE(found);
}

// Its steps carry the call's deadline (and cancellation), as a chunk does.
TEST_F(ForecastCoreTest, ItsStepsAreDroppedPastTheCallsDeadline) {
  Caller late;
  late.deadline = absl::Now() - absl::Seconds(1);
  auto* r = &forecasts_.emplace_back();
  ForecastSpec spec;
  spec.horizon = 5;
  core_->Forecast(late, "s", spec, r->Callback());
  Run();
  ASSERT_TRUE(r->value.has_value());
  EXPECT_EQ(r->value->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(core_->queued_steps(), 0);
  // The session is untouched and still forecasts.
  auto* again = PostForecast("s", 5);
  Run();
  EXPECT_TRUE(again->value->ok());
}

TEST_F(ForecastCoreTest, RunsAfterTheChunksPostedBeforeItOnACopy) {
  auto* chunk = Post("s", {0.5f, -1.0f, 0.25f, 2.0f});  // 2 steps, not run
  auto* f = PostForecast("s", 5);
  EXPECT_FALSE(f->value.has_value());
  EXPECT_EQ(core_->queued_steps(), 2 + 4);  // the chunk's and the forecast's
  auto* after = Post("s", {1.0f, 1.0f});
  Run();
  ASSERT_TRUE(chunk->value->ok());
  ASSERT_TRUE(f->value->ok()) << f->value->status();
  ASSERT_TRUE(after->value->ok());
  EXPECT_EQ(core_->queued_steps(), 0);
  const ForecastResult& r = **f->value;
  EXPECT_EQ(r.from_step, 2);  // after the chunk, before the next one
  EXPECT_EQ(r.horizon, 5);
  EXPECT_EQ(r.output_size, 2);
  ASSERT_EQ(r.forecast.size(), 10u);
  // Row 0 is the chunk's last output; the next chunk continued from the
  // chunk's state, as if no forecast had run.
  EXPECT_EQ(std::vector<float>(r.forecast.begin(), r.forecast.begin() + 2),
            std::vector<float>((*chunk->value)->outputs.begin() + 2,
                               (*chunk->value)->outputs.end()));
  EXPECT_EQ((*after->value)->next_step, 3);
  auto m = *registry_->Get("square", 1);
  std::vector<float> state(m->model->state_size(), 0.0f);
  std::vector<float> all = {0.5f, -1.0f, 0.25f, 2.0f, 1.0f, 1.0f};
  std::vector<float> out(6);
  model::Workspace ws;
  ASSERT_TRUE(
      m->model->RunChunk(all.data(), 3, state.data(), out.data(), ws).ok());
  EXPECT_EQ((*after->value)->outputs,
            std::vector<float>(out.begin() + 4, out.end()));
  EXPECT_EQ(Export("s").next_step, 3);
}

TEST_F(ForecastCoreTest, Refusals) {
  auto* none = PostForecast("nope", 3);
  EXPECT_EQ(none->value->status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Create("", "t", "tiny", 1, {}).ok());
  auto* tiny = PostForecast("t", 3);
  EXPECT_EQ(tiny->value->status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(tiny->value->status().message(), HasSubstr("cannot forecast"));
  auto* noisy = PostForecast("s", 3, 2);
  EXPECT_EQ(noisy->value->status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto* far = PostForecast("s", 5000);
  EXPECT_EQ(far->value->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(core_->queued_steps(), 0);
  core_->BeginShutdown();
  auto* late = PostForecast("s", 3);
  EXPECT_EQ(late->value->status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ForecastCoreTest, RunsBeforeACloseQueuedBehindIt) {
  Post("s", {0.5f, -1.0f});
  auto* f = PostForecast("s", 9);
  Result<absl::Status> closed;
  core_->CloseSession("", "s", closed.Callback());
  Run();
  ASSERT_TRUE(f->value.has_value());
  // The forecast was posted before the close: it ran first.
  EXPECT_TRUE(f->value->ok()) << f->value->status();
  EXPECT_TRUE(closed.value->ok());
  EXPECT_EQ(core_->queued_steps(), 0);
}

}  // namespace
}  // namespace lstmserve::server
