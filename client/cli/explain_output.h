// lstm-client's output of explain records and gate summaries, in the same
// formats as `lstm-model run --explain` and `--gate-summary`, so that
// tools/plot_gates.py draws either (docs/INTERPRETABILITY.md).
//
// Thread-safety: pure functions writing to the stream they are given.
#pragma once

#include <ostream>
#include <vector>

#include "lstmserve/client.h"
#include "nlohmann/json.hpp"

namespace lstmserve::client::cli {

// "step,l<layer>.<field>.<unit>,..." for a model's explain record.
void WriteExplainHeader(const std::vector<ExplainFieldInfo>& fields,
                        std::ostream& out);

// One CSV row per step of `result`: its step index, then every field's
// values for that step, in the header's order.
void WriteExplainRows(const StepResult& result, std::ostream& out);

// "gate summary over N steps:" and a line per layer; a note when no step
// was explained.
void WriteGateSummary(const SessionInfo& session, std::ostream& out);

// {"explained_steps": N, "layers": [{"layer", "units", "mean_forget",
// "memory_horizon_steps", "gates": [{"name", "mean", "saturation"}]}]}.
nlohmann::json GateSummaryJson(const SessionInfo& session);

}  // namespace lstmserve::client::cli
