// Indexing kernels (contract in index.h).  Compiled once, in namespace genesis.
//
// Every loop walks strided Views with a Walker (below), which iterates a
// row-major index space in "segments" (runs along the innermost dimension)
// so that inner loops are plain strided loops the compiler can vectorize.
// Threads split index spaces into contiguous chunks; exceptions thrown inside
// a chunk are carried out of the OpenMP region and the lowest chunk's error is
// rethrown, so with any thread count the reported error is the first one in
// row-major order.
#include "index.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <type_traits>
#include <utility>

namespace genesis {
namespace {

constexpr int kMaxOps = kMaxDims + 2;
// Below this many elements of work a call stays on one thread.
constexpr int64_t kParallelWork = 1 << 15;

// ---------------------------------------------------------------- messages
std::string shape_str(const int64_t* shape, int ndim) {
  std::string s = "(";
  for (int d = 0; d < ndim; ++d) {
    if (d) s += ", ";
    s += std::to_string(shape[d]);
  }
  return s + (ndim == 1 ? ",)" : ")");
}
std::string shape_str(const View& v) { return shape_str(v.shape, v.ndim); }

[[noreturn]] void throw_bad_index(const char* op, int64_t value, int dim, int64_t size) {
  throw std::out_of_range(std::string(op) + ": index " + std::to_string(value) +
                          " is out of bounds for dimension " + std::to_string(dim) +
                          " with size " + std::to_string(size));
}

void check_same_dtype(const char* op, const View& a, const char* an, const View& b,
                      const char* bn) {
  if (a.dtype != b.dtype)
    throw type_error(std::string(op) + ": " + bn + " dtype " + dtype_name(b.dtype) +
                     " does not match " + an + " dtype " + dtype_name(a.dtype));
}

void check_index_dtype(const char* op, const View& idx) {
  if (idx.dtype != DType::i64 && idx.dtype != DType::i32)
    throw type_error(std::string(op) + ": indices must be int64 or int32, got " +
                     dtype_name(idx.dtype));
}

// ---------------------------------------------------------------- dtype dispatch
// Calls f(T{}) with the C++ type stored for dtype t.
template <class F>
decltype(auto) by_type(DType t, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
    case DType::b8: break;
  }
  return f(bool{});
}

// Pure data movement only needs the element size.
template <class F>
decltype(auto) by_size(DType t, F&& f) {
  switch (t) {
    case DType::f32:
    case DType::i32: return f(uint32_t{});
    case DType::f64:
    case DType::i64: return f(uint64_t{});
    case DType::b8: break;
  }
  return f(uint8_t{});
}

template <class F>
decltype(auto) by_index_type(const View& idx, F&& f) {
  if (idx.dtype == DType::i32) return f(int32_t{});
  return f(int64_t{});
}

inline int64_t load_index(const View& idx, int64_t off) {
  return idx.dtype == DType::i64 ? static_cast<const int64_t*>(idx.data)[off]
                                 : static_cast<const int32_t*>(idx.data)[off];
}

// A 0-d View behaves as a 1-element 1-d one (gather/sort/... along "dim 0").
View as_1d(View v) {
  if (v.ndim == 0) {
    v.ndim = 1;
    v.shape[0] = 1;
    v.stride[0] = 0;
  }
  return v;
}

// The View's shape and strides without dimension `dim`.
struct Dropped {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t stride[kMaxDims];
};
Dropped drop_dim(const View& v, int dim) {
  Dropped r{};
  r.ndim = 0;
  for (int d = 0; d < v.ndim; ++d)
    if (d != dim) {
      r.shape[r.ndim] = v.shape[d];
      r.stride[r.ndim++] = v.stride[d];
    }
  return r;
}

// ---------------------------------------------------------------- Walker
// Iterates a row-major index space of `shape` over several operands, each with
// its own element strides, keeping one running offset per operand.
struct Walker {
  int nd = 1, nops = 0, src_ndim = 0;
  int64_t shape[kMaxDims];
  int64_t st[kMaxOps][kMaxDims];
  int64_t idx[kMaxDims];
  int64_t off[kMaxOps];

  Walker(int ndim, const int64_t* shp) : src_ndim(ndim) {
    nd = ndim == 0 ? 1 : ndim;
    for (int d = 0; d < nd; ++d) shape[d] = ndim == 0 ? 1 : shp[d];
  }
  // Strides for the `ndim` dims given at construction.
  int add(const int64_t* strides) {
    const int o = nops++;
    for (int d = 0; d < nd; ++d) st[o][d] = src_ndim == 0 ? 0 : strides[d];
    return o;
  }
  // Drops size-1 dims and merges dims that are contiguous for every operand;
  // preserves the row-major order, so only use it when multi-indices (idx) are
  // not needed.
  void coalesce() {
    int m = 0;
    for (int d = 0; d < nd; ++d) {
      if (shape[d] == 1) continue;
      bool merge = m > 0;
      for (int o = 0; o < nops && merge; ++o) merge = st[o][m - 1] == st[o][d] * shape[d];
      if (merge) {
        shape[m - 1] *= shape[d];
        for (int o = 0; o < nops; ++o) st[o][m - 1] = st[o][d];
      } else {
        shape[m] = shape[d];
        for (int o = 0; o < nops; ++o) st[o][m] = st[o][d];
        ++m;
      }
    }
    if (m == 0) {  // a single element: call it contiguous
      shape[0] = 1;
      for (int o = 0; o < nops; ++o) st[o][0] = 1;
      m = 1;
    }
    nd = m;
  }
  // Position at row-major element `pos` (0 <= pos < numel, numel > 0).
  void seek(int64_t pos) {
    for (int o = 0; o < nops; ++o) off[o] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = pos % shape[d];
      pos /= shape[d];
      for (int o = 0; o < nops; ++o) off[o] += idx[d] * st[o][d];
    }
  }
  int64_t row_left() const { return shape[nd - 1] - idx[nd - 1]; }
  int64_t inner(int o) const { return st[o][nd - 1]; }
  // Advance by n <= row_left() elements.
  void advance(int64_t n) {
    const int last = nd - 1;
    idx[last] += n;
    for (int o = 0; o < nops; ++o) off[o] += n * st[o][last];
    if (idx[last] < shape[last]) return;
    for (int d = last; d >= 0; --d) {
      if (d != last) {
        ++idx[d];
        for (int o = 0; o < nops; ++o) off[o] += st[o][d];
        if (idx[d] < shape[d]) return;
      }
      for (int o = 0; o < nops; ++o) off[o] -= shape[d] * st[o][d];
      idx[d] = 0;
    }
  }
};

// Calls f(len) for each innermost-dim run of elements [begin, end); the run
// starts at w.off[o] and steps by w.inner(o).
template <class F>
void for_segments(Walker& w, int64_t begin, int64_t end, F&& f) {
  if (begin >= end) return;
  w.seek(begin);
  while (true) {
    const int64_t len = std::min(w.row_left(), end - begin);
    f(len);
    begin += len;
    if (begin >= end) return;
    w.advance(len);
  }
}

// ---------------------------------------------------------------- threads
int plan_threads(int64_t n, int64_t work) {
  if (work < kParallelWork || n < 2) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), n));
}

// Splits [0, n) into nchunks contiguous chunks, f(chunk, begin, end) each,
// one thread per chunk; rethrows the lowest chunk's exception.
template <class F>
void run_chunks(int nchunks, int64_t n, F&& f) {
  if (n <= 0) return;
  if (nchunks <= 1) {
    f(0, int64_t{0}, n);
    return;
  }
  std::vector<std::exception_ptr> errors(nchunks);
#pragma omp parallel num_threads(nchunks)
  {
    const int nt = omp_get_num_threads();
    for (int c = omp_get_thread_num(); c < nchunks; c += nt) {
      try {
        f(c, n * c / nchunks, n * (c + 1) / nchunks);
      } catch (...) {
        errors[c] = std::current_exception();
      }
    }
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

template <class F>
void parallel_ranges(int64_t n, int64_t work, F&& f) {
  run_chunks(plan_threads(n, work), n, [&](int, int64_t b, int64_t e) { f(b, e); });
}

// Whether writes through v's dims [from, ndim) could alias (a 0 stride on a
// dim of size > 1): such outputs must be updated by one thread.
bool has_broadcast_dims(const View& v, int from = 0) {
  for (int d = from; d < v.ndim; ++d)
    if (v.stride[d] == 0 && v.shape[d] > 1) return true;
  return false;
}

// Throws out_of_range for the first index outside [0, size) (or [-size, size)
// with wrap).  In-place ops validate before writing anything.
void check_index_range(const View& idx, int64_t size, bool wrap, const char* op, int dim) {
  const int64_t n = numel(idx);
  by_index_type(idx, [&](auto tag) {
    using I = decltype(tag);
    Walker w(idx.ndim, idx.shape);
    w.add(idx.stride);
    w.coalesce();
    const int64_t lo = wrap ? -size : 0;
    parallel_ranges(n, n, [&](int64_t b, int64_t e) {
      Walker tw = w;
      for_segments(tw, b, e, [&](int64_t len) {
        const I* p = static_cast<const I*>(idx.data) + tw.off[0];
        const int64_t s = tw.inner(0);
        bool bad = false;
        for (int64_t t = 0; t < len; ++t) {
          const int64_t v = p[t * s];
          bad |= v < lo || v >= size;
        }
        if (bad)
          for (int64_t t = 0; t < len; ++t) {
            const int64_t v = p[t * s];
            if (v < lo || v >= size) throw_bad_index(op, v, dim, size);
          }
      });
    });
  });
}

}  // namespace

// ================================================================ gather / scatter_add
void gather(const View& x0, int dim, const View& index0, const View& out0) {
  const View x = as_1d(x0), index = as_1d(index0), out = as_1d(out0);
  check_index_dtype("gather", index);
  check_same_dtype("gather", x, "input", out, "out");
  if (index.ndim != x.ndim || !same_shape(index, out))
    throw std::invalid_argument("gather: index " + shape_str(index0) + " must have as many dims as input " +
                                shape_str(x0) + " and out " + shape_str(out0) + " must have index's shape");
  for (int d = 0; d < x.ndim; ++d)
    if (d != dim && index.shape[d] > x.shape[d])
      throw std::invalid_argument("gather: index " + shape_str(index0) + " exceeds input " +
                                  shape_str(x0) + " in dimension " + std::to_string(d));
  const int64_t n = numel(index);
  const int64_t size = x.shape[dim], dstride = x.stride[dim];
  int64_t xs[kMaxDims];
  std::copy(x.stride, x.stride + x.ndim, xs);
  xs[dim] = 0;  // the gathered dim's offset comes from the index value
  by_size(x.dtype, [&](auto ttag) {
    using T = decltype(ttag);
    by_index_type(index, [&](auto itag) {
      using I = decltype(itag);
      Walker w(index.ndim, index.shape);
      w.add(index.stride);
      w.add(out.stride);
      w.add(xs);
      w.coalesce();
      parallel_ranges(n, n, [&](int64_t b, int64_t e) {
        Walker tw = w;
        for_segments(tw, b, e, [&](int64_t len) {
          const I* ip = static_cast<const I*>(index.data) + tw.off[0];
          T* op = static_cast<T*>(out.data) + tw.off[1];
          const T* xp = static_cast<const T*>(x.data) + tw.off[2];
          // Gathering along the last dim of contiguous operands (index and out unit
          // strides, x's offset from the index alone) gets a loop of its own, whose
          // constant strides leave no multiplies but the address's (1.6-1.8x faster).
          const auto copy = [&](int64_t si, int64_t so, int64_t sx, int64_t ds)
                                __attribute__((always_inline)) {
            for (int64_t t = 0; t < len; ++t) {
              const int64_t v = ip[t * si];
              if (v < 0 || v >= size) throw_bad_index("gather", v, dim, size);
              op[t * so] = xp[t * sx + v * ds];
            }
          };
          const int64_t si = tw.inner(0), so = tw.inner(1), sx = tw.inner(2);
          if (si == 1 && so == 1 && sx == 0 && dstride == 1) copy(1, 1, 0, 1);
          else copy(si, so, sx, dstride);
        });
      });
    });
  });
}

void scatter_add(const View& out0, int dim, const View& index0, const View& src0) {
  const View out = as_1d(out0), index = as_1d(index0), src = as_1d(src0);
  check_index_dtype("scatter_add", index);
  check_same_dtype("scatter_add", out, "out", src, "src");
  if (index.ndim != out.ndim || src.ndim != out.ndim)
    throw std::invalid_argument("scatter_add: index " + shape_str(index0) + " and src " +
                                shape_str(src0) + " must have as many dims as out " + shape_str(out0));
  for (int d = 0; d < out.ndim; ++d)
    if (index.shape[d] > src.shape[d] || (d != dim && index.shape[d] > out.shape[d]))
      throw std::invalid_argument("scatter_add: index " + shape_str(index0) + " exceeds src " +
                                  shape_str(src0) + " or out " + shape_str(out0) +
                                  " in dimension " + std::to_string(d));
  const int64_t n = numel(index);
  if (n == 0) return;
  const int64_t size = out.shape[dim];
  check_index_range(index, size, false, "scatter_add", dim);

  // Threads own disjoint positions of the non-scattered ("free") dims, so
  // colliding indices (which differ only along dim) stay on one thread.
  const Dropped fi = drop_dim(index, dim), fs = drop_dim(src, dim), fo = drop_dim(out, dim);
  const int64_t J = index.shape[dim], ij = index.stride[dim], sj = src.stride[dim],
                od = out.stride[dim];
  const int64_t nfree = n / J;
  const bool serial = has_broadcast_dims(out);
  by_type(out.dtype, [&](auto ttag) {
    using T = decltype(ttag);
    by_index_type(index, [&](auto itag) {
      using I = decltype(itag);
      Walker w(fi.ndim, fi.shape);
      w.add(fi.stride);
      w.add(fs.stride);
      w.add(fo.stride);
      w.coalesce();
      parallel_ranges(nfree, serial ? 0 : n, [&](int64_t b, int64_t e) {
        Walker tw = w;
        for_segments(tw, b, e, [&](int64_t len) {
          const I* ip = static_cast<const I*>(index.data) + tw.off[0];
          const T* sp = static_cast<const T*>(src.data) + tw.off[1];
          T* op = static_cast<T*>(out.data) + tw.off[2];
          const int64_t si = tw.inner(0), ss = tw.inner(1), so = tw.inner(2);
          // Blocks of free positions keep a few rows/columns hot while j runs.
          constexpr int64_t kBlock = 32;
          for (int64_t t0 = 0; t0 < len; t0 += kBlock) {
            const int64_t t1 = std::min(len, t0 + kBlock);
            for (int64_t j = 0; j < J; ++j)
              for (int64_t t = t0; t < t1; ++t) {
                const int64_t v = ip[t * si + j * ij];
                op[t * so + v * od] += sp[t * ss + j * sj];
              }
          }
        });
      });
    });
  });
}

// ================================================================ advanced indexing
namespace {

// Shared checks and iteration setup of index_gather / index_put: `t` is the
// indexed tensor, indices index its first k dims, B is the indices' shape and
// T = t.shape[k:] the trailing slice copied per index tuple.
struct AdvIndex {
  const char* op;
  const View& t;
  const std::vector<View>& indices;
  int k, nb;
  const int64_t* B;
  int64_t nB, tn;

  AdvIndex(const char* op_, const View& t_, const std::vector<View>& idx)
      : op(op_), t(t_), indices(idx), k(static_cast<int>(idx.size())) {
    if (k > t.ndim)
      throw std::out_of_range(std::string(op) + ": too many indices (" + std::to_string(k) +
                              ") for a tensor of " + std::to_string(t.ndim) + " dimensions");
    static const int64_t kNoShape[1] = {1};
    B = k ? indices[0].shape : kNoShape;
    nb = k ? indices[0].ndim : 0;
    for (const View& v : indices) {
      check_index_dtype(op, v);
      if (!same_shape(v, indices[0]))
        throw std::invalid_argument(std::string(op) + ": indices must all have one shape, got " +
                                    shape_str(indices[0]) + " and " + shape_str(v));
    }
    if (nb + t.ndim - k > kMaxDims)
      throw std::invalid_argument(std::string(op) + ": result would have more than " +
                                  std::to_string(kMaxDims) + " dimensions");
    nB = 1;
    for (int d = 0; d < nb; ++d) nB *= B[d];
    tn = 1;
    for (int d = k; d < t.ndim; ++d) tn *= t.shape[d];
  }
  std::string result_shape() const {
    int64_t s[kMaxDims * 2];
    std::copy(B, B + nb, s);
    std::copy(t.shape + k, t.shape + t.ndim, s + nb);
    return shape_str(s, nb + t.ndim - k);
  }
  // Walker over B: operand 0 is `other` (strides for B), 1..k the indices.
  Walker b_walker(const int64_t* other_strides) const {
    Walker w(nb, B);
    w.add(other_strides);
    for (const View& v : indices) w.add(v.stride);
    w.coalesce();
    return w;
  }
  // Walker over T: operand 0 = source strides, 1 = destination strides.
  Walker t_walker(const int64_t* src_strides, const int64_t* dst_strides) const {
    Walker w(t.ndim - k, t.shape + k);
    w.add(src_strides);
    w.add(dst_strides);
    w.coalesce();
    return w;
  }
  // For B positions [b0, b1): toff = offset into t selected by the (wrapped,
  // bounds-checked) indices, ooff = offset of the other operand.
  void offsets(const Walker& bw, int64_t b0, int64_t b1, int64_t* toff, int64_t* ooff) const {
    Walker w = bw;
    int64_t i = 0;
    for_segments(w, b0, b1, [&](int64_t len) {
      for (int64_t s = 0; s < len; ++s, ++i) {
        ooff[i] = w.off[0] + s * w.inner(0);
        int64_t acc = 0;
        for (int j = 0; j < k; ++j) {
          const int64_t v = load_index(indices[j], w.off[1 + j] + s * w.inner(1 + j));
          const int64_t size = t.shape[j];
          const int64_t u = v < 0 ? v + size : v;
          if (u < 0 || u >= size) throw_bad_index(op, v, j, size);
          acc += u * t.stride[j];
        }
        toff[i] = acc;
      }
    });
  }
};

constexpr int64_t kOffsetBlock = 512;

// dst[doff[i] + T...] (+)= src[soff[i] + T...] for i < count, over T elements
// [t0, t1) in row-major order; tw walks T (operand 0 src, 1 dst).
template <class T, bool Accumulate>
void copy_slices(Walker& tw, const T* src, T* dst, const int64_t* soff, const int64_t* doff,
                 int64_t count, int64_t t0, int64_t t1) {
  const bool dense = tw.nd == 1 && tw.st[0][0] == 1 && tw.st[1][0] == 1;
  if (dense) {
    const int64_t len = t1 - t0;
    for (int64_t i = 0; i < count; ++i) {
      const T* s = src + soff[i] + t0;
      T* d = dst + doff[i] + t0;
      if (Accumulate) {
        for (int64_t t = 0; t < len; ++t) d[t] += s[t];
      } else if (len == 1) {
        *d = *s;
      } else {
        std::memcpy(d, s, len * sizeof(T));
      }
    }
    return;
  }
  for (int64_t i = 0; i < count; ++i)
    for_segments(tw, t0, t1, [&](int64_t len) {
      const T* s = src + soff[i] + tw.off[0];
      T* d = dst + doff[i] + tw.off[1];
      const int64_t ss = tw.inner(0), ds = tw.inner(1);
      for (int64_t t = 0; t < len; ++t) {
        if (Accumulate) d[t * ds] += s[t * ss];
        else d[t * ds] = s[t * ss];
      }
    });
}

}  // namespace

void index_gather(const View& x, const std::vector<View>& indices, const View& out) {
  const AdvIndex ax("index_gather", x, indices);
  check_same_dtype("index_gather", x, "input", out, "out");
  bool ok = out.ndim == ax.nb + x.ndim - ax.k;
  for (int d = 0; ok && d < out.ndim; ++d)
    ok = out.shape[d] == (d < ax.nb ? ax.B[d] : x.shape[ax.k + d - ax.nb]);
  if (!ok)
    throw std::invalid_argument("index_gather: out " + shape_str(out) + " must have shape " +
                                ax.result_shape());
  const int64_t nB = ax.nB, tn = ax.tn;
  if (nB == 0) return;
  if (tn == 0) {  // nothing to copy, but indices must still be valid
    for (int j = 0; j < ax.k; ++j) check_index_range(indices[j], x.shape[j], true, ax.op, j);
    return;
  }
  const Walker bw = ax.b_walker(out.stride);
  const Walker tw = ax.t_walker(x.stride + ax.k, out.stride + ax.nb);
  by_size(x.dtype, [&](auto ttag) {
    using T = decltype(ttag);
    // Copies T elements [t0, t1) of the slices of B positions [b0, b1).
    auto work = [&](int64_t b0, int64_t b1, int64_t t0, int64_t t1) {
      int64_t xo[kOffsetBlock], oo[kOffsetBlock];
      Walker w = tw;
      for (int64_t b = b0; b < b1; b += kOffsetBlock) {
        const int64_t e = std::min(b1, b + kOffsetBlock);
        ax.offsets(bw, b, e, xo, oo);
        copy_slices<T, false>(w, static_cast<const T*>(x.data), static_cast<T*>(out.data), xo, oo,
                              e - b, t0, t1);
      }
    };
    // Many index tuples: split them; few large slices: split the slices.
    const int nt = plan_threads(nB * tn, nB * tn);
    if (nB >= 16 * nt || tn < 1024)
      parallel_ranges(nB, nB * tn, [&](int64_t b, int64_t e) { work(b, e, 0, tn); });
    else
      parallel_ranges(tn, nB * tn, [&](int64_t b, int64_t e) { work(0, nB, b, e); });
  });
}

void index_put(const View& dst, const std::vector<View>& indices, const View& src,
               bool accumulate) {
  const AdvIndex ax("index_put", dst, indices);
  check_same_dtype("index_put", dst, "dst", src, "src");
  // src broadcasts (right-aligned) to B + dst.shape[k:].
  const int full_nd = ax.nb + dst.ndim - ax.k;
  int64_t full[kMaxDims * 2], sst[kMaxDims * 2];
  std::copy(ax.B, ax.B + ax.nb, full);
  std::copy(dst.shape + ax.k, dst.shape + dst.ndim, full + ax.nb);
  bool ok = src.ndim <= full_nd;
  for (int f = 0; ok && f < full_nd; ++f) {
    const int d = f - (full_nd - src.ndim);
    if (d < 0) sst[f] = 0;
    else if (src.shape[d] == full[f]) sst[f] = src.stride[d];
    else if (src.shape[d] == 1) sst[f] = 0;
    else ok = false;
  }
  if (!ok)
    throw std::invalid_argument("index_put: src " + shape_str(src) + " cannot be broadcast to " +
                                ax.result_shape());
  const int64_t nB = ax.nB, tn = ax.tn;
  if (nB == 0) return;
  for (int j = 0; j < ax.k; ++j) check_index_range(indices[j], dst.shape[j], true, ax.op, j);
  if (tn == 0) return;
  const Walker bw = ax.b_walker(sst);
  const Walker tw = ax.t_walker(sst + ax.nb, dst.stride + ax.k);
  // Index tuples are applied in order (last write wins, repeated tuples
  // accumulate), so threads split the trailing slice, never B.
  const bool serial = tn < 1024 || has_broadcast_dims(dst, ax.k);
  by_type(dst.dtype, [&](auto ttag) {
    using T = decltype(ttag);
    parallel_ranges(tn, serial ? 0 : nB * tn, [&](int64_t t0, int64_t t1) {
      int64_t doff[kOffsetBlock], soff[kOffsetBlock];
      Walker w = tw;
      for (int64_t b = 0; b < nB; b += kOffsetBlock) {
        const int64_t e = std::min(nB, b + kOffsetBlock);
        ax.offsets(bw, b, e, doff, soff);
        const T* s = static_cast<const T*>(src.data);
        T* d = static_cast<T*>(dst.data);
        if (accumulate) copy_slices<T, true>(w, s, d, soff, doff, e - b, t0, t1);
        else copy_slices<T, false>(w, s, d, soff, doff, e - b, t0, t1);
      }
    });
  });
}

// ================================================================ nonzero
int64_t count_nonzero(const View& mask) {
  const int64_t n = numel(mask);
  const int nt = plan_threads(n, n);
  std::vector<int64_t> counts(nt, 0);
  by_type(mask.dtype, [&](auto tag) {
    using T = decltype(tag);
    Walker w(mask.ndim, mask.shape);
    w.add(mask.stride);
    w.coalesce();
    run_chunks(nt, n, [&](int c, int64_t b, int64_t e) {
      Walker tw = w;
      int64_t cnt = 0;
      for_segments(tw, b, e, [&](int64_t len) {
        const T* p = static_cast<const T*>(mask.data) + tw.off[0];
        const int64_t s = tw.inner(0);
        for (int64_t t = 0; t < len; ++t) cnt += p[t * s] != T(0);
      });
      counts[c] = cnt;
    });
  });
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  return total;
}

void nonzero(const View& mask, const View& out) {
  if (out.dtype != DType::i64)
    throw type_error(std::string("nonzero: out must be int64, got ") + dtype_name(out.dtype));
  if (out.ndim != 2 || out.shape[1] != mask.ndim)
    throw std::invalid_argument("nonzero: out " + shape_str(out) + " must have shape (count, " +
                                std::to_string(mask.ndim) + ") for a mask of shape " +
                                shape_str(mask));
  const int64_t n = numel(mask);
  const int nt = plan_threads(n, n);
  const int nd = mask.ndim;
  std::vector<int64_t> start(nt + 1, 0);
  by_type(mask.dtype, [&](auto tag) {
    using T = decltype(tag);
    // Pass 1 counts per chunk, pass 2 writes each chunk's rows from its start.
    Walker flat(mask.ndim, mask.shape);
    flat.add(mask.stride);
    flat.coalesce();
    run_chunks(nt, n, [&](int c, int64_t b, int64_t e) {
      Walker tw = flat;
      int64_t cnt = 0;
      for_segments(tw, b, e, [&](int64_t len) {
        const T* p = static_cast<const T*>(mask.data) + tw.off[0];
        const int64_t s = tw.inner(0);
        for (int64_t t = 0; t < len; ++t) cnt += p[t * s] != T(0);
      });
      start[c + 1] = cnt;
    });
    for (int c = 0; c < nt; ++c) start[c + 1] += start[c];
    if (start[nt] != out.shape[0])
      throw std::invalid_argument("nonzero: out has " + std::to_string(out.shape[0]) +
                                  " rows but the mask has " + std::to_string(start[nt]) +
                                  " nonzero elements");
    Walker coords(mask.ndim, mask.shape);  // not coalesced: idx[] are the coordinates
    coords.add(mask.stride);
    int64_t* o = static_cast<int64_t*>(out.data);
    const int64_t r_st = out.stride[0], c_st = out.stride[1];
    run_chunks(nt, n, [&](int c, int64_t b, int64_t e) {
      Walker tw = coords;
      int64_t row = start[c];
      for_segments(tw, b, e, [&](int64_t len) {
        const T* p = static_cast<const T*>(mask.data) + tw.off[0];
        const int64_t s = tw.inner(0);
        for (int64_t t = 0; t < len; ++t) {
          if (p[t * s] == T(0)) continue;
          int64_t* r = o + row++ * r_st;
          for (int d = 0; d + 1 < nd; ++d) r[d * c_st] = tw.idx[d];
          if (nd) r[(nd - 1) * c_st] = tw.idx[nd - 1] + t;
        }
      });
    });
  });
}

// ================================================================ sort / topk
namespace {

// Ascending order with NaN as the largest value (PyTorch's convention).
template <class T>
inline bool less_nan_last(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) return !std::isnan(a) && (std::isnan(b) || a < b);
  else return a < b;
}

// Whether a is strictly better than b: larger (Descending) or smaller, NaN the largest.
template <bool Descending, class T>
inline bool beats(T a, T b) {
  return Descending ? less_nan_last(b, a) : less_nan_last(a, b);
}

// (value, position) pairs best first, equal values in position order: a total order.
template <bool Descending>
struct BestFirst {
  template <class Pair>
  bool operator()(const Pair& a, const Pair& b) const {
    return beats<Descending>(a.first, b.first) ||
           (!beats<Descending>(b.first, a.first) && a.second < b.second);
  }
};

// The best k of a line of n (k * kSelectRatio <= n) into top[0, k), best first: one pass
// that keeps them sorted and compares every other element with the worst of them, a
// chunk of 16 at a time where the line is contiguous (on random data a few k log(n/k)
// elements get in; std::nth_element on (value, position) pairs took 10 ns per element).
// Elements come in position order, so an equal value never beats one already kept:
// ties keep their original order, as in the sorting path.
constexpr int64_t kSelectRatio = 16;
template <bool Descending, class T, class Pair>
void select_best(const T* xp, int64_t xs, int64_t n, int64_t k, Pair* top) {
  for (int64_t j = 0; j < k; ++j) top[j] = Pair(xp[j * xs], j);
  std::sort(top, top + k, BestFirst<Descending>{});
  const auto insert = [&](T v, int64_t j) {
    int64_t p = k - 1;
    for (; p > 0 && beats<Descending>(v, top[p - 1].first); --p) top[p] = top[p - 1];
    top[p] = Pair(v, j);
  };
  constexpr int64_t kChunk = 16;
  int64_t j = k;
  if (xs == 1) {
    for (; j + kChunk <= n; j += kChunk) {
      const T worst = top[k - 1].first;
      uint32_t any = 0;
#pragma omp simd reduction(| : any)
      for (int64_t c = 0; c < kChunk; ++c) any |= beats<Descending>(xp[j + c], worst);
      if (any)
        for (int64_t c = j; c < j + kChunk; ++c)
          if (beats<Descending>(xp[c], top[k - 1].first)) insert(xp[c], c);
    }
  }
  for (; j < n; ++j)
    if (beats<Descending>(xp[j * xs], top[k - 1].first)) insert(xp[j * xs], j);
}

// Radix sort of whole lines: LSD, a byte at a time, on unsigned keys whose order is
// BestFirst's.  std::sort on (value, position) pairs took about 130 ns per element of
// 2048-element lines (a mispredicted branch per comparison).
template <class T>
using RadixKey = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;
constexpr int64_t kRadixMin = 256;  // shorter lines: std::sort

// The key of v in ascending order, NaN last: the sign bit flipped for positive values,
// every bit for negative ones; every NaN the largest key, -0 that of +0 (they are equal).
template <bool Descending, class T>
inline RadixKey<T> radix_key(T v) {
  using K = RadixKey<T>;
  constexpr K top = K(1) << (8 * sizeof(K) - 1);
  K key;
  if constexpr (std::is_floating_point_v<T>) {
    K b;
    std::memcpy(&b, &v, sizeof b);
    // Selects, not branches: a branch on the sign, mispredicted half the time, made the
    // counting pass 2x slower.
    const K flip = (K(0) - (b >> (8 * sizeof(K) - 1))) | top;  // every bit if negative
    key = v != v ? ~K(0) : (b & ~top) == 0 ? top : b ^ flip;
  } else {
    key = static_cast<K>(v) ^ top;
  }
  return Descending ? ~key : key;
}

// A key and the position of its element, moved together (one store per element and pass).
template <class T>
struct RadixItem {
  RadixKey<T> key;
  uint32_t pos;
};

// The items of a line of n (kRadixMin <= n < 2^32) elements best first: stable, so equal
// values keep their original order.  Bytes that every key shares take no pass.  items
// and tmp hold n each; the result is in one of them, the one returned.
template <bool Descending, class T>
const RadixItem<T>* radix_order(const T* xp, int64_t xs, int64_t n, RadixItem<T>* items,
                                RadixItem<T>* tmp) {
  using K = RadixKey<T>;
  constexpr int kBytes = sizeof(K);
  uint32_t count[kBytes][256] = {};
  for (int64_t j = 0; j < n; ++j) {
    const K key = radix_key<Descending>(xp[j * xs]);
    items[j] = {key, static_cast<uint32_t>(j)};
    for (int b = 0; b < kBytes; ++b) ++count[b][(key >> (8 * b)) & 255];
  }
  for (int b = 0; b < kBytes; ++b) {
    const int shift = 8 * b;
    if (count[b][(items[0].key >> shift) & 255] == n) continue;  // one digit for all
    uint32_t at[256];
    uint32_t total = 0;
    for (int d = 0; d < 256; ++d) at[d] = total, total += count[b][d];
    for (int64_t j = 0; j < n; ++j) tmp[at[(items[j].key >> shift) & 255]++] = items[j];
    std::swap(items, tmp);
  }
  return items;
}

// Writes the first k of each slice along dim in (descending ?) order; ties
// keep their original order (the radix sort is stable; sorting (value, position)
// pairs makes the order total, so std::sort is stable here too).
void sort_slices(const char* op, const View& x0, int dim, int64_t k, bool descending,
                 const View& values0, const View& indices0) {
  const View x = as_1d(x0), values = as_1d(values0), indices = as_1d(indices0);
  check_same_dtype(op, x, "input", values, "values");
  if (indices.dtype != DType::i64)
    throw type_error(std::string(op) + ": indices must be int64, got " + dtype_name(indices.dtype));
  bool ok = same_shape(values, indices) && values.ndim == x.ndim;
  for (int d = 0; ok && d < x.ndim; ++d) ok = values.shape[d] == (d == dim ? k : x.shape[d]);
  if (!ok)
    throw std::invalid_argument(std::string(op) + ": values " + shape_str(values0) + " and indices " +
                                shape_str(indices0) + " do not match input " + shape_str(x0) +
                                " with " + std::to_string(k) + " along dim " + std::to_string(dim));
  const int64_t n = x.shape[dim];
  const Dropped fx = drop_dim(x, dim), fv = drop_dim(values, dim), fi = drop_dim(indices, dim);
  int64_t nslices = 1;
  for (int d = 0; d < fx.ndim; ++d) nslices *= fx.shape[d];
  if (k == 0 || nslices == 0) return;
  const int64_t xs = x.stride[dim], vs = values.stride[dim], is = indices.stride[dim];
  by_type(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    using Pair = std::pair<T, int64_t>;
    Walker w(fx.ndim, fx.shape);
    w.add(fx.stride);
    w.add(fv.stride);
    w.add(fi.stride);
    w.coalesce();
    auto run = [&](auto descending_tag) {
      constexpr bool kDescending = decltype(descending_tag)::value;
      const BestFirst<kDescending> cmp;
      // Whole lines of 4- and 8-byte values by radix sort, the others by comparisons.
      const bool radix = sizeof(T) >= 4 && k * kSelectRatio > n && n >= kRadixMin &&
                         n < (int64_t(1) << 32);
      parallel_ranges(nslices, nslices * n, [&](int64_t b, int64_t e) {
        std::vector<Pair> buf(radix ? 0 : n);
        std::vector<RadixItem<T>> items(radix ? 2 * n : 0);
        Walker tw = w;
        for_segments(tw, b, e, [&](int64_t len) {
          for (int64_t s = 0; s < len; ++s) {
            const T* xp = static_cast<const T*>(x.data) + tw.off[0] + s * tw.inner(0);
            T* vp = static_cast<T*>(values.data) + tw.off[1] + s * tw.inner(1);
            int64_t* ip = static_cast<int64_t*>(indices.data) + tw.off[2] + s * tw.inner(2);
            if constexpr (sizeof(T) >= 4) {
              if (radix) {
                const RadixItem<T>* order =
                    radix_order<kDescending>(xp, xs, n, items.data(), items.data() + n);
                for (int64_t j = 0; j < k; ++j) {
                  vp[j * vs] = xp[order[j].pos * xs];
                  ip[j * is] = order[j].pos;
                }
                continue;
              }
            }
            if (k * kSelectRatio <= n) {
              select_best<kDescending>(xp, xs, n, k, buf.data());
            } else {
              for (int64_t j = 0; j < n; ++j) buf[j] = Pair(xp[j * xs], j);
              if (k < n) std::nth_element(buf.begin(), buf.begin() + k, buf.end(), cmp);
              std::sort(buf.begin(), buf.begin() + std::min(k, n), cmp);
            }
            for (int64_t j = 0; j < k; ++j) {
              vp[j * vs] = buf[j].first;
              ip[j * is] = buf[j].second;
            }
          }
        });
      });
    };
    if (descending) run(std::true_type{});
    else run(std::false_type{});
  });
}

}  // namespace

void sort(const View& x, int dim, bool descending, const View& values, const View& indices) {
  sort_slices("sort", x, dim, as_1d(x).shape[dim], descending, values, indices);
}

void topk(const View& x, int64_t k, int dim, bool largest, const View& values,
          const View& indices) {
  const int64_t n = as_1d(x).shape[dim];
  if (k < 0) throw std::invalid_argument("topk: k (" + std::to_string(k) + ") must be >= 0");
  if (k > n)
    throw std::invalid_argument("topk: k (" + std::to_string(k) +
                                ") is larger than dimension size (" + std::to_string(n) + ")");
  sort_slices("topk", x, dim, k, largest, values, indices);
}

// ================================================================ one_hot
void one_hot(const View& index, const View& out) {
  check_index_dtype("one_hot", index);
  bool ok = out.ndim == index.ndim + 1;
  for (int d = 0; ok && d < index.ndim; ++d) ok = out.shape[d] == index.shape[d];
  if (!ok)
    throw std::invalid_argument("one_hot: out " + shape_str(out) + " must be index shape " +
                                shape_str(index) + " plus a num_classes dimension");
  const int64_t n = numel(index), C = out.shape[index.ndim], cs = out.stride[index.ndim];
  by_type(out.dtype, [&](auto ttag) {
    using T = decltype(ttag);
    by_index_type(index, [&](auto itag) {
      using I = decltype(itag);
      Walker w(index.ndim, index.shape);
      w.add(index.stride);
      w.add(out.stride);
      w.coalesce();
      parallel_ranges(n, n * (C + 1), [&](int64_t b, int64_t e) {
        Walker tw = w;
        for_segments(tw, b, e, [&](int64_t len) {
          const I* ip = static_cast<const I*>(index.data) + tw.off[0];
          T* op = static_cast<T*>(out.data) + tw.off[1];
          const int64_t si = tw.inner(0), so = tw.inner(1);
          for (int64_t t = 0; t < len; ++t) {
            const int64_t c = ip[t * si];
            if (c < 0 || c >= C)
              throw std::out_of_range("one_hot: class index " + std::to_string(c) +
                                      " out of range [0, " + std::to_string(C) + ")");
            T* row = op + t * so;
            for (int64_t j = 0; j < C; ++j) row[j * cs] = T(0);
            row[c * cs] = T(1);
          }
        });
      });
    });
  });
}

}  // namespace genesis
