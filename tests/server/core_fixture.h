// The core's test fixture: a SessionManager over small random models, with
// no worker threads (the test runs the work with Run()) and a FakeClock.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/session_manager.h"
#include "server/test_models.h"

namespace lstmserve::server {

template <typename T>
struct Result {
  std::optional<T> value;
  auto Callback() {
    return [this](T v) { value = std::move(v); };
  }
};

class CoreTest : public testing::Test {
 protected:
  void Start(CoreOptions options = {}) {
    if (!registry_) {
      registry_ = *ModelRegistry::FromModels(
          {TinyLstm("tiny", 1), TinyLstm("tiny", 2), TinyLstm("other", 1)});
    }
    options.threads = 0;  // the test runs the work: RunUntilIdle
    options.batching.max_queue_delay = absl::ZeroDuration();
    options.clock = clock_;
    store_ = options.store;
    core_ = *SessionManager::Create(*registry_, options);
  }

  // Posts a chunk; the result arrives when Run() is called.
  Result<absl::StatusOr<ChunkResult>>* Post(
      absl::string_view id, std::vector<float> inputs,
      std::optional<int64_t> first_step = std::nullopt,
      const std::string& owner = "", absl::string_view model = "",
      bool create = false) {
    auto* r = &results_.emplace_back();
    inputs_.push_back(std::move(inputs));
    shapes_.push_back({static_cast<int64_t>(inputs_.back().size() / 2), 2});
    Caller caller;
    caller.owner = owner;
    ChunkRequest req;
    req.session_id = id;
    req.model = model;
    req.create_if_missing = create;
    req.shape = shapes_.back();
    req.values = inputs_.back();
    req.first_step = first_step;
    core_->SubmitChunk(caller, req, r->Callback());
    return r;
  }
  absl::StatusOr<ChunkResult> Chunk(
      absl::string_view id, std::vector<float> inputs,
      std::optional<int64_t> first = std::nullopt) {
    auto* r = Post(id, std::move(inputs), first);
    Run();
    return *r->value;
  }
  void Run() { core_->pool().RunUntilIdle(); }

  absl::StatusOr<SessionInfo> Create(const std::string& owner,
                                     absl::string_view id,
                                     absl::string_view model, int64_t version,
                                     std::vector<float> initial_state) {
    Result<absl::StatusOr<SessionInfo>> r;
    core_->CreateSession(owner, id, model, version, std::move(initial_state),
                         r.Callback());
    // Without a store the reply is at once; with one, it comes from the
    // writer thread after the commit (FlushStore waits for that).
    if (store_) {
      Run();
      core_->FlushStore().IgnoreError();
    }
    EXPECT_TRUE(r.value.has_value());
    return r.value ? *r.value : absl::InternalError("no reply");
  }
  absl::StatusOr<SessionInfo> Import(const std::string& owner,
                                     SessionSnapshot snap) {
    Result<absl::StatusOr<SessionInfo>> r;
    core_->ImportSession(owner, std::move(snap), r.Callback());
    if (store_) {
      Run();
      core_->FlushStore().IgnoreError();
    }
    EXPECT_TRUE(r.value.has_value());
    return r.value ? *r.value : absl::InternalError("no reply");
  }

  SessionSnapshot Export(absl::string_view id) {
    Result<absl::StatusOr<SessionSnapshot>> r;
    core_->ExportSession("", id, r.Callback());
    Run();
    EXPECT_TRUE(r.value->ok()) << r.value->status();
    return **r.value;
  }

  // What the engine gives for `inputs` from the zero state.
  std::vector<float> Reference(const std::vector<float>& inputs,
                               int64_t version = 1) {
    auto m = *registry_->Get("tiny", version);
    std::vector<float> state(m->model->state_size(), 0.0f);
    std::vector<float> out(inputs.size() / 2 * m->model->output_size());
    model::Workspace ws;
    EXPECT_TRUE(m->model
                    ->RunChunk(inputs.data(), inputs.size() / 2, state.data(),
                               out.data(), ws)
                    .ok());
    return out;
  }

  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::unique_ptr<ModelRegistry> registry_;
  StateStore* store_ = nullptr;  // set by tests with a store
  std::unique_ptr<SessionManager> core_;
  std::deque<Result<absl::StatusOr<ChunkResult>>> results_;
  std::deque<std::vector<float>> inputs_;
  std::deque<std::vector<int64_t>> shapes_;
};

}  // namespace lstmserve::server
