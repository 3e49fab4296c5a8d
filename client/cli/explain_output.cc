#include "client/cli/explain_output.h"

#include <cmath>
#include <span>

#include "absl/strings/str_format.h"
#include "client/cli/csv.h"

namespace lstmserve::client::cli {

void WriteExplainHeader(const std::vector<ExplainFieldInfo>& fields,
                        std::ostream& out) {
  out << "step";
  for (const ExplainFieldInfo& f : fields) {
    for (int u = 0; u < f.units; ++u) {
      out << ",l" << f.layer << '.' << f.name << '.' << u;
    }
  }
  out << '\n';
}

void WriteExplainRows(const StepResult& result, std::ostream& out) {
  for (int s = 0; s < result.steps; ++s) {
    out << result.first_step + s;
    for (const ExplainField& f : result.explain) {
      out << ','
          << FormatCsvRow(std::span<const float>(
                 f.values.data() + static_cast<size_t>(s) * f.units,
                 static_cast<size_t>(f.units)));
    }
    out << '\n';
  }
}

void WriteGateSummary(const SessionInfo& session, std::ostream& out) {
  if (session.explained_steps == 0) {
    out << "gate summary: no step of session \"" << session.session_id
        << "\" ran with explain\n";
    return;
  }
  out << absl::StrFormat("gate summary over %d steps:\n",
                         session.explained_steps);
  for (const LayerGateSummary& l : session.gate_summary) {
    out << "  layer " << l.layer << ":";
    if (l.mean_forget && l.memory_horizon_steps) {
      out << absl::StrFormat(" mean forget %.4f, memory horizon %.1f steps;",
                             *l.mean_forget, *l.memory_horizon_steps);
    }
    for (const GateStats& g : l.gates) {
      out << absl::StrFormat(" %s mean %.3f saturated %.1f%%", g.name, g.mean,
                             100 * g.saturation);
    }
    if (l.gates.empty()) out << " no gates (RNN)";
    out << '\n';
  }
}

nlohmann::json GateSummaryJson(const SessionInfo& session) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerGateSummary& l : session.gate_summary) {
    nlohmann::json layer{{"layer", l.layer}, {"units", l.units}};
    if (l.mean_forget) layer["mean_forget"] = *l.mean_forget;
    if (l.memory_horizon_steps) {
      // JSON has no infinity: a horizon without end is null.
      layer["memory_horizon_steps"] =
          std::isfinite(*l.memory_horizon_steps)
              ? nlohmann::json(*l.memory_horizon_steps)
              : nlohmann::json(nullptr);
    }
    nlohmann::json gates = nlohmann::json::array();
    for (const GateStats& g : l.gates) {
      gates.push_back(
          {{"name", g.name}, {"mean", g.mean}, {"saturation", g.saturation}});
    }
    layer["gates"] = std::move(gates);
    layers.push_back(std::move(layer));
  }
  return {{"explained_steps", session.explained_steps},
          {"layers", std::move(layers)}};
}

}  // namespace lstmserve::client::cli
