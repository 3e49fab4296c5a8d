// Internal to lstmserve_model: the numeric kernels behind Model::RunBatch,
// compiled once per instruction set and chosen at run time, so one portable
// binary (x86-64-v3) still uses AVX-512 where the CPU has it.
//
// The interface is plain pointers on purpose: each instruction-set variant is
// its own translation unit with Eigen renamed into a private namespace (see
// kernels_impl.inc), so no Eigen type may cross this boundary.
//
// Thread-safety: the functions are pure apart from the buffers they are
// handed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "model/kernel_path.h"
#include "model/model_config.h"
#include "model/weight_format.h"

namespace lstmserve::model::kernels {

struct PackedMatrix;

// One product out = W x [+ bias] [+ out] by a reduced-precision kernel
// (bf16 or int8), over columns [0, depth) of W.
struct ProductArgs {
  const PackedMatrix* w = nullptr;
  // Columns of W multiplied, from the first: w->width, or (bf16 only) fewer,
  // as a chunk's input projection takes the W_ih part of [W_ih | W_hh]
  // (int8's unsigned activations need the whole width: its correction is
  // the whole row's sum).
  int depth = 0;
  const float* x = nullptr;  // depth x cols, column-major
  int cols = 0;
  float* out = nullptr;         // w->rows x cols, column-major
  const float* bias = nullptr;  // per row, or null
  bool accumulate = false;      // add to what out holds
  // Each element's chain starts from what out holds, bias after it
  // (kernels_impl.inc, Sum::resume); bf16 only.
  bool resume = false;
  bool reverse = false;     // walk the panels last to first (Matvec)
  void* scratch = nullptr;  // LowpScratchBytes(w->width, cols), aligned
};
using ProductFn = void (*)(const ProductArgs& args);

// A weight matrix laid out for one product kernel, in panels of one SIMD
// vector of rows (16 for the AVX-512 paths, 8 for the AVX2 ones), the last
// panel padded with zero rows, so that a matrix-vector product reads the
// weights in one sequential sweep and the matrix product's tile reads whole
// vectors of rows, with no horizontal sums in either. Within a panel:
//   f32:  column by column (one vector of floats per column);
//   bf16: column pair by column pair, one dword per row holding
//         bf16(w[r][k]) in its low half and bf16(w[r][k+1]) in its high
//         half (the operand layout of vdpbf16ps; the widening kernels read
//         the same layout);
//   int8: VNNI paths: column quad by column quad, four int8 per row (the
//         operand layout of vpdpbusd); vpmaddwd paths: column pair by pair,
//         two int8 per row. After the panels: one int32 per (padded) row,
//         the sum of that row's int8 weights (the VNNI kernels' correction
//         for their unsigned activations).
// The width is padded with zero columns to a whole pair or quad.
struct PackedMatrix {
  const void* data = nullptr;  // 64-byte aligned
  int rows = 0;
  int width = 0;  // columns
  WeightFormat format = WeightFormat::kF32;
  // int8: one per row, w = q * scale (rows rounded up to 16, zero-padded:
  // the kernels load whole vectors of them).
  const float* scales = nullptr;
  ProductFn product = nullptr;  // bf16, int8: the kernel that reads `data`
};

// The cell variants the ONNX operators define beyond PyTorch's cells (see
// ModelConfig). The defaults select the PyTorch cells, whose kernels stay
// as they were; any other value routes the layer to the variant kernels.
struct CellVariant {
  float clip = 0.0f;  // > 0: gate pre-activations clamped to [-clip, clip]
  bool lstm_input_forget = false;  // f = 1 - i
  bool gru_linear_before_reset = true;
  Nonlinearity rnn_nonlinearity = Nonlinearity::kTanh;
  float rnn_alpha = 0.0f;
  float rnn_beta = 0.0f;
};

// One recurrent layer's weights as the kernels read them.
struct LayerView {
  int input_size = 0;
  int hidden_size = 0;
  int output_size = 0;  // proj_size or hidden_size
  // float32 and bf16: [W_ih | 0 | W_hh] (gates*H x hh_offset + output_size,
  // the zero columns only for bf16 with an odd input_size, so that W_hh
  // starts on a whole column pair): a single-step LSTM or RNN batch
  // multiplies [x; 0; h] by both at once; its first input_size columns are
  // W_ih, which projects a chunk's inputs.
  // int8: W_ih alone (width input_size; W_ih and W_hh have their own
  // scales, and x and h their own activation scales), so every step takes
  // the unfused path.
  PackedMatrix w_cat;
  // The column of w_cat where W_hh starts; 0 when w_cat is W_ih alone.
  int hh_offset = 0;
  // W_hh again, on its own so that the serial loop over a chunk's steps
  // streams it contiguously (reading it out of w_cat measured 15% slower).
  PackedMatrix w_hh;
  PackedMatrix w_hr;                // LSTM projection (output_size x H)
  const float* bias_pre = nullptr;  // gates*H: folded biases
  const float* bias_hn = nullptr;   // GRU: H (b_hn); LSTM: null
  // LSTM peepholes: 3*H (p_i, p_f, p_o), or null.
  const float* peephole = nullptr;
  // GRU with linear_before_reset false: w_hh holds only the r and z rows
  // (2H) and W_hn (H x H) is here, applied to r * h.
  PackedMatrix w_hn;
  CellVariant variant;
};

struct NetView {
  CellType cell = CellType::kLstm;
  KernelPath cells = KernelPath::kGeneric;  // ForwardBlock's variant
  int num_layers = 0;
  const LayerView* layers = nullptr;
  int output_size = 0;  // of the result: head's, or the last layer's
  // output_size x layer output, float32 (packed for `cells`); no data: no
  // head.
  PackedMatrix head_w;
  const float* head_b = nullptr;
  Activation activation = Activation::kIdentity;
};

// One block of whole time steps. Column c of x/y/pre is one (step, session);
// the columns of step s are [start(s), start(s) + active[s]) and session rank
// j < active[s] is column start(s) + j.
struct BlockView {
  int steps = 0;                // time steps in the block
  const int* active = nullptr;  // sessions running at each step
  int cols = 0;                 // sum of active[0..steps)
  int batch = 0;                // B: columns of the state matrices
  float* x = nullptr;           // layer-0 input (in x cols); clobbered
  float* y = nullptr;           // scratch (max width x cols)
  float* pre = nullptr;         // gates*H x cols
  // max(gates*H, input width + 1 + output_size) x active[0]
  float* scratch = nullptr;
  float* head_out = nullptr;  // output_size x cols (when there is a head)
  float* h_state = nullptr;   // per layer: output_size x batch
  float* c_state = nullptr;   // LSTM, per layer: H x batch (else null)
  // bf16/int8 products' scratch: LowpScratchBytes(max width, cols).
  void* lowp_scratch = nullptr;
  // The record-the-gates path (Model::explain_size): null when no session
  // asked for it (then nothing is recorded and nothing costs). Else, per
  // session rank j < active[0]: its explain buffer or null; the record of
  // the block's step s goes to row explain_step0 + s, explain_size floats.
  float* const* explain = nullptr;
  int explain_step0 = 0;
  int explain_size = 0;
};

// Runs every layer and the head over the block, updating the state matrices.
// Returns the result columns (net.output_size x cols): head_out, x or y.
const float* ForwardBlock(const NetView& net, const BlockView& block);

// Bytes a packed rows x width matrix takes in `format`, the same for every
// path (rows rounded up to 16, the width to a whole quad).
size_t PackedBytes(WeightFormat format, int rows, int width);

// Lays out a row-major rows x width matrix (rows `row_stride` apart) for the
// path's kernels (see PackedMatrix). `out` must be 64-byte aligned and hold
// PackedBytes(format, rows, width). f32 packs for the cells' path, bf16 and
// int8 for the products' path; bf16 takes bit patterns (FloatToBFloat16),
// int8 the quantized weights.
void PackF32(KernelPath cells, const float* w, int rows, int width,
             int row_stride, void* out);
void PackBf16(KernelPath products, const uint16_t* w, int rows, int width,
              int row_stride, void* out);
void PackInt8(KernelPath products, const int8_t* w, int rows, int width,
              int row_stride, void* out);
// The product kernel of `format` (bf16 or int8) on `products`.
ProductFn LowpProduct(KernelPath products, WeightFormat format);
// Scratch bytes a bf16/int8 product of `depth` x `cols` activations needs.
size_t LowpScratchBytes(int depth, int cols);

// Runs every layer and the head over the block, updating the state matrices.
// Returns the result columns (net.output_size x cols): head_out, x or y.
const float* ForwardBlock(const NetView& net, const BlockView& block);

// Each instruction-set variant (kernels_<path>.cc). generic and avx512 hold
// the cells and all three formats' products; the others only the products
// their instructions speed up.
#define LSTMSERVE_CELL_KERNELS                                           \
  const float* ForwardBlock(const NetView& net, const BlockView& block); \
  void PackF32(const float* w, int rows, int width, int row_stride, void* out);
#define LSTMSERVE_BF16_KERNELS                                          \
  void PackBf16(const uint16_t* w, int rows, int width, int row_stride, \
                void* out);                                             \
  void ProductBf16(const ProductArgs& args);
#define LSTMSERVE_INT8_KERNELS                                        \
  void PackInt8(const int8_t* w, int rows, int width, int row_stride, \
                void* out);                                           \
  void ProductInt8(const ProductArgs& args);
namespace generic {
LSTMSERVE_CELL_KERNELS
LSTMSERVE_BF16_KERNELS
LSTMSERVE_INT8_KERNELS
}  // namespace generic
namespace avx512 {
LSTMSERVE_CELL_KERNELS
LSTMSERVE_BF16_KERNELS
LSTMSERVE_INT8_KERNELS
}  // namespace avx512
namespace avx512_bf16 {
LSTMSERVE_BF16_KERNELS
}  // namespace avx512_bf16
namespace avx512_vnni {
LSTMSERVE_INT8_KERNELS
}  // namespace avx512_vnni
namespace avx_vnni {
LSTMSERVE_INT8_KERNELS
}  // namespace avx_vnni
#undef LSTMSERVE_CELL_KERNELS
#undef LSTMSERVE_BF16_KERNELS
#undef LSTMSERVE_INT8_KERNELS

}  // namespace lstmserve::model::kernels
