#include "model/onnx/recurrent_node.h"

#include <cmath>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "onnx/onnx.pb.h"

namespace lstmserve::model::onnx_import {
namespace {

using onnx::AttributeProto;

absl::Status Error(const std::string& what, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", message));
}

// ONNX activation names (case-insensitive, as ONNX Runtime reads them) to
// the engine's RNN nonlinearities.
struct NamedNonlinearity {
  const char* onnx;
  Nonlinearity nonlinearity;
};
constexpr NamedNonlinearity kOnnxActivations[] = {
    {"tanh", Nonlinearity::kTanh},
    {"relu", Nonlinearity::kRelu},
    {"sigmoid", Nonlinearity::kSigmoid},
    {"affine", Nonlinearity::kAffine},
    {"leakyrelu", Nonlinearity::kLeakyRelu},
    {"thresholdedrelu", Nonlinearity::kThresholdedRelu},
    {"scaledtanh", Nonlinearity::kScaledTanh},
    {"hardsigmoid", Nonlinearity::kHardSigmoid},
    {"elu", Nonlinearity::kElu},
    {"softsign", Nonlinearity::kSoftsign},
    {"softplus", Nonlinearity::kSoftplus},
};

// Row blocks of H rows, ONNX gate order -> lstmserve's: LSTM i,o,f,c ->
// i,f,g,o; GRU z,r,h -> r,z,n. Entry k is the ONNX block lstmserve block k
// comes from.
std::vector<int> GateOrder(CellType cell) {
  switch (cell) {
    case CellType::kLstm:
      return {0, 2, 3, 1};
    case CellType::kGru:
      return {1, 0, 2};
    case CellType::kRnn:
      return {0};
  }
  return {};
}

// Rows [offset, offset + G*H) of a [.., cols] float constant, in lstmserve
// gate order, as a tensor of shape [G*H, cols] (cols 0: a vector).
Tensor Reorder(const ConstTensor& t, int64_t offset, int H, int64_t cols,
               const std::vector<int>& order) {
  Tensor out;
  const int G = static_cast<int>(order.size());
  out.shape = cols ? std::vector<int64_t>{int64_t{G} * H, cols}
                   : std::vector<int64_t>{int64_t{G} * H};
  const int64_t row = cols ? cols : 1;
  for (int g : order) {
    for (int64_t r = 0; r < H; ++r) {
      const int64_t start = offset + (int64_t{g} * H + r) * row;
      for (int64_t c = 0; c < row; ++c) {
        out.values.push_back(static_cast<float>(t.At(start + c)));
      }
    }
  }
  return out;
}

Tensor Zeros(int64_t n) {
  Tensor t;
  t.shape = {n};
  t.values.assign(n, 0.0f);
  return t;
}

std::string ShapeText(const ConstTensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.dims, ", "), "]");
}

}  // namespace

absl::StatusOr<RecurrentLayer> ConvertRecurrentNode(
    const onnx::NodeProto& node, const std::string& what,
    const std::function<const ConstTensor*(int)>& constant) {
  RecurrentLayer layer;
  const std::string& op = node.op_type();
  layer.cell = op == "LSTM"  ? CellType::kLstm
               : op == "GRU" ? CellType::kGru
                             : CellType::kRnn;
  const CellType cell = layer.cell;
  // ONNX's default is linear_before_reset = 0, unlike PyTorch's GRU (which
  // torch.onnx.export always writes as 1).
  layer.gru_linear_before_reset = false;
  const int G = cell == CellType::kLstm ? 4 : cell == CellType::kGru ? 3 : 1;

  // Attributes: every one the operator defines is read; any other is an
  // error rather than silently ignored.
  std::set<std::string> known = {
      "activation_alpha", "activation_beta", "activations", "clip",
      "direction",        "hidden_size",     "layout"};
  if (cell == CellType::kLstm) known.insert("input_forget");
  if (cell == CellType::kGru) known.insert("linear_before_reset");
  int64_t hidden_attr = -1;
  std::vector<std::string> activations;
  std::vector<float> alphas, betas;
  for (const AttributeProto& a : node.attribute()) {
    const std::string& name = a.name();
    if (!known.count(name)) {
      return Error(what, absl::StrCat("attribute ", name, " is not one the ",
                                      op, " operator defines (opsets 7-14)"));
    }
    if (name == "direction") {
      if (a.s() != "forward") {
        return Error(
            what, absl::StrCat("attribute direction is \"", a.s(),
                               "\"; only \"forward\" is supported (the engine "
                               "streams one step at a time, so reverse and "
                               "bidirectional layers cannot run)"));
      }
    } else if (name == "hidden_size") {
      hidden_attr = a.i();
    } else if (name == "layout") {
      if (a.i() != 0 && a.i() != 1) {
        return Error(what, absl::StrCat("attribute layout is ", a.i(),
                                        "; expected 0 or 1"));
      }
      layer.layout = static_cast<int>(a.i());
    } else if (name == "clip") {
      if (!(a.f() > 0) || !std::isfinite(a.f())) {
        return Error(what, absl::StrCat("attribute clip is ", a.f(),
                                        "; expected a finite number > 0"));
      }
      layer.clip = a.f();
    } else if (name == "input_forget") {
      if (a.i() != 0 && a.i() != 1) {
        return Error(what, absl::StrCat("attribute input_forget is ", a.i(),
                                        "; expected 0 or 1"));
      }
      layer.lstm_input_forget = a.i() == 1;
    } else if (name == "linear_before_reset") {
      if (a.i() != 0 && a.i() != 1) {
        return Error(what, absl::StrCat("attribute linear_before_reset is ",
                                        a.i(), "; expected 0 or 1"));
      }
      layer.gru_linear_before_reset = a.i() == 1;
    } else if (name == "activations") {
      activations.assign(a.strings().begin(), a.strings().end());
    } else if (name == "activation_alpha") {
      alphas.assign(a.floats().begin(), a.floats().end());
    } else if (name == "activation_beta") {
      betas.assign(a.floats().begin(), a.floats().end());
    }
  }

  // Activations: LSTM and GRU must use the defaults (f = Sigmoid, g = h =
  // Tanh), which the engine's kernels hard-wire; RNN takes one, with
  // alpha/beta consumed by the functions that read them.
  if (cell != CellType::kRnn) {
    const std::vector<std::string> defaults =
        cell == CellType::kLstm
            ? std::vector<std::string>{"sigmoid", "tanh", "tanh"}
            : std::vector<std::string>{"sigmoid", "tanh"};
    if (!activations.empty()) {
      bool same = activations.size() == defaults.size();
      for (size_t i = 0; same && i < defaults.size(); ++i) {
        same = absl::AsciiStrToLower(activations[i]) == defaults[i];
      }
      if (!same) {
        return Error(
            what, absl::StrCat("attribute activations is [",
                               absl::StrJoin(activations, ", "),
                               "]; only the defaults [",
                               cell == CellType::kLstm ? "Sigmoid, Tanh, Tanh"
                                                       : "Sigmoid, Tanh",
                               "] are supported for ", op));
      }
    }
    if (!alphas.empty() || !betas.empty()) {
      return Error(what, absl::StrCat("attribute activation_",
                                      alphas.empty() ? "beta" : "alpha",
                                      " is given, but the default "
                                      "activations of ",
                                      op, " take no parameters"));
    }
  } else {
    if (activations.size() > 1) {
      return Error(what, absl::StrCat("attribute activations is [",
                                      absl::StrJoin(activations, ", "),
                                      "]; a forward RNN takes one activation"));
    }
    const std::string name =
        activations.empty() ? "tanh" : absl::AsciiStrToLower(activations[0]);
    bool found = false;
    for (const NamedNonlinearity& n : kOnnxActivations) {
      if (name == n.onnx) {
        layer.nonlinearity = n.nonlinearity;
        found = true;
      }
    }
    if (!found) {
      return Error(
          what, absl::StrCat("attribute activations is [", activations[0],
                             "]; expected one of Tanh, Relu, Sigmoid, Affine, "
                             "LeakyRelu, ThresholdedRelu, ScaledTanh, "
                             "HardSigmoid, Elu, Softsign, Softplus"));
    }
    const int params = NonlinearityParams(layer.nonlinearity);
    if (static_cast<int>(alphas.size()) > (params >= 1 ? 1 : 0) ||
        static_cast<int>(betas.size()) > (params >= 2 ? 1 : 0)) {
      return Error(what, absl::StrCat("attributes activation_alpha [",
                                      absl::StrJoin(alphas, ", "),
                                      "] / activation_beta [",
                                      absl::StrJoin(betas, ", "),
                                      "] give more values "
                                      "than activation ",
                                      activations[0], " takes (", params, ")"));
    }
    layer.nonlinearity_alpha =
        alphas.empty() ? NonlinearityDefaultAlpha(layer.nonlinearity)
                       : alphas[0];
    layer.nonlinearity_beta =
        betas.empty() ? NonlinearityDefaultBeta(layer.nonlinearity) : betas[0];
    if (params < 1) layer.nonlinearity_alpha = 0;
    if (params < 2) layer.nonlinearity_beta = 0;
    if (std::isnan(layer.nonlinearity_alpha) ||
        std::isnan(layer.nonlinearity_beta)) {
      return Error(what, absl::StrCat("activation ", activations[0],
                                      " needs activation_alpha and "
                                      "activation_beta; they are missing"));
    }
  }

  // W [1, G*H, in], R [1, G*H, H], B [1, 2*G*H], P [1, 3*H].
  const ConstTensor* W = constant(1);
  const ConstTensor* R = constant(2);
  if (!W || !R) {
    return Error(what, absl::StrCat("input ", W ? "R" : "W",
                                    " is not a constant; expected the weights "
                                    "as graph initializers"));
  }
  if (R->rank() != 3 || R->dims[0] != 1 || R->dims[1] % G != 0 ||
      R->dims[1] != int64_t{G} * R->dims[2]) {
    return Error(what, absl::StrCat("input R has shape ", ShapeText(*R),
                                    "; expected [1, ", G,
                                    "*hidden_size, "
                                    "hidden_size] (num_directions 1)"));
  }
  const int64_t H = R->dims[2];
  if (hidden_attr >= 0 && hidden_attr != H) {
    return Error(what, absl::StrCat("attribute hidden_size is ", hidden_attr,
                                    " but input R has shape ", ShapeText(*R)));
  }
  if (W->rank() != 3 || W->dims[0] != 1 || W->dims[1] != G * H ||
      W->dims[2] < 1) {
    return Error(what, absl::StrCat("input W has shape ", ShapeText(*W),
                                    "; expected [1, ", G * H, ", input_size]"));
  }
  if (W->is_int || R->is_int) {
    return Error(what, "inputs W and R must be floating-point");
  }
  layer.hidden_size = static_cast<int>(H);
  layer.input_size = static_cast<int>(W->dims[2]);
  const std::vector<int> order = GateOrder(cell);
  layer.w_ih = Reorder(*W, 0, layer.hidden_size, W->dims[2], order);
  layer.w_hh = Reorder(*R, 0, layer.hidden_size, H, order);

  const bool b_given = node.input_size() > 3 && !node.input(3).empty();
  if (b_given) {
    const ConstTensor* B = constant(3);
    if (!B) return Error(what, "input B is not a constant initializer");
    if (B->size() != 2 * G * H || B->dims.empty() || B->dims[0] != 1) {
      return Error(what, absl::StrCat("input B has shape ", ShapeText(*B),
                                      "; expected [1, ", 2 * G * H, "]"));
    }
    layer.has_bias = true;
    layer.b_ih = Reorder(*B, 0, layer.hidden_size, 0, order);
    layer.b_hh = Reorder(*B, G * H, layer.hidden_size, 0, order);
  } else {
    layer.b_ih = Zeros(G * H);
    layer.b_hh = Zeros(G * H);
  }

  if (cell == CellType::kLstm) {
    const bool p_given = node.input_size() > 7 && !node.input(7).empty();
    if (p_given) {
      const ConstTensor* P = constant(7);
      if (!P) return Error(what, "input P is not a constant initializer");
      if (P->size() != 3 * H || P->dims.empty() || P->dims[0] != 1) {
        return Error(what, absl::StrCat("input P has shape ", ShapeText(*P),
                                        "; expected [1, ", 3 * H, "]"));
      }
      // ONNX P is (i, o, f); lstmserve stores p_i, p_f, p_o.
      layer.has_peepholes = true;
      layer.peephole = Reorder(*P, 0, layer.hidden_size, 0, {0, 2, 1});
    } else {
      layer.peephole = Zeros(3 * H);
    }
  }
  return layer;
}

}  // namespace lstmserve::model::onnx_import
