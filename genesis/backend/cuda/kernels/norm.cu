// Normalization kernels: batch norm, layer norm and group norm, forward and
// backward (the CUDA counterpart of csrc/norm.cpp).
//
// Every statistic belongs to one "segment" of x, reduced by one block:
//   batch norm: channel c, N rows of S elements placed C*S apart;
//   layer norm: one row of K elements;
//   group norm: one (sample, group), a contiguous block of D*S elements.
// As on the CPU, statistics are accumulated in double with the corrected
// two-pass algorithm and the elementwise passes run in the input's precision
// on deviations from the mean.  Block sums combine in a fixed tree (warp
// shuffles, then the warp totals), so results do not depend on thread order.
// x and upstream gradients are contiguous; per-channel vectors come with an
// element stride (0 for the backend's stand-in of an absent weight or bias).
#include "common.cuh"

__device__ __forceinline__ double block_sum(double v, double* scratch) {
  return block_reduce(v, scratch, [](double a, double b) { return a + b; });
}

// Offset of element j of a segment made of rows of `len` elements, `step` apart.
__device__ __forceinline__ i64 seg_at(i64 j, i64 len, i64 step) {
  return j / len * step + j % len;
}

struct Moments {
  double mean, var;
};

// Mean and biased variance of the `count` elements of a segment (every thread gets them).
template <class T>
__device__ __forceinline__ Moments segment_moments(const T* __restrict__ x, i64 count, i64 len,
                                                   i64 step, double* scratch) {
  double s = 0;
  for (i64 j = threadIdx.x; j < count; j += blockDim.x) s += (double)x[seg_at(j, len, step)];
  s = block_sum(s, scratch);
  const double mean = count ? s / (double)count : 0.0;
  double d1 = 0, d2 = 0;
  for (i64 j = threadIdx.x; j < count; j += blockDim.x) {
    const double d = (double)x[seg_at(j, len, step)] - mean;
    d1 += d;
    d2 += d * d;
  }
  d1 = block_sum(d1, scratch);
  d2 = block_sum(d2, scratch);
  const double var = count ? (d2 - d1 * d1 / (double)count) / (double)count : 0.0;
  return {mean, var > 0.0 ? var : 0.0};  // rounding can make it slightly negative
}

// Sums of g and of g * (x - mean) over a segment, into sg and sgd.
template <class T>
__device__ __forceinline__ void segment_grad_sums(const T* __restrict__ g,
                                                  const T* __restrict__ x, i64 count, i64 len,
                                                  i64 step, double mean, double* scratch,
                                                  double& sg, double& sgd) {
  double a = 0, b = 0;
  for (i64 j = threadIdx.x; j < count; j += blockDim.x) {
    const i64 o = seg_at(j, len, step);
    a += (double)g[o];
    b += (double)g[o] * ((double)x[o] - mean);
  }
  sg = block_sum(a, scratch);
  sgd = block_sum(b, scratch);
}

// ------------------------------------------------------------------ batch norm
// One block per channel.  Training: batch statistics, and the running ones (when
// has_rm / has_rv) move towards them, the variance unbiased; eval: running statistics.
template <class T>
__device__ __forceinline__ void batch_norm_kernel(
    const T* __restrict__ x, const T* __restrict__ w, i64 sw, const T* __restrict__ b, i64 sb,
    T* rm, i64 srm, int has_rm, T* rv, i64 srv, int has_rv, int training, double momentum,
    double eps, T* __restrict__ out, T* __restrict__ save_mean, T* __restrict__ save_invstd,
    i64 N, i64 C, i64 S) {
  __shared__ double scratch[32];
  const i64 M = N * S;
  for (i64 c = blockIdx.x; c < C; c += gridDim.x) {
    double mean, invstd;
    if (training) {
      const Moments mo = segment_moments(x + c * S, M, S, C * S, scratch);
      mean = mo.mean;
      invstd = 1.0 / m_sqrt(mo.var + eps);
      if (threadIdx.x == 0 && M > 0) {  // an empty batch leaves the running statistics alone
        if (has_rm) rm[c * srm] = T((1.0 - momentum) * (double)rm[c * srm] + momentum * mean);
        if (has_rv)
          rv[c * srv] = T((1.0 - momentum) * (double)rv[c * srv] +
                          momentum * mo.var * (double)M / (double)(M - 1));
      }
    } else {
      mean = (double)rm[c * srm];
      invstd = 1.0 / m_sqrt((double)rv[c * srv] + eps);
    }
    if (threadIdx.x == 0) {
      save_mean[c] = T(mean);
      save_invstd[c] = T(invstd);
    }
    const T tm = T(mean), scale = T(invstd * (double)w[c * sw]), shift = b[c * sb];
    for (i64 j = threadIdx.x; j < M; j += blockDim.x) {
      const i64 o = c * S + seg_at(j, S, C * S);
      out[o] = (x[o] - tm) * scale + shift;
    }
  }
}

// Bits of `outputs`: 1 grad_input, 2 grad_weight, 4 grad_bias (the others are not written).
//   training: dx = w * invstd * (g - mean(g) - (x - mean) * invstd^2 * mean(g * (x - mean)))
//   eval:     dx = w * invstd * g
template <class T>
__device__ __forceinline__ void batch_norm_backward_kernel(
    const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ w, i64 sw,
    const T* __restrict__ save_mean, const T* __restrict__ save_invstd, int training,
    T* __restrict__ gi, T* __restrict__ gw, T* __restrict__ gb, int outputs, i64 N, i64 C,
    i64 S) {
  __shared__ double scratch[32];
  const i64 M = N * S;
  const bool need_sums = (outputs & 6) || ((outputs & 1) && training);
  for (i64 c = blockIdx.x; c < C; c += gridDim.x) {
    const double mean = (double)save_mean[c], invstd = (double)save_invstd[c];
    double sg = 0, sgd = 0;
    if (need_sums) segment_grad_sums(g + c * S, x + c * S, M, S, C * S, mean, scratch, sg, sgd);
    if (threadIdx.x == 0) {
      if (outputs & 2) gw[c] = T(sgd * invstd);
      if (outputs & 4) gb[c] = T(sg);
    }
    if (!(outputs & 1)) continue;
    const double a = (double)w[c * sw] * invstd;
    double bcoef = 0, ccoef = 0;
    if (training && M > 0) {
      bcoef = -a * invstd * invstd * sgd / (double)M;
      ccoef = -a * sg / (double)M;
    }
    const T tm = T(mean), ta = T(a), tb = T(bcoef), tc = T(ccoef);
    for (i64 j = threadIdx.x; j < M; j += blockDim.x) {
      const i64 o = c * S + seg_at(j, S, C * S);
      gi[o] = ta * g[o] + tb * (x[o] - tm) + tc;
    }
  }
}

// ------------------------------------------------------------------ layer norm
// One block per row of K elements; weight and bias hold K elements (stride sw, sb).
template <class T>
__device__ __forceinline__ void layer_norm_kernel(const T* __restrict__ x,
                                                  const T* __restrict__ w, i64 sw,
                                                  const T* __restrict__ b, i64 sb, double eps,
                                                  T* __restrict__ out, T* __restrict__ mean,
                                                  T* __restrict__ rstd, i64 M, i64 K) {
  __shared__ double scratch[32];
  for (i64 r = blockIdx.x; r < M; r += gridDim.x) {
    const T* xr = x + r * K;
    const Moments mo = segment_moments(xr, K, K, 0, scratch);
    const double rs = 1.0 / m_sqrt(mo.var + eps);
    if (threadIdx.x == 0) {
      mean[r] = T(mo.mean);
      rstd[r] = T(rs);
    }
    const T m = T(mo.mean), s = T(rs);
    for (i64 k = threadIdx.x; k < K; k += blockDim.x)
      out[r * K + k] = (xr[k] - m) * s * w[k * sw] + b[k * sb];
  }
}

// grad_input, one block per row:
//   dx = rstd * (g*w - mean(g*w) - (x - mean) * rstd^2 * mean(g*w * (x - mean)))
template <class T>
__device__ __forceinline__ void layer_norm_backward_kernel(
    const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ mean,
    const T* __restrict__ rstd, const T* __restrict__ w, i64 sw, T* __restrict__ gi, i64 M,
    i64 K) {
  __shared__ double scratch[32];
  for (i64 r = blockIdx.x; r < M; r += gridDim.x) {
    const T* gr = g + r * K;
    const T* xr = x + r * K;
    const double m = (double)mean[r], rs = (double)rstd[r];
    double a = 0, b = 0;
    for (i64 k = threadIdx.x; k < K; k += blockDim.x) {
      const double gw = (double)gr[k] * (double)w[k * sw];
      a += gw;
      b += gw * ((double)xr[k] - m);
    }
    a = block_sum(a, scratch);
    b = block_sum(b, scratch);
    const T tm = T(m), ts = T(rs), tb = T(-rs * rs * rs * b / (double)K),
            tc = T(-rs * a / (double)K);
    for (i64 k = threadIdx.x; k < K; k += blockDim.x)
      gi[r * K + k] = ts * (gr[k] * w[k * sw]) + tb * (xr[k] - tm) + tc;
  }
}

// grad_weight (outputs & 2) and grad_bias (outputs & 4), one thread per column k.
template <class T>
__device__ __forceinline__ void layer_norm_params_kernel(
    const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ mean,
    const T* __restrict__ rstd, T* __restrict__ gw, T* __restrict__ gb, int outputs, i64 M,
    i64 K) {
  GENESIS_FOR(k, K) {
    double sw = 0, sb = 0;
    for (i64 r = 0; r < M; ++r) {
      const double gk = (double)g[r * K + k];
      sw += gk * ((double)x[r * K + k] - (double)mean[r]) * (double)rstd[r];
      sb += gk;
    }
    if (outputs & 2) gw[k] = T(sw);
    if (outputs & 4) gb[k] = T(sb);
  }
}

// ------------------------------------------------------------------ group norm
// One block per (sample, group): G groups of D channels of S elements each.
template <class T>
__device__ __forceinline__ void group_norm_kernel(const T* __restrict__ x,
                                                  const T* __restrict__ w, i64 sw,
                                                  const T* __restrict__ b, i64 sb, double eps,
                                                  T* __restrict__ out, T* __restrict__ mean,
                                                  T* __restrict__ rstd, i64 N, i64 G, i64 D,
                                                  i64 S) {
  __shared__ double scratch[32];
  const i64 block = D * S;
  for (i64 ng = blockIdx.x; ng < N * G; ng += gridDim.x) {
    const i64 off = ng * block;
    const Moments mo = segment_moments(x + off, block, block, 0, scratch);
    const double rs = 1.0 / m_sqrt(mo.var + eps);
    if (threadIdx.x == 0) {
      mean[ng] = T(mo.mean);
      rstd[ng] = T(rs);
    }
    const T m = T(mo.mean);
    for (i64 j = threadIdx.x; j < block; j += blockDim.x) {
      const i64 c = (ng % G) * D + j / S;
      out[off + j] = (x[off + j] - m) * T(rs * (double)w[c * sw]) + b[c * sb];
    }
  }
}

// One block per (sample, group): per channel, ds = sum(g * (x - mean)) and db = sum(g)
// go to the (N, C) workspaces; with grad_input (has_gi)
//   dx = rstd * (w*g - mean(w*g) - (x - mean) * rstd^2 * mean(w*g * (x - mean))).
template <class T>
__device__ __forceinline__ void group_norm_backward_kernel(
    const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ mean,
    const T* __restrict__ rstd, const T* __restrict__ w, i64 sw, T* __restrict__ gi, int has_gi,
    double* __restrict__ ds, double* __restrict__ db, i64 N, i64 G, i64 D, i64 S) {
  __shared__ double scratch[32];
  const i64 block = D * S;
  for (i64 ng = blockIdx.x; ng < N * G; ng += gridDim.x) {
    const i64 off = ng * block, c0 = (ng % G) * D, nc0 = (ng / G) * G * D + c0;
    const double m = (double)mean[ng], rs = (double)rstd[ng];
    double A = 0, B = 0;  // sums over the group of w * g * (x - mean) and of w * g
    for (i64 j = 0; j < D; ++j) {
      double sg, sgd;
      segment_grad_sums(g + off + j * S, x + off + j * S, S, S, 0, m, scratch, sg, sgd);
      if (threadIdx.x == 0) {
        ds[nc0 + j] = sgd;
        db[nc0 + j] = sg;
      }
      const double wc = (double)w[(c0 + j) * sw];
      A += wc * sgd;
      B += wc * sg;
    }
    if (!has_gi || block == 0) continue;
    const T tm = T(m), tb = T(-rs * rs * rs * A / (double)block), tc = T(-rs * B / (double)block);
    for (i64 j = threadIdx.x; j < block; j += blockDim.x) {
      const i64 c = c0 + j / S;
      gi[off + j] = T(rs * (double)w[c * sw]) * g[off + j] + tb * (x[off + j] - tm) + tc;
    }
  }
}

// grad_weight (outputs & 2) and grad_bias (outputs & 4) from the workspaces, one thread
// per channel: sums over the samples of ds * rstd and of db.
template <class T>
__device__ __forceinline__ void group_norm_params_kernel(const double* __restrict__ ds,
                                                         const double* __restrict__ db,
                                                         const T* __restrict__ rstd,
                                                         T* __restrict__ gw, T* __restrict__ gb,
                                                         int outputs, i64 N, i64 G, i64 D) {
  const i64 C = G * D;
  GENESIS_FOR(c, C) {
    double sw = 0, sb = 0;
    for (i64 n = 0; n < N; ++n) {
      sw += ds[n * C + c] * (double)rstd[n * G + c / D];
      sb += db[n * C + c];
    }
    if (outputs & 2) gw[c] = T(sw);
    if (outputs & 4) gb[c] = T(sb);
  }
}

// ------------------------------------------------------------------ entry points
#define GENESIS_NORM(T, s)                                                                     \
  extern "C" __global__ void batch_norm_##s(const T* x, const T* w, i64 sw, const T* b,        \
                                            i64 sb, T* rm, i64 srm, int has_rm, T* rv,         \
                                            i64 srv, int has_rv, int training,                 \
                                            double momentum, double eps, T* out,               \
                                            T* save_mean, T* save_invstd, i64 N, i64 C,        \
                                            i64 S) {                                           \
    batch_norm_kernel<T>(x, w, sw, b, sb, rm, srm, has_rm, rv, srv, has_rv, training,          \
                         momentum, eps, out, save_mean, save_invstd, N, C, S);                 \
  }                                                                                            \
  extern "C" __global__ void batch_norm_backward_##s(                                          \
      const T* g, const T* x, const T* w, i64 sw, const T* save_mean, const T* save_invstd,    \
      int training, T* gi, T* gw, T* gb, int outputs, i64 N, i64 C, i64 S) {                   \
    batch_norm_backward_kernel<T>(g, x, w, sw, save_mean, save_invstd, training, gi, gw, gb,   \
                                  outputs, N, C, S);                                           \
  }                                                                                            \
  extern "C" __global__ void layer_norm_##s(const T* x, const T* w, i64 sw, const T* b,        \
                                            i64 sb, double eps, T* out, T* mean, T* rstd,      \
                                            i64 M, i64 K) {                                    \
    layer_norm_kernel<T>(x, w, sw, b, sb, eps, out, mean, rstd, M, K);                         \
  }                                                                                            \
  extern "C" __global__ void layer_norm_backward_##s(const T* g, const T* x, const T* mean,    \
                                                     const T* rstd, const T* w, i64 sw,        \
                                                     T* gi, i64 M, i64 K) {                    \
    layer_norm_backward_kernel<T>(g, x, mean, rstd, w, sw, gi, M, K);                          \
  }                                                                                            \
  extern "C" __global__ void layer_norm_params_##s(const T* g, const T* x, const T* mean,      \
                                                   const T* rstd, T* gw, T* gb, int outputs,   \
                                                   i64 M, i64 K) {                             \
    layer_norm_params_kernel<T>(g, x, mean, rstd, gw, gb, outputs, M, K);                      \
  }                                                                                            \
  extern "C" __global__ void group_norm_##s(const T* x, const T* w, i64 sw, const T* b,        \
                                            i64 sb, double eps, T* out, T* mean, T* rstd,      \
                                            i64 N, i64 G, i64 D, i64 S) {                      \
    group_norm_kernel<T>(x, w, sw, b, sb, eps, out, mean, rstd, N, G, D, S);                   \
  }                                                                                            \
  extern "C" __global__ void group_norm_backward_##s(                                          \
      const T* g, const T* x, const T* mean, const T* rstd, const T* w, i64 sw, T* gi,         \
      int has_gi, double* ds, double* db, i64 N, i64 G, i64 D, i64 S) {                        \
    group_norm_backward_kernel<T>(g, x, mean, rstd, w, sw, gi, has_gi, ds, db, N, G, D, S);    \
  }                                                                                            \
  extern "C" __global__ void group_norm_params_##s(const double* ds, const double* db,         \
                                                   const T* rstd, T* gw, T* gb, int outputs,   \
                                                   i64 N, i64 G, i64 D) {                      \
    group_norm_params_kernel<T>(ds, db, rstd, gw, gb, outputs, N, G, D);                       \
  }
GENESIS_NORM(float, f32)
GENESIS_NORM(double, f64)
#undef GENESIS_NORM
