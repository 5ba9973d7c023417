// Loss kernels: the class-label bounds check and the fused cross-entropy
// (log-softmax and NLL in one kernel per direction), the CUDA counterpart of
// csrc/loss.cpp, whose header states the semantics.
//
// Cross-entropy sees x as (N, C, S) (strides sx0, sx1, sx2); a row is the C
// logits of one (n, s), r = n * S + s, and one block handles a row at a time,
// max-subtracted so logits of any magnitude are stable.  Row sums are taken in
// double in a fixed tree (warp shuffles, then the warp totals).  The forward
// writes each row's loss and weight; ce_finish (one block) then sums them in
// double, so a reduced loss does not depend on thread or block order.  Class
// weights come with a stride (0 for the backend's stand-in of "all ones").
#include "common.cuh"

enum Reduction { kNone = 0, kMean = 1, kSum = 2 };

__device__ __forceinline__ double block_sum(double v, double* scratch) {
  return block_reduce(v, scratch, [](double a, double b) { return a + b; });
}

// Flags the first label (row-major) outside [0, n) that is not `ignore` (when has_ignore).
template <class L>
__device__ __forceinline__ void check_labels_kernel(const L* __restrict__ labels, i64 count,
                                                    int ndim, const i64* __restrict__ meta,
                                                    i64 n, int has_ignore, i64 ignore,
                                                    i64* err) {
  GENESIS_FOR(i, count) {
    i64 off[1];
    strided_offsets<1>(i, ndim, meta, off);
    const i64 v = (i64)labels[off[0]];
    if ((v < 0 || v >= n) && !(has_ignore && v == ignore)) flag_position(err, i);
  }
}

// Largest logit of a row; NaN never wins (it reaches the loss through exp).
template <class T>
__device__ __forceinline__ T row_max(const T* __restrict__ row, i64 st, i64 C, double* scratch) {
  double m = -infinity<double>();
  for (i64 c = threadIdx.x; c < C; c += blockDim.x) {
    const double v = (double)row[c * st];
    m = v > m ? v : m;
  }
  return T(block_reduce(m, scratch, [](double a, double b) { return b > a ? b : a; }));
}

// Class targets y (N, S).  Smoothing e > 0:
//   loss = (1 - e) w[y] (lse - x[y]) + (e / C) (W lse' - sum_c w[c] z[c])
// with z = x - max, lse' = log sum exp(z), W = sum_c w[c]; ignored rows give 0.
template <class T>
__device__ __forceinline__ void ce_kernel(const T* __restrict__ x, i64 sx0, i64 sx1, i64 sx2,
                                          const i64* __restrict__ y, i64 sy0, i64 sy1,
                                          const T* __restrict__ w, i64 sw, i64 N, i64 C, i64 S,
                                          i64 ignore, double eps, T* __restrict__ row_loss,
                                          double* __restrict__ row_weight, T* __restrict__ lse) {
  __shared__ double scratch[32];
  const T keep = T(1.0 - eps), share = T(eps / (double)C);
  for (i64 r = blockIdx.x; r < N * S; r += gridDim.x) {
    const i64 n = r / S, s = r % S;
    const i64 label = y[n * sy0 + s * sy1];
    if (label == ignore) {
      if (threadIdx.x == 0) {
        lse[r] = T(0);
        row_loss[r] = T(0);
        row_weight[r] = 0.0;
      }
      continue;
    }
    const T* row = x + n * sx0 + s * sx2;
    const T m = row_max(row, sx1, C, scratch);
    double se = 0, wz = 0, ws = 0;
    for (i64 c = threadIdx.x; c < C; c += blockDim.x) {
      const T z = row[c * sx1] - m;
      se += (double)m_exp(z);
      if (eps > 0) {
        wz += (double)(w[c * sw] * z);
        ws += (double)w[c * sw];
      }
    }
    se = block_sum(se, scratch);
    if (eps > 0) {
      wz = block_sum(wz, scratch);
      ws = block_sum(ws, scratch);
    }
    const T log_sum = m_log(T(se)), wy = w[label * sw];
    const T nll = log_sum - (row[label * sx1] - m);  // -logp[y] >= 0, no cancellation
    if (threadIdx.x == 0) {
      lse[r] = m + log_sum;
      row_loss[r] = eps > 0 ? keep * wy * nll + share * (T(ws) * log_sum - T(wz)) : wy * nll;
      row_weight[r] = (double)wy;
    }
  }
}

// Probability targets t (N, C, S): loss = sum_c q[c] (lse' - z[c]), q = w (1 - e) t + w e / C.
template <class T>
__device__ __forceinline__ void ce_prob_kernel(const T* __restrict__ x, i64 sx0, i64 sx1,
                                               i64 sx2, const T* __restrict__ t, i64 st0,
                                               i64 st1, i64 st2, const T* __restrict__ w,
                                               i64 sw, i64 N, i64 C, i64 S, double eps,
                                               T* __restrict__ row_loss,
                                               double* __restrict__ row_weight,
                                               T* __restrict__ lse) {
  __shared__ double scratch[32];
  const T keep = T(1.0 - eps), share = T(eps / (double)C);
  for (i64 r = blockIdx.x; r < N * S; r += gridDim.x) {
    const i64 n = r / S, s = r % S;
    const T* row = x + n * sx0 + s * sx2;
    const T* trow = t + n * st0 + s * st2;
    const T m = row_max(row, sx1, C, scratch);
    double se = 0, qs = 0, qz = 0;
    for (i64 c = threadIdx.x; c < C; c += blockDim.x) {
      const T z = row[c * sx1] - m, q = w[c * sw] * (keep * trow[c * st1] + share);
      se += (double)m_exp(z);
      qs += (double)q;
      qz += (double)(q * z);
    }
    se = block_sum(se, scratch);
    qs = block_sum(qs, scratch);
    qz = block_sum(qz, scratch);
    const T log_sum = m_log(T(se));
    if (threadIdx.x == 0) {
      lse[r] = m + log_sum;
      row_loss[r] = T(qs) * log_sum - T(qz);
      row_weight[r] = 1.0;
    }
  }
}

// total = sum of the row weights (the mean's divisor); out = the reduced loss.
template <class T>
__device__ __forceinline__ void ce_finish_kernel(const T* __restrict__ row_loss,
                                                 const double* __restrict__ row_weight,
                                                 i64 rows, int reduction, T* __restrict__ out,
                                                 double* __restrict__ total) {
  __shared__ double scratch[32];
  double loss = 0, weight = 0;
  for (i64 r = threadIdx.x; r < rows; r += blockDim.x) {
    if (reduction != kNone) loss += (double)row_loss[r];
    weight += row_weight[r];
  }
  loss = block_sum(loss, scratch);
  weight = block_sum(weight, scratch);
  if (threadIdx.x == 0) {
    *total = weight;
    if (reduction == kMean) *out = T(loss / weight);
    else if (reduction == kSum) *out = T(loss);
  }
}

// The loss's gradient g of a row (grad is (N, S), 0 strides for a reduced loss),
// divided by the total weight for the mean.
template <class T>
__device__ __forceinline__ T row_grad(const T* __restrict__ grad, i64 sg0, i64 sg1, i64 n, i64 s,
                                      int reduction, const double* __restrict__ total) {
  const T norm = T(reduction == kMean ? 1.0 / *total : 1.0);
  return grad[n * sg0 + s * sg1] * norm;
}

// grad_input (N, C, S) contiguous: g * (softmax[c] * a - b[c]) with
// a = (1 - e) w[y] + (e / C) W and b[c] = (1 - e) w[y] [c == y] + (e / C) w[c].
template <class T>
__device__ __forceinline__ void ce_backward_kernel(
    const T* __restrict__ x, i64 sx0, i64 sx1, i64 sx2, const i64* __restrict__ y, i64 sy0,
    i64 sy1, const T* __restrict__ w, i64 sw, i64 N, i64 C, i64 S, i64 ignore, double eps,
    int reduction, const T* __restrict__ lse, i64 sl0, i64 sl1,
    const double* __restrict__ total, const T* __restrict__ grad, i64 sg0, i64 sg1,
    T* __restrict__ gi) {
  __shared__ double scratch[32];
  const T keep = T(1.0 - eps), share = T(eps / (double)C);
  for (i64 r = blockIdx.x; r < N * S; r += gridDim.x) {
    const i64 n = r / S, s = r % S;
    const i64 label = y[n * sy0 + s * sy1];
    T* out = gi + n * C * S + s;
    if (label == ignore) {
      for (i64 c = threadIdx.x; c < C; c += blockDim.x) out[c * S] = T(0);
      continue;
    }
    const T* row = x + n * sx0 + s * sx2;
    const T lse_r = lse[n * sl0 + s * sl1], g = row_grad(grad, sg0, sg1, n, s, reduction, total);
    const T wy = w[label * sw];
    T a = g * wy, b = T(0);
    if (eps > 0) {
      double ws = 0;
      for (i64 c = threadIdx.x; c < C; c += blockDim.x) ws += (double)w[c * sw];
      a = g * (keep * wy + share * T(block_sum(ws, scratch)));
      b = g * share;
    }
    const T picked = eps > 0 ? g * keep * wy : a;  // the extra term of the target class
    for (i64 c = threadIdx.x; c < C; c += blockDim.x) {
      T v = m_exp(row[c * sx1] - lse_r) * a - b * w[c * sw];
      if (c == label) v -= picked;
      out[c * S] = v;
    }
  }
}

// Probability targets: grad_input = g * (softmax[c] * sum(q) - q[c]); with has_gt,
// grad_target = -g (1 - e) w[c] logp[c] (both (N, C, S) contiguous).
template <class T>
__device__ __forceinline__ void ce_prob_backward_kernel(
    const T* __restrict__ x, i64 sx0, i64 sx1, i64 sx2, const T* __restrict__ t, i64 st0,
    i64 st1, i64 st2, const T* __restrict__ w, i64 sw, i64 N, i64 C, i64 S, double eps,
    int reduction, const T* __restrict__ lse, i64 sl0, i64 sl1,
    const double* __restrict__ total, const T* __restrict__ grad, i64 sg0, i64 sg1,
    T* __restrict__ gi, T* __restrict__ gt, int has_gt) {
  __shared__ double scratch[32];
  const T keep = T(1.0 - eps), share = T(eps / (double)C);
  for (i64 r = blockIdx.x; r < N * S; r += gridDim.x) {
    const i64 n = r / S, s = r % S;
    const T* row = x + n * sx0 + s * sx2;
    const T* trow = t + n * st0 + s * st2;
    const T lse_r = lse[n * sl0 + s * sl1], g = row_grad(grad, sg0, sg1, n, s, reduction, total);
    double qs = 0;
    for (i64 c = threadIdx.x; c < C; c += blockDim.x)
      qs += (double)(w[c * sw] * (keep * trow[c * st1] + share));
    const T a = g * T(block_sum(qs, scratch)), k = -g * keep;
    const i64 o = n * C * S + s;
    for (i64 c = threadIdx.x; c < C; c += blockDim.x) {
      const T q = w[c * sw] * (keep * trow[c * st1] + share), z = row[c * sx1] - lse_r;
      gi[o + c * S] = m_exp(z) * a - g * q;
      if (has_gt) gt[o + c * S] = k * w[c * sw] * z;
    }
  }
}

// ------------------------------------------------------------------ entry points
#define GENESIS_LABELS(L, s)                                                                   \
  extern "C" __global__ void check_labels_##s(const L* labels, i64 count, int ndim,            \
                                              const i64* meta, i64 n, int has_ignore,          \
                                              i64 ignore, i64* err) {                          \
    check_labels_kernel<L>(labels, count, ndim, meta, n, has_ignore, ignore, err);             \
  }
GENESIS_LABELS(int, i32)
GENESIS_LABELS(i64, i64)
#undef GENESIS_LABELS

#define GENESIS_LOSS(T, s)                                                                     \
  extern "C" __global__ void cross_entropy_##s(                                                \
      const T* x, i64 sx0, i64 sx1, i64 sx2, const i64* y, i64 sy0, i64 sy1, const T* w,       \
      i64 sw, i64 N, i64 C, i64 S, i64 ignore, double eps, T* row_loss, double* row_weight,    \
      T* lse) {                                                                                \
    ce_kernel<T>(x, sx0, sx1, sx2, y, sy0, sy1, w, sw, N, C, S, ignore, eps, row_loss,         \
                 row_weight, lse);                                                             \
  }                                                                                            \
  extern "C" __global__ void cross_entropy_prob_##s(                                           \
      const T* x, i64 sx0, i64 sx1, i64 sx2, const T* t, i64 st0, i64 st1, i64 st2,            \
      const T* w, i64 sw, i64 N, i64 C, i64 S, double eps, T* row_loss, double* row_weight,    \
      T* lse) {                                                                                \
    ce_prob_kernel<T>(x, sx0, sx1, sx2, t, st0, st1, st2, w, sw, N, C, S, eps, row_loss,       \
                      row_weight, lse);                                                        \
  }                                                                                            \
  extern "C" __global__ void cross_entropy_finish_##s(const T* row_loss,                      \
                                                      const double* row_weight, i64 rows,      \
                                                      int reduction, T* out, double* total) {  \
    ce_finish_kernel<T>(row_loss, row_weight, rows, reduction, out, total);                    \
  }                                                                                            \
  extern "C" __global__ void cross_entropy_backward_##s(                                       \
      const T* x, i64 sx0, i64 sx1, i64 sx2, const i64* y, i64 sy0, i64 sy1, const T* w,       \
      i64 sw, i64 N, i64 C, i64 S, i64 ignore, double eps, int reduction, const T* lse,        \
      i64 sl0, i64 sl1, const double* total, const T* grad, i64 sg0, i64 sg1, T* gi) {         \
    ce_backward_kernel<T>(x, sx0, sx1, sx2, y, sy0, sy1, w, sw, N, C, S, ignore, eps,          \
                          reduction, lse, sl0, sl1, total, grad, sg0, sg1, gi);                \
  }                                                                                            \
  extern "C" __global__ void cross_entropy_prob_backward_##s(                                  \
      const T* x, i64 sx0, i64 sx1, i64 sx2, const T* t, i64 st0, i64 st1, i64 st2,            \
      const T* w, i64 sw, i64 N, i64 C, i64 S, double eps, int reduction, const T* lse,        \
      i64 sl0, i64 sl1, const double* total, const T* grad, i64 sg0, i64 sg1, T* gi, T* gt,    \
      int has_gt) {                                                                            \
    ce_prob_backward_kernel<T>(x, sx0, sx1, sx2, t, st0, st1, st2, w, sw, N, C, S, eps,        \
                               reduction, lse, sl0, sl1, total, grad, sg0, sg1, gi, gt,        \
                               has_gt);                                                        \
  }
GENESIS_LOSS(float, f32)
GENESIS_LOSS(double, f64)
#undef GENESIS_LOSS
