// Recurrent cells: the elementwise part of one time step of an LSTM, GRU or
// Elman RNN, all gates in one pass, forward and backward.  The matrix
// products (x W_ih^T, h W_hh^T) are computed by the GEMM beforehand; the
// kernels take those "gate pre-activations".
//
// Operands are 2-D with B rows (the batch); their rows may have any stride but
// their elements must be contiguous (stride 1), so a block of rows of a larger
// matrix needs no copy.  Biases are contiguous 1-D; absent ones are nullptr
// (zero).  All operands share one float dtype (f32 or f64).  Gate blocks follow
// PyTorch's order: LSTM (i, f, g, o), GRU (r, z, n).
//
// rnn_sequence_forward / _backward run one direction of one layer over a whole
// packed sequence (PyTorch's PackedSequence layout: the N rows of the packed
// arrays are the time steps one after the other, step t holding the first
// batch_sizes[t] sequences, batch_sizes non-increasing): per step one GEMM and
// one cell, states kept in preallocated per-row (N, .) arrays.
#pragma once
#include "view.h"

namespace genesis {

enum class RnnMode : int { lstm, gru, rnn_tanh, rnn_relu, count_ /* keep last */ };

// Per-row arrays the sequence forward fills for its backward (N rows each):
// h_prev (N, H) the hidden state entering each row's step; for LSTM c_prev and
// cell (N, H), the cell state entering and leaving the step; for LSTM and GRU
// workspace (N, 4H), the cell kernel's workspace.  Absent ones are nullptr.
struct RnnSaved {
  const View* h_prev = nullptr;
  const View* c_prev = nullptr;
  const View* cell = nullptr;
  const View* workspace = nullptr;
};

// What the sequence backward writes: gates (N, G*H), the gradient of the gate
// pre-activations (GRU: of input_gates; hidden_gates, GRU only, of the hidden ones);
// h0 and, LSTM only, c0 (B, H); unless nullptr, w_hh (G*H, H, contiguous) and the
// biases (G*H, contiguous; the gate gradients summed over the rows).
struct RnnGrads {
  View gates;
  const View* hidden_gates = nullptr;
  View h0;
  const View* c0 = nullptr;
  const View* w_hh = nullptr;
  const View* input_bias = nullptr;
  const View* hidden_bias = nullptr;
};

#define GENESIS_DECLARE_RNN(ns)                                                        \
  namespace ns {                                                                       \
  /* input_gates, hidden_gates (B, 4H); cx, hy, cy (B, H); biases (4H).               \
     (i, f, g, o) = (s, s, tanh, s)(input_gates + input_bias + hidden_gates +          \
     hidden_bias), s the sigmoid; cy = f cx + i g, hy = o tanh(cy).  workspace (B, 4H) \
     receives the activated gates i, f, g, o for the backward. */                      \
  void lstm_cell_forward(const View& input_gates, const View& hidden_gates,            \
                         const View& cx, const View* input_bias,                       \
                         const View* hidden_bias, const View& hy, const View& cy,      \
                         const View& workspace);                                       \
  /* Gradients of lstm_cell_forward: grad_gates (B, 4H) of the pre-activations (the   \
     gradient of input_gates, hidden_gates and both biases before summing over B),     \
     grad_cx (B, H).  A null grad_hy or grad_cy is zero. */                            \
  void lstm_cell_backward(const View* grad_hy, const View* grad_cy, const View& cx,    \
                          const View& cy, const View& workspace, const View& grad_gates, \
                          const View& grad_cx);                                        \
  /* input_gates, hidden_gates (B, 3H); hx, hy (B, H); biases (3H).                   \
     r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r (gh_n)) with each gi,  \
     gh including its bias; hy = n + z (hx - n).  workspace (B, 4H) receives r, z, n   \
     and gh_n. */                                                                      \
  void gru_cell_forward(const View& input_gates, const View& hidden_gates,             \
                        const View& hx, const View* input_bias, const View* hidden_bias, \
                        const View& hy, const View& workspace);                        \
  /* Gradients of gru_cell_forward: of the input and hidden pre-activations (B, 3H;   \
     they differ in the n block) and the direct part of hx's gradient, grad_hy * z    \
     (B, H), to which the caller adds grad_hidden_gates @ W_hh. */                     \
  void gru_cell_backward(const View& grad_hy, const View& hx, const View& workspace,   \
                         const View& grad_input_gates, const View& grad_hidden_gates,  \
                         const View& grad_hx);                                         \
  /* input_gates, hidden_gates, hy (B, H); biases (H).  hy = act(input_gates +        \
     input_bias + hidden_gates + hidden_bias), act tanh or (relu) max(0, .). */        \
  void rnn_cell_forward(const View& input_gates, const View& hidden_gates,             \
                        const View* input_bias, const View* hidden_bias, bool relu,    \
                        const View& hy);                                               \
  /* grad_gates (B, H) = grad_hy * act'(pre-activation), computed from hy. */         \
  void rnn_cell_backward(const View& grad_hy, const View& hy, bool relu,               \
                         const View& grad_gates);                                      \
  /* One direction over a packed sequence of `steps` steps (reverse: last step      \
     first).  input_gates (N, G*H) = x W_ih^T (G = 4, 3, 1 gates), w_hh (G*H, H),     \
     biases (G*H) or nullptr, h0 / c0 (B, H) or nullptr (zeros; c0 LSTM only),      \
     B = batch_sizes[0].  Writes out (N, H), the hidden state of every row, h_n and   \
     for LSTM c_n (B, H), each sequence's state after its last step, and saved. */    \
  void rnn_sequence_forward(RnnMode mode, const View& input_gates, const View& w_hh,  \
                            const View* input_bias, const View* hidden_bias,         \
                            const View* h0, const View* c0,                          \
                            const int64_t* batch_sizes, int64_t steps, bool reverse, \
                            const View& out, const View& h_n, const View* c_n,       \
                            const RnnSaved& saved);                                  \
  /* Gradients of rnn_sequence_forward from those of out (N, H), h_n and c_n (B, H;  \
     grad_c_n LSTM only; any strides), its saved arrays and (Elman RNN only) out,     \
     written to grads. */                                                            \
  void rnn_sequence_backward(RnnMode mode, const View& w_hh, const int64_t* batch_sizes, \
                             int64_t steps, bool reverse, const View& grad_out,       \
                             const View& grad_h_n, const View* grad_c_n,              \
                             const View* out, const RnnSaved& saved,                  \
                             const RnnGrads& grads);                                  \
  }

GENESIS_DECLARE_RNN(generic)
GENESIS_DECLARE_RNN(avx2)
GENESIS_DECLARE_RNN(avx512)

}  // namespace genesis
