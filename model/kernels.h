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

#include <string_view>

#include "model/model_config.h"

namespace lstmserve::model::kernels {

// A weight matrix laid out by PackWeights: panels of one SIMD vector of
// rows (16 floats for AVX-512, 8 for AVX2), each panel column by column,
// the last panel padded with zeros. A matrix-vector product then reads the
// weights in one sequential sweep, and the matrix product's tile reads
// whole vectors of rows, with no horizontal sums in either.
struct PackedMatrix {
  const float* data = nullptr;  // 64-byte aligned
  int rows = 0;
  int width = 0;  // columns
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
  // [W_ih | W_hh] (gates*H x input_size + output_size): a single-step LSTM
  // batch multiplies [x; h] by both at once; its first input_size columns
  // are W_ih, which projects a chunk's inputs.
  PackedMatrix w_cat;
  // W_hh again, on its own so that the serial loop over a chunk's steps
  // streams it contiguously (reading it out of w_cat measured 15% slower).
  PackedMatrix w_hh;
  const float* w_hr = nullptr;      // output_size x H row-major, or null
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
  int num_layers = 0;
  const LayerView* layers = nullptr;
  int output_size = 0;            // of the result: head's, or the last layer's
  const float* head_w = nullptr;  // output_size x layer output, row-major
                                  // (or null: no head)
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
  // max(gates*H, input width + output_size) x active[0]
  float* scratch = nullptr;
  float* head_out = nullptr;  // output_size x cols (when there is a head)
  float* h_state = nullptr;   // per layer: output_size x batch
  float* c_state = nullptr;   // LSTM, per layer: H x batch (else null)
};

// Runs every layer and the head over the block, updating the state matrices.
// Returns the result columns (net.output_size x cols): head_out, x or y.
const float* ForwardBlock(const NetView& net, const BlockView& block);

// Floats PackWeights writes for a rows x width matrix (the same for every
// ISA).
size_t PackedWeightsSize(int rows, int width);
// Lays out a row-major rows x width matrix (rows `row_stride` apart) as a
// PackedMatrix for the active ISA. `out` must be 64-byte aligned.
void PackWeights(const float* w, int rows, int width, int row_stride,
                 float* out);

enum class Isa { kGeneric, kAvx512 };

// The variant ForwardBlock uses, fixed at first use: AVX-512 when the CPU
// and build support it, unless $LSTMSERVE_ISA=generic (the test suite runs
// once more that way, so both variants are checked).
Isa ActiveIsa();
std::string_view IsaName(Isa isa);

namespace generic {
const float* ForwardBlock(const NetView& net, const BlockView& block);
void PackWeights(const float* w, int rows, int width, int row_stride,
                 float* out);
}  // namespace generic
namespace avx512 {
const float* ForwardBlock(const NetView& net, const BlockView& block);
void PackWeights(const float* w, int rows, int width, int row_stride,
                 float* out);
}  // namespace avx512

}  // namespace lstmserve::model::kernels
