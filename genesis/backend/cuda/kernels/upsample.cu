// Upsampling over NCHW (the CUDA counterpart of csrc/upsample.cpp): nearest,
// nearest-exact and bilinear, each with its backward.  Each thread computes
// the (source index, weight) taps of its row and column with PyTorch's rules,
// in the same types as the CPU kernel, so both read the same inputs.  (A GPU
// may fuse a multiply-add of the bilinear coordinate, which can move a
// coordinate that lands on an integer by one ulp; interpolation is continuous
// there, so the result moves by rounding only.)
//
// One thread per element of the C-contiguous output (forward) or of the
// output gradient (backward); xs: the strided operand's four strides.
// geo = (C, H, W, OH, OW), the sizes of input and output planes.
#include "common.cuh"

// Mode codes of csrc/upsample.h (UpsampleMode).
enum Mode { M_nearest, M_nearest_exact, M_bilinear };

// PyTorch's compute_scales_value: 1 / scale when one was given, else in / out.
template <class S>
__device__ __forceinline__ S scale_value(double scale, i64 in, i64 out) {
  return scale > 0. ? (S)(1.0 / scale) : (S)in / (S)out;
}

// Output o of one axis reads i0 with weight w0 and i1 with weight w1.
template <class T>
struct Tap {
  i64 i0, i1;
  T w0, w1;
};

template <class T>
__device__ __forceinline__ Tap<T> axis_tap(i64 o, i64 in, i64 out, double scale, int mode,
                                           int align_corners) {
  Tap<T> t;
  t.w0 = T(1);
  t.w1 = T(0);
  if (mode == M_bilinear) {
    if (in == out) {  // PyTorch copies when the size is unchanged, whatever the scale
      t.i0 = t.i1 = o;
      return t;
    }
    const T ratio = align_corners ? (out > 1 ? (T)(in - 1) / (T)(out - 1) : T(0))
                                  : scale_value<T>(scale, in, out);
    T real = align_corners ? ratio * (T)o : ratio * ((T)o + T(0.5)) - T(0.5);
    if (real < T(0)) real = T(0);
    // floorf, as PyTorch's guard_index_and_lambda (also for double).
    const i64 i0 = min_of((i64)floorf((float)real), in - 1);
    const T lambda = min_of(max_of(real - (T)i0, T(0)), T(1));
    t.i0 = i0;
    t.i1 = i0 + (i0 < in - 1 ? 1 : 0);
    t.w0 = T(1) - lambda;
    t.w1 = lambda;
    return t;
  }
  // Nearest modes compute the source index in float for every dtype, as PyTorch.
  const float s = scale_value<float>(scale, in, out);
  i64 i;
  if (mode == M_nearest_exact)
    i = (i64)floorf((float)(((double)o + 0.5) * s));
  else if (out == in)
    i = o;
  else if (out == 2 * in)
    i = o >> 1;
  else
    i = (i64)floorf((float)o * s);
  t.i0 = t.i1 = min_of(i, in - 1);
  return t;
}

template <class T>
__device__ __forceinline__ void upsample_kernel(const T* __restrict__ x, T* __restrict__ out,
                                                i64 total, const i64* __restrict__ geo,
                                                const i64* __restrict__ xs, int mode,
                                                int align_corners, double scale_h,
                                                double scale_w) {
  const i64 C = geo[0], H = geo[1], W = geo[2], OH = geo[3], OW = geo[4];
  GENESIS_FOR(i, total) {
    const i64 plane = i / (OH * OW);
    const T* xp = x + (plane / C) * xs[0] + (plane % C) * xs[1];
    const Tap<T> th = axis_tap<T>((i / OW) % OH, H, OH, scale_h, mode, align_corners);
    const Tap<T> tw = axis_tap<T>(i % OW, W, OW, scale_w, mode, align_corners);
    const T* r0 = xp + th.i0 * xs[2];
    const i64 a = tw.i0 * xs[3];
    if (mode != M_bilinear) {
      out[i] = r0[a];
      continue;
    }
    const T* r1 = xp + th.i1 * xs[2];
    const i64 b = tw.i1 * xs[3];
    out[i] = th.w0 * (tw.w0 * r0[a] + tw.w1 * r0[b]) + th.w1 * (tw.w0 * r1[a] + tw.w1 * r1[b]);
  }
}

// gx (zeroed by the caller) += each output gradient times the weights of the
// inputs it read; outputs share inputs, so the additions are atomic.
template <class T>
__device__ __forceinline__ void upsample_backward_kernel(const T* __restrict__ gy, T* gx,
                                                         i64 total, const i64* __restrict__ geo,
                                                         const i64* __restrict__ gs, int mode,
                                                         int align_corners, double scale_h,
                                                         double scale_w) {
  const i64 C = geo[0], H = geo[1], W = geo[2], OH = geo[3], OW = geo[4];
  GENESIS_FOR(i, total) {
    const i64 plane = i / (OH * OW), oh = (i / OW) % OH, ow = i % OW;
    const T v = gy[(plane / C) * gs[0] + (plane % C) * gs[1] + oh * gs[2] + ow * gs[3]];
    const Tap<T> th = axis_tap<T>(oh, H, OH, scale_h, mode, align_corners);
    const Tap<T> tw = axis_tap<T>(ow, W, OW, scale_w, mode, align_corners);
    T* d0 = gx + plane * H * W + th.i0 * W;
    if (mode != M_bilinear) {
      atomicAdd(d0 + tw.i0, v);
      continue;
    }
    T* d1 = gx + plane * H * W + th.i1 * W;
    atomicAdd(d0 + tw.i0, th.w0 * tw.w0 * v);
    atomicAdd(d0 + tw.i1, th.w0 * tw.w1 * v);
    atomicAdd(d1 + tw.i0, th.w1 * tw.w0 * v);
    atomicAdd(d1 + tw.i1, th.w1 * tw.w1 * v);
  }
}

#define GENESIS_UPSAMPLE(T, s)                                                               \
  extern "C" __global__ void upsample_##s(const T* x, T* out, i64 total, const i64* geo,      \
                                          const i64* xs, int mode, int align_corners,         \
                                          double scale_h, double scale_w) {                   \
    upsample_kernel<T>(x, out, total, geo, xs, mode, align_corners, scale_h, scale_w);       \
  }                                                                                          \
  extern "C" __global__ void upsample_backward_##s(const T* gy, T* gx, i64 total,             \
                                                   const i64* geo, const i64* gs, int mode,   \
                                                   int align_corners, double scale_h,         \
                                                   double scale_w) {                          \
    upsample_backward_kernel<T>(gy, gx, total, geo, gs, mode, align_corners, scale_h,        \
                                scale_w);                                                    \
  }
GENESIS_UPSAMPLE(float, f32)
GENESIS_UPSAMPLE(double, f64)
#undef GENESIS_UPSAMPLE
