#include "model/onnx/onnx_import.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/file_reader.h"
#include "model/model.h"
#include "model/onnx/const_tensor.h"
#include "model/onnx/recurrent_node.h"
#include "model/repository.h"
#include "model/status_macros.h"
#include "onnx/onnx.pb.h"

namespace lstmserve::model::onnx_import {
namespace {

using onnx::AttributeProto;
using onnx::NodeProto;

constexpr int64_t kMinOpset = 7;
constexpr int64_t kMaxOpset = 14;
constexpr uint64_t kMaxOnnxBytes = 2ull << 30;  // protobuf's own limit

// What one axis of the sequence tensor holds. Labels from kUnbound up are a
// graph input's leading axes, whose roles the first recurrent node that
// reads the input decides (its layout attribute says which is time).
enum Label : int {
  kFeature = 0,
  kOne = 1,  // size 1: an inserted axis, num_directions, the last step
  kTime = 2,
  kBatch = 3,
  kRows = 4,  // time and batch merged by a Reshape
  kUnbound = 16,
};

// A tensor of the graph as far as the import needs to know it.
struct Value {
  enum Kind {
    kConst,  // known values (initializers, Constant, arithmetic on them)
    kZeros,  // all zeros of a shape only known at run time
    kShape,  // integers computed from run-time shapes (Shape, Gather, ...)
    kSeq,    // the sequence tensor flowing through the layers and head
    kState,  // a recurrent node's Y_h / Y_c
  } kind = kConst;
  ConstTensor c;
  std::vector<int> axes;        // kSeq: one label per axis
  int point = 0;                // kSeq: how far along the network it is
  std::string graph_input;      // kSeq: the graph input it is (glue aside)
  bool sliced_unbound = false;  // kSeq: cut on an axis of unknown role
  // kState: the layers whose final h (or c) it stacks along `state_axis`
  // (empty: unknown). The last layer's final h is its last step's output,
  // so picking it out turns the state back into the sequence.
  std::vector<int> layers;
  bool cell_state = false;
  int state_axis = 0;
};

std::string LabelName(int label) {
  switch (label) {
    case kFeature:
      return "features";
    case kOne:
      return "size 1";
    case kTime:
      return "time";
    case kBatch:
      return "batch";
    case kRows:
      return "time x batch";
    default:
      return "unknown";
  }
}

class Importer {
 public:
  explicit Importer(std::string source) : source_(std::move(source)) {}

  absl::StatusOr<ImportedModel> Run(const onnx::ModelProto& model) {
    RETURN_IF_ERROR(CheckOpset(model));
    const onnx::GraphProto& g = model.graph();
    for (const onnx::TensorProto& t : g.initializer()) {
      ASSIGN_OR_RETURN(ConstTensor c,
                       FromProto(t, absl::StrCat(source_, ": initializer '",
                                                 t.name(), "'")));
      Value v;
      v.c = std::move(c);
      values_[t.name()] = std::move(v);
    }
    for (const onnx::ValueInfoProto& in : g.input()) {
      if (values_.count(in.name())) continue;  // IR < 4 lists initializers
      Value v;
      v.kind = Value::kSeq;
      int rank = 3;
      if (in.type().has_tensor_type() && in.type().tensor_type().has_shape()) {
        rank = in.type().tensor_type().shape().dim_size();
      }
      for (int a = 0; a + 1 < rank; ++a) v.axes.push_back(next_unbound_++);
      v.axes.push_back(kFeature);
      v.graph_input = in.name();
      values_[in.name()] = std::move(v);
    }
    for (int i = 0; i < g.node_size(); ++i) {
      const NodeProto& node = g.node(i);
      what_ = absl::StrCat(source_, ": node ",
                           node.name().empty()
                               ? absl::StrCat("#", i)
                               : absl::StrCat("'", node.name(), "'"),
                           " (", node.op_type(), ")");
      if (!node.domain().empty() && node.domain() != "ai.onnx") {
        return Error(absl::StrCat("is in domain '", node.domain(),
                                  "'; only the default ONNX domain is "
                                  "supported"));
      }
      RETURN_IF_ERROR(Visit(node));
    }
    return Finish(model);
  }

 private:
  enum class Stage { kLayers, kMatMul, kHead, kActivation };

  absl::Status Error(const std::string& message) const {
    return absl::InvalidArgumentError(absl::StrCat(what_, ": ", message));
  }

  absl::Status CheckOpset(const onnx::ModelProto& model) {
    opset_ = -1;
    for (const auto& o : model.opset_import()) {
      if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
    }
    if (opset_ < kMinOpset || opset_ > kMaxOpset) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": the model imports ONNX opset ",
          opset_ < 0 ? std::string("(none)") : absl::StrCat(opset_),
          "; expected an opset from ", kMinOpset, " to ", kMaxOpset,
          " (torch.onnx.export(..., opset_version=14))"));
    }
    return absl::OkStatus();
  }

  int Resolve(int label) const {
    auto it = bound_.find(label);
    return it == bound_.end() ? label : it->second;
  }

  std::string AxesText(const std::vector<int>& axes) const {
    std::vector<std::string> names;
    for (int a : axes) names.push_back(LabelName(Resolve(a)));
    return absl::StrCat("(", absl::StrJoin(names, ", "), ")");
  }

  // --- Inputs and attributes ---------------------------------------------

  absl::StatusOr<const Value*> Input(const NodeProto& node, int i) const {
    if (i >= node.input_size() || node.input(i).empty()) {
      return Error(absl::StrCat("input ", i, " is missing"));
    }
    auto it = values_.find(node.input(i));
    if (it == values_.end()) {
      return Error(absl::StrCat("input '", node.input(i),
                                "' is not produced by an earlier node, an "
                                "initializer or a graph input"));
    }
    return &it->second;
  }

  // Input i, or null when it is absent (optional inputs).
  absl::StatusOr<const Value*> Optional(const NodeProto& node, int i) const {
    if (i >= node.input_size() || node.input(i).empty()) return nullptr;
    return Input(node, i);
  }

  absl::StatusOr<const ConstTensor*> ConstInput(const NodeProto& node, int i,
                                                const std::string& role) const {
    ASSIGN_OR_RETURN(const Value* v, Input(node, i));
    if (v->kind != Value::kConst) {
      return Error(absl::StrCat("input ", role, " ('", node.input(i),
                                "') is not a constant; expected it computed "
                                "from initializers and Constant nodes only"));
    }
    return &v->c;
  }

  static const AttributeProto* Attr(const NodeProto& node,
                                    const std::string& name) {
    for (const AttributeProto& a : node.attribute()) {
      if (a.name() == name) return &a;
    }
    return nullptr;
  }
  static int64_t IntAttr(const NodeProto& node, const std::string& name,
                         int64_t fallback) {
    const AttributeProto* a = Attr(node, name);
    return a ? a->i() : fallback;
  }
  static float FloatAttr(const NodeProto& node, const std::string& name,
                         float fallback) {
    const AttributeProto* a = Attr(node, name);
    return a ? a->f() : fallback;
  }
  static std::vector<int64_t> IntsAttr(const NodeProto& node,
                                       const std::string& name) {
    const AttributeProto* a = Attr(node, name);
    if (!a) return {};
    return {a->ints().begin(), a->ints().end()};
  }

  static std::vector<int64_t> Ints(const ConstTensor& t) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < t.size(); ++i) v.push_back(t.IntAt(i));
    return v;
  }

  // Axes of Squeeze/Unsqueeze: an input from opset 13, an attribute before.
  absl::StatusOr<std::vector<int64_t>> AxesParam(const NodeProto& node) const {
    if (opset_ >= 13) {
      ASSIGN_OR_RETURN(const Value* v, Optional(node, 1));
      if (!v) return std::vector<int64_t>{};
      if (v->kind != Value::kConst) {
        return Error("input axes is not a constant");
      }
      return Ints(v->c);
    }
    return IntsAttr(node, "axes");
  }

  struct SliceParams {
    std::vector<int64_t> starts, ends, axes, steps;
  };
  absl::StatusOr<SliceParams> SliceParam(const NodeProto& node) const {
    SliceParams p;
    if (opset_ < 10) {
      p.starts = IntsAttr(node, "starts");
      p.ends = IntsAttr(node, "ends");
      p.axes = IntsAttr(node, "axes");
      return p;
    }
    ASSIGN_OR_RETURN(const ConstTensor* s, ConstInput(node, 1, "starts"));
    ASSIGN_OR_RETURN(const ConstTensor* e, ConstInput(node, 2, "ends"));
    p.starts = Ints(*s);
    p.ends = Ints(*e);
    for (int i : {3, 4}) {
      ASSIGN_OR_RETURN(const Value* v, Optional(node, i));
      if (!v) continue;
      if (v->kind != Value::kConst) {
        return Error(absl::StrCat("input ", i == 3 ? "axes" : "steps",
                                  " is not a constant"));
      }
      (i == 3 ? p.axes : p.steps) = Ints(v->c);
    }
    return p;
  }

  void SetOutput(const NodeProto& node, int i, Value v) {
    if (i < node.output_size() && !node.output(i).empty()) {
      values_[node.output(i)] = std::move(v);
    }
  }

  // --- Nodes ----------------------------------------------------------------

  absl::Status Visit(const NodeProto& node) {
    const std::string& op = node.op_type();
    if (op == "Constant") return VisitConstant(node);
    if (op == "LSTM" || op == "GRU" || op == "RNN") return VisitRecurrent(node);
    if (op == "MatMul") return VisitMatMul(node);
    if (op == "Add") return VisitAdd(node);
    if (op == "Gemm") return VisitGemm(node);
    if (op == "Sigmoid" || op == "Tanh" || op == "Softmax") {
      return VisitActivation(node);
    }
    static const std::set<std::string> kGlue = {
        "Identity",  "Cast",    "Squeeze", "Unsqueeze",
        "Transpose", "Reshape", "Slice",   "Concat",
        "Gather",    "Shape",   "Expand",  "ConstantOfShape"};
    if (kGlue.count(op)) return VisitGlue(node);
    return Error(
        "is not a supported operator; the importer takes LSTM, GRU, RNN, a "
        "Gemm or MatMul+Add head, Sigmoid/Tanh/Softmax, Constant and the glue "
        "Identity, Cast, Squeeze, Unsqueeze, Transpose, Reshape, Slice, "
        "Concat, Gather, Shape, Expand, ConstantOfShape");
  }

  absl::Status VisitConstant(const NodeProto& node) {
    Value v;
    if (const AttributeProto* a = Attr(node, "value")) {
      ASSIGN_OR_RETURN(v.c, FromProto(a->t(), absl::StrCat(what_, ": value")));
    } else if (const AttributeProto* f = Attr(node, "value_float")) {
      v.c.floats = {f->f()};
    } else if (const AttributeProto* fs = Attr(node, "value_floats")) {
      v.c.floats.assign(fs->floats().begin(), fs->floats().end());
      v.c.dims = {static_cast<int64_t>(v.c.floats.size())};
    } else if (const AttributeProto* n = Attr(node, "value_int")) {
      v.c.is_int = true;
      v.c.ints = {n->i()};
    } else if (const AttributeProto* ns = Attr(node, "value_ints")) {
      v.c.is_int = true;
      v.c.ints.assign(ns->ints().begin(), ns->ints().end());
      v.c.dims = {static_cast<int64_t>(v.c.ints.size())};
    } else {
      return Error(
          "has none of the attributes value, value_float(s), value_int(s); "
          "sparse and string constants are not supported");
    }
    SetOutput(node, 0, std::move(v));
    return absl::OkStatus();
  }

  // Glue: evaluated on constants, carried through on zeros, run-time shapes
  // and states, checked axis by axis on the sequence.
  absl::Status VisitGlue(const NodeProto& node) {
    const std::string& op = node.op_type();
    ASSIGN_OR_RETURN(const Value* data, Input(node, 0));
    if (op == "Concat") {
      // Constants evaluate; anything involving the sequence is refused.
      std::vector<const ConstTensor*> parts;
      Value::Kind kind = Value::kConst;
      for (int i = 0; i < node.input_size(); ++i) {
        ASSIGN_OR_RETURN(const Value* v, Input(node, i));
        if (v->kind == Value::kSeq) {
          return Error(
              "concatenates the sequence tensor with another tensor; the "
              "import supports one chain of layers without concatenation");
        }
        if (v->kind != Value::kConst) kind = std::max(kind, v->kind);
        parts.push_back(&v->c);
      }
      Value out;
      out.kind = kind;
      if (kind == Value::kConst) {
        ASSIGN_OR_RETURN(out.c, Concat(parts, IntAttr(node, "axis", 0), what_));
      } else if (kind == Value::kState) {
        // Stacked final states (torch's h_n): known when every part is a
        // known state stacked along the same axis.
        out = StackStates(node);
      }
      SetOutput(node, 0, std::move(out));
      return absl::OkStatus();
    }
    if (op == "Shape") {
      Value out;
      if (data->kind == Value::kConst) {
        out.c.is_int = true;
        out.c.ints = data->c.dims;
        out.c.dims = {data->c.rank()};
      } else {
        out.kind = Value::kShape;
      }
      SetOutput(node, 0, std::move(out));
      return absl::OkStatus();
    }
    if (op == "ConstantOfShape") {
      ConstTensor fill;
      fill.floats = {0.0f};
      if (const AttributeProto* a = Attr(node, "value")) {
        ASSIGN_OR_RETURN(fill,
                         FromProto(a->t(), absl::StrCat(what_, ": value")));
      }
      Value out;
      if (data->kind == Value::kConst) {
        std::vector<int64_t> dims = Ints(data->c);
        if (!DimsWithinLimit(dims)) {
          return Error(absl::StrCat("fills shape [", absl::StrJoin(dims, ", "),
                                    "]: negative, or more than ",
                                    kMaxConstElements, " elements"));
        }
        ConstTensor c;
        c.dims = dims;
        c.is_int = fill.is_int;
        for (int64_t i = 0; i < c.size(); ++i) {
          if (c.is_int) {
            c.ints.push_back(fill.IntAt(0));
          } else {
            c.floats.push_back(static_cast<float>(fill.At(0)));
          }
        }
        out.c = std::move(c);
      } else if (fill.AllZero()) {
        out.kind = Value::kZeros;
      } else {
        return Error(absl::StrCat(
            "fills a run-time shape with ", fill.At(0),
            "; only zeros are supported there (zero initial states)"));
      }
      SetOutput(node, 0, std::move(out));
      return absl::OkStatus();
    }
    if (op == "Expand") {
      ASSIGN_OR_RETURN(const Value* shape, Input(node, 1));
      Value out;
      if (data->kind == Value::kZeros ||
          (data->kind == Value::kConst && data->c.AllZero())) {
        out.kind = Value::kZeros;
      } else if (data->kind == Value::kState) {
        out.kind = Value::kState;
      } else {
        return Error(absl::StrCat(
            "expands ",
            data->kind == Value::kSeq ? "the sequence tensor"
                                      : "a non-zero constant",
            "; only zero initial states may be expanded (input shape '",
            node.input(1), "' is ",
            shape->kind == Value::kConst ? "constant" : "computed at run time",
            ")"));
      }
      SetOutput(node, 0, std::move(out));
      return absl::OkStatus();
    }

    if (data->kind == Value::kSeq) return SeqGlue(node, *data);
    if (data->kind == Value::kState) return StateGlue(node, *data);
    // Shape arithmetic on run-time shapes stays a run-time shape; zeros and
    // states stay what they are.
    if (data->kind != Value::kConst) {
      Value out;
      out.kind = data->kind;
      SetOutput(node, 0, std::move(out));
      return absl::OkStatus();
    }
    // A constant: evaluate, if every parameter is constant too.
    for (int i = 1; i < node.input_size(); ++i) {
      ASSIGN_OR_RETURN(const Value* p, Optional(node, i));
      if (p && p->kind != Value::kConst) {
        Value out;
        out.kind = Value::kShape;
        SetOutput(node, 0, std::move(out));
        return absl::OkStatus();
      }
    }
    const ConstTensor& t = data->c;
    Value out;
    if (op == "Identity") {
      out.c = t;
    } else if (op == "Cast") {
      const int64_t to = IntAttr(node, "to", 1);
      out.c = Cast(t, to == 1 || to == 10 || to == 11 || to == 16);
    } else if (op == "Squeeze") {
      ASSIGN_OR_RETURN(std::vector<int64_t> axes, AxesParam(node));
      ASSIGN_OR_RETURN(out.c, Squeeze(t, axes, what_));
    } else if (op == "Unsqueeze") {
      ASSIGN_OR_RETURN(std::vector<int64_t> axes, AxesParam(node));
      ASSIGN_OR_RETURN(out.c, Unsqueeze(t, axes, what_));
    } else if (op == "Transpose") {
      ASSIGN_OR_RETURN(out.c, Transpose(t, IntsAttr(node, "perm"), what_));
    } else if (op == "Reshape") {
      ASSIGN_OR_RETURN(const ConstTensor* shape, ConstInput(node, 1, "shape"));
      ASSIGN_OR_RETURN(
          out.c, Reshape(t, *shape, IntAttr(node, "allowzero", 0), what_));
    } else if (op == "Slice") {
      ASSIGN_OR_RETURN(SliceParams p, SliceParam(node));
      ASSIGN_OR_RETURN(out.c,
                       Slice(t, p.starts, p.ends, p.axes, p.steps, what_));
    } else if (op == "Gather") {
      ASSIGN_OR_RETURN(const ConstTensor* idx, ConstInput(node, 1, "indices"));
      ASSIGN_OR_RETURN(out.c, Gather(t, *idx, IntAttr(node, "axis", 0), what_));
    }
    SetOutput(node, 0, std::move(out));
    return absl::OkStatus();
  }

  // Glue on the sequence tensor: only moves, inserts or drops axes of size
  // 1, selects the last time step, or merges time and batch into rows.
  absl::Status SeqGlue(const NodeProto& node, const Value& in) {
    const std::string& op = node.op_type();
    Value out = in;
    std::vector<int>& axes = out.axes;
    const int rank = static_cast<int>(axes.size());
    auto axis_of = [&](int64_t a, int r) { return NormalizeAxis(a, r, what_); };
    if (op == "Identity") {
    } else if (op == "Cast") {
      const int64_t to = IntAttr(node, "to", 1);
      if (to != 1 && to != 10 && to != 11 && to != 16) {
        return Error(absl::StrCat("attribute to is ", to,
                                  "; the sequence tensor may only be cast to "
                                  "a floating-point type"));
      }
    } else if (op == "Squeeze") {
      ASSIGN_OR_RETURN(std::vector<int64_t> list, AxesParam(node));
      std::vector<bool> drop(rank, false);
      if (list.empty()) {
        for (int i = 0; i < rank; ++i) drop[i] = Resolve(axes[i]) == kOne;
      }
      for (int64_t a : list) {
        ASSIGN_OR_RETURN(int i, axis_of(a, rank));
        const int role = Resolve(axes[i]);
        if (role == kTime || role == kFeature || role == kRows) {
          return Error(absl::StrCat("squeezes axis ", a, ", the sequence's ",
                                    LabelName(role),
                                    " axis; expected only "
                                    "size-1 or batch axes to be squeezed"));
        }
        if (role >= kUnbound) out.sliced_unbound = true;
        drop[i] = true;
      }
      std::vector<int> kept;
      for (int i = 0; i < rank; ++i) {
        if (!drop[i]) kept.push_back(axes[i]);
      }
      axes = kept;
    } else if (op == "Unsqueeze") {
      ASSIGN_OR_RETURN(std::vector<int64_t> list, AxesParam(node));
      const int r = rank + static_cast<int>(list.size());
      std::vector<bool> inserted(r, false);
      for (int64_t a : list) {
        ASSIGN_OR_RETURN(int i, axis_of(a, r));
        if (inserted[i])
          return Error(absl::StrCat("axis ", a, " appears twice"));
        inserted[i] = true;
      }
      std::vector<int> grown;
      int next = 0;
      for (int i = 0; i < r; ++i)
        grown.push_back(inserted[i] ? kOne : axes[next++]);
      axes = grown;
    } else if (op == "Transpose") {
      std::vector<int64_t> perm = IntsAttr(node, "perm");
      if (perm.empty()) {
        for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
      }
      if (static_cast<int>(perm.size()) != rank) {
        return Error(absl::StrCat("attribute perm has ", perm.size(),
                                  " entries; the sequence tensor has rank ",
                                  rank));
      }
      std::vector<int> moved;
      std::vector<bool> seen(rank, false);
      for (int64_t p : perm) {
        if (p < 0 || p >= rank || seen[p]) {
          return Error(absl::StrCat("attribute perm holds ", p,
                                    ", out of range for rank ", rank,
                                    " or repeated"));
        }
        seen[p] = true;
        moved.push_back(in.axes[p]);
      }
      axes = moved;
    } else if (op == "Reshape") {
      ASSIGN_OR_RETURN(const ConstTensor* shape, ConstInput(node, 1, "shape"));
      ASSIGN_OR_RETURN(axes, ReshapeAxes(in.axes, Ints(*shape),
                                         IntAttr(node, "allowzero", 0) != 0));
    } else if (op == "Slice") {
      ASSIGN_OR_RETURN(SliceParams p, SliceParam(node));
      for (size_t k = 0; k < p.starts.size(); ++k) {
        const int64_t a = k < p.axes.size() ? p.axes[k] : int64_t(k);
        ASSIGN_OR_RETURN(int i, axis_of(a, rank));
        const int64_t start = p.starts[k],
                      end = k < p.ends.size() ? p.ends[k] : 0;
        const int64_t step = k < p.steps.size() ? p.steps[k] : 1;
        const int role = Resolve(axes[i]);
        // INT_MAX-like ends mean "to the end" (torch writes INT64_MAX).
        const bool to_end = end >= std::numeric_limits<int32_t>::max();
        const bool full = step == 1 && start == 0 && to_end;
        if (full) continue;
        if (role >= kUnbound) {
          out.sliced_unbound = true;
        } else if (role == kTime && step == 1 && start == -1 && to_end) {
          axes[i] = kOne;  // the last step: per step, the step itself
        } else if ((role == kOne || role == kBatch) && step == 1 &&
                   (start == 0 || start == -1) && (to_end || end == 1)) {
        } else {
          return Error(absl::StrCat("slices the sequence's ", LabelName(role),
                                    " axis as [", start, ":", end, ":", step,
                                    "]; expected whole axes, or [-1:] on the "
                                    "time axis (the last step)"));
        }
      }
    } else if (op == "Gather") {
      ASSIGN_OR_RETURN(const ConstTensor* idx, ConstInput(node, 1, "indices"));
      ASSIGN_OR_RETURN(int i, axis_of(IntAttr(node, "axis", 0), rank));
      const int role = Resolve(axes[i]);
      const int64_t index = idx->size() == 1 ? idx->IntAt(0) : 99;
      if (idx->size() != 1) {
        return Error(absl::StrCat("gathers ", idx->size(),
                                  " indices from the sequence's ",
                                  LabelName(role), " axis; expected one"));
      }
      const bool ok =
          role >= kUnbound || (role == kTime && index == -1) ||
          ((role == kOne || role == kBatch) && (index == 0 || index == -1));
      if (!ok) {
        return Error(absl::StrCat("gathers index ", index,
                                  " of the sequence's ", LabelName(role),
                                  " axis; expected index -1 "
                                  "of the time axis (the last step) or 0 of a "
                                  "size-1 or batch axis"));
      }
      if (role >= kUnbound) out.sliced_unbound = true;
      if (idx->rank() == 0) {
        axes.erase(axes.begin() + i);
      } else {
        axes[i] = role == kTime ? int{kOne} : axes[i];
      }
    }
    SetOutput(node, 0, std::move(out));
    return absl::OkStatus();
  }

  Value StackStates(const NodeProto& node) const {
    Value out;
    out.kind = Value::kState;
    const int64_t axis = IntAttr(node, "axis", 0);
    for (int i = 0; i < node.input_size(); ++i) {
      const Value& v = values_.at(node.input(i));
      if (v.kind != Value::kState || v.layers.empty() || v.state_axis != axis ||
          (i > 0 && v.cell_state != out.cell_state)) {
        out.layers.clear();
        return out;
      }
      out.cell_state = v.cell_state;
      out.state_axis = v.state_axis;
      out.layers.insert(out.layers.end(), v.layers.begin(), v.layers.end());
    }
    return out;
  }

  // Glue on final states: selecting one layer's (Gather, Slice, Squeeze on
  // the stacking axis) is followed; if that is the last layer's h and no
  // head has been applied yet, the result is the sequence at its last step.
  absl::Status StateGlue(const NodeProto& node, const Value& in) {
    const std::string& op = node.op_type();
    Value out = in;
    const int rank = 3;  // [1, batch, H] or [batch, 1, H] per layer
    bool keep_axis = true;
    auto unknown = [&]() {
      out.layers.clear();
      SetOutput(node, 0, out);
      return absl::OkStatus();
    };
    if (op == "Identity" || op == "Cast") {
      SetOutput(node, 0, std::move(out));
      return absl::OkStatus();
    }
    if (in.layers.empty()) return unknown();
    const int n = static_cast<int>(in.layers.size());
    int pick = -1;
    if (op == "Gather") {
      auto idx = values_.find(node.input_size() > 1 ? node.input(1) : "");
      if (idx == values_.end() || idx->second.kind != Value::kConst ||
          idx->second.c.size() != 1 ||
          IntAttr(node, "axis", 0) != in.state_axis) {
        return unknown();
      }
      const int64_t i = idx->second.c.IntAt(0);
      pick = static_cast<int>(i < 0 ? i + n : i);
      keep_axis = idx->second.c.rank() > 0;
    } else if (op == "Slice") {
      absl::StatusOr<SliceParams> p = SliceParam(node);
      if (!p.ok() || p->starts.size() != 1 ||
          (!p->axes.empty() && p->axes[0] != in.state_axis) ||
          (p->axes.empty() && in.state_axis != 0) ||
          (!p->steps.empty() && p->steps[0] != 1)) {
        return unknown();
      }
      const int64_t start = p->starts[0] < 0 ? p->starts[0] + n : p->starts[0];
      const int64_t end =
          p->ends[0] < 0 ? p->ends[0] + n : std::min<int64_t>(p->ends[0], n);
      if (end - start != 1) return unknown();
      pick = static_cast<int>(start);
    } else if (op == "Squeeze") {
      absl::StatusOr<std::vector<int64_t>> axes = AxesParam(node);
      if (!axes.ok() || n != 1 || axes->size() != 1 ||
          ((*axes)[0] + rank) % rank != in.state_axis) {
        return unknown();
      }
      pick = 0;
      keep_axis = false;
    } else {
      return unknown();
    }
    if (pick < 0 || pick >= n) return unknown();
    const int layer = in.layers[pick];
    out.layers = {layer};
    const bool last = layer + 1 == static_cast<int>(layers_.size()) &&
                      stage_ == Stage::kLayers &&
                      point_ == layer_points_.back();
    if (in.cell_state || !last) {
      SetOutput(node, 0, std::move(out));
      return absl::OkStatus();
    }
    Value seq;
    seq.kind = Value::kSeq;
    seq.point = point_;
    const int batch = layer_batch_.back();
    if (keep_axis) {
      seq.axes = in.state_axis == 0 ? std::vector<int>{kOne, batch, kFeature}
                                    : std::vector<int>{batch, kOne, kFeature};
    } else {
      seq.axes = {batch, kFeature};
    }
    notes_.push_back(absl::StrCat(
        "the last layer's final state Y_h feeds the rest of the graph: "
        "lstmserve gives it at every step (the output for the sequence "
        "ending at that step)"));
    SetOutput(node, 0, std::move(seq));
    return absl::OkStatus();
  }

  // The axes after a Reshape of the sequence to `shape`: size-1 entries
  // become size-1 axes, the rest take the input's non-size-1 axes in order;
  // or, with the features last, everything before them merges into rows.
  absl::StatusOr<std::vector<int>> ReshapeAxes(
      const std::vector<int>& in, const std::vector<int64_t>& shape,
      bool allowzero) const {
    std::vector<int> big;  // the input's axes other than size 1
    for (int a : in) {
      if (Resolve(a) != kOne) big.push_back(a);
    }
    std::vector<int> out;
    size_t next = 0;
    bool fits = true;
    for (size_t i = 0; i < shape.size() && fits; ++i) {
      int64_t d = shape[i];
      if (d == 0 && !allowzero) {
        if (i >= in.size()) {
          fits = false;
          break;
        }
        // Copies the input's axis i, which must be the next one in line.
        if (Resolve(in[i]) == kOne) {
          out.push_back(kOne);
          continue;
        }
        fits = next < big.size() && big[next] == in[i];
        out.push_back(in[i]);
        ++next;
        continue;
      }
      if (d == 1) {
        out.push_back(kOne);
        continue;
      }
      if (next >= big.size()) {
        fits = false;
        break;
      }
      const int role = Resolve(big[next]);
      if (role == kFeature && d != -1 && d != width_ && width_ > 0)
        fits = false;
      out.push_back(big[next++]);
    }
    if (fits && next == big.size()) return out;
    // Merge: [..., F] -> [rows, F].
    if (!big.empty() && Resolve(big.back()) == kFeature && !shape.empty() &&
        (shape.back() == -1 || shape.back() == width_)) {
      std::vector<int> merged;
      int non_one = 0;
      for (size_t i = 0; i + 1 < shape.size(); ++i) {
        if (shape[i] == 1) {
          merged.push_back(kOne);
        } else {
          merged.push_back(kRows);
          ++non_one;
        }
      }
      merged.push_back(kFeature);
      if (non_one <= 1) return merged;
    }
    return Error(absl::StrCat(
        "reshapes the sequence tensor with axes ", AxesText(in), " to [",
        absl::StrJoin(shape, ", "),
        "]; expected a reshape that only adds or removes size-1 axes, or "
        "merges the axes before the features into one"));
  }

  // The sequence value a compute node reads: it must be the latest point
  // of the network (no branches).
  absl::StatusOr<const Value*> SeqAtHead(const NodeProto& node, int i,
                                         const std::string& role) const {
    ASSIGN_OR_RETURN(const Value* v, Input(node, i));
    if (v->kind == Value::kState) {
      return Error(absl::StrCat(
          "input ", role, " ('", node.input(i),
          "') is a recurrent node's "
          "final state Y_h/Y_c; expected the per-step output Y, or the "
          "last layer's Y_h before any head (one layer's, picked out with "
          "Gather/Slice/Squeeze)"));
    }
    if (v->kind != Value::kSeq) {
      return Error(absl::StrCat("input ", role, " ('", node.input(i),
                                "') is not the sequence tensor"));
    }
    if (v->point != point_) {
      return Error(absl::StrCat(
          "input ", role, " ('", node.input(i),
          "') is an earlier result "
          "than the network's latest; the import supports one chain of "
          "layers, head and activation, without branches"));
    }
    return v;
  }

  absl::Status VisitRecurrent(const NodeProto& node) {
    if (stage_ != Stage::kLayers) {
      return Error("follows the head; recurrent layers must come before it");
    }
    ASSIGN_OR_RETURN(const Value* x, SeqAtHead(node, 0, "X"));
    auto constant = [&](int i) -> const ConstTensor* {
      if (i >= node.input_size() || node.input(i).empty()) return nullptr;
      auto it = values_.find(node.input(i));
      if (it == values_.end() || it->second.kind != Value::kConst)
        return nullptr;
      return &it->second.c;
    };
    ASSIGN_OR_RETURN(RecurrentLayer layer,
                     ConvertRecurrentNode(node, what_, constant));

    // X: [seq, batch, in] (layout 0) or [batch, seq, in] (layout 1).
    if (x->axes.size() != 3 || Resolve(x->axes[2]) != kFeature) {
      return Error(absl::StrCat("input X has axes ", AxesText(x->axes),
                                "; expected (time, batch, features) for "
                                "layout 0 or (batch, time, features) for "
                                "layout 1"));
    }
    if (x->sliced_unbound) {
      return Error(
          "input X was sliced before any axis' role was known; "
          "expected the graph input as it is, or only reordered");
    }
    const int time_at = layer.layout == 0 ? 0 : 1;
    const int batch_at = 1 - time_at;
    for (auto [at, role] :
         {std::pair{time_at, int{kTime}}, std::pair{batch_at, int{kBatch}}}) {
      const int label = x->axes[at];
      const int now = Resolve(label);
      if (now >= kUnbound) {
        bound_[label] = role;
      } else if (now != role && !(role == kBatch && now == kOne)) {
        return Error(
            absl::StrCat("input X has axes ", AxesText(x->axes),
                         "; attribute layout ", layer.layout, " expects ",
                         layer.layout == 0 ? "(time, batch, features)"
                                           : "(batch, time, features)"));
      }
    }
    if (width_ > 0 && layer.input_size != width_) {
      return Error(absl::StrCat("input W takes ", layer.input_size,
                                " inputs; the tensor it reads has ", width_,
                                " features"));
    }
    // sequence_lens: nothing to mask in a stream of single steps.
    ASSIGN_OR_RETURN(const Value* lens, Optional(node, 4));
    if (lens) {
      return Error(
          "input sequence_lens is given; the engine streams every "
          "session step by step and has no padding to mask, so "
          "export without it");
    }
    for (int i : {5, 6}) {
      if (i == 6 && layer.cell != CellType::kLstm) break;
      RETURN_IF_ERROR(
          CheckInitialState(node, i, i == 5 ? "initial_h" : "initial_c"));
    }
    RETURN_IF_ERROR(AddLayer(node, std::move(layer)));

    const int recurrent_layout = layers_.back().layout;
    Value y;
    y.kind = Value::kSeq;
    y.point = ++point_;
    y.axes = recurrent_layout == 0
                 ? std::vector<int>{x->axes[0], kOne, x->axes[1], kFeature}
                 : std::vector<int>{x->axes[0], x->axes[1], kOne, kFeature};
    width_ = layers_.back().hidden_size;
    layer_points_.push_back(point_);
    layer_batch_.push_back(x->axes[batch_at]);
    SetOutput(node, 0, std::move(y));
    for (int o : {1, 2}) {
      Value state;
      state.kind = Value::kState;
      state.layers = {static_cast<int>(layers_.size()) - 1};
      state.cell_state = o == 2;
      state.state_axis = recurrent_layout == 0 ? 0 : 1;
      SetOutput(node, o, std::move(state));
    }
    return absl::OkStatus();
  }

  absl::Status CheckInitialState(const NodeProto& node, int i,
                                 const std::string& role) {
    ASSIGN_OR_RETURN(const Value* v, Optional(node, i));
    if (!v || v->kind == Value::kZeros) return absl::OkStatus();
    if (v->kind == Value::kConst) {
      if (v->c.AllZero()) return absl::OkStatus();
      return Error(absl::StrCat(
          "input ", role, " ('", node.input(i),
          "') is a constant with "
          "non-zero values; lstmserve sessions start from the zero state, so "
          "zero it, or make it a graph input and give the values as the "
          "session's state"));
    }
    if (v->kind == Value::kSeq && !v->graph_input.empty() && v->point == 0) {
      notes_.push_back(absl::StrCat(
          node.name().empty() ? node.op_type() : node.name(), " input ", role,
          " comes from graph input '", v->graph_input,
          "': it is the session's state in lstmserve (zeros unless the "
          "caller sets it; layout in docs/MODEL_FORMAT.md)"));
      return absl::OkStatus();
    }
    return Error(absl::StrCat("input ", role, " ('", node.input(i),
                              "') is computed by the network; expected "
                              "zeros, a zero constant or a graph input"));
  }

  // Checks the layer agrees with the ones before it on everything the
  // repository format holds once per model.
  absl::Status AddLayer(const NodeProto& node, RecurrentLayer layer) {
    if (!layers_.empty()) {
      const RecurrentLayer& first = layers_.front();
      auto differs = [&](const std::string& field, const std::string& here,
                         const std::string& there) {
        return Error(absl::StrCat(
            field, " is ", here, " but the first recurrent layer's is ", there,
            "; the repository format has one value for every layer"));
      };
      if (layer.cell != first.cell) {
        return differs("the cell", std::string(CellTypeName(layer.cell)),
                       std::string(CellTypeName(first.cell)));
      }
      if (layer.hidden_size != first.hidden_size) {
        return differs("hidden_size", absl::StrCat(layer.hidden_size),
                       absl::StrCat(first.hidden_size));
      }
      if (layer.clip != first.clip) {
        return differs("attribute clip", absl::StrCat(layer.clip),
                       absl::StrCat(first.clip));
      }
      if (layer.lstm_input_forget != first.lstm_input_forget) {
        return differs("attribute input_forget",
                       absl::StrCat(layer.lstm_input_forget),
                       absl::StrCat(first.lstm_input_forget));
      }
      if (layer.gru_linear_before_reset != first.gru_linear_before_reset) {
        return differs("attribute linear_before_reset",
                       absl::StrCat(layer.gru_linear_before_reset),
                       absl::StrCat(first.gru_linear_before_reset));
      }
      if (layer.nonlinearity != first.nonlinearity ||
          layer.nonlinearity_alpha != first.nonlinearity_alpha ||
          layer.nonlinearity_beta != first.nonlinearity_beta) {
        return differs("the activation",
                       std::string(NonlinearityName(layer.nonlinearity)),
                       std::string(NonlinearityName(first.nonlinearity)));
      }
    }
    layers_.push_back(std::move(layer));
    return absl::OkStatus();
  }

  absl::Status VisitMatMul(const NodeProto& node) {
    if (stage_ != Stage::kLayers || layers_.empty()) {
      return Error(
          "is not a head right after the recurrent layers; expected "
          "one MatMul (+Add) or Gemm after the last layer");
    }
    ASSIGN_OR_RETURN(const Value* a, SeqAtHead(node, 0, "A"));
    ASSIGN_OR_RETURN(const ConstTensor* b, ConstInput(node, 1, "B"));
    if (Resolve(a->axes.back()) != kFeature) {
      return Error(absl::StrCat("input A has axes ", AxesText(a->axes),
                                "; expected the features last"));
    }
    if (b->rank() != 2 || b->dims[0] != width_) {
      return Error(absl::StrCat("input B has shape [",
                                absl::StrJoin(b->dims, ", "), "]; expected [",
                                width_, ", output_size]"));
    }
    ASSIGN_OR_RETURN(ConstTensor w, Transpose(*b, {1, 0}, what_));
    SetHead(w, nullptr, 1.0f);
    stage_ = Stage::kMatMul;
    Value out = *a;
    out.point = ++point_;
    SetOutput(node, 0, std::move(out));
    return absl::OkStatus();
  }

  absl::Status VisitAdd(const NodeProto& node) {
    ASSIGN_OR_RETURN(const Value* a, Input(node, 0));
    ASSIGN_OR_RETURN(const Value* b, Input(node, 1));
    const int seq_at = a->kind == Value::kSeq ? 0 : 1;
    const Value* other = seq_at == 0 ? b : a;
    if (stage_ != Stage::kMatMul) {
      return Error(
          "adds to something other than a MatMul head's product; "
          "expected Add only as the bias of a MatMul head");
    }
    ASSIGN_OR_RETURN(const Value* seq, SeqAtHead(node, seq_at, "A"));
    if (other->kind != Value::kConst) {
      return Error("adds a tensor that is not a constant bias");
    }
    const ConstTensor& c = other->c;
    bool row = c.size() == width_;
    for (int i = 0; row && i + 1 < c.rank(); ++i) row = c.dims[i] == 1;
    if (!row) {
      return Error(absl::StrCat("adds a constant of shape [",
                                absl::StrJoin(c.dims, ", "),
                                "]; expected a bias of ", width_, " values"));
    }
    for (int64_t i = 0; i < width_; ++i) {
      head_b_[i] = static_cast<float>(c.At(i));
    }
    stage_ = Stage::kHead;
    Value out = *seq;
    out.point = ++point_;
    SetOutput(node, 0, std::move(out));
    return absl::OkStatus();
  }

  absl::Status VisitGemm(const NodeProto& node) {
    if (stage_ != Stage::kLayers || layers_.empty()) {
      return Error(
          "is not a head right after the recurrent layers; expected "
          "one Gemm or MatMul (+Add) after the last layer");
    }
    ASSIGN_OR_RETURN(const Value* a, SeqAtHead(node, 0, "A"));
    ASSIGN_OR_RETURN(const ConstTensor* b, ConstInput(node, 1, "B"));
    const bool trans_a = IntAttr(node, "transA", 0) != 0;
    const bool trans_b = IntAttr(node, "transB", 0) != 0;
    const float alpha = FloatAttr(node, "alpha", 1.0f);
    const float beta = FloatAttr(node, "beta", 1.0f);
    if (a->axes.size() != 2 || Resolve(a->axes[trans_a ? 0 : 1]) != kFeature) {
      return Error(absl::StrCat("input A has axes ", AxesText(a->axes),
                                " with transA ", trans_a,
                                "; expected a matrix whose contracted axis is "
                                "the features"));
    }
    if (b->rank() != 2 || b->dims[trans_b ? 1 : 0] != width_) {
      return Error(absl::StrCat(
          "input B has shape [", absl::StrJoin(b->dims, ", "), "] with transB ",
          trans_b, "; expected ", width_, " rows to contract"));
    }
    ConstTensor w = *b;
    if (!trans_b) {
      ASSIGN_OR_RETURN(w, Transpose(*b, {1, 0}, what_));
    }
    const int64_t outputs = w.dims[0];
    const ConstTensor* c = nullptr;
    ASSIGN_OR_RETURN(const Value* cv, Optional(node, 2));
    if (cv) {
      if (cv->kind != Value::kConst) {
        return Error("input C is not a constant bias");
      }
      c = &cv->c;
      bool row = c->size() == outputs || c->size() == 1;
      for (int i = 0; row && c->size() != 1 && i + 1 < c->rank(); ++i) {
        row = c->dims[i] == 1;
      }
      if (!row) {
        return Error(absl::StrCat(
            "input C has shape [", absl::StrJoin(c->dims, ", "),
            "]; expected a bias of ", outputs, " values (or one)"));
      }
    }
    SetHead(w, c, alpha, beta);
    stage_ = Stage::kHead;
    Value out = *a;
    out.axes = {a->axes[trans_a ? 1 : 0], kFeature};
    out.point = ++point_;
    SetOutput(node, 0, std::move(out));
    return absl::OkStatus();
  }

  // head = alpha * w ([O, width]), bias = beta * c (broadcast) or zeros.
  void SetHead(const ConstTensor& w, const ConstTensor* c, float alpha,
               float beta = 1.0f) {
    const int64_t O = w.dims[0];
    head_w_.shape = {O, w.dims[1]};
    head_w_.values.clear();
    for (int64_t i = 0; i < w.size(); ++i) {
      head_w_.values.push_back(alpha * static_cast<float>(w.At(i)));
    }
    head_b_.assign(O, 0.0f);
    for (int64_t i = 0; c && i < O; ++i) {
      head_b_[i] = beta * static_cast<float>(c->At(c->size() == 1 ? 0 : i));
    }
    width_ = static_cast<int>(O);
  }

  absl::Status VisitActivation(const NodeProto& node) {
    if (stage_ == Stage::kActivation) {
      return Error(
          "is a second activation; the format has one after the "
          "head");
    }
    if (layers_.empty()) {
      return Error("comes before any recurrent layer");
    }
    ASSIGN_OR_RETURN(const Value* x, SeqAtHead(node, 0, "input"));
    const std::string& op = node.op_type();
    const int rank = static_cast<int>(x->axes.size());
    if (op == "Softmax") {
      const int64_t axis = IntAttr(node, "axis", opset_ >= 13 ? -1 : 1);
      ASSIGN_OR_RETURN(int a, NormalizeAxis(axis, rank, what_));
      // Before opset 13 Softmax flattens the axes from `axis` on: over the
      // last axis only when axis is the last one, as from 13 on.
      if (a != rank - 1 || Resolve(x->axes.back()) != kFeature) {
        return Error(absl::StrCat("attribute axis is ", axis, " on axes ",
                                  AxesText(x->axes),
                                  "; expected the softmax over the features, "
                                  "the last axis"));
      }
    }
    if (stage_ == Stage::kLayers) {
      // No head: an identity head carries the activation.
      ConstTensor eye;
      eye.dims = {width_, width_};
      eye.floats.assign(static_cast<size_t>(width_) * width_, 0.0f);
      for (int i = 0; i < width_; ++i) eye.floats[i * (width_ + 1)] = 1.0f;
      SetHead(eye, nullptr, 1.0f);
      notes_.push_back(absl::StrCat(
          op,
          " follows the last recurrent layer directly: it became an "
          "identity head (head.weight = I) with that activation"));
    }
    activation_ = op == "Softmax"   ? Activation::kSoftmax
                  : op == "Sigmoid" ? Activation::kSigmoid
                                    : Activation::kTanh;
    stage_ = Stage::kActivation;
    Value out = *x;
    out.point = ++point_;
    SetOutput(node, 0, std::move(out));
    return absl::OkStatus();
  }

  // --- The result
  // -------------------------------------------------------------

  absl::StatusOr<ImportedModel> Finish(const onnx::ModelProto& model) {
    what_ = source_;
    const onnx::GraphProto& g = model.graph();
    if (layers_.empty()) {
      return Error("the graph has no LSTM, GRU or RNN node");
    }
    if (g.output_size() == 0) return Error("the graph has no outputs");
    const std::string& out_name = g.output(0).name();
    auto it = values_.find(out_name);
    if (it == values_.end() || it->second.kind != Value::kSeq ||
        it->second.point != point_) {
      return Error(absl::StrCat(
          "graph output '", out_name,
          "' is not the end of the network (the "
          "last layer, head or activation); expected it as the first output"));
    }
    const Value& out = it->second;
    for (size_t i = 0; i < out.axes.size(); ++i) {
      const int role = Resolve(out.axes[i]);
      const bool last = i + 1 == out.axes.size();
      if (last != (role == kFeature) || role >= kUnbound) {
        return Error(absl::StrCat(
            "graph output '", out_name, "' has axes ", AxesText(out.axes),
            "; expected the features last, after time/batch axes"));
      }
    }
    for (int i = 1; i < g.output_size(); ++i) {
      notes_.push_back(absl::StrCat(
          "graph output '", g.output(i).name(),
          "' is not imported: only the first output is the model's output "
          "(final states live in the session)"));
    }

    ImportedModel result;
    ModelConfig& c = result.config;
    const RecurrentLayer& first = layers_.front();
    c.cell = first.cell;
    c.input_size = first.input_size;
    c.hidden_size = first.hidden_size;
    c.num_layers = static_cast<int>(layers_.size());
    c.clip = first.clip;
    c.lstm_input_forget = first.lstm_input_forget;
    c.gru_linear_before_reset = first.gru_linear_before_reset;
    c.nonlinearity = first.nonlinearity;
    c.nonlinearity_alpha = first.nonlinearity_alpha;
    c.nonlinearity_beta = first.nonlinearity_beta;
    c.bias = false;
    for (const RecurrentLayer& l : layers_) {
      c.bias = c.bias || l.has_bias;
      c.lstm_peepholes = c.lstm_peepholes || l.has_peepholes;
    }
    for (size_t k = 0; k < layers_.size(); ++k) {
      const RecurrentLayer& l = layers_[k];
      const std::string s = absl::StrCat("_l", k);
      result.tensors["rnn.weight_ih" + s] = l.w_ih;
      result.tensors["rnn.weight_hh" + s] = l.w_hh;
      if (c.bias) {
        result.tensors["rnn.bias_ih" + s] = l.b_ih;
        result.tensors["rnn.bias_hh" + s] = l.b_hh;
      }
      if (c.lstm_peepholes)
        result.tensors["rnn.weight_peephole" + s] = l.peephole;
    }
    if (stage_ != Stage::kLayers) {
      c.head = HeadConfig{width_, activation_};
      result.tensors["head.weight"] = head_w_;
      Tensor b;
      b.shape = {width_};
      b.values = head_b_;
      result.tensors["head.bias"] = std::move(b);
    }
    c.description =
        absl::StrCat("imported from ", source_, " (ONNX opset ", opset_,
                     model.producer_name().empty()
                         ? std::string()
                         : absl::StrCat(", made by ", model.producer_name(),
                                        " ", model.producer_version()),
                     ")");
    result.notes = notes_;
    return result;
  }

  const std::string source_;
  std::string what_;
  int64_t opset_ = 0;
  std::map<std::string, Value> values_;
  std::map<int, int> bound_;  // unbound label -> its role
  int next_unbound_ = kUnbound;
  int point_ = 0;
  int width_ = -1;  // features of the latest sequence tensor
  Stage stage_ = Stage::kLayers;
  std::vector<RecurrentLayer> layers_;
  std::vector<int> layer_points_;  // point_ after each layer
  std::vector<int> layer_batch_;   // the label of each layer's batch axis
  Tensor head_w_;
  std::vector<float> head_b_;
  Activation activation_ = Activation::kIdentity;
  std::vector<std::string> notes_;
};

}  // namespace

absl::StatusOr<ImportedModel> ImportOnnx(std::string_view bytes,
                                         const std::string& source) {
  onnx::ModelProto model;
  if (bytes.size() > std::numeric_limits<int>::max() ||
      !model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(absl::StrCat(
        source,
        ": not a valid ONNX model (the protobuf ModelProto does not "
        "parse)"));
  }
  return Importer(source).Run(model);
}

absl::StatusOr<ImportedModel> ImportOnnxFile(const std::string& onnx_path,
                                             const std::string& out_dir) {
  namespace fs = std::filesystem;
  ASSIGN_OR_RETURN(std::string bytes,
                   ReadWholeFile(onnx_path, kMaxOnnxBytes,
                                 {"ONNX model", "an .onnx file",
                                  "the 2 GiB protobuf limit"}));
  ASSIGN_OR_RETURN(ImportedModel imported,
                   ImportOnnx(bytes, fs::path(onnx_path).filename().string()));
  // The engine's own checks, before anything is written.
  RETURN_IF_ERROR(
      Model::Create(imported.config, imported.tensors, onnx_path).status());
  RETURN_IF_ERROR(
      WriteVersionDir(out_dir, ModelConfigToJson(imported.config),
                      SerializeSafetensors(imported.tensors, DType::kF32)));
  return imported;
}

}  // namespace lstmserve::model::onnx_import
