#include "server/session.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace lstmserve::server {
namespace {

uint64_t NextSerial() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

absl::Status CheckState(const std::vector<float>& state, int expected,
                        const std::string& what) {
  if (static_cast<int>(state.size()) != expected) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has ", state.size(),
                                                   " floats; the model's state "
                                                   "has ",
                                                   expected));
  }
  for (size_t i = 0; i < state.size(); ++i) {
    if (!std::isfinite(state[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "[", i, "] is not finite; a state must be finite"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Session::Session(std::string id, std::string owner,
                 std::shared_ptr<const LoadedModel> model, absl::Time now)
    : id_(std::move(id)),
      serial_(NextSerial()),
      owner_(std::move(owner)),
      model_(std::move(model)),
      created_(now),
      last_used_(now) {}

absl::StatusOr<std::shared_ptr<Session>> Session::Create(
    std::string id, std::string owner, std::shared_ptr<const LoadedModel> model,
    std::vector<float> initial_state, absl::Time now) {
  const int size = model->model->state_size();
  if (initial_state.empty()) {
    initial_state.assign(size, 0.0f);
  } else if (absl::Status s = CheckState(initial_state, size, "initial_state");
             !s.ok()) {
    return s;
  }
  auto session = std::shared_ptr<Session>(
      new Session(std::move(id), std::move(owner), std::move(model), now));
  absl::MutexLock lock(&session->mu_);
  session->state_ = initial_state;
  session->initial_state_ = std::move(initial_state);
  return session;
}

absl::StatusOr<std::shared_ptr<Session>> Session::FromSnapshot(
    const SessionSnapshot& snap, std::string owner,
    std::shared_ptr<const LoadedModel> model, absl::Time now) {
  const model::Model& m = *model->model;
  if (absl::Status s = CheckState(snap.state, m.state_size(), "snapshot state");
      !s.ok()) {
    return s;
  }
  if (snap.next_step < 0) {
    return absl::InvalidArgumentError("snapshot next_step is negative");
  }
  if (snap.last_steps < 0 ||
      snap.last_inputs.size() !=
          static_cast<size_t>(snap.last_steps) * m.input_size() ||
      snap.last_outputs.size() !=
          static_cast<size_t>(snap.last_steps) * m.output_size() ||
      (snap.last_steps > 0 &&
       snap.last_first_step + snap.last_steps != snap.next_step)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "snapshot's last chunk is inconsistent: ", snap.last_steps,
        " steps from step ", snap.last_first_step, " with ",
        snap.last_inputs.size(), " input and ", snap.last_outputs.size(),
        " output floats, next_step ", snap.next_step));
  }
  auto session = std::shared_ptr<Session>(
      new Session(snap.id, std::move(owner), std::move(model), now));
  absl::MutexLock lock(&session->mu_);
  session->state_ = snap.state;
  // A reset returns to the zero state: the snapshot's origin is unknown.
  session->initial_state_.assign(m.state_size(), 0.0f);
  session->next_step_ = snap.next_step;
  session->last_first_step_ = snap.last_first_step;
  session->last_steps_ = snap.last_steps;
  session->last_inputs_ = snap.last_inputs;
  session->last_outputs_ = snap.last_outputs;
  return session;
}

std::optional<absl::StatusOr<ChunkResult>> Session::CheckChunk(
    const Chunk& chunk) const {
  if (!chunk.first_step || *chunk.first_step == next_step_) {
    return std::nullopt;  // run it
  }
  const bool exact_retry =
      last_steps_ > 0 && *chunk.first_step == last_first_step_ &&
      chunk.steps == last_steps_ && chunk.inputs == last_inputs_;
  if (!exact_retry) {
    return absl::FailedPreconditionError(absl::StrCat(
        "chunk starts at step ", *chunk.first_step, " but session \"", id_,
        "\" expects step ", next_step_,
        *chunk.first_step == last_first_step_ && last_steps_ > 0
            ? " (a retry of the last chunk must repeat its inputs exactly)"
            : ""));
  }
  ChunkResult result;
  result.steps = chunk.steps;
  result.output_size = model_->model->output_size();
  result.outputs = last_outputs_;
  result.next_step = next_step_;
  result.replayed = true;
  return result;
}

void Session::CommitChunk(const Chunk& chunk,
                          const std::vector<float>& outputs) {
  last_first_step_ = next_step_;
  last_steps_ = chunk.steps;
  last_inputs_ = chunk.inputs;
  last_outputs_ = outputs;
  next_step_ += chunk.steps;
}

absl::StatusOr<ChunkResult> Session::Apply(const Chunk& chunk,
                                           model::Workspace& workspace,
                                           absl::Time now) {
  return std::move(ApplyBatch({this}, {&chunk}, workspace, now)[0]);
}

std::vector<absl::StatusOr<ChunkResult>> Session::ApplyBatch(
    const std::vector<Session*>& sessions,
    const std::vector<const Chunk*>& chunks, model::Workspace& workspace,
    absl::Time now) {
  const size_t n = sessions.size();
  std::vector<absl::StatusOr<ChunkResult>> results(
      n, absl::InternalError("not run"));
  if (n == 0) return results;
  const model::Model& m = *sessions[0]->model_->model;
  const size_t state_size = m.state_size();

  // 1. Under each session's own lock in turn: the exactly-once decision,
  //    and a copy of the state for the chunks that run. The engine then
  //    runs on the copies with no lock held, so readers (GetSession,
  //    ExportSession) never wait for compute and no thread ever holds two
  //    session locks.
  std::vector<float> states;
  std::vector<size_t> ran;
  std::vector<uint64_t> generations;
  // Sized once: growing `states` a session at a time reallocated and copied
  // it about log2(n) times per batch.
  states.reserve(n * state_size);
  ran.reserve(n);
  generations.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Session* s = sessions[i];
    if (s->model_ != sessions[0]->model_) {
      results[i] = absl::InternalError("batched sessions of different models");
      continue;
    }
    absl::MutexLock lock(&s->mu_);
    s->last_used_ = now;
    if (auto decided = s->CheckChunk(*chunks[i])) {
      results[i] = *std::move(decided);
      continue;
    }
    states.insert(states.end(), s->state_.begin(), s->state_.end());
    generations.push_back(s->generation_);
    ran.push_back(i);
  }

  // 2. One engine call for every chunk that runs.
  std::vector<model::SequenceRef> refs;
  refs.reserve(ran.size());
  for (size_t k = 0; k < ran.size(); ++k) {
    const size_t i = ran[k];
    ChunkResult r;
    r.steps = chunks[i]->steps;
    r.output_size = m.output_size();
    r.outputs.resize(static_cast<size_t>(r.steps) * m.output_size());
    results[i] = std::move(r);
    refs.push_back(model::SequenceRef{
        chunks[i]->inputs.data(), chunks[i]->steps,
        states.data() + k * state_size, results[i]->outputs.data()});
  }
  const absl::Status status = m.RunBatch(refs, workspace);

  // 3. Under each lock again: store the new state and advance, unless the
  //    session was reset meanwhile (then the chunk ran on a state that no
  //    longer exists, and is not applied).
  for (size_t k = 0; k < ran.size(); ++k) {
    const size_t i = ran[k];
    Session* s = sessions[i];
    if (!status.ok()) {
      results[i] = status;
      continue;
    }
    absl::MutexLock lock(&s->mu_);
    if (s->generation_ != generations[k]) {
      results[i] = absl::AbortedError(
          absl::StrCat("session \"", s->id_,
                       "\" was reset while this chunk ran; it was "
                       "not applied (the session is at step ",
                       s->next_step_, ")"));
      continue;
    }
    std::copy(states.begin() + k * state_size,
              states.begin() + (k + 1) * state_size, s->state_.begin());
    s->CommitChunk(*chunks[i], results[i]->outputs);
    results[i]->next_step = s->next_step_;
  }
  return results;
}

void Session::Reset(absl::Time now) {
  absl::MutexLock lock(&mu_);
  ++generation_;
  state_ = initial_state_;
  next_step_ = 0;
  last_steps_ = 0;
  last_first_step_ = 0;
  last_inputs_.clear();
  last_outputs_.clear();
  last_used_ = now;
}

void Session::Touch(absl::Time now) {
  absl::MutexLock lock(&mu_);
  last_used_ = now;
}

absl::Time Session::last_used() const {
  absl::MutexLock lock(&mu_);
  return last_used_;
}

SessionInfo Session::Info() const {
  absl::MutexLock lock(&mu_);
  SessionInfo info;
  info.id = id_;
  info.model = model_->name;
  info.version = model_->version;
  info.next_step = next_step_;
  info.created = created_;
  info.last_used = last_used_;
  info.state_size = model_->model->state_size();
  return info;
}

SessionSnapshot Session::Snapshot() const {
  absl::MutexLock lock(&mu_);
  SessionSnapshot snap;
  snap.id = id_;
  snap.model = model_->name;
  snap.version = model_->version;
  snap.next_step = next_step_;
  snap.state = state_;
  snap.last_first_step = last_first_step_;
  snap.last_steps = last_steps_;
  snap.last_inputs = last_inputs_;
  snap.last_outputs = last_outputs_;
  return snap;
}

}  // namespace lstmserve::server
