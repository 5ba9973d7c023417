// Upsampling kernels.  Each axis gets a table of (source index, weight) taps
// computed once with PyTorch's rules (UpSample.h: nearest_idx,
// nearest_exact_idx, compute_source_index_and_lambda), so every output element
// reads the same inputs with the same weights as PyTorch's CPU kernels.
#include "upsample.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace genesis {
namespace {

// Below this many output elements, planes are processed on the calling thread.
constexpr int64_t kParallelWork = int64_t(1) << 15;

std::string shape_str(const View& v) {
  std::string s = "[";
  for (int d = 0; d < v.ndim; ++d) s += (d ? ", " : "") + std::to_string(v.shape[d]);
  return s + "]";
}

// PyTorch's compute_scales_value: 1 / scale_factor when one was given, else in / out.
template <class S>
S scale_value(double scale, int64_t in, int64_t out) {
  return scale > 0. ? static_cast<S>(1.0 / scale) : static_cast<S>(in) / static_cast<S>(out);
}

// Output o of one axis reads i0 with weight w0 and i1 with weight w1 (nearest:
// i1 = i0, w0 = 1, w1 = 0).
template <class T>
struct Taps {
  std::vector<int64_t> i0, i1;
  std::vector<T> w0, w1;
};

template <class T>
Taps<T> axis_taps(int64_t in, int64_t out, double scale, const UpsampleParams& p) {
  Taps<T> t;
  t.i0.resize(out);
  t.i1.resize(out);
  t.w0.assign(out, T(1));
  t.w1.assign(out, T(0));
  if (p.mode == UpsampleMode::bilinear) {
    // area_pixel_compute_scale; the arithmetic is in T (PyTorch's opmath type).
    const T ratio = p.align_corners
                        ? (out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0))
                        : scale_value<T>(scale, in, out);
    for (int64_t o = 0; o < out; ++o) {
      if (in == out) {  // PyTorch copies when the size is unchanged, whatever the scale
        t.i0[o] = t.i1[o] = o;
        continue;
      }
      T real = p.align_corners ? ratio * static_cast<T>(o)
                               : ratio * (static_cast<T>(o) + T(0.5)) - T(0.5);
      if (real < T(0)) real = T(0);
      // floorf, as PyTorch's guard_index_and_lambda (also for double).
      const int64_t i0 =
          std::min(static_cast<int64_t>(std::floor(static_cast<float>(real))), in - 1);
      const T lambda = std::min(std::max(real - static_cast<T>(i0), T(0)), T(1));
      t.i0[o] = i0;
      t.i1[o] = i0 + (i0 < in - 1 ? 1 : 0);
      t.w0[o] = T(1) - lambda;
      t.w1[o] = lambda;
    }
    return t;
  }
  // Nearest modes compute the source index in float for every dtype, as PyTorch.
  const float s = scale_value<float>(scale, in, out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t i;
    if (p.mode == UpsampleMode::nearest_exact)
      i = static_cast<int64_t>(
          std::floor(static_cast<float>((static_cast<double>(o) + 0.5) * s)));
    else if (out == in)
      i = o;
    else if (out == 2 * in)
      i = o >> 1;
    else
      i = static_cast<int64_t>(std::floor(static_cast<float>(o) * s));
    t.i0[o] = t.i1[o] = std::min(i, in - 1);
  }
  return t;
}

void check(const char* op, const View& x, const View& y, const View& written,
           const UpsampleParams& p) {
  if (x.ndim != 4 || y.ndim != 4)
    throw std::invalid_argument(std::string(op) + ": expected 4-D [N, C, H, W] arrays, got " +
                                shape_str(x) + " and " + shape_str(y));
  if (x.dtype != y.dtype || (x.dtype != DType::f32 && x.dtype != DType::f64))
    throw type_error(std::string(op) + ": expected float32 or float64 arrays of one dtype, got " +
                     dtype_name(x.dtype) + " and " + dtype_name(y.dtype));
  if (x.shape[0] != y.shape[0] || x.shape[1] != y.shape[1])
    throw std::invalid_argument(std::string(op) + ": batch and channel sizes differ: " +
                                shape_str(x) + " and " + shape_str(y));
  for (int i = 2; i < 4; ++i)
    if (x.shape[i] < 1 || y.shape[i] < 1)
      throw std::invalid_argument(std::string(op) + ": input " + shape_str(x) + " and output " +
                                  shape_str(y) + " must have non-empty spatial dims");
  if (numel(written) && !is_contiguous(written))
    throw std::invalid_argument(std::string(op) + ": the output array must be C-contiguous");
  const int m = static_cast<int>(p.mode);
  if (m < 0 || m > static_cast<int>(UpsampleMode::bilinear))
    throw std::invalid_argument(std::string(op) + ": unknown mode " + std::to_string(m));
}

// f(n, c, plane number) for every (n, c) plane, split across threads when large.
template <class F>
void for_planes(const View& x, int64_t work, F f) {
  const int64_t planes = x.shape[0] * x.shape[1];
  const int64_t C = x.shape[1];
#pragma omp parallel for schedule(static) if (work >= kParallelWork && planes > 1)
  for (int64_t i = 0; i < planes; ++i) f(i / C, i % C, i);
}

template <class T>
void forward_typed(const View& x, const View& out, const UpsampleParams& p) {
  const int64_t H = x.shape[2], W = x.shape[3], OH = out.shape[2], OW = out.shape[3];
  const int64_t sh = x.stride[2], sw = x.stride[3];
  const Taps<T> th = axis_taps<T>(H, OH, p.scale[0], p), tw = axis_taps<T>(W, OW, p.scale[1], p);
  const bool linear = p.mode == UpsampleMode::bilinear;
  for_planes(x, numel(out), [&](int64_t n, int64_t c, int64_t i) {
    const T* xp = static_cast<const T*>(x.data) + n * x.stride[0] + c * x.stride[1];
    T* o = static_cast<T*>(out.data) + i * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const T* r0 = xp + th.i0[oh] * sh;
      T* orow = o + oh * OW;
      if (!linear) {
        for (int64_t ow = 0; ow < OW; ++ow) orow[ow] = r0[tw.i0[ow] * sw];
        continue;
      }
      const T* r1 = xp + th.i1[oh] * sh;
      const T h0 = th.w0[oh], h1 = th.w1[oh];
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t a = tw.i0[ow] * sw, b = tw.i1[ow] * sw;
        const T w0 = tw.w0[ow], w1 = tw.w1[ow];
        orow[ow] = h0 * (w0 * r0[a] + w1 * r0[b]) + h1 * (w0 * r1[a] + w1 * r1[b]);
      }
    }
  });
}

template <class T>
void backward_typed(const View& gy, const View& gx, const UpsampleParams& p) {
  const int64_t H = gx.shape[2], W = gx.shape[3], OH = gy.shape[2], OW = gy.shape[3];
  const int64_t sh = gy.stride[2], sw = gy.stride[3];
  const Taps<T> th = axis_taps<T>(H, OH, p.scale[0], p), tw = axis_taps<T>(W, OW, p.scale[1], p);
  const bool linear = p.mode == UpsampleMode::bilinear;
  for_planes(gy, numel(gy), [&](int64_t n, int64_t c, int64_t i) {
    const T* g = static_cast<const T*>(gy.data) + n * gy.stride[0] + c * gy.stride[1];
    T* dst = static_cast<T*>(gx.data) + i * H * W;
    std::memset(dst, 0, sizeof(T) * H * W);
    for (int64_t oh = 0; oh < OH; ++oh) {
      const T* grow = g + oh * sh;
      T* d0 = dst + th.i0[oh] * W;
      if (!linear) {
        for (int64_t ow = 0; ow < OW; ++ow) d0[tw.i0[ow]] += grow[ow * sw];
        continue;
      }
      T* d1 = dst + th.i1[oh] * W;
      const T h0 = th.w0[oh], h1 = th.w1[oh];
      for (int64_t ow = 0; ow < OW; ++ow) {
        const T v = grow[ow * sw];
        const int64_t a = tw.i0[ow], b = tw.i1[ow];
        const T w0 = tw.w0[ow], w1 = tw.w1[ow];
        d0[a] += h0 * w0 * v;
        d0[b] += h0 * w1 * v;
        d1[a] += h1 * w0 * v;
        d1[b] += h1 * w1 * v;
      }
    }
  });
}

}  // namespace

void upsample2d(const View& x, const View& out, const UpsampleParams& p) {
  check("upsample2d", x, out, out, p);
  if (numel(out) == 0) return;
  if (x.dtype == DType::f32)
    forward_typed<float>(x, out, p);
  else
    forward_typed<double>(x, out, p);
}

void upsample2d_backward(const View& gy, const View& gx, const UpsampleParams& p) {
  check("upsample2d_backward", gx, gy, gx, p);
  if (numel(gx) == 0) return;
  if (gy.dtype == DType::f32)
    backward_typed<float>(gy, gx, p);
  else
    backward_typed<double>(gy, gx, p);
}

}  // namespace genesis
