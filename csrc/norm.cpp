// Normalization kernels (contract in norm.h).
//
// Every kernel works on contiguous rows: batch norm on the N rows of S
// elements that make up one channel, layer norm on rows of K elements, group
// norm on the contiguous block of one (sample, group).  Statistics use the
// corrected two-pass algorithm in double (sum, then sums of deviations from
// the mean), so float32 inputs with large means keep their variance.  The
// elementwise passes run in the input's precision on deviations from the mean
// (x - mean), which vectorize and avoid cancellation.
//
// Threads split channels, rows or groups; each statistic is summed by one
// thread in a fixed order (layer norm's weight/bias gradients over a fixed
// number of row chunks), so results do not depend on the thread count.
#include "norm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "elementwise_math.h"

namespace genesis::GENESIS_ISA_NS {
namespace {

// Below this many elements a call stays on the calling thread.
constexpr int64_t kParallelWork = 1 << 15;
// Layer norm's weight/bias gradients sum rows in at most this many chunks,
// using at most kChunkScratch doubles of partial sums per gradient.
constexpr int64_t kMaxChunks = 64;
constexpr int64_t kChunkScratch = 1 << 18;

// ---------------------------------------------------------------- checks
std::string shape_str(const View& v) {
  std::string s = "(";
  for (int d = 0; d < v.ndim; ++d) {
    if (d) s += ", ";
    s += std::to_string(v.shape[d]);
  }
  if (v.ndim == 1) s += ",";
  return s + ")";
}

void check_float(const char* op, const View& x) {
  if (x.dtype != DType::f32 && x.dtype != DType::f64)
    throw type_error(std::string(op) + ": input has dtype " + dtype_name(x.dtype) +
                     ", expected float32 or float64");
}

void check_dtype(const char* op, const char* what, const View& v, const View& x) {
  if (v.dtype != x.dtype)
    throw type_error(std::string(op) + ": " + what + " has dtype " + dtype_name(v.dtype) +
                     ", expected the input's dtype " + dtype_name(x.dtype));
}

void check_contiguous(const char* op, const char* what, const View& v) {
  if (numel(v) != 0 && !is_contiguous(v))  // an empty View's strides are arbitrary
    throw std::invalid_argument(std::string(op) + ": " + what + " must be contiguous");
}

void check_same_shape(const char* op, const char* what, const View& v, const View& x) {
  check_dtype(op, what, v, x);
  if (!same_shape(v, x))
    throw std::invalid_argument(std::string(op) + ": " + what + " has shape " + shape_str(v) +
                                ", expected the input's shape " + shape_str(x));
  check_contiguous(op, what, v);
}

// A 1-D operand of n elements (strided allowed).
void check_vector(const char* op, const char* what, const View& v, int64_t n, const View& x) {
  check_dtype(op, what, v, x);
  if (v.ndim != 1 || v.shape[0] != n)
    throw std::invalid_argument(std::string(op) + ": " + what + " has shape " + shape_str(v) +
                                ", expected (" + std::to_string(n) + ",)");
}

// A contiguous operand holding n elements, any shape.
void check_count(const char* op, const char* what, const View& v, int64_t n, const View& x) {
  check_dtype(op, what, v, x);
  if (numel(v) != n)
    throw std::invalid_argument(std::string(op) + ": " + what + " has shape " + shape_str(v) +
                                " (" + std::to_string(numel(v)) + " elements), expected " +
                                std::to_string(n) + " elements");
  check_contiguous(op, what, v);
}

// x as (N, C, S): returns S, the product of the dims after the channel dim.
int64_t spatial_of(const char* op, const View& x) {
  if (x.ndim < 2)
    throw std::invalid_argument(std::string(op) + ": expected input of shape (N, C, *), got " +
                                shape_str(x));
  int64_t s = 1;
  for (int d = 2; d < x.ndim; ++d) s *= x.shape[d];
  return s;
}

// ---------------------------------------------------------------- operands
// A per-channel vector: value(c), or `fallback` when absent.
template <class T>
struct Param {
  T* p = nullptr;
  int64_t s = 0;
  explicit Param(const View* v) {
    if (v) {
      p = static_cast<T*>(v->data);
      s = v->stride[0];
    }
  }
  double get(int64_t c, double fallback) const { return p ? double(p[c * s]) : fallback; }
  void set(int64_t c, double value) const { p[c * s] = T(value); }
};

template <class T>
T* data_of(const View* v) {
  return v ? static_cast<T*>(v->data) : nullptr;
}

// ---------------------------------------------------------------- row loops
template <class T>
inline double row_sum(const T* x, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += double(x[i]);
  return s;
}

// Adds sum(x - mean) and sum((x - mean)^2) to d1 and d2.
template <class T>
inline void row_deviations(const T* x, int64_t n, double mean, double& d1, double& d2) {
  double a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(x[i]) - mean;
    a += d;
    b += d * d;
  }
  d1 += a;
  d2 += b;
}

// Adds sum(g) and sum(g * (x - mean)) to sg and sgd.
template <class T>
inline void row_grad_sums(const T* g, const T* x, int64_t n, double mean, double& sg,
                          double& sgd) {
  double a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int64_t i = 0; i < n; ++i) {
    const double gi = double(g[i]);
    a += gi;
    b += gi * (double(x[i]) - mean);
  }
  sg += a;
  sgd += b;
}

// out = (x - mean) * scale + shift
template <class T>
inline void row_affine(const T* x, T* out, int64_t n, T mean, T scale, T shift) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - mean) * scale + shift;
}

// out = a * g + b * (x - mean) + c
template <class T>
inline void row_grad(const T* g, const T* x, T* out, int64_t n, T mean, T a, T b, T c) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = a * g[i] + b * (x[i] - mean) + c;
}

struct Moments {
  double mean, var;
};

// Mean and biased variance of `rows` rows of n elements, row i at x + i * step, given
// the sum of their elements.  Always inlined: called out of line from layer_norm's row
// loop (one row), layer_norm of 2048 x 2048 floats took 7.4 ms instead of 3.3.
template <class T>
__attribute__((always_inline)) inline Moments moments_from_sum(const T* x, int64_t rows,
                                                               int64_t step, int64_t n,
                                                               double sum) {
  const int64_t count = rows * n;
  if (count == 0) return {0.0, 0.0};
  const double mean = sum / double(count);
  double d1 = 0, d2 = 0;
  for (int64_t r = 0; r < rows; ++r) row_deviations(x + r * step, n, mean, d1, d2);
  return {mean, std::max(0.0, (d2 - d1 * d1 / double(count)) / double(count))};
}

// The same, summing them first.
template <class T>
Moments moments(const T* x, int64_t rows, int64_t step, int64_t n) {
  double sum = 0;
  for (int64_t r = 0; r < rows; ++r) sum += row_sum(x + r * step, n);
  return moments_from_sum(x, rows, step, n, sum);
}

template <class F>
void by_float(DType t, F&& f) {
  if (t == DType::f32) f(float{});
  else f(double{});
}

// ---------------------------------------------------------------- batch norm
template <class T>
void batch_norm_fwd(const View& x, const View* weight, const View* bias,
                    const View* running_mean, const View* running_var, bool training,
                    double momentum, double eps, const View& out, const View& save_mean,
                    const View& save_invstd) {
  const int64_t N = x.shape[0], C = x.shape[1], S = spatial_of("batch_norm", x);
  const int64_t M = N * S;
  const T* xp = static_cast<const T*>(x.data);
  T* op = static_cast<T*>(out.data);
  T* sm = static_cast<T*>(save_mean.data);
  T* si = static_cast<T*>(save_invstd.data);
  const Param<T> w(weight), b(bias), rm(running_mean), rv(running_var);
#pragma omp parallel for schedule(static) if (N * C * S >= kParallelWork)
  for (int64_t c = 0; c < C; ++c) {
    double mean, invstd;
    if (training) {
      const Moments mo = moments(xp + c * S, N, C * S, S);
      mean = mo.mean;
      invstd = 1.0 / std::sqrt(mo.var + eps);
      if (M > 0) {  // an empty batch leaves the running statistics alone
        if (rm.p) rm.set(c, (1.0 - momentum) * rm.get(c, 0) + momentum * mean);
        if (rv.p)
          rv.set(c, (1.0 - momentum) * rv.get(c, 0) +
                        momentum * mo.var * double(M) / double(M - 1));
      }
    } else {
      mean = rm.get(c, 0);
      invstd = 1.0 / std::sqrt(rv.get(c, 0) + eps);
    }
    sm[c] = T(mean);
    si[c] = T(invstd);
    const T scale = T(invstd * w.get(c, 1.0)), shift = T(b.get(c, 0.0));
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * S;
      row_affine(xp + off, op + off, S, T(mean), scale, shift);
    }
  }
}

template <class T>
void batch_norm_bwd(const View& grad, const View& x, const View* weight, const View& save_mean,
                    const View& save_invstd, bool training, const View* grad_input,
                    const View* grad_weight, const View* grad_bias) {
  const int64_t N = x.shape[0], C = x.shape[1], S = spatial_of("batch_norm_backward", x);
  const int64_t M = N * S;
  const T* gp = static_cast<const T*>(grad.data);
  const T* xp = static_cast<const T*>(x.data);
  const T* sm = static_cast<const T*>(save_mean.data);
  const T* si = static_cast<const T*>(save_invstd.data);
  T* gi = data_of<T>(grad_input);
  const Param<T> w(weight), gw(grad_weight), gb(grad_bias);
  const bool need_sums = gw.p || gb.p || (gi && training);
#pragma omp parallel for schedule(static) if (N * C * S >= kParallelWork)
  for (int64_t c = 0; c < C; ++c) {
    const double mean = double(sm[c]), invstd = double(si[c]);
    double sg = 0, sgd = 0;
    if (need_sums)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * S;
        row_grad_sums(gp + off, xp + off, S, mean, sg, sgd);
      }
    if (gw.p) gw.set(c, sgd * invstd);
    if (gb.p) gb.set(c, sg);
    if (!gi) continue;
    // training: dx = w * invstd * (g - mean(g) - (x - mean) * invstd^2 * mean(g * (x - mean)))
    // eval:     dx = w * invstd * g
    const double a = w.get(c, 1.0) * invstd;
    double bcoef = 0, ccoef = 0;
    if (training && M > 0) {
      bcoef = -a * invstd * invstd * sgd / double(M);
      ccoef = -a * sg / double(M);
    }
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * S;
      row_grad(gp + off, xp + off, gi + off, S, T(mean), T(a), T(bcoef), T(ccoef));
    }
  }
}

// ---------------------------------------------------------------- layer norm
struct Rows {
  int64_t M, K;
};

Rows rows_of(const char* op, const View& x, int norm_ndim) {
  if (norm_ndim < 1 || norm_ndim > x.ndim)
    throw std::invalid_argument(std::string(op) + ": cannot normalize the last " +
                                std::to_string(norm_ndim) + " dims of an input of shape " +
                                shape_str(x));
  Rows r{1, 1};
  for (int d = 0; d < x.ndim; ++d) (d < x.ndim - norm_ndim ? r.M : r.K) *= x.shape[d];
  return r;
}

template <class T>
void layer_norm_fwd(const View& x, int norm_ndim, const View* weight, const View* bias,
                    double eps, const View& out, const View& mean, const View& rstd) {
  const Rows rows = rows_of("layer_norm", x, norm_ndim);
  const int64_t M = rows.M, K = rows.K;
  const T* xp = static_cast<const T*>(x.data);
  T* op = static_cast<T*>(out.data);
  T* mp = static_cast<T*>(mean.data);
  T* rp = static_cast<T*>(rstd.data);
  const T* w = data_of<const T>(weight);
  const T* b = data_of<const T>(bias);
  // Float rows go 16 lanes at a time; an output too large for the cache is streamed
  // (non-temporal stores: its lines are not read first), and each row's statistics
  // passes overlap the next row's load (prefetched: alone, the first pass waits on it).
  const bool stream = std::is_same_v<T, float> && vm::stream_output(M * K * int64_t(sizeof(T)));
#pragma omp parallel if (M * K >= kParallelWork)
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < M; ++r) {
      const T* xr = xp + r * K;
      T* orow = op + r * K;
      const double sum = row_sum(xr, K);
      if (r + 1 < M) vm::prefetch_block(xr + K, K * int64_t(sizeof(T)));
      const Moments mo = moments_from_sum(xr, 1, 0, K, sum);
      const double rs = 1.0 / std::sqrt(mo.var + eps);
      mp[r] = T(mo.mean);
      rp[r] = T(rs);
      const T m = T(mo.mean), s = T(rs);
      if constexpr (std::is_same_v<T, float>) {
        const auto at = [&](int64_t i, int64_t len) {
          vm::f32x16 v = (vm::load16_upto(xr + i, len) - m) * s;
          if (w) v = v * vm::load16_upto(w + i, len);
          if (b) v = v + vm::load16_upto(b + i, len);
          return v;
        };
        if (stream) {
          vm::stream16_from<false>(orow, K, at);
        } else {
          for (int64_t i = 0; i < K; i += 16) {
            const int64_t len = std::min<int64_t>(16, K - i);
            if (len == 16) vm::store16(orow + i, at(i, 16));
            else vm::store16_first(orow + i, at(i, len), len);
          }
        }
      } else if (w && b) {
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) orow[k] = (xr[k] - m) * s * w[k] + b[k];
      } else if (w) {
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) orow[k] = (xr[k] - m) * s * w[k];
      } else if (b) {
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) orow[k] = (xr[k] - m) * s + b[k];
      } else {
        row_affine(xr, orow, K, m, s, T(0));
      }
    }
    if (stream) _mm_sfence();  // this thread's streamed rows, before anything reads them
  }
}

template <class T>
void layer_norm_bwd(const View& grad, const View& x, int norm_ndim, const View& mean,
                    const View& rstd, const View* weight, const View* grad_input,
                    const View* grad_weight, const View* grad_bias) {
  const Rows rows = rows_of("layer_norm_backward", x, norm_ndim);
  const int64_t M = rows.M, K = rows.K;
  const T* gp = static_cast<const T*>(grad.data);
  const T* xp = static_cast<const T*>(x.data);
  const T* mp = static_cast<const T*>(mean.data);
  const T* rp = static_cast<const T*>(rstd.data);
  const T* w = data_of<const T>(weight);
  T* gi = data_of<T>(grad_input);
  T* gw = data_of<T>(grad_weight);
  T* gb = data_of<T>(grad_bias);

  // The chunk count depends only on the shape, never on the thread count.
  const int64_t max_chunks =
      (gw || gb) ? std::clamp<int64_t>(kChunkScratch / std::max<int64_t>(K, 1), 1, kMaxChunks)
                 : kMaxChunks;
  const int64_t chunks = std::min(M, max_chunks);
  std::vector<double> pw(gw ? chunks * K : 0, 0.0), pb(gb ? chunks * K : 0, 0.0);
#pragma omp parallel for schedule(static) if (M * K >= kParallelWork)
  for (int64_t i = 0; i < chunks; ++i) {
    const int64_t r0 = M * i / chunks, r1 = M * (i + 1) / chunks;
    double* cw = gw ? pw.data() + i * K : nullptr;
    double* cb = gb ? pb.data() + i * K : nullptr;
    for (int64_t r = r0; r < r1; ++r) {
      const T* g = gp + r * K;
      const T* xr = xp + r * K;
      const double m = double(mp[r]), rs = double(rp[r]);
      if (cw) {
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) cw[k] += double(g[k]) * (double(xr[k]) - m) * rs;
      }
      if (cb) {
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) cb[k] += double(g[k]);
      }
      if (!gi) continue;
      // dx = rstd * (g*w - mean(g*w) - (x - mean) * rstd^2 * mean(g*w * (x - mean)))
      double a = 0, b = 0;
      if (w) {
#pragma omp simd reduction(+ : a, b)
        for (int64_t k = 0; k < K; ++k) {
          const double gw_k = double(g[k]) * double(w[k]);
          a += gw_k;
          b += gw_k * (double(xr[k]) - m);
        }
      } else {
        row_grad_sums(g, xr, K, m, a, b);
      }
      const T tm = T(m), ts = T(rs), tb = T(-rs * rs * rs * b / double(K)),
              tc = T(-rs * a / double(K));
      T* out = gi + r * K;
      if (w) {
#pragma omp simd
        for (int64_t k = 0; k < K; ++k) out[k] = ts * (g[k] * w[k]) + tb * (xr[k] - tm) + tc;
      } else {
        row_grad(g, xr, out, K, tm, ts, tb, tc);
      }
    }
  }
  // Sum the chunks' partial gradients in chunk order.
#pragma omp parallel for schedule(static) if (chunks * K >= kParallelWork)
  for (int64_t k = 0; k < K; ++k) {
    double sw = 0, sb = 0;
    for (int64_t i = 0; i < chunks; ++i) {
      if (gw) sw += pw[i * K + k];
      if (gb) sb += pb[i * K + k];
    }
    if (gw) gw[k] = T(sw);
    if (gb) gb[k] = T(sb);
  }
}

// ---------------------------------------------------------------- group norm
struct Groups {
  int64_t N, C, S, G, D;  // D channels per group
};

Groups groups_of(const char* op, const View& x, int64_t num_groups) {
  const int64_t S = spatial_of(op, x);
  const int64_t C = x.shape[1];
  if (num_groups < 1 || C % num_groups != 0)
    throw std::invalid_argument(std::string(op) + ": num_groups " + std::to_string(num_groups) +
                                " does not divide the " + std::to_string(C) +
                                " channels of an input of shape " + shape_str(x));
  return {x.shape[0], C, S, num_groups, C / num_groups};
}

template <class T>
void group_norm_fwd(const View& x, int64_t num_groups, const View* weight, const View* bias,
                    double eps, const View& out, const View& mean, const View& rstd) {
  const Groups g = groups_of("group_norm", x, num_groups);
  const T* xp = static_cast<const T*>(x.data);
  T* op = static_cast<T*>(out.data);
  T* mp = static_cast<T*>(mean.data);
  T* rp = static_cast<T*>(rstd.data);
  const Param<T> w(weight), b(bias);
  const int64_t block = g.D * g.S;
#pragma omp parallel for schedule(static) if (g.N * g.C * g.S >= kParallelWork)
  for (int64_t ng = 0; ng < g.N * g.G; ++ng) {
    const int64_t off = ng * block;  // groups are contiguous blocks of D channels
    const Moments mo = moments(xp + off, 1, 0, block);
    const double rs = 1.0 / std::sqrt(mo.var + eps);
    mp[ng] = T(mo.mean);
    rp[ng] = T(rs);
    for (int64_t j = 0; j < g.D; ++j) {
      const int64_t c = (ng % g.G) * g.D + j;
      row_affine(xp + off + j * g.S, op + off + j * g.S, g.S, T(mo.mean),
                 T(rs * w.get(c, 1.0)), T(b.get(c, 0.0)));
    }
  }
}

template <class T>
void group_norm_bwd(const View& grad, const View& x, int64_t num_groups, const View& mean,
                    const View& rstd, const View* weight, const View* grad_input,
                    const View* grad_weight, const View* grad_bias) {
  const Groups g = groups_of("group_norm_backward", x, num_groups);
  const T* gp = static_cast<const T*>(grad.data);
  const T* xp = static_cast<const T*>(x.data);
  const T* mp = static_cast<const T*>(mean.data);
  const T* rp = static_cast<const T*>(rstd.data);
  T* gi = data_of<T>(grad_input);
  const Param<T> w(weight), gw(grad_weight), gb(grad_bias);
  const int64_t block = g.D * g.S;
  // Per (sample, channel): sum(g * (x - mean)) and sum(g), for the parameter gradients.
  std::vector<double> ds(gw.p ? g.N * g.C : 0), db(gb.p ? g.N * g.C : 0);
#pragma omp parallel for schedule(static) if (g.N * g.C * g.S >= kParallelWork)
  for (int64_t ng = 0; ng < g.N * g.G; ++ng) {
    const int64_t off = ng * block, c0 = (ng % g.G) * g.D, nc0 = (ng / g.G) * g.C + c0;
    const double m = double(mp[ng]), rs = double(rp[ng]);
    double A = 0, B = 0;  // sum over the group of w * g * (x - mean) and of w * g
    for (int64_t j = 0; j < g.D; ++j) {
      double sg = 0, sgd = 0;
      row_grad_sums(gp + off + j * g.S, xp + off + j * g.S, g.S, m, sg, sgd);
      if (gw.p) ds[nc0 + j] = sgd;
      if (gb.p) db[nc0 + j] = sg;
      const double wc = w.get(c0 + j, 1.0);
      A += wc * sgd;
      B += wc * sg;
    }
    if (!gi || block == 0) continue;
    // dx = rstd * (w*g - mean(w*g) - (x - mean) * rstd^2 * mean(w*g * (x - mean)))
    const T tb = T(-rs * rs * rs * A / double(block)), tc = T(-rs * B / double(block));
    for (int64_t j = 0; j < g.D; ++j)
      row_grad(gp + off + j * g.S, xp + off + j * g.S, gi + off + j * g.S, g.S, T(m),
               T(rs * w.get(c0 + j, 1.0)), tb, tc);
  }
  if (!gw.p && !gb.p) return;
  for (int64_t c = 0; c < g.C; ++c) {
    double sw = 0, sb = 0;
    for (int64_t n = 0; n < g.N; ++n) {
      if (gw.p) sw += ds[n * g.C + c] * double(rp[n * g.G + c / g.D]);
      if (gb.p) sb += db[n * g.C + c];
    }
    if (gw.p) gw.set(c, sw);
    if (gb.p) gb.set(c, sb);
  }
}

// ---------------------------------------------------------------- shared checks
void check_input(const char* op, const View& x, const View* weight, const View* bias,
                 int64_t params) {
  check_float(op, x);
  check_contiguous(op, "input", x);
  if (weight) check_vector(op, "weight", *weight, params, x);
  if (bias) check_vector(op, "bias", *bias, params, x);
}

void check_grads(const char* op, const View& grad, const View& x, const View* grad_input,
                 const View* grad_weight, const View* grad_bias, const View* weight,
                 int64_t params) {
  check_same_shape(op, "grad", grad, x);
  if (grad_input) check_same_shape(op, "grad_input", *grad_input, x);
  if (grad_weight) check_vector(op, "grad_weight", *grad_weight, params, x);
  if (grad_bias) check_vector(op, "grad_bias", *grad_bias, params, x);
  if (weight) check_vector(op, "weight", *weight, params, x);
}

}  // namespace

// ---------------------------------------------------------------- entry points
void batch_norm_forward(const View& x, const View* weight, const View* bias,
                        const View* running_mean, const View* running_var, bool training,
                        double momentum, double eps, const View& out, const View& save_mean,
                        const View& save_invstd) {
  const char* op = "batch_norm";
  spatial_of(op, x);
  const int64_t C = x.shape[1];
  check_input(op, x, weight, bias, C);
  if (running_mean) check_vector(op, "running_mean", *running_mean, C, x);
  if (running_var) check_vector(op, "running_var", *running_var, C, x);
  if (!training && (!running_mean || !running_var))
    throw std::invalid_argument("batch_norm: running_mean and running_var are required in "
                                "evaluation mode");
  if (training && running_var && x.shape[0] * spatial_of(op, x) == 1)
    throw std::invalid_argument("batch_norm: expected more than 1 value per channel when "
                                "training, got input of shape " + shape_str(x));
  check_same_shape(op, "output", out, x);
  check_count(op, "save_mean", save_mean, C, x);
  check_count(op, "save_invstd", save_invstd, C, x);
  by_float(x.dtype, [&](auto tag) {
    batch_norm_fwd<decltype(tag)>(x, weight, bias, running_mean, running_var, training,
                                  momentum, eps, out, save_mean, save_invstd);
  });
}

void batch_norm_backward(const View& grad, const View& x, const View* weight,
                         const View& save_mean, const View& save_invstd, bool training,
                         const View* grad_input, const View* grad_weight,
                         const View* grad_bias) {
  const char* op = "batch_norm_backward";
  spatial_of(op, x);
  const int64_t C = x.shape[1];
  check_input(op, x, nullptr, nullptr, C);
  check_grads(op, grad, x, grad_input, grad_weight, grad_bias, weight, C);
  check_count(op, "save_mean", save_mean, C, x);
  check_count(op, "save_invstd", save_invstd, C, x);
  by_float(x.dtype, [&](auto tag) {
    batch_norm_bwd<decltype(tag)>(grad, x, weight, save_mean, save_invstd, training,
                                  grad_input, grad_weight, grad_bias);
  });
}

void layer_norm_forward(const View& x, int norm_ndim, const View* weight, const View* bias,
                        double eps, const View& out, const View& mean, const View& rstd) {
  const char* op = "layer_norm";
  const Rows rows = rows_of(op, x, norm_ndim);
  check_float(op, x);
  check_contiguous(op, "input", x);
  if (weight) check_count(op, "weight", *weight, rows.K, x);
  if (bias) check_count(op, "bias", *bias, rows.K, x);
  check_same_shape(op, "output", out, x);
  check_count(op, "mean", mean, rows.M, x);
  check_count(op, "rstd", rstd, rows.M, x);
  by_float(x.dtype, [&](auto tag) {
    layer_norm_fwd<decltype(tag)>(x, norm_ndim, weight, bias, eps, out, mean, rstd);
  });
}

void layer_norm_backward(const View& grad, const View& x, int norm_ndim, const View& mean,
                         const View& rstd, const View* weight, const View* grad_input,
                         const View* grad_weight, const View* grad_bias) {
  const char* op = "layer_norm_backward";
  const Rows rows = rows_of(op, x, norm_ndim);
  check_float(op, x);
  check_contiguous(op, "input", x);
  check_same_shape(op, "grad", grad, x);
  if (grad_input) check_same_shape(op, "grad_input", *grad_input, x);
  if (weight) check_count(op, "weight", *weight, rows.K, x);
  if (grad_weight) check_count(op, "grad_weight", *grad_weight, rows.K, x);
  if (grad_bias) check_count(op, "grad_bias", *grad_bias, rows.K, x);
  check_count(op, "mean", mean, rows.M, x);
  check_count(op, "rstd", rstd, rows.M, x);
  by_float(x.dtype, [&](auto tag) {
    layer_norm_bwd<decltype(tag)>(grad, x, norm_ndim, mean, rstd, weight, grad_input,
                                  grad_weight, grad_bias);
  });
}

void group_norm_forward(const View& x, int64_t num_groups, const View* weight,
                        const View* bias, double eps, const View& out, const View& mean,
                        const View& rstd) {
  const char* op = "group_norm";
  const Groups g = groups_of(op, x, num_groups);
  check_input(op, x, weight, bias, g.C);
  check_same_shape(op, "output", out, x);
  check_count(op, "mean", mean, g.N * g.G, x);
  check_count(op, "rstd", rstd, g.N * g.G, x);
  by_float(x.dtype, [&](auto tag) {
    group_norm_fwd<decltype(tag)>(x, num_groups, weight, bias, eps, out, mean, rstd);
  });
}

void group_norm_backward(const View& grad, const View& x, int64_t num_groups,
                         const View& mean, const View& rstd, const View* weight,
                         const View* grad_input, const View* grad_weight,
                         const View* grad_bias) {
  const char* op = "group_norm_backward";
  const Groups g = groups_of(op, x, num_groups);
  check_input(op, x, nullptr, nullptr, g.C);
  check_grads(op, grad, x, grad_input, grad_weight, grad_bias, weight, g.C);
  check_count(op, "mean", mean, g.N * g.G, x);
  check_count(op, "rstd", rstd, g.N * g.G, x);
  by_float(x.dtype, [&](auto tag) {
    group_norm_bwd<decltype(tag)>(grad, x, num_groups, mean, rstd, weight, grad_input,
                                  grad_weight, grad_bias);
  });
}

}  // namespace genesis::GENESIS_ISA_NS
