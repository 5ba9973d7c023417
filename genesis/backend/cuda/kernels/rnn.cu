// Recurrent cells (the CUDA counterpart of csrc/rnn.cpp): the elementwise part
// of one LSTM, GRU or Elman RNN time step, forward and backward, from the gate
// pre-activations the GEMM computed (contract and workspace layouts in
// csrc/rnn.h; gate order is PyTorch's: LSTM (i, f, g, o), GRU (r, z, n)).
//
// One thread per (batch row b, hidden unit j) computes every gate of that
// unit, so each operand is read and written once per step.  2-D operands come
// with their row stride (elements within a row are contiguous, so a block of
// rows of a larger matrix needs no copy).  An absent bias or gradient is a
// zero vector of the caller's, read with row stride 0.
#include "common.cuh"

// (b, j) of flat index i over B x H.
#define GENESIS_CELL_INDEX(i, H) \
  const i64 b = (i) / (H);       \
  const i64 j = (i) - b * (H)

// ---------------------------------------------------------------- LSTM
// Workspace row: the activated gates i, f, g, o.
template <class T>
__device__ void lstm_cell(const T* __restrict__ ig, i64 s_ig, const T* __restrict__ hg, i64 s_hg,
                          const T* __restrict__ cx, i64 s_cx, const T* __restrict__ bi,
                          const T* __restrict__ bh, T* __restrict__ hy, i64 s_hy,
                          T* __restrict__ cy, i64 s_cy, T* __restrict__ ws, i64 s_ws, i64 B,
                          i64 H) {
  GENESIS_FOR(i, B * H) {
    GENESIS_CELL_INDEX(i, H);
    const T* a = ig + b * s_ig;
    const T* h = hg + b * s_hg;
    T* w = ws + b * s_ws;
    const T gi = sigmoid(a[j] + h[j] + (bi[j] + bh[j]));
    const T gf = sigmoid(a[H + j] + h[H + j] + (bi[H + j] + bh[H + j]));
    const T gg = m_tanh(a[2 * H + j] + h[2 * H + j] + (bi[2 * H + j] + bh[2 * H + j]));
    const T go = sigmoid(a[3 * H + j] + h[3 * H + j] + (bi[3 * H + j] + bh[3 * H + j]));
    const T cn = gf * cx[b * s_cx + j] + gi * gg;
    w[j] = gi;
    w[H + j] = gf;
    w[2 * H + j] = gg;
    w[3 * H + j] = go;
    cy[b * s_cy + j] = cn;
    hy[b * s_hy + j] = go * m_tanh(cn);
  }
}

template <class T>
__device__ void lstm_cell_backward(const T* __restrict__ ghy, i64 s_ghy,
                                   const T* __restrict__ gcy, i64 s_gcy,
                                   const T* __restrict__ cx, i64 s_cx, const T* __restrict__ cy,
                                   i64 s_cy, const T* __restrict__ ws, i64 s_ws,
                                   T* __restrict__ gg, i64 s_gg, T* __restrict__ gcx, i64 s_gcx,
                                   i64 B, i64 H) {
  GENESIS_FOR(i, B * H) {
    GENESIS_CELL_INDEX(i, H);
    const T* w = ws + b * s_ws;
    T* dg = gg + b * s_gg;
    const T gi = w[j], gf = w[H + j], gc = w[2 * H + j], go = w[3 * H + j];
    const T tc = m_tanh(cy[b * s_cy + j]);
    const T d = ghy[b * s_ghy + j];
    const T dct = gcy[b * s_gcy + j] + d * go * (T(1) - tc * tc);
    dg[j] = dct * gc * gi * (T(1) - gi);
    dg[H + j] = dct * cx[b * s_cx + j] * gf * (T(1) - gf);
    dg[2 * H + j] = dct * gi * (T(1) - gc * gc);
    dg[3 * H + j] = d * tc * go * (T(1) - go);
    gcx[b * s_gcx + j] = dct * gf;
  }
}

// ---------------------------------------------------------------- GRU
// r and z take both biases summed; n takes them apart (r multiplies only
// gh_n + bh_n).  Workspace row: r, z, n and gh_n + bh_n.
template <class T>
__device__ void gru_cell(const T* __restrict__ ig, i64 s_ig, const T* __restrict__ hg, i64 s_hg,
                         const T* __restrict__ hx, i64 s_hx, const T* __restrict__ bi,
                         const T* __restrict__ bh, T* __restrict__ hy, i64 s_hy,
                         T* __restrict__ ws, i64 s_ws, i64 B, i64 H) {
  GENESIS_FOR(i, B * H) {
    GENESIS_CELL_INDEX(i, H);
    const T* a = ig + b * s_ig;
    const T* h = hg + b * s_hg;
    T* w = ws + b * s_ws;
    const T r = sigmoid(a[j] + h[j] + (bi[j] + bh[j]));
    const T z = sigmoid(a[H + j] + h[H + j] + (bi[H + j] + bh[H + j]));
    const T hn = h[2 * H + j] + bh[2 * H + j];
    const T n = m_tanh(a[2 * H + j] + bi[2 * H + j] + r * hn);
    w[j] = r;
    w[H + j] = z;
    w[2 * H + j] = n;
    w[3 * H + j] = hn;
    hy[b * s_hy + j] = n + z * (hx[b * s_hx + j] - n);
  }
}

// The input and hidden pre-activation gradients differ only in the n block;
// ghx is the direct part of hx's gradient, grad_hy * z.
template <class T>
__device__ void gru_cell_backward(const T* __restrict__ ghy, i64 s_ghy, const T* __restrict__ hx,
                                  i64 s_hx, const T* __restrict__ ws, i64 s_ws,
                                  T* __restrict__ gig, i64 s_gig, T* __restrict__ ghg,
                                  i64 s_ghg, T* __restrict__ ghx, i64 s_ghx, i64 B, i64 H) {
  GENESIS_FOR(i, B * H) {
    GENESIS_CELL_INDEX(i, H);
    const T* w = ws + b * s_ws;
    T* di = gig + b * s_gig;
    T* dh = ghg + b * s_ghg;
    const T r = w[j], z = w[H + j], n = w[2 * H + j], hn = w[3 * H + j];
    const T d = ghy[b * s_ghy + j];
    const T dn = d * (T(1) - z) * (T(1) - n * n);
    const T dr = dn * hn * r * (T(1) - r);
    const T dz = d * (hx[b * s_hx + j] - n) * z * (T(1) - z);
    di[j] = dh[j] = dr;
    di[H + j] = dh[H + j] = dz;
    di[2 * H + j] = dn;
    dh[2 * H + j] = dn * r;
    ghx[b * s_ghx + j] = d * z;
  }
}

// ---------------------------------------------------------------- Elman RNN
template <class T>
__device__ void rnn_cell(const T* __restrict__ ig, i64 s_ig, const T* __restrict__ hg, i64 s_hg,
                         const T* __restrict__ bi, const T* __restrict__ bh,
                         T* __restrict__ hy, i64 s_hy, int relu, i64 B, i64 H) {
  GENESIS_FOR(i, B * H) {
    GENESIS_CELL_INDEX(i, H);
    const T x = ig[b * s_ig + j] + hg[b * s_hg + j] + (bi[j] + bh[j]);
    hy[b * s_hy + j] = relu ? (x > T(0) ? x : T(0)) : m_tanh(x);
  }
}

// From the output: relu' is hy > 0, tanh' is 1 - hy^2.
template <class T>
__device__ void rnn_cell_backward(const T* __restrict__ ghy, i64 s_ghy, const T* __restrict__ hy,
                                  i64 s_hy, T* __restrict__ gg, i64 s_gg, int relu, i64 B,
                                  i64 H) {
  GENESIS_FOR(i, B * H) {
    GENESIS_CELL_INDEX(i, H);
    const T d = ghy[b * s_ghy + j], y = hy[b * s_hy + j];
    gg[b * s_gg + j] = relu ? (y > T(0) ? d : T(0)) : d * (T(1) - y * y);
  }
}

#define GENESIS_RNN(T, s)                                                                      \
  extern "C" __global__ void lstm_cell_##s(const T* ig, i64 s_ig, const T* hg, i64 s_hg,       \
                                           const T* cx, i64 s_cx, const T* bi, const T* bh,    \
                                           T* hy, i64 s_hy, T* cy, i64 s_cy, T* ws, i64 s_ws,  \
                                           i64 B, i64 H) {                                     \
    lstm_cell<T>(ig, s_ig, hg, s_hg, cx, s_cx, bi, bh, hy, s_hy, cy, s_cy, ws, s_ws, B, H);    \
  }                                                                                            \
  extern "C" __global__ void lstm_cell_backward_##s(                                           \
      const T* ghy, i64 s_ghy, const T* gcy, i64 s_gcy, const T* cx, i64 s_cx, const T* cy,    \
      i64 s_cy, const T* ws, i64 s_ws, T* gg, i64 s_gg, T* gcx, i64 s_gcx, i64 B, i64 H) {     \
    lstm_cell_backward<T>(ghy, s_ghy, gcy, s_gcy, cx, s_cx, cy, s_cy, ws, s_ws, gg, s_gg, gcx, \
                          s_gcx, B, H);                                                        \
  }                                                                                            \
  extern "C" __global__ void gru_cell_##s(const T* ig, i64 s_ig, const T* hg, i64 s_hg,        \
                                          const T* hx, i64 s_hx, const T* bi, const T* bh,     \
                                          T* hy, i64 s_hy, T* ws, i64 s_ws, i64 B, i64 H) {    \
    gru_cell<T>(ig, s_ig, hg, s_hg, hx, s_hx, bi, bh, hy, s_hy, ws, s_ws, B, H);               \
  }                                                                                            \
  extern "C" __global__ void gru_cell_backward_##s(const T* ghy, i64 s_ghy, const T* hx,       \
                                                   i64 s_hx, const T* ws, i64 s_ws, T* gig,    \
                                                   i64 s_gig, T* ghg, i64 s_ghg, T* ghx,       \
                                                   i64 s_ghx, i64 B, i64 H) {                  \
    gru_cell_backward<T>(ghy, s_ghy, hx, s_hx, ws, s_ws, gig, s_gig, ghg, s_ghg, ghx, s_ghx,   \
                         B, H);                                                                \
  }                                                                                            \
  extern "C" __global__ void rnn_cell_##s(const T* ig, i64 s_ig, const T* hg, i64 s_hg,        \
                                          const T* bi, const T* bh, T* hy, i64 s_hy,           \
                                          int relu, i64 B, i64 H) {                            \
    rnn_cell<T>(ig, s_ig, hg, s_hg, bi, bh, hy, s_hy, relu, B, H);                             \
  }                                                                                            \
  extern "C" __global__ void rnn_cell_backward_##s(const T* ghy, i64 s_ghy, const T* hy,       \
                                                   i64 s_hy, T* gg, i64 s_gg, int relu, i64 B, \
                                                   i64 H) {                                    \
    rnn_cell_backward<T>(ghy, s_ghy, hy, s_hy, gg, s_gg, relu, B, H);                          \
  }

GENESIS_RNN(float, f32)
GENESIS_RNN(double, f64)
