// Pooling over NCHW (the CUDA counterpart of csrc/pool.cpp): max with argmax
// indices, average and adaptive average, each with its backward.  Window
// bounds are the CPU's (PyTorch's), so values and indices agree.
//
// One thread per element of the C-contiguous array a kernel writes, numbered
// row-major (n, c, row, column); inputs come with their four strides (xs).
// `geo` holds the geometry (PoolGeo order; adaptive pools use its first five).
#include "common.cuh"

enum PoolGeo { PG_C, PG_H, PG_W, PG_OH, PG_OW, PG_KH, PG_KW, PG_SH, PG_SW, PG_PH, PG_PW, PG_DH,
               PG_DW };

// The plane (n, c) of element i of an [N, C, rows, cols] array, as an offset by strides s.
__device__ __forceinline__ i64 plane_offset(i64 i, i64 rows, i64 cols, i64 C,
                                            const i64* __restrict__ s) {
  const i64 plane = i / (rows * cols);
  return (plane / C) * s[0] + (plane % C) * s[1];
}

// ------------------------------------------------------------------ max
// out = max of the window, idx = h * W + w of its first maximum (NaN wins); a
// window over no input element (dilation) gives -inf and -1.
template <class T>
__device__ __forceinline__ void max_pool_kernel(const T* __restrict__ x, T* __restrict__ out,
                                                i64* __restrict__ idx, i64 total,
                                                const i64* __restrict__ geo,
                                                const i64* __restrict__ xs) {
  const i64 C = geo[PG_C], H = geo[PG_H], W = geo[PG_W], OH = geo[PG_OH], OW = geo[PG_OW];
  const i64 DH = geo[PG_DH], DW = geo[PG_DW];
  GENESIS_FOR(i, total) {
    const T* xp = x + plane_offset(i, OH, OW, C, xs);
    i64 h0 = ((i / OW) % OH) * geo[PG_SH] - geo[PG_PH];
    i64 w0 = (i % OW) * geo[PG_SW] - geo[PG_PW];
    const i64 h1 = min_of(h0 + (geo[PG_KH] - 1) * DH + 1, H);
    const i64 w1 = min_of(w0 + (geo[PG_KW] - 1) * DW + 1, W);
    while (h0 < 0) h0 += DH;  // the first tap inside the input
    while (w0 < 0) w0 += DW;
    T best = -infinity<T>();
    i64 arg = (h0 < h1 && w0 < w1) ? h0 * W + w0 : -1;
    for (i64 h = h0; h < h1; h += DH)
      for (i64 w = w0; w < w1; w += DW) {
        const T v = xp[h * xs[2] + w * xs[3]];
        if (v > best || v != v) {
          best = v;
          arg = h * W + w;
        }
      }
    out[i] = best;
    idx[i] = arg;
  }
}

// gx (zeroed by the caller) [plane][idx] += gy over the elements of gy.  Windows
// overlap, so their gradients meet in atomics; an index outside the plane
// (other than -1, "no element") is flagged in err and skipped.
template <class T>
__device__ __forceinline__ void max_pool_backward_kernel(const T* __restrict__ gy,
                                                         const i64* __restrict__ idx,
                                                         T* gx, i64 total,
                                                         const i64* __restrict__ geo,
                                                         const i64* __restrict__ gs,
                                                         const i64* __restrict__ is,
                                                         i64* err) {
  const i64 C = geo[PG_C], HW = geo[PG_H] * geo[PG_W], OH = geo[PG_OH], OW = geo[PG_OW];
  GENESIS_FOR(i, total) {
    const i64 oh = (i / OW) % OH, ow = i % OW;
    const i64 k = idx[plane_offset(i, OH, OW, C, is) + oh * is[2] + ow * is[3]];
    if (k >= 0 && k < HW)
      atomicAdd(gx + (i / (OH * OW)) * HW + k,
                gy[plane_offset(i, OH, OW, C, gs) + oh * gs[2] + ow * gs[3]]);
    else if (k != -1)
      flag_position(err, i);
  }
}

// ------------------------------------------------------------------ average
// Window [h0, h1) x [w0, w1) of output (oh, ow), clipped to the input, and its
// divisor: `divisor` when nonzero, else the window clipped to the padded input
// (count_include_pad) or to the input.
struct AvgWindow {
  i64 h0, h1, w0, w1, divisor;
};

__device__ __forceinline__ AvgWindow avg_window(i64 oh, i64 ow, const i64* __restrict__ geo,
                                                int count_include_pad, i64 divisor) {
  const i64 H = geo[PG_H], W = geo[PG_W];
  AvgWindow r;
  r.h0 = oh * geo[PG_SH] - geo[PG_PH];
  r.w0 = ow * geo[PG_SW] - geo[PG_PW];
  r.h1 = min_of(r.h0 + geo[PG_KH], H + geo[PG_PH]);
  r.w1 = min_of(r.w0 + geo[PG_KW], W + geo[PG_PW]);
  const i64 padded = (r.h1 - r.h0) * (r.w1 - r.w0);
  r.h0 = max_of(r.h0, (i64)0);
  r.w0 = max_of(r.w0, (i64)0);
  r.h1 = min_of(r.h1, H);
  r.w1 = min_of(r.w1, W);
  r.divisor = divisor != 0 ? divisor
              : count_include_pad ? padded
                                  : (r.h1 - r.h0) * (r.w1 - r.w0);
  return r;
}

template <class T>
__device__ __forceinline__ void avg_pool_kernel(const T* __restrict__ x, T* __restrict__ out,
                                                i64 total, const i64* __restrict__ geo,
                                                const i64* __restrict__ xs,
                                                int count_include_pad, i64 divisor) {
  const i64 OH = geo[PG_OH], OW = geo[PG_OW];
  GENESIS_FOR(i, total) {
    const T* xp = x + plane_offset(i, OH, OW, geo[PG_C], xs);
    const AvgWindow a = avg_window((i / OW) % OH, i % OW, geo, count_include_pad, divisor);
    if (a.h0 >= a.h1 || a.w0 >= a.w1) {
      out[i] = T(0);
      continue;
    }
    T s = T(0);
    for (i64 h = a.h0; h < a.h1; ++h)
      for (i64 w = a.w0; w < a.w1; ++w) s += xp[h * xs[2] + w * xs[3]];
    out[i] = s / (T)a.divisor;
  }
}

// gx[n, c, h, w] gathers gy / divisor of every window that holds (h, w): rows
// oh with oh * SH - PH <= h < oh * SH - PH + KH (the same for columns), added
// in the CPU's order.
template <class T>
__device__ __forceinline__ void avg_pool_backward_kernel(const T* __restrict__ gy,
                                                         T* __restrict__ gx, i64 total,
                                                         const i64* __restrict__ geo,
                                                         const i64* __restrict__ gs,
                                                         int count_include_pad, i64 divisor) {
  const i64 H = geo[PG_H], W = geo[PG_W], OH = geo[PG_OH], OW = geo[PG_OW];
  const i64 SH = geo[PG_SH], SW = geo[PG_SW];
  GENESIS_FOR(i, total) {
    const T* g = gy + plane_offset(i, H, W, geo[PG_C], gs);
    const i64 h = (i / W) % H + geo[PG_PH], w = i % W + geo[PG_PW];  // in padded coordinates
    const i64 lo_h = h - geo[PG_KH] + 1, lo_w = w - geo[PG_KW] + 1;
    const i64 oh0 = lo_h > 0 ? (lo_h + SH - 1) / SH : 0, oh1 = min_of(h / SH + 1, OH);
    const i64 ow0 = lo_w > 0 ? (lo_w + SW - 1) / SW : 0, ow1 = min_of(w / SW + 1, OW);
    T acc = T(0);
    for (i64 oh = oh0; oh < oh1; ++oh)
      for (i64 ow = ow0; ow < ow1; ++ow) {
        const AvgWindow a = avg_window(oh, ow, geo, count_include_pad, divisor);
        acc += g[oh * gs[2] + ow * gs[3]] / (T)a.divisor;
      }
    gx[i] = acc;
  }
}

// ------------------------------------------------------------------ adaptive average
// Output row o averages input rows [floor(o * in / out), ceil((o + 1) * in / out)).
__device__ __forceinline__ i64 adaptive_start(i64 o, i64 out, i64 in) { return (o * in) / out; }
__device__ __forceinline__ i64 adaptive_end(i64 o, i64 out, i64 in) {
  return ((o + 1) * in + out - 1) / out;
}

template <class T>
__device__ __forceinline__ void adaptive_kernel(const T* __restrict__ x, T* __restrict__ out,
                                                i64 total, const i64* __restrict__ geo,
                                                const i64* __restrict__ xs) {
  const i64 H = geo[PG_H], W = geo[PG_W], OH = geo[PG_OH], OW = geo[PG_OW];
  GENESIS_FOR(i, total) {
    const T* xp = x + plane_offset(i, OH, OW, geo[PG_C], xs);
    const i64 oh = (i / OW) % OH, ow = i % OW;
    const i64 h0 = adaptive_start(oh, OH, H), h1 = adaptive_end(oh, OH, H);
    const i64 w0 = adaptive_start(ow, OW, W), w1 = adaptive_end(ow, OW, W);
    T s = T(0);
    for (i64 h = h0; h < h1; ++h)
      for (i64 w = w0; w < w1; ++w) s += xp[h * xs[2] + w * xs[3]];
    out[i] = s / (T)((h1 - h0) * (w1 - w0));
  }
}

// gx[n, c, h, w] gathers gy / cell size of every output cell whose rows and
// columns hold (h, w): from floor(h * out / in), the first cell ending after h,
// to the last one starting at or before h.
template <class T>
__device__ __forceinline__ void adaptive_backward_kernel(const T* __restrict__ gy,
                                                         T* __restrict__ gx, i64 total,
                                                         const i64* __restrict__ geo,
                                                         const i64* __restrict__ gs) {
  const i64 H = geo[PG_H], W = geo[PG_W], OH = geo[PG_OH], OW = geo[PG_OW];
  GENESIS_FOR(i, total) {
    const T* g = gy + plane_offset(i, H, W, geo[PG_C], gs);
    const i64 h = (i / W) % H, w = i % W;
    T acc = T(0);
    for (i64 oh = h * OH / H; oh < OH && adaptive_start(oh, OH, H) <= h; ++oh) {
      const i64 h0 = adaptive_start(oh, OH, H), h1 = adaptive_end(oh, OH, H);
      for (i64 ow = w * OW / W; ow < OW && adaptive_start(ow, OW, W) <= w; ++ow) {
        const i64 w0 = adaptive_start(ow, OW, W), w1 = adaptive_end(ow, OW, W);
        acc += g[oh * gs[2] + ow * gs[3]] / (T)((h1 - h0) * (w1 - w0));
      }
    }
    gx[i] = acc;
  }
}

#define GENESIS_POOL(T, s)                                                                   \
  extern "C" __global__ void max_pool_##s(const T* x, T* out, i64* idx, i64 total,            \
                                          const i64* geo, const i64* xs) {                    \
    max_pool_kernel<T>(x, out, idx, total, geo, xs);                                         \
  }                                                                                          \
  extern "C" __global__ void max_pool_backward_##s(const T* gy, const i64* idx, T* gx,        \
                                                   i64 total, const i64* geo, const i64* gs,  \
                                                   const i64* is, i64* err) {                 \
    max_pool_backward_kernel<T>(gy, idx, gx, total, geo, gs, is, err);                       \
  }                                                                                          \
  extern "C" __global__ void avg_pool_##s(const T* x, T* out, i64 total, const i64* geo,      \
                                          const i64* xs, int count_include_pad, i64 divisor) { \
    avg_pool_kernel<T>(x, out, total, geo, xs, count_include_pad, divisor);                  \
  }                                                                                          \
  extern "C" __global__ void avg_pool_backward_##s(const T* gy, T* gx, i64 total,             \
                                                   const i64* geo, const i64* gs,             \
                                                   int count_include_pad, i64 divisor) {      \
    avg_pool_backward_kernel<T>(gy, gx, total, geo, gs, count_include_pad, divisor);         \
  }                                                                                          \
  extern "C" __global__ void adaptive_avg_pool_##s(const T* x, T* out, i64 total,             \
                                                   const i64* geo, const i64* xs) {           \
    adaptive_kernel<T>(x, out, total, geo, xs);                                              \
  }                                                                                          \
  extern "C" __global__ void adaptive_avg_pool_backward_##s(const T* gy, T* gx, i64 total,    \
                                                            const i64* geo, const i64* gs) {  \
    adaptive_backward_kernel<T>(gy, gx, total, geo, gs);                                     \
  }
GENESIS_POOL(float, f32)
GENESIS_POOL(double, f64)
#undef GENESIS_POOL
