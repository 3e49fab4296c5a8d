// Request validation in the gRPC-free core (server/core/validation.h), on
// structured inputs drawn from the fuzzer's bytes (FuzzedDataProvider):
// session ids, model names, chunks (MakeChunk), forecasts, snapshots and
// the expected-step payload, under limits within their flags' ranges.
// Besides not crashing: a quoted string stays short, an accepted chunk holds
// what it was given, and the expected step reads back.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/core/validation.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lstmserve;
using server::kMaxQuotedChars;

namespace {

std::vector<float> Floats(FuzzedDataProvider& in, size_t max) {
  std::vector<float> v(in.ConsumeIntegralInRange<size_t>(0, max));
  for (float& x : v) {
    switch (in.ConsumeIntegralInRange(0, 3)) {
      case 0:
        x = in.ConsumeFloatingPoint<float>();
        break;
      case 1:
        x = NAN;
        break;
      case 2:
        x = INFINITY;
        break;
      default:
        x = static_cast<float>(in.ConsumeIntegral<int8_t>());
    }
  }
  return v;
}

int64_t Step(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 2)) {
    case 0:
      return in.ConsumeIntegral<int64_t>();
    case 1:
      return server::kMaxStepIndex - in.ConsumeIntegralInRange<int64_t>(-2, 2);
    default:
      return in.ConsumeIntegralInRange<int64_t>(-2, 64);
  }
}

server::RequestLimits Limits(FuzzedDataProvider& in) {
  server::RequestLimits l;
  if (in.ConsumeBool()) {
    l.max_steps_per_request = in.ConsumeIntegralInRange(1, 1 << 20);
    l.allow_non_finite = in.ConsumeBool();
    l.max_replay_chunks = in.ConsumeIntegralInRange(0, 1024);
    l.max_explain_values = in.ConsumeIntegralInRange<int64_t>(1, 1 << 30);
    l.max_forecast_horizon = in.ConsumeIntegralInRange(1, 1 << 20);
    l.max_forecast_samples = in.ConsumeIntegralInRange(0, 4096);
    l.max_forecast_values = in.ConsumeIntegralInRange<int64_t>(1, 1 << 30);
  }
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const server::LoadedModel& tiny = fuzz::TinyModel();
  const server::RequestLimits limits = Limits(in);

  const std::string id = in.ConsumeRandomLengthString(300);
  const std::string quoted = server::Quote(id);
  // Every byte escapes to at most 4 characters, plus quotes and the note.
  fuzz::Check(quoted.size() <= 4 * kMaxQuotedChars + 64,
              "a quoted string stays short");
  (void)server::ValidateSessionId(id);
  (void)server::ValidateModelName(in.ConsumeRandomLengthString(300));

  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: {  // a chunk of steps
      std::vector<int64_t> shape(in.ConsumeIntegralInRange<size_t>(0, 12));
      for (int64_t& d : shape) {
        d = in.ConsumeBool() ? in.ConsumeIntegralInRange<int64_t>(-1, 8)
                             : in.ConsumeIntegral<int64_t>();
      }
      std::optional<int64_t> first_step;
      if (in.ConsumeBool()) first_step = Step(in);
      const bool explain = in.ConsumeBool();
      const std::vector<float> values = Floats(in, 64);
      auto chunk =
          server::MakeChunk(shape, values, first_step, explain, tiny, limits);
      if (chunk.ok()) {
        fuzz::Check(
            chunk->steps >= 1 &&
                chunk->inputs.size() == static_cast<size_t>(chunk->steps) *
                                            tiny.model->input_size() &&
                chunk->inputs.size() == values.size(),
            "an accepted chunk holds its steps' inputs");
      }
      break;
    }
    case 1: {  // a forecast
      server::ForecastSpec spec;
      spec.horizon = in.ConsumeIntegral<int>();
      spec.samples = in.ConsumeIntegral<int>();
      spec.seed = in.ConsumeIntegral<uint64_t>();
      (void)server::ValidateForecast(spec, tiny, limits);
      break;
    }
    case 2: {  // a snapshot to import or restore
      server::SessionSnapshot snap;
      snap.id = id;
      snap.model = tiny.name;
      snap.version = tiny.version;
      snap.next_step = Step(in);
      snap.state = in.ConsumeBool()
                       ? std::vector<float>(tiny.model->state_size(), 0.25f)
                       : Floats(in, 32);
      const size_t chunks = in.ConsumeIntegralInRange<size_t>(0, 10);
      for (size_t k = 0; k < chunks; ++k) {
        server::ReplayChunk c;
        c.first_step = Step(in);
        c.steps = in.ConsumeBool() ? in.ConsumeIntegralInRange(-1, 4)
                                   : in.ConsumeIntegral<int>();
        c.inputs = Floats(in, 16);
        c.outputs = Floats(in, 16);
        snap.replay.push_back(std::move(c));
      }
      (void)server::ValidateSnapshot(snap, tiny, limits);
      break;
    }
    default: {  // the expected step carried by a FAILED_PRECONDITION
      const int64_t step = in.ConsumeIntegral<int64_t>();
      const absl::Status s = server::WithExpectedStep(
          absl::FailedPreconditionError(in.ConsumeRandomLengthString(64)),
          step);
      fuzz::Check(server::ExpectedStepOf(s) == step,
                  "the expected step reads back");
      (void)server::ValidateState(Floats(in, 32), tiny.model->state_size(),
                                  "state");
    }
  }
  return 0;
}
