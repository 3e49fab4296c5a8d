// Running per-layer summaries of explain records (Model::explain_layout):
// what the gates of a recurrent network did over a session, in a few
// numbers per layer (docs/INTERPRETABILITY.md):
//
// - mean forget activation: LSTM, the mean of the forget gate f over units
//   and steps; GRU, the mean of the update gate z, which in PyTorch's
//   convention h' = (1 - z) * n + z * h is the share of h kept (the
//   forget gate's role; with the opposite convention, h' = z * n +
//   (1 - z) * h, that share is 1 - z). None for the plain RNN.
// - memory horizon: 1 / (1 - mean forget) steps, the mean time a unit's
//   memory lasts if it decays by that factor each step (a geometric
//   lifetime); +infinity when the mean is 1.
// - each gate's mean activation and saturation rate: the share of
//   activations that are saturated, below 0.05 or above 0.95 for the
//   sigmoid gates (LSTM i, f, o; GRU r, z) and beyond +-0.95 for the tanh
//   candidates (LSTM g, GRU n), whose range is [-1, 1].
//
// Memory: a few numbers per gate and layer, whatever the session length.
// Thread-compatible: one GateSummary per session (or per caller); no
// internal locking. Copyable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"

namespace lstmserve::model {

class GateSummary {
 public:
  struct Gate {
    std::string name;       // "i", "f", "g", "o", "r", "z", "n"
    bool tanh = false;      // a tanh candidate (g, n), else a sigmoid gate
    double mean = 0;        // mean activation over units and steps
    double saturation = 0;  // share saturated (see above)
  };
  struct Layer {
    int layer = 0;
    int units = 0;  // hidden_size
    // LSTM: mean f; GRU: mean z; nullopt for RNN (no gates) and before the
    // first step.
    std::optional<double> mean_forget;
    // 1 / (1 - mean_forget) steps (+infinity at 1); nullopt with it.
    std::optional<double> memory_horizon;
    std::vector<Gate> gates;  // in record order
  };

  // Summarizes records laid out as `model` writes them. The model need not
  // outlive the summary.
  explicit GateSummary(const Model& model);

  // Adds `steps` whole records, one after another (steps x
  // model.explain_size() floats), as RunBatch writes them.
  void Add(const float* records, int steps);
  // Adds another summary of the same model's records.
  void Merge(const GateSummary& other);
  // Forgets everything added.
  void Reset();

  // Records added so far.
  int64_t steps() const { return steps_; }
  // The summary of what was added (means are 0 before the first step).
  std::vector<Layer> Layers() const;

 private:
  struct Accumulator {
    int layer = 0;
    std::string name;
    bool tanh = false;
    int offset = 0;
    int size = 0;
    double sum = 0;
    int64_t saturated = 0;
  };
  int explain_size_ = 0;
  int num_layers_ = 0;
  CellType cell_ = CellType::kLstm;
  int hidden_size_ = 0;
  int64_t steps_ = 0;
  std::vector<Accumulator> gates_;
};

}  // namespace lstmserve::model
