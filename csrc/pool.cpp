// Pooling kernels.  Window bounds follow PyTorch's CPU kernels exactly
// (clipping, ceil_mode, count_include_pad), so results and argmax indices agree.
#include "pool.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace genesis {
namespace {

// Below this many elements touched, planes are processed on the calling thread.
constexpr int64_t kParallelWork = int64_t(1) << 15;

std::string shape_str(const View& v) {
  std::string s = "[";
  for (int d = 0; d < v.ndim; ++d) s += (d ? ", " : "") + std::to_string(v.shape[d]);
  return s + "]";
}

inline int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// PyTorch's pooling_output_shape.
int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  int64_t o = floor_div(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (o - 1) * s >= in + p) --o;
  return o;
}

// x [N, C, H, W] input side, y [N, C, OH, OW] output side, both float of one dtype;
// `written` is the one the kernel fills (C-contiguous).
void check_planes(const char* op, const View& x, const View& y, const View& written) {
  if (x.ndim != 4 || y.ndim != 4)
    throw std::invalid_argument(std::string(op) + ": expected 4-D [N, C, H, W] arrays, got " +
                                shape_str(x) + " and " + shape_str(y));
  if (x.dtype != y.dtype || (x.dtype != DType::f32 && x.dtype != DType::f64))
    throw type_error(std::string(op) + ": expected float32 or float64 arrays of one dtype, got " +
                     dtype_name(x.dtype) + " and " + dtype_name(y.dtype));
  if (x.shape[0] != y.shape[0] || x.shape[1] != y.shape[1])
    throw std::invalid_argument(std::string(op) + ": batch and channel sizes differ: " +
                                shape_str(x) + " and " + shape_str(y));
  if (numel(written) && !is_contiguous(written))
    throw std::invalid_argument(std::string(op) + ": the output array must be C-contiguous");
}

void check_window(const char* op, const View& x, const View& y, const PoolParams& p) {
  for (int i = 0; i < 2; ++i) {
    const int64_t k = p.kernel[i], s = p.stride[i], pad = p.pad[i], d = p.dilation[i];
    if (k < 1 || s < 1 || d < 1 || pad < 0)
      throw std::invalid_argument(std::string(op) +
                                  ": kernel size, stride and dilation must be positive and "
                                  "padding non-negative");
    if (pad > k / 2)
      throw std::invalid_argument(std::string(op) + ": padding " + std::to_string(pad) +
                                  " must be at most half of the kernel size " + std::to_string(k));
    const int64_t in = x.shape[2 + i], out = y.shape[2 + i];
    if (out < 1 || (out != pool_out(in, k, s, pad, d, false) &&
                    out != pool_out(in, k, s, pad, d, true)))
      throw std::invalid_argument(std::string(op) + ": output " + shape_str(y) +
                                  " does not match input " + shape_str(x) +
                                  " for this kernel, stride, padding and dilation");
  }
}

// f(plane) for every (n, c) plane, split across threads when the work is large.
template <class F>
void for_planes(const View& x, int64_t work, F f) {
  const int64_t planes = x.shape[0] * x.shape[1];
  const int64_t C = x.shape[1];
#pragma omp parallel for schedule(static) if (work >= kParallelWork && planes > 1)
  for (int64_t i = 0; i < planes; ++i) f(i / C, i % C, i);
}

template <class T>
const T* plane(const View& v, int64_t n, int64_t c) {
  return static_cast<const T*>(v.data) + n * v.stride[0] + c * v.stride[1];
}

// The window's running maximum: a later value wins when larger or NaN (PyTorch's rule,
// so a NaN anywhere in the window is the result).  Branch-free: the comparisons are
// unpredictable.
template <class T>
inline void take_max(T v, int64_t at, T& best, int64_t& arg) {
  const bool t = v > best || v != v;
  best = t ? v : best;
  arg = t ? at : arg;
}

// 2 x 2 windows, stride 2, no padding or dilation: the common case, unrolled.
template <class T>
void max_pool_2x2(const T* xp, int64_t sh, int64_t sw, int64_t W, int64_t OH, int64_t OW, T* o,
                  int64_t* idx) {
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* r0 = xp + 2 * oh * sh;
    const T* r1 = r0 + sh;
    const int64_t base = 2 * oh * W;
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t w = 2 * ow;
      T best = -std::numeric_limits<T>::infinity();
      int64_t arg = base + w;
      take_max(r0[w * sw], base + w, best, arg);
      take_max(r0[(w + 1) * sw], base + w + 1, best, arg);
      take_max(r1[w * sw], base + W + w, best, arg);
      take_max(r1[(w + 1) * sw], base + W + w + 1, best, arg);
      o[oh * OW + ow] = best;
      idx[oh * OW + ow] = arg;
    }
  }
}

template <class T>
void max_pool_typed(const View& x, const View& out, const View& indices, const PoolParams& p) {
  const int64_t H = x.shape[2], W = x.shape[3], OH = out.shape[2], OW = out.shape[3];
  const int64_t sh = x.stride[2], sw = x.stride[3];
  const bool two_by_two = p.kernel[0] == 2 && p.kernel[1] == 2 && p.stride[0] == 2 &&
                          p.stride[1] == 2 && p.pad[0] == 0 && p.pad[1] == 0 &&
                          p.dilation[0] == 1 && p.dilation[1] == 1 && 2 * OH <= H && 2 * OW <= W;
  for_planes(x, numel(out) * p.kernel[0] * p.kernel[1], [&](int64_t n, int64_t c, int64_t i) {
    const T* xp = plane<T>(x, n, c);
    T* o = static_cast<T*>(out.data) + i * OH * OW;
    int64_t* idx = static_cast<int64_t*>(indices.data) + i * OH * OW;
    if (two_by_two) {
      max_pool_2x2(xp, sh, sw, W, OH, OW, o, idx);
      return;
    }
    for (int64_t oh = 0; oh < OH; ++oh) {
      int64_t h0 = oh * p.stride[0] - p.pad[0];
      const int64_t h1 = std::min(h0 + (p.kernel[0] - 1) * p.dilation[0] + 1, H);
      while (h0 < 0) h0 += p.dilation[0];
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t w0 = ow * p.stride[1] - p.pad[1];
        const int64_t w1 = std::min(w0 + (p.kernel[1] - 1) * p.dilation[1] + 1, W);
        while (w0 < 0) w0 += p.dilation[1];
        T best = -std::numeric_limits<T>::infinity();
        int64_t arg = (h0 < h1 && w0 < w1) ? h0 * W + w0 : -1;
        for (int64_t h = h0; h < h1; h += p.dilation[0])
          for (int64_t w = w0; w < w1; w += p.dilation[1]) take_max(xp[h * sh + w * sw], h * W + w, best, arg);
        o[oh * OW + ow] = best;
        idx[oh * OW + ow] = arg;
      }
    }
  });
}

template <class T>
void max_pool_backward_typed(const View& gy, const View& indices, const View& gx) {
  const int64_t HW = gx.shape[2] * gx.shape[3], OH = gy.shape[2], OW = gy.shape[3];
  std::atomic<int64_t> bad{-1};
  for_planes(gy, numel(gy), [&](int64_t n, int64_t c, int64_t i) {
    const T* g = plane<T>(gy, n, c);
    const int64_t* idx = plane<int64_t>(indices, n, c);
    T* dst = static_cast<T*>(gx.data) + i * HW;
    std::memset(dst, 0, sizeof(T) * HW);
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t k = idx[oh * indices.stride[2] + ow * indices.stride[3]];
        if (k >= 0 && k < HW)
          dst[k] += g[oh * gy.stride[2] + ow * gy.stride[3]];
        else if (k != -1)
          bad.store(k);
      }
  });
  if (bad.load() != -1)
    throw std::out_of_range("max_pool2d_backward: index " + std::to_string(bad.load()) +
                            " is out of range for a plane of " + std::to_string(HW) + " elements");
}

// Window [h0, h1) x [w0, w1) of output (oh, ow), clipped to the input, and its divisor.
struct AvgWindow {
  int64_t h0, h1, w0, w1, divisor;
};

inline AvgWindow avg_window(int64_t oh, int64_t ow, int64_t H, int64_t W, const PoolParams& p,
                            bool count_include_pad, int64_t divisor_override) {
  AvgWindow r;
  r.h0 = oh * p.stride[0] - p.pad[0];
  r.w0 = ow * p.stride[1] - p.pad[1];
  r.h1 = std::min(r.h0 + p.kernel[0], H + p.pad[0]);
  r.w1 = std::min(r.w0 + p.kernel[1], W + p.pad[1]);
  const int64_t padded = (r.h1 - r.h0) * (r.w1 - r.w0);
  r.h0 = std::max<int64_t>(r.h0, 0);
  r.w0 = std::max<int64_t>(r.w0, 0);
  r.h1 = std::min(r.h1, H);
  r.w1 = std::min(r.w1, W);
  r.divisor = divisor_override != 0 ? divisor_override
              : count_include_pad    ? padded
                                     : (r.h1 - r.h0) * (r.w1 - r.w0);
  return r;
}

template <class T>
void avg_pool_typed(const View& x, const View& out, const PoolParams& p, bool cip, int64_t div) {
  const int64_t H = x.shape[2], W = x.shape[3], OH = out.shape[2], OW = out.shape[3];
  const int64_t sh = x.stride[2], sw = x.stride[3];
  for_planes(x, numel(out) * p.kernel[0] * p.kernel[1], [&](int64_t n, int64_t c, int64_t i) {
    const T* xp = plane<T>(x, n, c);
    T* o = static_cast<T*>(out.data) + i * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const AvgWindow a = avg_window(oh, ow, H, W, p, cip, div);
        if (a.h0 >= a.h1 || a.w0 >= a.w1) {
          o[oh * OW + ow] = T(0);
          continue;
        }
        T s = 0;
        for (int64_t h = a.h0; h < a.h1; ++h)
          for (int64_t w = a.w0; w < a.w1; ++w) s += xp[h * sh + w * sw];
        o[oh * OW + ow] = s / static_cast<T>(a.divisor);
      }
  });
}

template <class T>
void avg_pool_backward_typed(const View& gy, const View& gx, const PoolParams& p, bool cip,
                             int64_t div) {
  const int64_t H = gx.shape[2], W = gx.shape[3], OH = gy.shape[2], OW = gy.shape[3];
  for_planes(gy, numel(gy) * p.kernel[0] * p.kernel[1], [&](int64_t n, int64_t c, int64_t i) {
    const T* g = plane<T>(gy, n, c);
    T* dst = static_cast<T*>(gx.data) + i * H * W;
    std::memset(dst, 0, sizeof(T) * H * W);
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const AvgWindow a = avg_window(oh, ow, H, W, p, cip, div);
        if (a.h0 >= a.h1 || a.w0 >= a.w1) continue;
        const T v = g[oh * gy.stride[2] + ow * gy.stride[3]] / static_cast<T>(a.divisor);
        for (int64_t h = a.h0; h < a.h1; ++h)
          for (int64_t w = a.w0; w < a.w1; ++w) dst[h * W + w] += v;
      }
  });
}

inline int64_t adaptive_start(int64_t i, int64_t out, int64_t in) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t out, int64_t in) {
  return ((i + 1) * in + out - 1) / out;
}

template <class T>
void adaptive_typed(const View& x, const View& out) {
  const int64_t H = x.shape[2], W = x.shape[3], OH = out.shape[2], OW = out.shape[3];
  const int64_t sh = x.stride[2], sw = x.stride[3];
  for_planes(x, numel(x) + numel(out), [&](int64_t n, int64_t c, int64_t i) {
    const T* xp = plane<T>(x, n, c);
    T* o = static_cast<T*>(out.data) + i * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, OH, H), h1 = adaptive_end(oh, OH, H);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, OW, W), w1 = adaptive_end(ow, OW, W);
        T s = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) s += xp[h * sh + w * sw];
        o[oh * OW + ow] = s / static_cast<T>((h1 - h0) * (w1 - w0));
      }
    }
  });
}

template <class T>
void adaptive_backward_typed(const View& gy, const View& gx) {
  const int64_t H = gx.shape[2], W = gx.shape[3], OH = gy.shape[2], OW = gy.shape[3];
  for_planes(gy, numel(gx) + numel(gy), [&](int64_t n, int64_t c, int64_t i) {
    const T* g = plane<T>(gy, n, c);
    T* dst = static_cast<T*>(gx.data) + i * H * W;
    std::memset(dst, 0, sizeof(T) * H * W);
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, OH, H), h1 = adaptive_end(oh, OH, H);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, OW, W), w1 = adaptive_end(ow, OW, W);
        const T v = g[oh * gy.stride[2] + ow * gy.stride[3]] /
                    static_cast<T>((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) dst[h * W + w] += v;
      }
    }
  });
}

void check_adaptive(const char* op, const View& x, const View& y) {
  for (int i = 2; i < 4; ++i)
    if (x.shape[i] < 1 || y.shape[i] < 1)
      throw std::invalid_argument(std::string(op) + ": input " + shape_str(x) + " and output " +
                                  shape_str(y) + " must have non-empty spatial dims");
}

}  // namespace

void max_pool2d(const View& x, const View& out, const View& indices, const PoolParams& p) {
  check_planes("max_pool2d", x, out, out);
  check_window("max_pool2d", x, out, p);
  if (indices.dtype != DType::i64 || !same_shape(indices, out) ||
      (numel(indices) && !is_contiguous(indices)))
    throw std::invalid_argument("max_pool2d: indices must be a C-contiguous int64 array of shape " +
                                shape_str(out));
  if (numel(out) == 0) return;
  if (x.dtype == DType::f32)
    max_pool_typed<float>(x, out, indices, p);
  else
    max_pool_typed<double>(x, out, indices, p);
}

void max_pool2d_backward(const View& gy, const View& indices, const View& gx) {
  check_planes("max_pool2d_backward", gx, gy, gx);
  if (indices.dtype != DType::i64 || !same_shape(indices, gy))
    throw std::invalid_argument("max_pool2d_backward: indices must be int64 of shape " +
                                shape_str(gy) + ", got " + shape_str(indices));
  if (numel(gx) == 0) return;
  if (gy.dtype == DType::f32)
    max_pool_backward_typed<float>(gy, indices, gx);
  else
    max_pool_backward_typed<double>(gy, indices, gx);
}

void avg_pool2d(const View& x, const View& out, const PoolParams& p, bool count_include_pad,
                int64_t divisor_override) {
  check_planes("avg_pool2d", x, out, out);
  check_window("avg_pool2d", x, out, p);
  if (numel(out) == 0) return;
  if (x.dtype == DType::f32)
    avg_pool_typed<float>(x, out, p, count_include_pad, divisor_override);
  else
    avg_pool_typed<double>(x, out, p, count_include_pad, divisor_override);
}

void avg_pool2d_backward(const View& gy, const View& gx, const PoolParams& p,
                         bool count_include_pad, int64_t divisor_override) {
  check_planes("avg_pool2d_backward", gx, gy, gx);
  check_window("avg_pool2d_backward", gx, gy, p);
  if (numel(gx) == 0) return;
  if (gy.dtype == DType::f32)
    avg_pool_backward_typed<float>(gy, gx, p, count_include_pad, divisor_override);
  else
    avg_pool_backward_typed<double>(gy, gx, p, count_include_pad, divisor_override);
}

void adaptive_avg_pool2d(const View& x, const View& out) {
  check_planes("adaptive_avg_pool2d", x, out, out);
  check_adaptive("adaptive_avg_pool2d", x, out);
  if (numel(out) == 0) return;
  if (x.dtype == DType::f32)
    adaptive_typed<float>(x, out);
  else
    adaptive_typed<double>(x, out);
}

void adaptive_avg_pool2d_backward(const View& gy, const View& gx) {
  check_planes("adaptive_avg_pool2d_backward", gx, gy, gx);
  check_adaptive("adaptive_avg_pool2d_backward", gx, gy);
  if (numel(gx) == 0) return;
  if (gy.dtype == DType::f32)
    adaptive_backward_typed<float>(gy, gx);
  else
    adaptive_backward_typed<double>(gy, gx);
}

}  // namespace genesis
