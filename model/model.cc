#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/kernels.h"
#include "model/quantize.h"
#include "model/status_macros.h"

namespace lstmserve::model {

// A page-aligned buffer for packed weights and the kernels' scratch (the
// kernels load whole cache-line-aligned vectors from them). Page, not just
// cache-line, alignment: with 64-byte alignment, where the packed weights
// happened to fall against the activations cost batched float32 steps 2-4%
// (B=64, the benchmark shape, alternating runs), and the placement changed
// with unrelated allocations; page-aligned, it is the same every time.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Replaces the contents with `bytes` uninitialized bytes.
  void Resize(size_t bytes) {
    constexpr size_t kPage = 4096;
    const size_t rounded = std::max<size_t>(1, (bytes + kPage - 1) / kPage);
    data_.reset(static_cast<unsigned char*>(
        std::aligned_alloc(kPage, rounded * kPage)));
    size_ = bytes;
  }
  // Grows to at least `bytes` (contents not kept); never shrinks.
  void* Reserve(size_t bytes) {
    if (bytes > size_ || !data_) Resize(bytes);
    return data_.get();
  }
  void* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(unsigned char* p) const { std::free(p); }
  };
  std::unique_ptr<unsigned char[], Free> data_;
  size_t size_ = 0;
};

// One weight matrix packed for the kernels (kernels::PackedMatrix), with
// its int8 scales (rows rounded up to 16, zero-padded: the kernels load
// whole vectors of them).
struct PackedWeights {
  AlignedBuffer data;
  std::vector<float> scales;
  int rows = 0;
  int width = 0;

  kernels::PackedMatrix View(const KernelChoice& k, WeightFormat f) const {
    kernels::PackedMatrix m;
    if (!data.data()) return m;
    m.data = data.data();
    m.rows = rows;
    m.width = width;
    m.format = f;
    m.scales = scales.empty() ? nullptr : scales.data();
    m.product = kernels::LowpProduct(k.products, f);
    return m;
  }
};

// Weights of one recurrent layer, laid out once at load the way the kernels
// read them, biases folded where the math allows it.
struct LayerWeights {
  int input_size = 0;
  // f32, bf16: [W_ih | 0 | W_hh]; int8: W_ih (kernels::LayerView::w_cat).
  PackedWeights w_cat;
  int hh_offset = 0;  // kernels::LayerView::hh_offset
  PackedWeights w_hh;
  PackedWeights w_hr;  // output_size x H (LSTM projection), else empty
  // Added to W_ih x: LSTM b_ih + b_hh; GRU b_ih + [b_hr, b_hz, 0]. Zero
  // without bias.
  std::vector<float> bias_pre;
  // GRU only: b_hn, which PyTorch applies inside r * (W_hn h + b_hn).
  std::vector<float> bias_hn;
  // GRU with gru_linear_before_reset false: W_hn on its own (w_hh then holds
  // only the r and z rows).
  PackedWeights w_hn;
  // LSTM with lstm_peepholes: p_i, p_f, p_o (3*H).
  std::vector<float> peephole;
};

namespace {

// Upper bound on (session, step) columns processed per block: bounds the
// workspace for long chunks while keeping the input projection one large
// matrix product.
constexpr int kMaxBlockColumns = 1024;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// A weight matrix as the file holds it: floats (from F32, F16 or BF16), or
// I8 integers with one scale per row (w = q * scale).
struct SourceMatrix {
  const Tensor* tensor = nullptr;
  const Tensor* scales = nullptr;  // I8 only
  int rows() const { return static_cast<int>(tensor->shape[0]); }
  int cols() const { return static_cast<int>(tensor->shape[1]); }
  bool is_int8() const { return scales != nullptr; }
  // Element (r, k) as a float (I8: dequantized).
  float At(int r, int k) const {
    const float v = tensor->values[static_cast<size_t>(r) * cols() + k];
    return scales ? v * scales->values[r] : v;
  }
};

// Looks up a tensor, checks its shape and finiteness, and marks it used.
class TensorTaker {
 public:
  TensorTaker(const std::map<std::string, Tensor>& tensors,
              const std::string& source)
      : tensors_(tensors), source_(source) {}

  absl::StatusOr<const Tensor*> Take(const std::string& name,
                                     std::vector<int64_t> expected,
                                     const std::string& meaning,
                                     bool may_be_int8 = false) {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": missing tensor \"", name, "\"; expected ",
                       ShapeString(expected), " (", meaning, ")"));
    }
    const Tensor& t = it->second;
    if (t.shape != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": tensor \"", name, "\" has shape ", ShapeString(t.shape),
          "; expected ", ShapeString(expected), " (", meaning, ")"));
    }
    if (t.stored_dtype == DType::kI8 && !may_be_int8) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": tensor \"", name,
                       "\" is I8; only the weight matrices (rnn.weight_ih_l*, "
                       "rnn.weight_hh_l*, rnn.weight_hr_l*) may be I8"));
    }
    RETURN_IF_ERROR(CheckFinite(name, t));
    used_.insert(name);
    parameter_count_ += static_cast<int64_t>(t.values.size());
    return &t;
  }

  // A weight matrix, with "<name>.scale" (one per row, finite, >= 0) when
  // it is I8; a scale tensor for a matrix that is not I8 is an error.
  absl::StatusOr<SourceMatrix> TakeMatrix(const std::string& name,
                                          std::vector<int64_t> expected,
                                          const std::string& meaning) {
    SourceMatrix m;
    ASSIGN_OR_RETURN(m.tensor, Take(name, expected, meaning, true));
    const std::string scale_name = name + ".scale";
    auto it = tensors_.find(scale_name);
    if (m.tensor->stored_dtype != DType::kI8) {
      if (it != tensors_.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            source_, ": tensor \"", scale_name, "\" is given but \"", name,
            "\" is ", std::string(DTypeName(m.tensor->stored_dtype)),
            ", not I8; per-row scales belong only to I8 weights"));
      }
      return m;
    }
    const std::vector<int64_t> scale_shape = {expected[0]};
    const std::string scale_meaning = absl::StrCat(
        "one float per row of the I8 tensor \"", name, "\": w = q * scale");
    if (it == tensors_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": tensor \"", name, "\" is I8 but \"", scale_name,
          "\" is missing; expected an F32 tensor of shape ",
          ShapeString(scale_shape), " (", scale_meaning, ")"));
    }
    const Tensor& scales = it->second;
    if (scales.shape != scale_shape || scales.stored_dtype == DType::kI8) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": tensor \"", scale_name, "\" is ",
                       std::string(DTypeName(scales.stored_dtype)), " ",
                       ShapeString(scales.shape), "; expected F32 ",
                       ShapeString(scale_shape), " (", scale_meaning, ")"));
    }
    RETURN_IF_ERROR(CheckFinite(scale_name, scales));
    for (size_t i = 0; i < scales.values.size(); ++i) {
      if (scales.values[i] < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            source_, ": tensor \"", scale_name, "\" has a negative scale (",
            scales.values[i], ") at row ", i, "; scales must be >= 0"));
      }
    }
    used_.insert(scale_name);
    m.scales = &scales;
    return m;
  }

  // Fails if the file holds tensors the config does not call for.
  absl::Status CheckNoneLeft() const {
    std::vector<std::string> extra;
    for (const auto& [name, tensor] : tensors_) {
      if (!used_.count(name)) extra.push_back(absl::StrCat("\"", name, "\""));
    }
    if (extra.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ": unexpected tensor", extra.size() > 1 ? "s " : " ",
        absl::StrJoin(extra, ", "),
        " not used by the config (check cell, num_layers, proj_size, bias, "
        "lstm_peepholes and head)"));
  }

  int64_t parameter_count() const { return parameter_count_; }

 private:
  absl::Status CheckFinite(const std::string& name, const Tensor& t) const {
    for (size_t i = 0; i < t.values.size(); ++i) {
      if (!std::isfinite(t.values[i])) {
        return absl::InvalidArgumentError(absl::StrCat(
            source_, ": tensor \"", name, "\" has a non-finite value (",
            t.values[i], ") at flat index ", i,
            "; all weights must be finite"));
      }
    }
    return absl::OkStatus();
  }

  const std::map<std::string, Tensor>& tensors_;
  const std::string& source_;
  std::set<std::string> used_;
  int64_t parameter_count_ = 0;
};

// Rows [r0, r0 + rows) of the matrices `parts` side by side (the same rows
// of each), packed for the kernels in `format`: float32 as dequantized,
// bf16 rounded to nearest even, int8 as stored when there is one I8 part
// (its integers and scales, exactly), else quantized per row
// (model/quantize.h). `gap` zero columns follow the first part.
PackedWeights PackRows(const KernelChoice& k, WeightFormat format,
                       std::initializer_list<SourceMatrix> parts, int r0,
                       int rows, int gap = 0) {
  PackedWeights p;
  p.rows = rows;
  p.width = gap;
  for (const SourceMatrix& m : parts) p.width += m.cols();
  const int width = p.width;
  p.data.Resize(kernels::PackedBytes(format, rows, width));
  if (format == WeightFormat::kInt8 && parts.size() == 1 &&
      parts.begin()->is_int8()) {
    const SourceMatrix& m = *parts.begin();
    std::vector<int8_t> q(static_cast<size_t>(rows) * width);
    for (size_t i = 0; i < q.size(); ++i) {
      q[i] = static_cast<int8_t>(
          m.tensor->values[static_cast<size_t>(r0) * width + i]);
    }
    p.scales.assign(m.scales->values.begin() + r0,
                    m.scales->values.begin() + r0 + rows);
    kernels::PackInt8(k.products, q.data(), rows, width, width, p.data.data());
  } else {
    std::vector<float> w;
    w.reserve(static_cast<size_t>(rows) * width);
    for (int r = r0; r < r0 + rows; ++r) {
      for (const SourceMatrix& m : parts) {
        for (int c = 0; c < m.cols(); ++c) w.push_back(m.At(r, c));
        if (&m == parts.begin()) w.insert(w.end(), gap, 0.0f);
      }
    }
    switch (format) {
      case WeightFormat::kF32:
        kernels::PackF32(k.cells, w.data(), rows, width, width, p.data.data());
        break;
      case WeightFormat::kBF16: {
        std::vector<uint16_t> b(w.size());
        for (size_t i = 0; i < w.size(); ++i) b[i] = FloatToBFloat16(w[i]);
        kernels::PackBf16(k.products, b.data(), rows, width, width,
                          p.data.data());
        break;
      }
      case WeightFormat::kInt8: {
        QuantizedRows q = QuantizeRows(w.data(), rows, width, width);
        p.scales = std::move(q.scales);
        kernels::PackInt8(k.products, q.q.data(), rows, width, width,
                          p.data.data());
        break;
      }
    }
  }
  // The kernels load whole vectors of scales: pad to 16 rows with zeros.
  if (format == WeightFormat::kInt8) p.scales.resize((rows + 15) / 16 * 16);
  return p;
}

// Grows `v` to at least n elements (never shrinks) and returns its data.
template <typename T>
T* Reserve(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace

struct Workspace::Buffers {
  std::vector<float> pre;      // gates*H x block columns
  std::vector<float> scratch;  // GRU hh or LSTM unprojected h
  std::vector<float> layer_a;  // layer input/output, ping-pong
  std::vector<float> layer_b;
  std::vector<float> head_out;  // output_size x block columns
  std::vector<float> h_state;   // per layer: out x B
  std::vector<float> c_state;   // per layer: H x B
  std::vector<int> order;       // batch ranks sorted by steps, descending
  std::vector<int> active;      // sessions still running at step t (block)
  std::vector<SequenceRef> refs;
  AlignedBuffer lowp;           // bf16/int8 products' activations
  std::vector<float*> explain;  // per batch rank: its explain buffer

  size_t bytes() const {
    return sizeof(float) *
               (pre.capacity() + scratch.capacity() + layer_a.capacity() +
                layer_b.capacity() + head_out.capacity() + h_state.capacity() +
                c_state.capacity()) +
           sizeof(int) * (order.capacity() + active.capacity()) +
           sizeof(SequenceRef) * refs.capacity() + lowp.size() +
           sizeof(float*) * explain.capacity();
  }
};

Workspace::Workspace() : buffers_(std::make_unique<Buffers>()) {}
Workspace::~Workspace() = default;
Workspace::Workspace(Workspace&&) noexcept = default;
Workspace& Workspace::operator=(Workspace&&) noexcept = default;
size_t Workspace::bytes() const { return buffers_ ? buffers_->bytes() : 0; }

Model::Model(ModelConfig config) : config_(std::move(config)) {}
Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Create(
    const ModelConfig& config_in, const std::map<std::string, Tensor>& tensors,
    const std::string& source, const Options& options) {
  ModelConfig config = config_in;
  if (options.weights) config.weights = *options.weights;
  if (config.input_size < 1 || config.hidden_size < 1 ||
      config.num_layers < 1 || config.proj_size < 0 ||
      (config.proj_size > 0 && (config.cell != CellType::kLstm ||
                                config.proj_size >= config.hidden_size)) ||
      (config.head && config.head->output_size < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": invalid config sizes (input_size ", config.input_size,
        ", hidden_size ", config.hidden_size, ", num_layers ",
        config.num_layers, ", proj_size ", config.proj_size, ")"));
  }
  std::optional<KernelPath> forced = options.kernel_path;
  if (!forced) {
    ASSIGN_OR_RETURN(forced, KernelPathFromEnvironment());
  }
  ASSIGN_OR_RETURN(const KernelChoice kernels,
                   ChooseKernels(config.weights, forced));

  auto model = std::unique_ptr<Model>(new Model(config));
  model->kernels_ = kernels;
  TensorTaker taker(tensors, source);
  const WeightFormat format = config.weights;
  const int H = config.hidden_size;
  const int gates = config.num_gates();
  const int out = config.layer_output_size();
  const bool lstm = config.cell == CellType::kLstm;
  const bool gru = config.cell == CellType::kGru;
  // GRU with linear_before_reset false needs r before W_hn's product, so
  // W_hn is packed on its own and b_hn folds into the input bias.
  const bool reset_first = gru && !config.gru_linear_before_reset;
  const std::string gate_rows = lstm  ? "4*hidden_size"
                                : gru ? "3*hidden_size"
                                      : "hidden_size";
  const int64_t weight_size = WeightFormatBytes(format);
  int64_t flops = 0;
  int64_t weight_bytes = 0;
  // Bytes of one matrix in the format (int8: with its scales).
  auto matrix_bytes = [&](int64_t rows, int64_t cols) {
    return rows * cols * weight_size +
           (format == WeightFormat::kInt8 ? rows * 4 : 0);
  };

  for (int k = 0; k < config.num_layers; ++k) {
    LayerWeights w;
    const int input_size = k == 0 ? config.input_size : out;
    const std::string in_name = k == 0 ? "input_size" : "layer output size";
    const std::string suffix = absl::StrCat("_l", k);
    ASSIGN_OR_RETURN(const SourceMatrix w_ih,
                     taker.TakeMatrix(absl::StrCat("rnn.weight_ih", suffix),
                                      {int64_t{gates} * H, input_size},
                                      absl::StrCat(gate_rows, ", ", in_name)));
    ASSIGN_OR_RETURN(
        const SourceMatrix w_hh,
        taker.TakeMatrix(
            absl::StrCat("rnn.weight_hh", suffix), {int64_t{gates} * H, out},
            absl::StrCat(gate_rows, ", ",
                         config.proj_size ? "proj_size" : "hidden_size")));
    w.input_size = input_size;
    const int rows = gates * H;
    const int hh_rows = reset_first ? 2 * H : rows;
    // float32 and bf16 keep [W_ih | 0 | W_hh] for the fused single-step
    // product; int8 keeps W_ih alone (kernels::LayerView::w_cat). bf16
    // starts W_hh on a whole column pair, so that the fused product pairs
    // h's columns as the product of W_hh alone does (batch invariance).
    const bool fusable = format != WeightFormat::kInt8;
    const int gap = format == WeightFormat::kBF16 ? input_size % 2 : 0;
    w.hh_offset = fusable ? input_size + gap : 0;
    w.w_cat = fusable ? PackRows(kernels, format, {w_ih, w_hh}, 0, rows, gap)
                      : PackRows(kernels, format, {w_ih}, 0, rows);
    w.w_hh = PackRows(kernels, format, {w_hh}, 0, hh_rows);
    if (reset_first) w.w_hn = PackRows(kernels, format, {w_hh}, 2 * H, H);
    weight_bytes += matrix_bytes(rows, input_size) + matrix_bytes(rows, out);
    w.bias_pre.assign(static_cast<size_t>(gates) * H, 0.0f);
    w.bias_hn.assign(gru ? H : 0, 0.0f);
    if (config.bias) {
      ASSIGN_OR_RETURN(const Tensor* b_ih,
                       taker.Take(absl::StrCat("rnn.bias_ih", suffix),
                                  {int64_t{gates} * H}, gate_rows));
      ASSIGN_OR_RETURN(const Tensor* b_hh,
                       taker.Take(absl::StrCat("rnn.bias_hh", suffix),
                                  {int64_t{gates} * H}, gate_rows));
      w.bias_pre = b_ih->values;
      const std::vector<float>& bhh = b_hh->values;
      // LSTM, RNN and reset-first GRU: both biases fold into one. GRU:
      // b_hr and b_hz fold; b_hn sits inside r * (W_hn h + b_hn) and stays
      // apart.
      const int folded = gru && !reset_first ? 2 * H : gates * H;
      for (int i = 0; i < folded; ++i) w.bias_pre[i] += bhh[i];
      if (gru && !reset_first) {
        w.bias_hn.assign(bhh.begin() + 2 * H, bhh.end());
      }
      weight_bytes += 2LL * gates * H * 4;
    }
    if (lstm && config.lstm_peepholes) {
      ASSIGN_OR_RETURN(
          const Tensor* p,
          taker.Take(absl::StrCat("rnn.weight_peephole", suffix),
                     {int64_t{3} * H}, "3*hidden_size: p_i, p_f, p_o"));
      w.peephole = p->values;
      flops += 2LL * 3 * H;
      weight_bytes += 3LL * H * 4;
    }
    if (config.proj_size > 0) {
      ASSIGN_OR_RETURN(const SourceMatrix w_hr,
                       taker.TakeMatrix(absl::StrCat("rnn.weight_hr", suffix),
                                        {out, H}, "proj_size, hidden_size"));
      w.w_hr = PackRows(kernels, format, {w_hr}, 0, out);
      flops += 2LL * out * H;
      weight_bytes += matrix_bytes(out, H);
    }
    flops += 2LL * gates * H * (input_size + out);
    model->max_product_width_ =
        std::max({model->max_product_width_,
                  fusable ? w.hh_offset + out : input_size, H});
    model->layers_.push_back(std::move(w));
  }

  if (config.head) {
    const int O = config.head->output_size;
    ASSIGN_OR_RETURN(const Tensor* hw,
                     taker.Take("head.weight", {O, out},
                                "head.output_size, layer output size"));
    ASSIGN_OR_RETURN(const Tensor* hb,
                     taker.Take("head.bias", {O}, "head.output_size"));
    // Packed for the float32 kernels (whatever the weight format), in a
    // buffer with room to start it on a 64-byte boundary.
    const size_t floats =
        kernels::PackedBytes(WeightFormat::kF32, O, out) / sizeof(float);
    model->head_weight_.assign(floats + 16, 0.0f);
    void* packed = model->head_weight_.data();
    size_t space = model->head_weight_.size() * sizeof(float);
    std::align(64, floats * sizeof(float), packed, space);
    kernels::PackF32(kernels.cells, hw->values.data(), O, out, out, packed);
    model->net_.head_w.data = packed;
    model->head_bias_ = hb->values;
    flops += 2LL * O * out;
    weight_bytes += (int64_t{O} * out + O) * 4;
  }
  RETURN_IF_ERROR(taker.CheckNoneLeft());

  // Views for the kernels into the buffers above, which no longer move.
  for (const LayerWeights& w : model->layers_) {
    kernels::LayerView v;
    v.input_size = w.input_size;
    v.hidden_size = H;
    v.output_size = out;
    v.w_cat = w.w_cat.View(kernels, format);
    v.hh_offset = w.hh_offset;
    v.w_hh = w.w_hh.View(kernels, format);
    v.w_hn = w.w_hn.View(kernels, format);
    v.w_hr = w.w_hr.View(kernels, format);
    v.peephole = w.peephole.empty() ? nullptr : w.peephole.data();
    v.variant.clip = config.clip;
    v.variant.lstm_input_forget = lstm && config.lstm_input_forget;
    v.variant.gru_linear_before_reset = !reset_first;
    v.variant.rnn_nonlinearity = config.nonlinearity;
    v.variant.rnn_alpha = config.nonlinearity_alpha;
    v.variant.rnn_beta = config.nonlinearity_beta;
    v.bias_pre = w.bias_pre.data();
    v.bias_hn = w.bias_hn.empty() ? nullptr : w.bias_hn.data();
    model->layer_views_.push_back(v);
  }
  kernels::NetView& net = model->net_;
  net.cell = config.cell;
  net.cells = kernels.cells;
  net.num_layers = config.num_layers;
  net.layers = model->layer_views_.data();
  net.output_size = config.output_size();
  if (config.head) {
    net.head_w.rows = config.head->output_size;
    net.head_w.width = out;
    net.head_b = model->head_bias_.data();
    net.activation = config.head->activation;
  }

  // The explain record's fields (see model.h).
  int offset = 0;
  auto field = [&](int layer, const char* name, int size) {
    model->explain_layout_.push_back(ExplainField{layer, name, offset, size});
    offset += size;
  };
  for (int l = 0; l < config.num_layers; ++l) {
    if (lstm) {
      for (const char* g : {"i", "f", "g", "o"}) field(l, g, H);
      field(l, "c", H);
    } else if (gru) {
      for (const char* g : {"r", "z", "n"}) field(l, g, H);
    }
    field(l, "h", out);
  }
  model->explain_size_ = offset;

  model->state_size_ = config.num_layers * (out + (lstm ? H : 0));
  model->parameter_count_ = taker.parameter_count();
  model->flops_per_step_ = flops;
  model->weight_bytes_ = weight_bytes;
  return model;
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(
    const std::string& version_dir, const Options& options) {
  const std::string config_path = version_dir + "/config.json";
  const std::string weights_path = version_dir + "/model.safetensors";
  ASSIGN_OR_RETURN(ModelConfig config,
                   ReadModelConfig(config_path, options.config_limits));
  ASSIGN_OR_RETURN(auto tensors,
                   ReadSafetensors(weights_path, options.safetensors_limits));
  return Create(config, tensors, weights_path, options);
}

absl::Status Model::RunChunk(const float* inputs, int steps, float* state,
                             float* outputs, Workspace& workspace,
                             float* explain) const {
  const SequenceRef ref{inputs, steps, state, outputs, explain};
  return RunBatch(std::span<const SequenceRef>(&ref, 1), workspace);
}

absl::Status Model::StepBatch(std::span<const float* const> inputs,
                              std::span<float* const> states,
                              std::span<float* const> outputs,
                              Workspace& workspace) const {
  if (inputs.size() != states.size() || inputs.size() != outputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StepBatch: inputs, states and outputs must have the same length; got ",
        inputs.size(), ", ", states.size(), " and ", outputs.size()));
  }
  std::vector<SequenceRef>& refs = workspace.buffers_->refs;
  refs.clear();  // keeps capacity: no allocation once warmed up
  for (size_t b = 0; b < inputs.size(); ++b) {
    refs.push_back(SequenceRef{inputs[b], 1, states[b], outputs[b]});
  }
  return RunBatch(refs, workspace);
}

absl::Status Model::RunBatch(std::span<const SequenceRef> sequences,
                             Workspace& workspace) const {
  const int B = static_cast<int>(sequences.size());
  if (B == 0) return absl::OkStatus();
  for (int b = 0; b < B; ++b) {
    const SequenceRef& s = sequences[b];
    if (s.steps < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence ", b, " has ", s.steps, " steps; expected at least 1"));
    }
    if (!s.inputs || !s.state || !s.outputs) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", b, " has a null buffer"));
    }
  }

  Workspace::Buffers& ws = *workspace.buffers_;
  const ModelConfig& cfg = config_;
  const int L = cfg.num_layers;
  const int H = cfg.hidden_size;
  const int out = cfg.layer_output_size();
  const int in = cfg.input_size;
  const int gates = cfg.num_gates();
  const bool lstm = cfg.cell == CellType::kLstm;
  const int O = output_size();
  const Normalization* norm = cfg.normalization ? &*cfg.normalization : nullptr;

  // Longest chunk first, so the sessions still running at any step are a
  // prefix of `order` and their columns stay contiguous.
  int* order = Reserve(ws.order, B);
  std::iota(order, order + B, 0);
  std::stable_sort(order, order + B, [&](int x, int y) {
    return sequences[x].steps > sequences[y].steps;
  });
  const int max_steps = sequences[order[0]].steps;

  // Gather every layer's state into contiguous per-layer matrices.
  float* h_state = Reserve(ws.h_state, static_cast<size_t>(L) * out * B);
  float* c_state =
      Reserve(ws.c_state, lstm ? static_cast<size_t>(L) * H * B : 1);
  const int layer_state = out + (lstm ? H : 0);
  for (int j = 0; j < B; ++j) {
    const float* s = sequences[order[j]].state;
    for (int l = 0; l < L; ++l) {
      const float* sl = s + static_cast<size_t>(l) * layer_state;
      std::memcpy(h_state + (static_cast<size_t>(l) * B + j) * out, sl,
                  sizeof(float) * out);
      if (lstm) {
        std::memcpy(c_state + (static_cast<size_t>(l) * B + j) * H, sl + out,
                    sizeof(float) * H);
      }
    }
  }

  // Explain buffers in batch order, if any session asked for a record.
  float* const* explain = nullptr;
  for (int b = 0; b < B; ++b) {
    if (sequences[b].explain) {
      float** e = Reserve(ws.explain, B);
      for (int j = 0; j < B; ++j) e[j] = sequences[order[j]].explain;
      explain = e;
      break;
    }
  }

  int* active = Reserve(ws.active, max_steps);
  {
    int a = B;
    for (int t = 0; t < max_steps; ++t) {
      while (a > 0 && sequences[order[a - 1]].steps <= t) --a;
      active[t] = a;
    }
  }

  const int max_width = std::max(in, out);
  for (int t0 = 0; t0 < max_steps;) {
    // Take whole time steps until the block holds kMaxBlockColumns columns.
    int t1 = t0;
    int cols = 0;
    while (t1 < max_steps &&
           (t1 == t0 || cols + active[t1] <= kMaxBlockColumns)) {
      cols += active[t1++];
    }
    float* x = Reserve(ws.layer_a, static_cast<size_t>(max_width) * cols);
    float* y = Reserve(ws.layer_b, static_cast<size_t>(max_width) * cols);
    float* pre = Reserve(ws.pre, static_cast<size_t>(gates) * H * cols);
    // GRU hh, LSTM unprojected h, or a single-step block's [x; 0; h]
    // columns.
    float* scratch =
        Reserve(ws.scratch,
                static_cast<size_t>(std::max(gates * H, max_width + 1 + out)) *
                    active[t0]);

    // Layer 0 input: column (t, j) holds session order[j]'s step t.
    {
      int col = 0;
      for (int t = t0; t < t1; ++t) {
        for (int j = 0; j < active[t]; ++j, ++col) {
          const float* row =
              sequences[order[j]].inputs + static_cast<size_t>(t) * in;
          float* dst = x + static_cast<size_t>(col) * in;
          if (norm && !norm->input_mean.empty()) {
            for (int i = 0; i < in; ++i) {
              dst[i] = (row[i] - norm->input_mean[i]) / norm->input_std[i];
            }
          } else {
            std::memcpy(dst, row, sizeof(float) * in);
          }
        }
      }
    }

    kernels::BlockView block;
    block.steps = t1 - t0;
    block.active = active + t0;
    block.cols = cols;
    block.batch = B;
    block.x = x;
    block.y = y;
    block.pre = pre;
    block.scratch = scratch;
    block.head_out = cfg.head
                         ? Reserve(ws.head_out, static_cast<size_t>(O) * cols)
                         : nullptr;
    block.h_state = h_state;
    block.c_state = lstm ? c_state : nullptr;
    if (cfg.weights != WeightFormat::kF32) {
      block.lowp_scratch =
          ws.lowp.Reserve(kernels::LowpScratchBytes(max_product_width_, cols));
    }
    block.explain = explain;
    block.explain_step0 = t0;
    block.explain_size = explain_size_;
    const float* result = kernels::ForwardBlock(net_, block);

    {
      int col = 0;
      const bool denorm = norm && !norm->output_mean.empty();
      for (int t = t0; t < t1; ++t) {
        for (int j = 0; j < active[t]; ++j, ++col) {
          const float* src = result + static_cast<size_t>(col) * O;
          float* dst = sequences[order[j]].outputs + static_cast<size_t>(t) * O;
          if (denorm) {
            for (int o = 0; o < O; ++o) {
              dst[o] = src[o] * norm->output_std[o] + norm->output_mean[o];
            }
          } else {
            std::memcpy(dst, src, sizeof(float) * O);
          }
        }
      }
    }
    t0 = t1;
  }

  // Scatter the final state back to each session's buffer.
  for (int j = 0; j < B; ++j) {
    float* s = sequences[order[j]].state;
    for (int l = 0; l < L; ++l) {
      float* sl = s + static_cast<size_t>(l) * layer_state;
      std::memcpy(sl, h_state + (static_cast<size_t>(l) * B + j) * out,
                  sizeof(float) * out);
      if (lstm) {
        std::memcpy(sl + out, c_state + (static_cast<size_t>(l) * B + j) * H,
                    sizeof(float) * H);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Model::StateOutput(const float* state, float* output,
                                Workspace& workspace) const {
  if (!state || !output) {
    return absl::InvalidArgumentError("StateOutput: a null buffer");
  }
  const ModelConfig& cfg = config_;
  const int out = cfg.layer_output_size();
  const int O = output_size();
  const bool lstm = cfg.cell == CellType::kLstm;
  const int layer_state = out + (lstm ? cfg.hidden_size : 0);
  const float* result =
      state + static_cast<size_t>(cfg.num_layers - 1) * layer_state;
  // The head alone: the kernels' own product and activation (so the same
  // operations in the same order as at the end of a step), over no layers.
  std::vector<float> x;
  if (cfg.head) {
    Workspace::Buffers& ws = *workspace.buffers_;
    x.assign(result, result + out);
    x.resize(x.size() + 64, 0.0f);  // zero padding
    kernels::NetView head_only = net_;
    head_only.num_layers = 0;
    const int active = 1;
    kernels::BlockView block;
    block.steps = 1;
    block.active = &active;
    block.cols = 1;
    block.batch = 1;
    block.x = x.data();
    block.y = Reserve(ws.layer_b, static_cast<size_t>(out) + 64);
    block.head_out = Reserve(ws.head_out, static_cast<size_t>(O) + 64);
    result = kernels::ForwardBlock(head_only, block);
  }
  const Normalization* norm = cfg.normalization ? &*cfg.normalization : nullptr;
  if (norm && !norm->output_mean.empty()) {
    for (int o = 0; o < O; ++o) {
      output[o] = result[o] * norm->output_std[o] + norm->output_mean[o];
    }
  } else {
    std::memcpy(output, result, sizeof(float) * O);
  }
  return absl::OkStatus();
}

}  // namespace lstmserve::model
