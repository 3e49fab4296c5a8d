#include "server/core/validation.h"

#include <cmath>

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lstmserve::server {
namespace {

std::string ShapeString(std::span<const int64_t> shape) {
  // A hostile shape may have thousands of dimensions; show the first few.
  constexpr size_t kMaxDims = 8;
  std::string s = absl::StrCat(
      "[", absl::StrJoin(shape.first(std::min(shape.size(), kMaxDims)), ", "));
  if (shape.size() > kMaxDims) {
    absl::StrAppend(&s, ", ... (", shape.size(), " dimensions)");
  }
  return s + "]";
}

absl::Status CheckFinite(std::span<const float> values, int width,
                         absl::string_view what) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "[", i / width, ", ", i % width, "] is ", values[i], "; ", what,
          " must be finite (one NaN would poison the session's state)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string Quote(absl::string_view s) {
  if (s.size() <= kMaxQuotedChars) {
    return absl::StrCat("\"", absl::CHexEscape(s), "\"");
  }
  return absl::StrCat("\"", absl::CHexEscape(s.substr(0, kMaxQuotedChars)),
                      "...\" (", s.size(), " bytes)");
}

absl::Status ValidateSessionId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxSessionIdChars) {
    return absl::InvalidArgumentError(
        absl::StrCat("session id has ", id.size(),
                     " characters; expected 1 to ", kMaxSessionIdChars));
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == ':' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("session id ", Quote(id),
                       " has a character outside [A-Za-z0-9._:-]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Chunk> MakeChunk(std::span<const int64_t> shape,
                                std::span<const float> values,
                                std::optional<int64_t> first_step, bool explain,
                                const LoadedModel& model,
                                const RequestLimits& limits) {
  const int width = model.model->input_size();
  if (shape.size() != 2 || shape[1] != width || shape[0] < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("inputs has shape ", ShapeString(shape), "; model ",
                     Quote(model.name), " expects [T, ", width, "]"));
  }
  const int64_t steps = shape[0];
  if (steps == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("inputs has no steps (shape ", ShapeString(shape),
                     "); expected at least one"));
  }
  if (steps > limits.max_steps_per_request) {
    return absl::InvalidArgumentError(absl::StrCat(
        "inputs has ", steps, " steps; at most ", limits.max_steps_per_request,
        " per request (--max-steps-per-request)"));
  }
  if (static_cast<int64_t>(values.size()) != steps * width) {
    return absl::InvalidArgumentError(
        absl::StrCat("inputs has shape ", ShapeString(shape), " but ",
                     values.size(), " values; expected ", steps * width));
  }
  if (first_step && (*first_step < 0 || *first_step > kMaxStepIndex)) {
    return absl::InvalidArgumentError(
        absl::StrCat("first_step is ", *first_step, "; expected 0 to 2^62"));
  }
  if (explain &&
      steps * model.model->explain_size() > limits.max_explain_values) {
    return absl::InvalidArgumentError(
        absl::StrCat("explain: ", steps, " steps of model ", Quote(model.name),
                     " take ", steps * model.model->explain_size(), " values (",
                     model.model->explain_size(), " a step); at most ",
                     limits.max_explain_values,
                     " per response (--max-explain-values); send at most ",
                     limits.max_explain_values / model.model->explain_size(),
                     " steps a chunk"));
  }
  if (!limits.allow_non_finite) {
    if (absl::Status s = CheckFinite(values, width, "inputs"); !s.ok()) {
      return s;
    }
  }
  Chunk chunk;
  chunk.steps = static_cast<int>(steps);
  chunk.inputs.assign(values.begin(), values.end());
  chunk.first_step = first_step;
  chunk.explain = explain;
  return chunk;
}

absl::Status ValidateState(std::span<const float> state, int expected,
                           absl::string_view what) {
  if (static_cast<int64_t>(state.size()) != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", state.size(),
                     " floats; the model's state has ", expected));
  }
  for (size_t i = 0; i < state.size(); ++i) {
    if (!std::isfinite(state[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "[", i, "] is not finite; a state must be finite"));
    }
  }
  return absl::OkStatus();
}

namespace {

// ValidateSnapshot's checks, on the fields a snapshot and a stored record
// share.
absl::Status ValidateSessionFields(std::span<const float> state,
                                   int64_t next_step,
                                   std::span<const ReplayChunk> replay,
                                   const LoadedModel& model,
                                   const RequestLimits& limits) {
  const model::Model& m = *model.model;
  if (absl::Status s = ValidateState(state, m.state_size(), "snapshot state");
      !s.ok()) {
    return s;
  }
  if (next_step < 0 || next_step > kMaxStepIndex) {
    return absl::InvalidArgumentError(absl::StrCat(
        "snapshot next_step is ", next_step, "; expected 0 to 2^62"));
  }
  if (static_cast<int64_t>(replay.size()) > limits.max_replay_chunks) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot holds ", replay.size(),
                     " replayable chunks; this server keeps at most ",
                     limits.max_replay_chunks, " (--max-replay-chunks)"));
  }
  // Walk back from next_step: the chunks must tile the steps before it.
  int64_t end = next_step;
  for (size_t k = replay.size(); k-- > 0;) {
    const ReplayChunk& c = replay[k];
    const auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(
          "snapshot replay chunk ", k, " (", c.steps, " steps from step ",
          c.first_step, ", ", c.inputs.size(), " input and ", c.outputs.size(),
          " output floats) is inconsistent: ", why));
    };
    if (c.steps < 1 || c.steps > limits.max_steps_per_request) {
      return bad(absl::StrCat("expected 1 to ", limits.max_steps_per_request,
                              " steps"));
    }
    if (c.inputs.size() != static_cast<size_t>(c.steps) * m.input_size() ||
        c.outputs.size() != static_cast<size_t>(c.steps) * m.output_size()) {
      return bad(absl::StrCat("expected ", m.input_size(), " inputs and ",
                              m.output_size(), " outputs per step"));
    }
    if (c.first_step != end - c.steps || c.first_step < 0) {
      return bad(absl::StrCat("expected it to end at step ", end,
                              " (the chunks end at next_step, in order)"));
    }
    if (absl::Status s =
            CheckFinite(c.inputs, m.input_size(), "snapshot replay inputs");
        !s.ok() && !limits.allow_non_finite) {
      return s;
    }
    end = c.first_step;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSnapshot(const SessionSnapshot& snap,
                              const LoadedModel& model,
                              const RequestLimits& limits) {
  return ValidateSessionFields(snap.state, snap.next_step, snap.replay, model,
                               limits);
}

absl::Status ValidateRecord(const SessionRecord& record,
                            const LoadedModel& model,
                            const RequestLimits& limits) {
  if (absl::Status s = ValidateSessionId(record.id); !s.ok()) return s;
  if (absl::Status s = ValidateSessionFields(record.state, record.next_step,
                                             record.replay, model, limits);
      !s.ok()) {
    return s;
  }
  if (record.initial_state.empty()) return absl::OkStatus();
  return ValidateState(record.initial_state, model.model->state_size(),
                       "initial_state");
}

absl::Status ValidateModelName(absl::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == ".." ||
      name.find('/') != absl::string_view::npos ||
      name.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("model name ", Quote(name),
                     " is not a repository directory name (1 to 255 bytes, "
                     "no '/', not \".\" or \"..\")"));
  }
  return absl::OkStatus();
}

namespace {
constexpr absl::string_view kExpectedStepPayload =
    "type.lstmserve.dev/expected_step";
}  // namespace

absl::Status WithExpectedStep(absl::Status status, int64_t expected) {
  status.SetPayload(kExpectedStepPayload, absl::Cord(absl::StrCat(expected)));
  return status;
}

std::optional<int64_t> ExpectedStepOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kExpectedStepPayload);
  int64_t step = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &step)) {
    return std::nullopt;
  }
  return step;
}

absl::Status ValidateForecast(const ForecastSpec& spec,
                              const LoadedModel& model,
                              const RequestLimits& limits) {
  if (spec.horizon < 1 || spec.horizon > limits.max_forecast_horizon) {
    return absl::InvalidArgumentError(
        absl::StrCat("horizon is ", spec.horizon, "; expected 1 to ",
                     limits.max_forecast_horizon, " (--max-forecast-horizon)"));
  }
  if (spec.samples < 0 || spec.samples > limits.max_forecast_samples) {
    return absl::InvalidArgumentError(
        absl::StrCat("samples is ", spec.samples, "; expected 0 to ",
                     limits.max_forecast_samples, " (--max-forecast-samples)"));
  }
  const int64_t out = model.model->output_size();
  const int64_t values = int64_t{spec.horizon} * (spec.samples + 1) * out;
  if (values > limits.max_forecast_values) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a forecast of horizon ", spec.horizon, " with ", spec.samples,
        " samples of model ", Quote(model.name), " (", out,
        " outputs a step) is ", values, " values; expected at most ",
        limits.max_forecast_values, " (--max-forecast-values): horizon x (",
        "samples + 1) x outputs"));
  }
  return absl::OkStatus();
}

}  // namespace lstmserve::server
