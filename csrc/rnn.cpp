// Recurrent cell kernels (contract in rnn.h).
//
// One pass per batch row computes every gate of that row: the loop over the
// hidden units is vectorized (the float sigmoid and tanh of
// elementwise_math.h have no libm calls) and threads split the rows.  Both
// biases are summed once per call into a scratch vector, so the inner loops
// have no branches for absent operands; an absent gradient reads a zero row.
#include "rnn.h"

#include <omp.h>

#include <string>
#include <vector>

#include "elementwise_math.h"

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

  // (batch, gates * hidden), elements of a row contiguous.
  void rows(const char* what, const View& v, int gates) const {
    type(what, v);
    const int64_t cols = gates * hidden;
    if (v.ndim != 2 || v.shape[0] != batch || v.shape[1] != cols)
      throw std::invalid_argument(std::string(op) + ": " + what + " has shape " +
                                  shape_str(v) + ", expected (" + std::to_string(batch) +
                                  ", " + std::to_string(cols) + ")");
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
template <class T>
void lstm_forward(const Check& c, const View& ig, const View& hg, const View& cx,
                  const View* bi, const View* bh, const View& hy, const View& cy,
                  const View& ws) {
  const int64_t B = c.batch, H = c.hidden;
  const std::vector<T> bias = bias_sum<T>(bi, bh, 4 * H);
  const T* bb = bias.data();
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
template <class T>
void gru_forward(const Check& c, const View& ig, const View& hg, const View& hx,
                 const View* bi, const View* bh, const View& hy, const View& ws) {
  const int64_t B = c.batch, H = c.hidden;
  // r and z take both biases summed; n takes them apart (r multiplies only gh_n + b_hn):
  // bias = [b_r, b_z, bi_n, bh_n].
  std::vector<T> bias = bias_sum<T>(bi, bh, 2 * H);
  bias.resize(4 * H, T(0));
  for (int k = 0; k < 2; ++k)
    if (const View* v = k ? bh : bi)
      for (int64_t j = 0; j < H; ++j)
        bias[(2 + k) * H + j] = static_cast<const T*>(v->data)[2 * H + j];
  const T* bb = bias.data();
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
template <class T>
void rnn_forward(const Check& c, const View& ig, const View& hg, const View* bi,
                 const View* bh, bool relu, const View& hy) {
  const int64_t B = c.batch, H = c.hidden;
  const std::vector<T> bias = bias_sum<T>(bi, bh, H);
  const T* bb = bias.data();
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
    lstm_forward<float>(c, input_gates, hidden_gates, cx, input_bias, hidden_bias, hy, cy,
                        workspace);
  else
    lstm_forward<double>(c, input_gates, hidden_gates, cx, input_bias, hidden_bias, hy, cy,
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
    gru_forward<float>(c, input_gates, hidden_gates, hx, input_bias, hidden_bias, hy, workspace);
  else
    gru_forward<double>(c, input_gates, hidden_gates, hx, input_bias, hidden_bias, hy,
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
    rnn_forward<float>(c, input_gates, hidden_gates, input_bias, hidden_bias, relu, hy);
  else
    rnn_forward<double>(c, input_gates, hidden_gates, input_bias, hidden_bias, relu, hy);
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

}  // namespace genesis::GENESIS_ISA_NS
