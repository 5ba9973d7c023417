// Convolution through im2col/col2im and our GEMM, compiled once per instruction
// set.  Work is split into items (sample n, group g); each item is one GEMM:
//
//   forward       out[n, g]  =  w[g] [OCg, K]  @  col(x[n, g]) [K, OH*OW]
//   input grad    col        =  w[g]^T         @  gy[n, g]      -> col2im into gx[n, g]
//   weight grad   gw[g]     +=  gy[n, g]       @  col(x[n, g])^T
//
// with K = C/groups * KH * KW.  A 1x1 convolution with stride 1 and no padding
// uses x itself as the column matrix.  When an image has few output pixels
// (OH*OW < kBlockColumns), an item takes a block of images side by side: their
// columns form one wider matrix (ld = images * OH*OW), so each GEMM has enough
// columns, and a long enough K for the weight gradient, to run at full rate;
// outputs and output gradients go through a [OCg, images * OH*OW] scratch.  With enough items, threads take whole
// items (each with its own column buffer and a single-threaded GEMM);
// otherwise items run in order and the GEMM threads itself.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "conv.h"
#include "gemm.h"

namespace genesis::GENESIS_ISA_NS {
namespace {

// Below this many multiply-adds the whole convolution stays on one thread.
constexpr int64_t kParallelWork = int64_t(1) << 18;
// Images are blocked until a block has about this many output pixels.
constexpr int64_t kBlockColumns = 256;

std::string shape_str(const View& v) {
  std::string s = "[";
  for (int d = 0; d < v.ndim; ++d) s += (d ? ", " : "") + std::to_string(v.shape[d]);
  return s + "]";
}

struct Geometry {
  int64_t N, C, H, W, OC, OH, OW, KH, KW, G, Cg, OCg, K, HW, OHW;
  ConvParams p;
};

// x plays conv's input [N, C, H, W], w its weight, y its output [N, OC, OH, OW];
// x_out / w_out / y_out mark the one the kernel writes (it must be C-contiguous).
Geometry check(const char* op, const View& x, const View& w, const View& y, const View* bias,
               const ConvParams& p, bool x_out, bool w_out, bool y_out) {
  const std::string shapes = std::string(" (input ") + shape_str(x) + ", weight " +
                             shape_str(w) + ", output " + shape_str(y) + ")";
  if (x.ndim != 4 || w.ndim != 4 || y.ndim != 4)
    throw std::invalid_argument(std::string(op) + ": expected 4-D input, weight and output" +
                                shapes);
  if (x.dtype != w.dtype || x.dtype != y.dtype || (bias && bias->dtype != x.dtype))
    throw type_error(std::string(op) + ": input, weight, output and bias must have one dtype, got " +
                     dtype_name(x.dtype) + ", " + dtype_name(w.dtype) + ", " +
                     dtype_name(y.dtype) + (bias ? std::string(", ") + dtype_name(bias->dtype) : ""));
  if (x.dtype != DType::f32 && x.dtype != DType::f64)
    throw type_error(std::string(op) + ": expected float32 or float64, got " + dtype_name(x.dtype));
  for (int i = 0; i < 2; ++i) {
    if (p.stride[i] < 1 || p.dilation[i] < 1)
      throw std::invalid_argument(std::string(op) + ": stride and dilation must be positive");
    if (p.pad[2 * i] < 0)
      throw std::invalid_argument(std::string(op) + ": top/left padding must be non-negative");
  }
  Geometry g;
  g.p = p;
  g.N = x.shape[0]; g.C = x.shape[1]; g.H = x.shape[2]; g.W = x.shape[3];
  g.OC = w.shape[0]; g.KH = w.shape[2]; g.KW = w.shape[3];
  g.OH = y.shape[2]; g.OW = y.shape[3];
  g.G = p.groups;
  if (g.G < 1 || g.C % g.G != 0 || g.OC % g.G != 0 || w.shape[1] * g.G != g.C)
    throw std::invalid_argument(std::string(op) + ": groups=" + std::to_string(g.G) +
                                " must divide the channels, with weight.shape[1] * groups == "
                                "input channels" + shapes);
  if (y.shape[0] != g.N || y.shape[1] != g.OC)
    throw std::invalid_argument(std::string(op) + ": output must be [N, weight.shape[0], OH, OW]" +
                                shapes);
  if (g.KH < 1 || g.KW < 1)
    throw std::invalid_argument(std::string(op) + ": empty kernel" + shapes);
  const int64_t in[2] = {g.H, g.W}, k[2] = {g.KH, g.KW}, out[2] = {g.OH, g.OW};
  for (int i = 0; i < 2; ++i) {
    const int64_t extent = in[i] + p.pad[2 * i] + p.pad[2 * i + 1];
    const int64_t span = p.dilation[i] * (k[i] - 1) + 1;
    if (extent < span || out[i] != (extent - span) / p.stride[i] + 1)
      throw std::invalid_argument(std::string(op) + ": output size does not match the input size, "
                                  "kernel, stride, padding and dilation" + shapes);
  }
  if (bias) {
    const int64_t want = x_out ? g.C : g.OC;
    if (bias->ndim != 1 || bias->shape[0] != want)
      throw std::invalid_argument(std::string(op) + ": bias must have shape [" +
                                  std::to_string(want) + "], got " + shape_str(*bias));
  }
  if ((x_out && numel(x) && !is_contiguous(x)) || (w_out && numel(w) && !is_contiguous(w)) ||
      (y_out && numel(y) && !is_contiguous(y)))
    throw std::invalid_argument(std::string(op) + ": the output array must be C-contiguous" + shapes);
  g.Cg = g.C / g.G;
  g.OCg = g.OC / g.G;
  g.K = g.Cg * g.KH * g.KW;
  g.HW = g.H * g.W;
  g.OHW = g.OH * g.OW;
  return g;
}

// One stride for dims [d0, d1) of v seen as a single dim, if they collapse.
bool collapse(const View& v, int d0, int d1, int64_t* stride) {
  bool any = false;
  int64_t s = 1, next = 0;
  for (int d = d1 - 1; d >= d0; --d) {
    if (v.shape[d] == 1) continue;
    if (!any) {
      s = v.stride[d];
      any = true;
    } else if (v.stride[d] != next) {
      return false;
    }
    next = v.stride[d] * v.shape[d];
  }
  *stride = s;
  return true;
}

// A 4-D operand read as rows of its trailing dims [split, 4) collapsed into one;
// when they do not collapse, a C-contiguous copy is made once.
template <class T>
struct Rows {
  const T* p;
  int64_t s0, s1, sc;
  std::unique_ptr<T[]> owned;
};

template <class T>
Rows<T> rows_of(const View& v, int split) {
  Rows<T> r;
  r.p = static_cast<const T*>(v.data);
  r.s0 = v.stride[0];
  r.s1 = v.stride[1];
  if (collapse(v, split, 4, &r.sc)) return r;
  const int64_t* n = v.shape;
  r.owned.reset(new T[numel(v)]);
  T* d = r.owned.get();
  for (int64_t a = 0; a < n[0]; ++a)
    for (int64_t b = 0; b < n[1]; ++b)
      for (int64_t c = 0; c < n[2]; ++c) {
        const T* s = r.p + a * v.stride[0] + b * v.stride[1] + c * v.stride[2];
        for (int64_t e = 0; e < n[3]; ++e) *d++ = s[e * v.stride[3]];
      }
  r.p = r.owned.get();
  r.s0 = n[1] * n[2] * n[3];
  r.s1 = n[2] * n[3];
  r.sc = 1;
  return r;
}

template <class T>
View matrix(const T* p, int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  View v;
  v.data = const_cast<T*>(p);
  v.dtype = sizeof(T) == 4 ? DType::f32 : DType::f64;
  v.ndim = 2;
  v.shape[0] = rows;
  v.shape[1] = cols;
  v.stride[0] = rs;
  v.stride[1] = cs;
  return v;
}

// Scratch that only grows, one per thread and per use, uninitialized.
template <class T, int Slot>
T* thread_buffer(size_t n) {
  thread_local std::unique_ptr<T[]> buf;
  thread_local size_t cap = 0;
  if (n > cap) {
    buf.reset();
    buf.reset(new T[n]);
    cap = n;
  }
  return buf.get();
}

// Valid output columns [lo, hi) of kernel column kw: 0 <= ow * s + off < W.
inline void valid_range(int64_t off, int64_t s, int64_t W, int64_t OW, int64_t* lo, int64_t* hi) {
  const int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
  const int64_t h = W - 1 - off >= 0 ? (W - 1 - off) / s + 1 : 0;
  *hi = h < OW ? h : OW;
  *lo = l < *hi ? l : *hi;
}

// col[K, OH*OW] (rows ld apart) from x[Cg, H, W] (strides sc, sh, sw), zeros where
// padded.  Rows are short (OW elements), so they are copied by inline loops: a call to
// memcpy or memset per row cost more than the copy (conv.cpp is compiled with
// -fno-tree-loop-distribute-patterns, which keeps GCC from making them calls again).
template <class T>
void im2col(const T* x, int64_t sc, int64_t sh, int64_t sw, const Geometry& g, T* col,
            int64_t ld) {
  const ConvParams& p = g.p;
  for (int64_t c = 0; c < g.Cg; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* dst = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        const int64_t off = kw * p.dilation[1] - p.pad[2];
        int64_t lo, hi;
        valid_range(off, p.stride[1], g.W, g.OW, &lo, &hi);
        for (int64_t oh = 0; oh < g.OH; ++oh, dst += g.OW) {
          const int64_t ih = oh * p.stride[0] - p.pad[0] + kh * p.dilation[0];
          if (ih < 0 || ih >= g.H) {
            for (int64_t ow = 0; ow < g.OW; ++ow) dst[ow] = T(0);
            continue;
          }
          const T* src = x + c * sc + ih * sh;
          for (int64_t ow = 0; ow < lo; ++ow) dst[ow] = T(0);
          if (p.stride[1] == 1 && sw == 1) {
            const T* s = src + off;
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = s[ow];
          } else {
            const int64_t step = p.stride[1] * sw;
            const T* s = src + (lo * p.stride[1] + off) * sw;
            for (int64_t ow = lo; ow < hi; ++ow, s += step) dst[ow] = *s;
          }
          for (int64_t ow = hi; ow < g.OW; ++ow) dst[ow] = T(0);
        }
      }
}

// gx[Cg, H, W] (C-contiguous) += col2im(col[K, OH*OW], rows ld apart).
template <class T>
void col2im(const T* col, const Geometry& g, T* gx, int64_t ld) {
  const ConvParams& p = g.p;
  for (int64_t c = 0; c < g.Cg; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* src = col + ((c * g.KH + kh) * g.KW + kw) * ld;
        const int64_t off = kw * p.dilation[1] - p.pad[2];
        int64_t lo, hi;
        valid_range(off, p.stride[1], g.W, g.OW, &lo, &hi);
        for (int64_t oh = 0; oh < g.OH; ++oh, src += g.OW) {
          const int64_t ih = oh * p.stride[0] - p.pad[0] + kh * p.dilation[0];
          if (ih < 0 || ih >= g.H) continue;
          T* dst = gx + c * g.HW + ih * g.W + off;
          if (p.stride[1] == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * p.stride[1]] += src[ow];
          }
        }
      }
}

inline bool is_pointwise(const Geometry& g) {
  const ConvParams& p = g.p;
  return g.KH == 1 && g.KW == 1 && p.stride[0] == 1 && p.stride[1] == 1 && p.pad[0] == 0 &&
         p.pad[1] == 0 && p.pad[2] == 0 && p.pad[3] == 0;
}

// Runs body(item, thread) for item in [0, items): split across threads when
// there is enough work (each thread then runs single-threaded GEMMs), else in
// order on the calling thread.  Exceptions are carried out of the team.
template <class F>
void for_items(int64_t items, int64_t work, int nt, F body) {
  if (nt <= 1 || items < nt || work < kParallelWork) {
    for (int64_t i = 0; i < items; ++i) body(i, 0);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel num_threads(nt)
  {
    omp_set_num_threads(1);  // a GEMM called by this worker stays on it
    const int t = omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t i = 0; i < items; ++i) {
      try {
        body(i, t);
      } catch (...) {
#pragma omp critical(genesis_conv_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

template <class T>
void bias_rows(T* out, const View* bias, int64_t first, int64_t rows, int64_t len) {
  const T* b = static_cast<const T*>(bias->data);
  for (int64_t r = 0; r < rows; ++r) {
    const T v = b[(first + r) * bias->stride[0]];
    T* o = out + r * len;
    for (int64_t i = 0; i < len; ++i) o[i] = v;
  }
}

// Items take blocks of `per` images (the last may have fewer): one image for pointwise
// convolutions and for images with many output pixels, otherwise about kBlockColumns
// pixels' worth, while keeping at least one item per thread.
struct ImageBlocks {
  int64_t per, count;
  int64_t first(int64_t block) const { return block * per; }
  int64_t size(int64_t block, int64_t N) const { return std::min(per, N - block * per); }
};

ImageBlocks image_blocks(const Geometry& g, bool pointwise, int nt) {
  int64_t per = 1;
  if (!pointwise && g.OHW < kBlockColumns) {
    const int64_t blocks_needed = (nt + g.G - 1) / g.G;
    per = std::max<int64_t>(1, std::min(kBlockColumns / g.OHW, g.N / blocks_needed));
  }
  return {per, (g.N + per - 1) / per};
}

// o[j, r, :] (images j = 0 .. nb-1 of a block, rows OC * OHW apart; channels r of group
// gi) = blk[r, j * OHW ...] (rows ld apart) + the channel's bias.
template <class T>
void scatter_block(const T* blk, int64_t ld, int64_t nb, const Geometry& g, const View* bias,
                   int64_t gi, T* o) {
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t r = 0; r < g.OCg; ++r) {
      const T v = bias ? static_cast<const T*>(bias->data)[(gi * g.OCg + r) * bias->stride[0]]
                       : T(0);
      const T* src = blk + r * ld + j * g.OHW;
      T* dst = o + (j * g.OC + r) * g.OHW;
      for (int64_t i = 0; i < g.OHW; ++i) dst[i] = src[i] + v;
    }
}

// The output gradient of a block's images n0 .. n0+nb-1, channels of group gi, as one
// [OCg, nb * OHW] matrix: read in place for one image, else gathered into scratch.
template <class T>
View gy_block(const Rows<T>& yr, int64_t n0, int64_t nb, int64_t gi, const Geometry& g) {
  const T* first = yr.p + n0 * yr.s0 + gi * g.OCg * yr.s1;
  if (nb == 1) return matrix(first, g.OCg, g.OHW, yr.s1, yr.sc);
  const int64_t ld = nb * g.OHW;
  T* blk = thread_buffer<T, 1>(g.OCg * ld);
  for (int64_t r = 0; r < g.OCg; ++r)
    for (int64_t j = 0; j < nb; ++j) {
      const T* src = first + j * yr.s0 + r * yr.s1;
      T* dst = blk + r * ld + j * g.OHW;
      for (int64_t i = 0; i < g.OHW; ++i) dst[i] = src[i * yr.sc];
    }
  return matrix<T>(blk, g.OCg, ld, ld, 1);
}

// The column matrix [K, nb * OHW] of images n0 .. n0+nb-1 (group gi) in scratch.
template <class T>
T* block_columns(const View& x, int64_t n0, int64_t nb, int64_t gi, const Geometry& g) {
  const int64_t ld = nb * g.OHW;
  T* col = thread_buffer<T, 0>(g.K * ld);
  const T* xp = static_cast<const T*>(x.data);
  for (int64_t j = 0; j < nb; ++j)
    im2col(xp + (n0 + j) * x.stride[0] + gi * g.Cg * x.stride[1], x.stride[1], x.stride[2],
           x.stride[3], g, col + j * g.OHW, ld);
  return col;
}

// ---------------------------------------------------------------- kernels
template <class T>
void conv2d_typed(const View& x, const View& w, const View* bias, const View& out,
                  const Geometry& g) {
  const Rows<T> wr = rows_of<T>(w, 1);
  const T* xp = static_cast<const T*>(x.data);
  T* op = static_cast<T*>(out.data);
  int64_t xs_hw = 0;
  const bool direct = is_pointwise(g) && collapse(x, 2, 4, &xs_hw);
  const int nt = omp_get_max_threads();
  const ImageBlocks blocks = image_blocks(g, direct, nt);
  for_items(blocks.count * g.G, g.N * g.OC * g.OHW * g.K, nt, [&](int64_t item, int) {
    const int64_t blk = item / g.G, gi = item % g.G;
    const int64_t n0 = blocks.first(blk), nb = blocks.size(blk, g.N), ld = nb * g.OHW;
    T* o = op + (n0 * g.OC + gi * g.OCg) * g.OHW;
    const View b = direct ? matrix(xp + n0 * x.stride[0] + gi * g.Cg * x.stride[1], g.K,
                                   g.OHW, x.stride[1], xs_hw)
                          : matrix<T>(block_columns<T>(x, n0, nb, gi, g), g.K, ld, ld, 1);
    // One image's product goes straight into out, on top of its bias.
    const bool blocked = nb > 1;
    T* y = blocked ? thread_buffer<T, 1>(g.OCg * ld) : o;
    if (bias && !blocked) bias_rows(o, bias, gi * g.OCg, g.OCg, g.OHW);
    matmul(matrix(wr.p + gi * g.OCg * wr.s0, g.OCg, g.K, wr.s0, wr.sc), b,
           matrix<T>(y, g.OCg, ld, ld, 1), bias && !blocked);
    if (blocked) scatter_block(y, ld, nb, g, bias, gi, o);
  });
}

template <class T>
void input_grad_typed(const View& gy, const View& w, const View* bias, const View& gx,
                      const Geometry& g) {
  const Rows<T> wr = rows_of<T>(w, 1);
  const Rows<T> yr = rows_of<T>(gy, 2);
  T* xp = static_cast<T*>(gx.data);
  const bool direct = is_pointwise(g);
  const int nt = omp_get_max_threads();
  const ImageBlocks blocks = image_blocks(g, direct, nt);
  for_items(blocks.count * g.G, g.N * g.OC * g.OHW * g.K, nt, [&](int64_t item, int) {
    const int64_t blk = item / g.G, gi = item % g.G;
    const int64_t n0 = blocks.first(blk), nb = blocks.size(blk, g.N), ld = nb * g.OHW;
    const View a = matrix(wr.p + gi * g.OCg * wr.s0, g.K, g.OCg, wr.sc, wr.s0);  // w[g]^T
    const View b = gy_block(yr, n0, nb, gi, g);
    if (direct) {
      T* gxg = xp + (n0 * g.C + gi * g.Cg) * g.HW;
      if (bias) bias_rows(gxg, bias, gi * g.Cg, g.Cg, g.HW);
      matmul(a, b, matrix<T>(gxg, g.K, g.HW, g.HW, 1), bias != nullptr);
      return;
    }
    T* col = thread_buffer<T, 0>(g.K * ld);
    matmul(a, b, matrix<T>(col, g.K, ld, ld, 1), false);
    for (int64_t j = 0; j < nb; ++j) {
      T* gxg = xp + ((n0 + j) * g.C + gi * g.Cg) * g.HW;
      if (bias)
        bias_rows(gxg, bias, gi * g.Cg, g.Cg, g.HW);
      else
        std::memset(gxg, 0, sizeof(T) * g.Cg * g.HW);
      col2im(col + j * g.OHW, g, gxg, ld);
    }
  });
}

template <class T>
void weight_grad_typed(const View& x, const View& gy, const View& gw, const Geometry& g) {
  const Rows<T> yr = rows_of<T>(gy, 2);
  const T* xp = static_cast<const T*>(x.data);
  T* wp = static_cast<T*>(gw.data);
  const int64_t wsize = g.OC * g.K;
  int64_t xs_hw = 0;
  const bool direct = is_pointwise(g) && collapse(x, 2, 4, &xs_hw);
  const int64_t work = g.N * g.OC * g.OHW * g.K;
  const int nt = omp_get_max_threads();
  const ImageBlocks blocks = image_blocks(g, direct, nt);
  const int64_t items = blocks.count * g.G;
  const bool parallel = nt > 1 && items >= nt && work >= kParallelWork;
  // Threads other than the first accumulate into their own zeroed copy of gw.
  std::vector<T> partial(parallel ? (nt - 1) * wsize : 0);
  std::memset(wp, 0, sizeof(T) * wsize);
  for_items(items, work, nt, [&](int64_t item, int t) {
    const int64_t blk = item / g.G, gi = item % g.G;
    const int64_t n0 = blocks.first(blk), nb = blocks.size(blk, g.N), ld = nb * g.OHW;
    const View b = direct ? matrix(xp + n0 * x.stride[0] + gi * g.Cg * x.stride[1], g.OHW,
                                   g.K, xs_hw, x.stride[1])  // x[n, g]^T
                          : matrix<T>(block_columns<T>(x, n0, nb, gi, g), ld, g.K, 1, ld);
    T* dst = (t == 0 ? wp : partial.data() + (t - 1) * wsize) + gi * g.OCg * g.K;
    matmul(gy_block(yr, n0, nb, gi, g), b, matrix<T>(dst, g.OCg, g.K, g.K, 1), true);
  });
  if (!parallel) return;
#pragma omp parallel for num_threads(nt) schedule(static) if (wsize >= (1 << 14))
  for (int64_t i = 0; i < wsize; ++i) {
    T s = wp[i];
    for (int t = 0; t < nt - 1; ++t) s += partial[t * wsize + i];
    wp[i] = s;
  }
}

}  // namespace

void conv2d(const View& x, const View& w, const View* bias, const View& out, const ConvParams& p) {
  const Geometry g = check("conv2d", x, w, out, bias, p, false, false, true);
  if (numel(out) == 0) return;
  if (x.dtype == DType::f32)
    conv2d_typed<float>(x, w, bias, out, g);
  else
    conv2d_typed<double>(x, w, bias, out, g);
}

void conv2d_input_grad(const View& gy, const View& w, const View* bias, const View& gx,
                       const ConvParams& p) {
  const Geometry g = check("conv2d_input_grad", gx, w, gy, bias, p, true, false, false);
  if (numel(gx) == 0) return;
  if (gy.dtype == DType::f32)
    input_grad_typed<float>(gy, w, bias, gx, g);
  else
    input_grad_typed<double>(gy, w, bias, gx, g);
}

void conv2d_weight_grad(const View& x, const View& gy, const View& gw, const ConvParams& p) {
  const Geometry g = check("conv2d_weight_grad", x, gw, gy, nullptr, p, false, true, false);
  if (numel(gw) == 0) return;
  if (g.N == 0 || g.OHW == 0) {
    std::memset(gw.data, 0, (x.dtype == DType::f32 ? 4 : 8) * numel(gw));
    return;
  }
  if (x.dtype == DType::f32)
    weight_grad_typed<float>(x, gy, gw, g);
  else
    weight_grad_typed<double>(x, gy, gw, g);
}

}  // namespace genesis::GENESIS_ISA_NS
