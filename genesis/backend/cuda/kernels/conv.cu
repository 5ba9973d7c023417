// Convolution over NCHW (the CUDA counterpart of csrc/conv.cpp): im2col and
// col2im here, the products in gemm.cu's matmul (the backend chains them):
//
//   forward       out[n, g]  =  w[g]           @  col(x[n, g])
//   input grad    col        =  w[g]^T         @  gy[n, g]       -> col2im into gx
//   weight grad   gw[g]      =  gy[:, g]       @  col(x[:, g])^T  (batch folded into columns)
//
// with col(x)[k, p] for k = (c * KH + kh) * KW + kw over a group's channels
// and p = oh * OW + ow.  `geo` holds the geometry (ConvGeo order).
#include "common.cuh"

enum ConvGeo { CG_C, CG_H, CG_W, CG_GROUPS, CG_KH, CG_KW, CG_OH, CG_OW, CG_SH, CG_SW, CG_PT,
               CG_PL, CG_DH, CG_DW };

// col[n, g, k, p] = x[n, g * Cg + k / (KH * KW), ih, iw], 0 where the window is
// over padding.  xs: x's four strides; cs: col's strides for (n, g, k, p), so
// the caller picks the layout (per-sample for the forward, batch-in-columns for
// the weight gradient).  Elements are numbered n, g, k, p row-major.
template <class T>
__device__ __forceinline__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ col,
                                              i64 total, const i64* __restrict__ geo,
                                              const i64* __restrict__ xs,
                                              const i64* __restrict__ cs) {
  const i64 G = geo[CG_GROUPS], KH = geo[CG_KH], KW = geo[CG_KW], OW = geo[CG_OW];
  const i64 Cg = geo[CG_C] / G, K = Cg * KH * KW, OHW = geo[CG_OH] * OW;
  GENESIS_FOR(i, total) {
    const i64 p = i % OHW, k = (i / OHW) % K, ng = i / (OHW * K);
    const i64 g = ng % G, n = ng / G;
    const i64 kw = k % KW, kh = (k / KW) % KH, c = g * Cg + k / (KH * KW);
    const i64 ih = (p / OW) * geo[CG_SH] - geo[CG_PT] + kh * geo[CG_DH];
    const i64 iw = (p % OW) * geo[CG_SW] - geo[CG_PL] + kw * geo[CG_DW];
    const bool inside = ih >= 0 && ih < geo[CG_H] && iw >= 0 && iw < geo[CG_W];
    col[n * cs[0] + g * cs[1] + k * cs[2] + p * cs[3]] =
        inside ? x[n * xs[0] + c * xs[1] + ih * xs[2] + iw * xs[3]] : T(0);
  }
}

// gx[n, c, ih, iw] (C-contiguous) = the sum of the col[n, g, k, p] (C-contiguous)
// that im2col would have read from it.  Gathering per input element needs no
// atomics; the terms are added in the CPU's order (kh, then kw).
template <class T>
__device__ __forceinline__ void col2im_kernel(const T* __restrict__ col, T* __restrict__ gx,
                                              i64 total, const i64* __restrict__ geo) {
  const i64 C = geo[CG_C], H = geo[CG_H], W = geo[CG_W], G = geo[CG_GROUPS];
  const i64 KH = geo[CG_KH], KW = geo[CG_KW], OH = geo[CG_OH], OW = geo[CG_OW];
  const i64 SH = geo[CG_SH], SW = geo[CG_SW], Cg = C / G, K = Cg * KH * KW;
  GENESIS_FOR(i, total) {
    const i64 iw = i % W, ih = (i / W) % H, c = (i / (W * H)) % C, n = i / (W * H * C);
    const i64 g = c / Cg;
    const T* src = col + (n * G + g) * K * OH * OW + (c % Cg) * KH * KW * OH * OW;
    T acc = T(0);
    for (i64 kh = 0; kh < KH; ++kh) {
      const i64 t = ih + geo[CG_PT] - kh * geo[CG_DH];
      if (t < 0 || t % SH != 0 || t / SH >= OH) continue;
      for (i64 kw = 0; kw < KW; ++kw) {
        const i64 u = iw + geo[CG_PL] - kw * geo[CG_DW];
        if (u < 0 || u % SW != 0 || u / SW >= OW) continue;
        acc += src[(kh * KW + kw) * OH * OW + (t / SH) * OW + u / SW];
      }
    }
    gx[i] = acc;
  }
}

#define GENESIS_CONV(T, s)                                                                   \
  extern "C" __global__ void im2col_##s(const T* x, T* col, i64 total, const i64* geo,        \
                                        const i64* xs, const i64* cs) {                       \
    im2col_kernel<T>(x, col, total, geo, xs, cs);                                            \
  }                                                                                          \
  extern "C" __global__ void col2im_##s(const T* col, T* gx, i64 total, const i64* geo) {     \
    col2im_kernel<T>(col, gx, total, geo);                                                   \
  }
GENESIS_CONV(float, f32)
GENESIS_CONV(double, f64)
#undef GENESIS_CONV
