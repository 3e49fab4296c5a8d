#include "model/explain.h"

#include <cmath>
#include <limits>

namespace lstmserve::model {

GateSummary::GateSummary(const Model& model)
    : explain_size_(model.explain_size()),
      num_layers_(model.config().num_layers),
      cell_(model.config().cell),
      hidden_size_(model.config().hidden_size) {
  for (const ExplainField& f : model.explain_layout()) {
    if (f.name == "c" || f.name == "h") continue;
    Accumulator a;
    a.layer = f.layer;
    a.name = f.name;
    a.tanh = f.name == "g" || f.name == "n";
    a.offset = f.offset;
    a.size = f.size;
    gates_.push_back(a);
  }
}

void GateSummary::Add(const float* records, int steps) {
  for (int t = 0; t < steps; ++t) {
    const float* record = records + static_cast<size_t>(t) * explain_size_;
    for (Accumulator& a : gates_) {
      const float* v = record + a.offset;
      double sum = 0;
      int64_t saturated = 0;
      if (a.tanh) {
        for (int u = 0; u < a.size; ++u) {
          sum += v[u];
          saturated += std::abs(v[u]) > 0.95f;
        }
      } else {
        for (int u = 0; u < a.size; ++u) {
          sum += v[u];
          saturated += (v[u] < 0.05f) | (v[u] > 0.95f);
        }
      }
      a.sum += sum;
      a.saturated += saturated;
    }
  }
  steps_ += steps;
}

void GateSummary::Merge(const GateSummary& other) {
  for (size_t i = 0; i < gates_.size() && i < other.gates_.size(); ++i) {
    gates_[i].sum += other.gates_[i].sum;
    gates_[i].saturated += other.gates_[i].saturated;
  }
  steps_ += other.steps_;
}

void GateSummary::Reset() {
  for (Accumulator& a : gates_) {
    a.sum = 0;
    a.saturated = 0;
  }
  steps_ = 0;
}

std::vector<GateSummary::Layer> GateSummary::Layers() const {
  std::vector<Layer> layers(num_layers_);
  for (int l = 0; l < num_layers_; ++l) {
    layers[l].layer = l;
    layers[l].units = hidden_size_;
  }
  // The gate whose mean is the share of memory kept: LSTM f, GRU z.
  const char* keep = cell_ == CellType::kLstm  ? "f"
                     : cell_ == CellType::kGru ? "z"
                                               : nullptr;
  for (const Accumulator& a : gates_) {
    const double n = static_cast<double>(steps_) * a.size;
    Gate g;
    g.name = a.name;
    g.tanh = a.tanh;
    g.mean = n > 0 ? a.sum / n : 0.0;
    g.saturation = n > 0 ? static_cast<double>(a.saturated) / n : 0.0;
    Layer& layer = layers[a.layer];
    if (keep && a.name == keep && steps_ > 0) {
      layer.mean_forget = g.mean;
      layer.memory_horizon = g.mean >= 1.0
                                 ? std::numeric_limits<double>::infinity()
                                 : 1.0 / (1.0 - g.mean);
    }
    layer.gates.push_back(std::move(g));
  }
  return layers;
}

}  // namespace lstmserve::model
