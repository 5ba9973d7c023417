// Recurrent cell kernels (contract in rnn.h).
//
// One pass per batch row computes every gate of that row: the loop over the
// hidden units is vectorized (the float sigmoid and tanh of
// elementwise_math.h have no libm calls) and threads split the rows.  Both
// biases are summed once per call into a scratch vector, so the inner loops
// have no branches for absent operands; an absent gradient reads a zero row.
#include "rnn.h"

#include <omp.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "elementwise.h"
#include "elementwise_math.h"
#include "gemm.h"

namespace genesis::GENESIS_ISA_NS {
namespace {

// Below this many hidden values (B * H) a call stays on the calling thread.
constexpr int64_t kParallelWork = 1 << 13;

std::string shape_str(const View& v) {
  std::string s = "(";
  for (int d = 0; d < v.ndim; ++d) {
    if (d) s += ", ";
    s += std::to_string(v.shape[d]);
  }
  if (v.ndim == 1) s += ",";
  return s + ")";
}

// Checks one call's operands against its batch size B and hidden size H.
struct Check {
  const char* op;
  DType dtype;
  int64_t batch, hidden;

  Check(const char* op, const View& hy, DType dtype) : op(op), dtype(dtype) {
    if (dtype != DType::f32 && dtype != DType::f64)
      throw type_error(std::string(op) + ": operands have dtype " + dtype_name(dtype) +
                       ", expected float32 or float64");
    if (hy.ndim != 2)
      throw std::invalid_argument(std::string(op) + ": expected 2-D (batch, hidden) states, "
                                  "got shape " + shape_str(hy));
    batch = hy.shape[0];
    hidden = hy.shape[1];
  }

  void type(const char* what, const View& v) const {
    if (v.dtype != dtype)
      throw type_error(std::string(op) + ": " + what + " has dtype " + dtype_name(v.dtype) +
                       ", expected " + dtype_name(dtype));
  }

  // (batch, gates * hidden), any strides.
  void shape(const char* what, const View& v, int gates) const {
    type(what, v);
    const int64_t cols = gates * hidden;
    if (v.ndim != 2 || v.shape[0] != batch || v.shape[1] != cols)
      throw std::invalid_argument(std::string(op) + ": " + what + " has shape " +
                                  shape_str(v) + ", expected (" + std::to_string(batch) +
                                  ", " + std::to_string(cols) + ")");
  }

  // (batch, gates * hidden), elements of a row contiguous.
  void rows(const char* what, const View& v, int gates) const {
    shape(what, v, gates);
    const int64_t cols = gates * hidden;
    if (cols > 1 && batch > 0 && v.stride[1] != 1)
      throw std::invalid_argument(std::string(op) + ": the elements of each row of " + what +
                                  " must be contiguous");
  }

  void vector(const char* what, const View* v, int gates) const {
    if (!v) return;
    type(what, *v);
    const int64_t n = gates * hidden;
    if (v->ndim != 1 || v->shape[0] != n)
      throw std::invalid_argument(std::string(op) + ": " + what + " has shape " +
                                  shape_str(*v) + ", expected (" + std::to_string(n) + ",)");
    if (n > 1 && v->stride[0] != 1)
      throw std::invalid_argument(std::string(op) + ": " + what + " must be contiguous");
  }

  bool parallel() const { return batch * hidden >= kParallelWork; }
};

// Row b of a 2-D operand.
template <class T>
struct Rows {
  T* data;
  int64_t stride;
  T* operator[](int64_t b) const { return data + b * stride; }
};

template <class T>
Rows<T> rows_of(const View& v) {
  return {static_cast<T*>(v.data), v.shape[1] > 0 ? v.stride[0] : 0};
}

// The rows of an optional operand, or a zero row repeated (`zeros` keeps it).
template <class T>
Rows<const T> rows_or_zero(const View* v, std::vector<T>& zeros, int64_t n) {
  if (v) return rows_of<const T>(*v);
  zeros.assign(n, T(0));
  return {zeros.data(), 0};
}

// sum[k] = a[k] + b[k] over n elements, absent vectors zero.
template <class T>
std::vector<T> bias_sum(const View* a, const View* b, int64_t n) {
  std::vector<T> sum(n, T(0));
  for (const View* v : {a, b})
    if (v) {
      const T* p = static_cast<const T*>(v->data);
      for (int64_t k = 0; k < n; ++k) sum[k] += p[k];
    }
  return sum;
}

template <class T>
T sigmoid(T x) {
  return vm::sigmoid(x);
}

// ---------------------------------------------------------------- LSTM
// bb: both biases summed (4H), see bias_sum.
template <class T>
void lstm_forward(const Check& c, const View& ig, const View& hg, const View& cx, const T* bb,
                  const View& hy, const View& cy, const View& ws) {
  const int64_t B = c.batch, H = c.hidden;
  const auto a = rows_of<const T>(ig), h = rows_of<const T>(hg), c0 = rows_of<const T>(cx);
  const auto w = rows_of<T>(ws), ho = rows_of<T>(hy), co = rows_of<T>(cy);
#pragma omp parallel for schedule(static) if (c.parallel())
  for (int64_t b = 0; b < B; ++b) {
    const T *ar = a[b], *hr = h[b], *cr = c0[b];
    T *wr = w[b], *hor = ho[b], *cor = co[b];
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T i = sigmoid(ar[j] + hr[j] + bb[j]);
      const T f = sigmoid(ar[H + j] + hr[H + j] + bb[H + j]);
      const T g = vm::tanh(ar[2 * H + j] + hr[2 * H + j] + bb[2 * H + j]);
      const T o = sigmoid(ar[3 * H + j] + hr[3 * H + j] + bb[3 * H + j]);
      const T cn = f * cr[j] + i * g;
      wr[j] = i;
      wr[H + j] = f;
      wr[2 * H + j] = g;
      wr[3 * H + j] = o;
      cor[j] = cn;
      hor[j] = o * vm::tanh(cn);
    }
  }
}

template <class T>
void lstm_backward(const Check& c, const View* ghy, const View* gcy, const View& cx,
                   const View& cy, const View& ws, const View& gg, const View& gcx) {
  const int64_t B = c.batch, H = c.hidden;
  std::vector<T> zh, zc;
  const auto dh = rows_or_zero<T>(ghy, zh, H), dc = rows_or_zero<T>(gcy, zc, H);
  const auto c0 = rows_of<const T>(cx), c1 = rows_of<const T>(cy), w = rows_of<const T>(ws);
  const auto dg = rows_of<T>(gg), dc0 = rows_of<T>(gcx);
#pragma omp parallel for schedule(static) if (c.parallel())
  for (int64_t b = 0; b < B; ++b) {
    const T *dhr = dh[b], *dcr = dc[b], *c0r = c0[b], *c1r = c1[b], *wr = w[b];
    T *dgr = dg[b], *dc0r = dc0[b];
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T i = wr[j], f = wr[H + j], g = wr[2 * H + j], o = wr[3 * H + j];
      const T tc = vm::tanh(c1r[j]);
      const T d = dhr[j];
      const T dct = dcr[j] + d * o * (T(1) - tc * tc);
      dgr[j] = dct * g * i * (T(1) - i);
      dgr[H + j] = dct * c0r[j] * f * (T(1) - f);
      dgr[2 * H + j] = dct * i * (T(1) - g * g);
      dgr[3 * H + j] = d * tc * o * (T(1) - o);
      dc0r[j] = dct * f;
    }
  }
}

// ---------------------------------------------------------------- GRU
// r and z take both biases summed; n takes them apart (r multiplies only gh_n + b_hn):
// the GRU's bias vector is [b_r, b_z, bi_n, bh_n] (4H).
template <class T>
std::vector<T> gru_bias(const View* bi, const View* bh, int64_t H) {
  std::vector<T> bias = bias_sum<T>(bi, bh, 2 * H);
  bias.resize(4 * H, T(0));
  for (int k = 0; k < 2; ++k)
    if (const View* v = k ? bh : bi)
      for (int64_t j = 0; j < H; ++j)
        bias[(2 + k) * H + j] = static_cast<const T*>(v->data)[2 * H + j];
  return bias;
}

// bb: gru_bias.
template <class T>
void gru_forward(const Check& c, const View& ig, const View& hg, const View& hx, const T* bb,
                 const View& hy, const View& ws) {
  const int64_t B = c.batch, H = c.hidden;
  const auto a = rows_of<const T>(ig), h = rows_of<const T>(hg), h0 = rows_of<const T>(hx);
  const auto w = rows_of<T>(ws), ho = rows_of<T>(hy);
#pragma omp parallel for schedule(static) if (c.parallel())
  for (int64_t b = 0; b < B; ++b) {
    const T *ar = a[b], *hr = h[b], *h0r = h0[b];
    T *wr = w[b], *hor = ho[b];
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T r = sigmoid(ar[j] + hr[j] + bb[j]);
      const T z = sigmoid(ar[H + j] + hr[H + j] + bb[H + j]);
      const T hn = hr[2 * H + j] + bb[3 * H + j];
      const T n = vm::tanh(ar[2 * H + j] + bb[2 * H + j] + r * hn);
      wr[j] = r;
      wr[H + j] = z;
      wr[2 * H + j] = n;
      wr[3 * H + j] = hn;
      hor[j] = n + z * (h0r[j] - n);
    }
  }
}

template <class T>
void gru_backward(const Check& c, const View& ghy, const View& hx, const View& ws,
                  const View& gig, const View& ghg, const View& ghx) {
  const int64_t B = c.batch, H = c.hidden;
  const auto dh = rows_of<const T>(ghy), h0 = rows_of<const T>(hx), w = rows_of<const T>(ws);
  const auto di = rows_of<T>(gig), dhg = rows_of<T>(ghg), dh0 = rows_of<T>(ghx);
#pragma omp parallel for schedule(static) if (c.parallel())
  for (int64_t b = 0; b < B; ++b) {
    const T *dhr = dh[b], *h0r = h0[b], *wr = w[b];
    T *dir = di[b], *dhgr = dhg[b], *dh0r = dh0[b];
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const T r = wr[j], z = wr[H + j], n = wr[2 * H + j], hn = wr[3 * H + j];
      const T d = dhr[j];
      const T dn = d * (T(1) - z) * (T(1) - n * n);
      const T dr = dn * hn * r * (T(1) - r);
      const T dz = d * (h0r[j] - n) * z * (T(1) - z);
      dir[j] = dhgr[j] = dr;
      dir[H + j] = dhgr[H + j] = dz;
      dir[2 * H + j] = dn;
      dhgr[2 * H + j] = dn * r;
      dh0r[j] = d * z;
    }
  }
}

// ---------------------------------------------------------------- Elman RNN
// bb: both biases summed (H).
template <class T>
void rnn_forward(const Check& c, const View& ig, const View& hg, const T* bb, bool relu,
                 const View& hy) {
  const int64_t B = c.batch, H = c.hidden;
  const auto a = rows_of<const T>(ig), h = rows_of<const T>(hg);
  const auto ho = rows_of<T>(hy);
#pragma omp parallel for schedule(static) if (c.parallel())
  for (int64_t b = 0; b < B; ++b) {
    const T *ar = a[b], *hr = h[b];
    T* hor = ho[b];
    if (relu) {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const T x = ar[j] + hr[j] + bb[j];
        hor[j] = x > T(0) ? x : T(0);
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) hor[j] = vm::tanh(ar[j] + hr[j] + bb[j]);
    }
  }
}

template <class T>
void rnn_backward(const Check& c, const View& ghy, const View& hy, bool relu, const View& gg) {
  const int64_t B = c.batch, H = c.hidden;
  const auto dh = rows_of<const T>(ghy), ho = rows_of<const T>(hy);
  const auto dg = rows_of<T>(gg);
#pragma omp parallel for schedule(static) if (c.parallel())
  for (int64_t b = 0; b < B; ++b) {
    const T *dhr = dh[b], *hr = ho[b];
    T* dgr = dg[b];
    if (relu) {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dgr[j] = hr[j] > T(0) ? dhr[j] : T(0);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) dgr[j] = dhr[j] * (T(1) - hr[j] * hr[j]);
    }
  }
}


// ---------------------------------------------------------------- whole sequences
// A layer's time loop: per step one GEMM (h_prev W_hh^T forward, grad_gates W_hh
// backward) and one call of the cell code above on a block of rows of the per-row
// arrays, so nothing is allocated per step and h goes straight into `out`.

int gate_count(RnnMode mode) {
  return mode == RnnMode::lstm ? 4 : mode == RnnMode::gru ? 3 : 1;
}

// One time step, in the order the steps run.
struct Step {
  int64_t first, n;  // its rows first .. first + n of the packed arrays
  int64_t carried;   // rows continuing sequences of the step run before; the rest start
                     // from the initial state
  int64_t ends;      // rows ends .. n end their sequence here (the next step has fewer)
};

// A checked call: mode, sizes and the steps in run order.
struct Layer {
  RnnMode mode;
  int gates;
  int64_t batch, hidden;
  std::vector<Step> plan;
};

// Checks batch_sizes (positive, non-increasing, summing to the N rows of `rows_view`,
// (N, H)), the rows of `state` (B = batch_sizes[0]) and w_hh (G*H, H); `mode` is valid.
Layer make_layer(const char* op, RnnMode mode, const View& rows_view, const View& state,
                 const View& w_hh, const int64_t* batch_sizes, int64_t steps, bool reverse) {
  if (steps < 1) throw std::invalid_argument(std::string(op) + ": expected at least one step");
  Layer L{mode, gate_count(mode), batch_sizes[0], rows_view.shape[1], {}};
  int64_t total = 0;
  for (int64_t t = 0; t < steps; ++t) {
    if (batch_sizes[t] < 1 || (t && batch_sizes[t] > batch_sizes[t - 1]))
      throw std::invalid_argument(std::string(op) + ": batch_sizes must be positive and "
                                  "non-increasing, got " + std::to_string(batch_sizes[t]) +
                                  " at step " + std::to_string(t));
    total += batch_sizes[t];
  }
  if (total != rows_view.shape[0])
    throw std::invalid_argument(std::string(op) + ": batch_sizes sum to " +
                                std::to_string(total) + " rows, the sequence has " +
                                std::to_string(rows_view.shape[0]));
  if (state.shape[0] != L.batch)
    throw std::invalid_argument(std::string(op) + ": states have " +
                                std::to_string(state.shape[0]) +
                                " rows, expected batch_sizes[0] = " +
                                std::to_string(L.batch));
  const int64_t GH = L.gates * L.hidden;
  if (w_hh.dtype != rows_view.dtype)
    throw type_error(std::string(op) + ": w_hh has dtype " + dtype_name(w_hh.dtype) +
                     ", expected " + dtype_name(rows_view.dtype));
  if (w_hh.ndim != 2 || w_hh.shape[0] != GH || w_hh.shape[1] != L.hidden)
    throw std::invalid_argument(std::string(op) + ": w_hh has shape " + shape_str(w_hh) +
                                ", expected (" + std::to_string(GH) + ", " +
                                std::to_string(L.hidden) + ")");
  std::vector<int64_t> offset(steps, 0);
  for (int64_t t = 1; t < steps; ++t) offset[t] = offset[t - 1] + batch_sizes[t - 1];
  L.plan.resize(steps);
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t t = reverse ? steps - 1 - k : k, n = batch_sizes[t];
    L.plan[k] = {offset[t], n, k ? std::min(n, L.plan[k - 1].n) : 0, 0};
  }
  for (int64_t k = 0; k + 1 < steps; ++k) L.plan[k].ends = L.plan[k + 1].carried;
  return L;
}

// An operand the mode needs, or a clear error when it is absent.
const View& required(const char* op, const char* what, const View* v) {
  if (!v) throw std::invalid_argument(std::string(op) + ": " + what + " is required");
  return *v;
}

void refuse(const char* op, const char* what, const View* v) {
  if (v) throw std::invalid_argument(std::string(op) + ": " + what + " is for LSTM only");
}

// The per-row arrays `mode` saves, checked against the sequence's (N, H) rows.
void check_saved(const Check& rows, RnnMode mode, const RnnSaved& saved) {
  rows.rows("h_prev", required(rows.op, "h_prev", saved.h_prev), 1);
  if (mode == RnnMode::lstm) {
    rows.rows("c_prev", required(rows.op, "c_prev", saved.c_prev), 1);
    rows.rows("cell", required(rows.op, "cell", saved.cell), 1);
  }
  if (mode == RnnMode::lstm || mode == RnnMode::gru)
    rows.rows("workspace", required(rows.op, "workspace", saved.workspace), 4);
}

// Rows first .. first + n of a 2-D operand.
View row_block(const View& v, int64_t first, int64_t n) {
  View r = v;
  r.shape[0] = n;
  r.data = static_cast<char*>(v.data) +
           first * v.stride[0] * (v.dtype == DType::f64 ? 8 : 4);
  return r;
}

View transposed(const View& v) {
  View t = v;
  std::swap(t.shape[0], t.shape[1]);
  std::swap(t.stride[0], t.stride[1]);
  return t;
}

// A row-major (rows, cols) scratch matrix, rows ld apart, allocated once per sequence.
template <class T>
struct Matrix {
  std::vector<T> data;
  View view;
  Matrix(int64_t rows, int64_t cols, int64_t ld = 0) : data(rows * (ld ? ld : cols)) {
    view.data = data.data();
    view.dtype = sizeof(T) == 8 ? DType::f64 : DType::f32;
    view.ndim = 2;
    view.shape[0] = rows;
    view.shape[1] = cols;
    view.stride[0] = ld ? ld : cols;
    view.stride[1] = 1;
  }
};

// A row stride for `cols` values that is not a multiple of 2 KiB: with few rows of A,
// the GEMM then reads B's panels in place instead of packing B on every call.
template <class T>
int64_t unaligned_ld(int64_t cols) {
  return (cols * int64_t(sizeof(T))) % 2048 ? cols : cols + 64 / int64_t(sizeof(T));
}

// dst (a step's rows) = the state entering the step: rows < carried from the rows
// `prev` of the step run before, the rest from `initial` (zeros when absent).
void enter_state(const View& dst, const View* prev, const View* initial, int64_t carried) {
  const int64_t n = dst.shape[0];
  if (carried) copy(row_block(*prev, 0, carried), row_block(dst, 0, carried));
  if (carried == n) return;
  const View rest = row_block(dst, carried, n - carried);
  if (initial)
    copy(row_block(*initial, carried, n - carried), rest);
  else
    fill(rest, 0.0);
}

// Routes the gradient of the state entering a step: rows < carried to `prev` (unless
// already there, prev == nullptr), the rest to the initial state's gradient.
void route_state_grad(const View& grad, const View* prev, const View& initial, int64_t carried) {
  const int64_t n = grad.shape[0];
  if (prev && carried) copy(row_block(grad, 0, carried), row_block(*prev, 0, carried));
  if (carried < n)
    copy(row_block(grad, carried, n - carried), row_block(initial, carried, n - carried));
}

// sum[j] += the sum over the rows of column j (rows contiguous): a bias gradient
// gathered while a step's gate gradients are in cache.
template <class T>
void add_column_sums(const View& rows, std::vector<double>& sum) {
  const auto r = rows_of<const T>(rows);
  double* s = sum.data();
  const int64_t cols = static_cast<int64_t>(sum.size());
  for (int64_t b = 0; b < rows.shape[0]; ++b) {
    const T* row = r[b];
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) s[j] += row[j];
  }
}

template <class T>
void store(const std::vector<double>& sum, const View& out) {
  T* o = static_cast<T*>(out.data);
  for (size_t j = 0; j < sum.size(); ++j) o[j] = static_cast<T>(sum[j]);
}

template <class T>
std::vector<T> sequence_bias(RnnMode mode, const View* bi, const View* bh, int64_t H) {
  return mode == RnnMode::gru ? gru_bias<T>(bi, bh, H) : bias_sum<T>(bi, bh, gate_count(mode) * H);
}

template <class T>
void sequence_forward(const Layer& L, const View& ig, const View& w_hh, const View* bi,
                      const View* bh, const View* h0, const View* c0, const View& out,
                      const View& h_n, const View* c_n, const RnnSaved& sv) {
  const int64_t H = L.hidden, GH = L.gates * H;
  // W_hh^T row-major: the layout every step's GEMM reads fastest.
  Matrix<T> w_t(H, GH, unaligned_ld<T>(GH)), hidden(L.batch, GH);
  copy(transposed(w_hh), w_t.view);
  const std::vector<T> bias = sequence_bias<T>(L.mode, bi, bh, H);
  const Step* prev = nullptr;
  for (const Step& st : L.plan) {
    auto rows = [&](const View& v) { return row_block(v, st.first, st.n); };
    auto prev_rows = [&](const View& v) {
      return prev ? row_block(v, prev->first, prev->n) : row_block(v, 0, 0);
    };
    const View h_prev = rows(*sv.h_prev), hy = rows(out), gates = rows(ig);
    const View hg = row_block(hidden.view, 0, st.n), prev_h = prev_rows(out);
    enter_state(h_prev, &prev_h, h0, st.carried);
    matmul(h_prev, w_t.view, hg, false);
    const Check c("rnn_sequence_forward", hy, hy.dtype);
    if (L.mode == RnnMode::lstm) {
      const View c_prev = rows(*sv.c_prev), cy = rows(*sv.cell), prev_c = prev_rows(*sv.cell);
      enter_state(c_prev, &prev_c, c0, st.carried);
      lstm_forward<T>(c, gates, hg, c_prev, bias.data(), hy, cy, rows(*sv.workspace));
      if (st.ends < st.n)
        copy(row_block(cy, st.ends, st.n - st.ends), row_block(*c_n, st.ends, st.n - st.ends));
    } else if (L.mode == RnnMode::gru) {
      gru_forward<T>(c, gates, hg, h_prev, bias.data(), hy, rows(*sv.workspace));
    } else {
      rnn_forward<T>(c, gates, hg, bias.data(), L.mode == RnnMode::rnn_relu, hy);
    }
    if (st.ends < st.n)
      copy(row_block(hy, st.ends, st.n - st.ends), row_block(h_n, st.ends, st.n - st.ends));
    prev = &st;
  }
}

template <class T>
void sequence_backward(const Layer& L, const View& w_hh, const View& grad_out,
                       const View& grad_h_n, const View* grad_c_n, const View* out,
                       const RnnSaved& sv, const RnnGrads& grads) {
  const int64_t B = L.batch, H = L.hidden;
  const bool lstm = L.mode == RnnMode::lstm, gru = L.mode == RnnMode::gru;
  const View &gg = grads.gates, *ghg = grads.hidden_gates, &gh0 = grads.h0, *gc0 = grads.c0;
  const bool biases = grads.input_bias || grads.hidden_bias;
  std::vector<double> sum_i(biases ? L.gates * H : 0), sum_h(biases && gru ? L.gates * H : 0);
  // state: the gradient of the hidden state leaving the step being run (rows of sequences
  // ending there start as grad_h_n and are never overwritten before); dh adds grad_out.
  Matrix<T> state(B, H), dh(B, H), dc_state(lstm ? B : 0, H), dc(lstm ? B : 0, H);
  copy(grad_h_n, state.view);
  if (lstm) copy(*grad_c_n, dc_state.view);
  for (size_t k = L.plan.size(); k-- > 0;) {
    const Step& st = L.plan[k];
    auto rows = [&](const View& v) { return row_block(v, st.first, st.n); };
    const View s = row_block(state.view, 0, st.n), d = row_block(dh.view, 0, st.n);
    binary(BinaryOp::add, rows(grad_out), s, d);
    const Check c("rnn_sequence_backward", d, d.dtype);
    const View dg = rows(gg), dhidden = gru ? rows(*ghg) : dg;
    if (lstm) {
      const View dcs = row_block(dc_state.view, 0, st.n), dcp = row_block(dc.view, 0, st.n);
      lstm_backward<T>(c, &d, &dcs, rows(*sv.c_prev), rows(*sv.cell), rows(*sv.workspace), dg,
                       dcp);
      route_state_grad(dcp, &dc_state.view, *gc0, st.carried);
    } else if (gru) {
      gru_backward<T>(c, d, rows(*sv.h_prev), rows(*sv.workspace), dg, dhidden, s);
    } else {
      rnn_backward<T>(c, d, rows(*out), L.mode == RnnMode::rnn_relu, dg);
    }
    // The state entering this step: its rows are the state leaving the step run before.
    // (GRU: s holds the direct part dh * z, the product is added.)
    matmul(dhidden, w_hh, s, gru);
    route_state_grad(s, nullptr, gh0, st.carried);
    if (biases) add_column_sums<T>(dg, sum_i);
    if (biases && gru) add_column_sums<T>(dhidden, sum_h);
  }
  if (grads.w_hh) matmul(transposed(gru ? *ghg : gg), *sv.h_prev, *grads.w_hh, false);
  if (grads.input_bias) store<T>(sum_i, *grads.input_bias);
  if (grads.hidden_bias) store<T>(gru ? sum_h : sum_i, *grads.hidden_bias);
}

}  // namespace

// ---------------------------------------------------------------- entry points
void lstm_cell_forward(const View& input_gates, const View& hidden_gates, const View& cx,
                       const View* input_bias, const View* hidden_bias, const View& hy,
                       const View& cy, const View& workspace) {
  const Check c("lstm_cell", hy, input_gates.dtype);
  c.rows("input_gates", input_gates, 4);
  c.rows("hidden_gates", hidden_gates, 4);
  c.rows("cx", cx, 1);
  c.vector("input_bias", input_bias, 4);
  c.vector("hidden_bias", hidden_bias, 4);
  c.rows("hy", hy, 1);
  c.rows("cy", cy, 1);
  c.rows("workspace", workspace, 4);
  if (c.dtype == DType::f32)
    lstm_forward<float>(c, input_gates, hidden_gates, cx,
                        bias_sum<float>(input_bias, hidden_bias, 4 * c.hidden).data(), hy, cy,
                        workspace);
  else
    lstm_forward<double>(c, input_gates, hidden_gates, cx,
                         bias_sum<double>(input_bias, hidden_bias, 4 * c.hidden).data(), hy, cy,
                         workspace);
}

void lstm_cell_backward(const View* grad_hy, const View* grad_cy, const View& cx,
                        const View& cy, const View& workspace, const View& grad_gates,
                        const View& grad_cx) {
  const Check c("lstm_cell_backward", cy, cy.dtype);
  if (grad_hy) c.rows("grad_hy", *grad_hy, 1);
  if (grad_cy) c.rows("grad_cy", *grad_cy, 1);
  c.rows("cx", cx, 1);
  c.rows("workspace", workspace, 4);
  c.rows("grad_gates", grad_gates, 4);
  c.rows("grad_cx", grad_cx, 1);
  if (c.dtype == DType::f32)
    lstm_backward<float>(c, grad_hy, grad_cy, cx, cy, workspace, grad_gates, grad_cx);
  else
    lstm_backward<double>(c, grad_hy, grad_cy, cx, cy, workspace, grad_gates, grad_cx);
}

void gru_cell_forward(const View& input_gates, const View& hidden_gates, const View& hx,
                      const View* input_bias, const View* hidden_bias, const View& hy,
                      const View& workspace) {
  const Check c("gru_cell", hy, input_gates.dtype);
  c.rows("input_gates", input_gates, 3);
  c.rows("hidden_gates", hidden_gates, 3);
  c.rows("hx", hx, 1);
  c.vector("input_bias", input_bias, 3);
  c.vector("hidden_bias", hidden_bias, 3);
  c.rows("hy", hy, 1);
  c.rows("workspace", workspace, 4);
  if (c.dtype == DType::f32)
    gru_forward<float>(c, input_gates, hidden_gates, hx,
                       gru_bias<float>(input_bias, hidden_bias, c.hidden).data(), hy, workspace);
  else
    gru_forward<double>(c, input_gates, hidden_gates, hx,
                        gru_bias<double>(input_bias, hidden_bias, c.hidden).data(), hy,
                        workspace);
}

void gru_cell_backward(const View& grad_hy, const View& hx, const View& workspace,
                       const View& grad_input_gates, const View& grad_hidden_gates,
                       const View& grad_hx) {
  const Check c("gru_cell_backward", grad_hy, grad_hy.dtype);
  c.rows("hx", hx, 1);
  c.rows("workspace", workspace, 4);
  c.rows("grad_input_gates", grad_input_gates, 3);
  c.rows("grad_hidden_gates", grad_hidden_gates, 3);
  c.rows("grad_hx", grad_hx, 1);
  if (c.dtype == DType::f32)
    gru_backward<float>(c, grad_hy, hx, workspace, grad_input_gates, grad_hidden_gates, grad_hx);
  else
    gru_backward<double>(c, grad_hy, hx, workspace, grad_input_gates, grad_hidden_gates,
                         grad_hx);
}

void rnn_cell_forward(const View& input_gates, const View& hidden_gates, const View* input_bias,
                      const View* hidden_bias, bool relu, const View& hy) {
  const Check c(relu ? "rnn_relu_cell" : "rnn_tanh_cell", hy, input_gates.dtype);
  c.rows("input_gates", input_gates, 1);
  c.rows("hidden_gates", hidden_gates, 1);
  c.vector("input_bias", input_bias, 1);
  c.vector("hidden_bias", hidden_bias, 1);
  c.rows("hy", hy, 1);
  if (c.dtype == DType::f32)
    rnn_forward<float>(c, input_gates, hidden_gates,
                       bias_sum<float>(input_bias, hidden_bias, c.hidden).data(), relu, hy);
  else
    rnn_forward<double>(c, input_gates, hidden_gates,
                        bias_sum<double>(input_bias, hidden_bias, c.hidden).data(), relu, hy);
}

void rnn_cell_backward(const View& grad_hy, const View& hy, bool relu, const View& grad_gates) {
  const Check c(relu ? "rnn_relu_cell_backward" : "rnn_tanh_cell_backward", hy, hy.dtype);
  c.rows("grad_hy", grad_hy, 1);
  c.rows("grad_gates", grad_gates, 1);
  if (c.dtype == DType::f32)
    rnn_backward<float>(c, grad_hy, hy, relu, grad_gates);
  else
    rnn_backward<double>(c, grad_hy, hy, relu, grad_gates);
}

void rnn_sequence_forward(RnnMode mode, const View& input_gates, const View& w_hh,
                          const View* input_bias, const View* hidden_bias, const View* h0,
                          const View* c0, const int64_t* batch_sizes, int64_t steps,
                          bool reverse, const View& out, const View& h_n, const View* c_n,
                          const RnnSaved& saved) {
  const char* op = "rnn_sequence_forward";
  const Check rows(op, out, out.dtype), states(op, h_n, out.dtype);
  const Layer L = make_layer(op, mode, out, h_n, w_hh, batch_sizes, steps, reverse);
  rows.rows("out", out, 1);
  rows.rows("input_gates", input_gates, L.gates);
  rows.vector("input_bias", input_bias, L.gates);
  rows.vector("hidden_bias", hidden_bias, L.gates);
  check_saved(rows, mode, saved);
  states.rows("h_n", h_n, 1);
  if (h0) states.rows("h0", *h0, 1);
  if (mode == RnnMode::lstm) {
    states.rows("c_n", required(op, "c_n", c_n), 1);
    if (c0) states.rows("c0", *c0, 1);
  } else {
    refuse(op, "c0", c0);
    refuse(op, "c_n", c_n);
  }
  if (L.hidden == 0) return;
  if (rows.dtype == DType::f32)
    sequence_forward<float>(L, input_gates, w_hh, input_bias, hidden_bias, h0, c0, out, h_n,
                            c_n, saved);
  else
    sequence_forward<double>(L, input_gates, w_hh, input_bias, hidden_bias, h0, c0, out, h_n,
                             c_n, saved);
}

void rnn_sequence_backward(RnnMode mode, const View& w_hh, const int64_t* batch_sizes,
                           int64_t steps, bool reverse, const View& grad_out,
                           const View& grad_h_n, const View* grad_c_n, const View* out,
                           const RnnSaved& saved, const RnnGrads& grads) {
  const char* op = "rnn_sequence_backward";
  const Check rows(op, grad_out, grad_out.dtype), states(op, grads.h0, grad_out.dtype);
  const Layer L = make_layer(op, mode, grad_out, grads.h0, w_hh, batch_sizes, steps, reverse);
  rows.shape("grad_out", grad_out, 1);
  rows.rows("grad_gates", grads.gates, L.gates);
  rows.vector("grad_input_bias", grads.input_bias, L.gates);
  rows.vector("grad_hidden_bias", grads.hidden_bias, L.gates);
  check_saved(rows, mode, saved);
  states.shape("grad_h_n", grad_h_n, 1);
  states.rows("grad_h0", grads.h0, 1);
  if (mode == RnnMode::lstm) {
    states.shape("grad_c_n", required(op, "grad_c_n", grad_c_n), 1);
    states.rows("grad_c0", required(op, "grad_c0", grads.c0), 1);
  } else {
    refuse(op, "grad_c_n", grad_c_n);
    refuse(op, "grad_c0", grads.c0);
  }
  if (mode == RnnMode::rnn_tanh || mode == RnnMode::rnn_relu)
    rows.rows("out", required(op, "out", out), 1);
  if (mode == RnnMode::gru)
    rows.rows("grad_hidden_gates", required(op, "grad_hidden_gates", grads.hidden_gates), 3);
  else if (grads.hidden_gates)
    throw std::invalid_argument(std::string(op) + ": grad_hidden_gates is for GRU only");
  if (const View* grad_w_hh = grads.w_hh) {
    rows.type("grad_w_hh", *grad_w_hh);
    if (!same_shape(*grad_w_hh, w_hh) || !is_contiguous(*grad_w_hh))
      throw std::invalid_argument(std::string(op) + ": grad_w_hh must be a contiguous array of "
                                  "w_hh's shape " + shape_str(w_hh) + ", got " +
                                  shape_str(*grad_w_hh));
  }
  if (L.hidden == 0) return;
  if (rows.dtype == DType::f32)
    sequence_backward<float>(L, w_hh, grad_out, grad_h_n, grad_c_n, out, saved, grads);
  else
    sequence_backward<double>(L, w_hh, grad_out, grad_h_n, grad_c_n, out, saved, grads);
}

}  // namespace genesis::GENESIS_ISA_NS
