// Elementwise kernels (contract in elementwise.h).
//
// Every call goes through one iteration engine: make_plan() turns the output
// and its inputs into a "plan" with byte strides, drops size-1 dims, flips dims
// the output walks backwards, orders dims by output stride and merges dims
// that are contiguous in every operand, so most calls become a single 1-D
// loop.  run() splits the flat index range across OpenMP threads (only above
// a size threshold) and hands each row of the innermost dim to an inner
// kernel, which picks a vectorized loop when every operand is either
// contiguous or a broadcast scalar, and a plain strided loop otherwise.
#include "elementwise.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "elementwise_math.h"

namespace genesis::GENESIS_ISA_NS {
namespace {

using u8 = uint8_t;  // storage of DType::b8 (read as != 0, written as 0/1)

// ------------------------------------------------------------------ plans

// Elements per call below which everything stays on the calling thread.
constexpr int64_t kGrainCheap = 32768;
constexpr int64_t kGrainCostly = 4096;  // transcendental ops

int elsize(DType t) {
  switch (t) {
    case DType::f64:
    case DType::i64: return 8;
    case DType::b8: return 1;
    default: return 4;
  }
}

// N operands, operand 0 is the output; strides in bytes, dims outermost first.
template <int N>
struct Plan {
  int ndim = 0;
  int64_t numel = 1;
  int64_t shape[kMaxDims];
  int64_t stride[kMaxDims][N];
  char* data[N];
};

template <int N>
Plan<N> make_plan(const View* const (&v)[N]) {
  Plan<N> p;
  const View& out = *v[0];
  int es[N];
  for (int k = 0; k < N; ++k) {
    p.data[k] = static_cast<char*>(v[k]->data);
    es[k] = elsize(v[k]->dtype);
  }
  for (int d = 0; d < out.ndim; ++d) {
    const int64_t n = out.shape[d];
    if (n == 0) {
      p.numel = 0;
      return p;
    }
    if (n == 1) continue;
    p.numel *= n;
    int64_t s[N];
    for (int k = 0; k < N; ++k) s[k] = v[k]->stride[d] * es[k];
    if (s[0] < 0) {  // walk this dim forwards in every operand
      for (int k = 0; k < N; ++k) {
        p.data[k] += (n - 1) * s[k];
        s[k] = -s[k];
      }
    }
    // Stable insertion by decreasing output stride: the innermost dim is the
    // one the output walks fastest.
    int pos = p.ndim;
    while (pos > 0 && p.stride[pos - 1][0] < s[0]) {
      p.shape[pos] = p.shape[pos - 1];
      for (int k = 0; k < N; ++k) p.stride[pos][k] = p.stride[pos - 1][k];
      --pos;
    }
    p.shape[pos] = n;
    for (int k = 0; k < N; ++k) p.stride[pos][k] = s[k];
    ++p.ndim;
  }
  // Merge each dim into its outer neighbour when every operand allows it.
  int m = 0;
  for (int d = 0; d < p.ndim; ++d) {
    bool merge = m > 0;
    for (int k = 0; merge && k < N; ++k)
      merge = p.stride[m - 1][k] == p.stride[d][k] * p.shape[d];
    if (merge) {
      p.shape[m - 1] *= p.shape[d];
      for (int k = 0; k < N; ++k) p.stride[m - 1][k] = p.stride[d][k];
    } else {
      p.shape[m] = p.shape[d];
      for (int k = 0; k < N; ++k) p.stride[m][k] = p.stride[d][k];
      ++m;
    }
  }
  p.ndim = m;
  if (m == 0) {  // a single element
    p.ndim = 1;
    p.shape[0] = 1;
    for (int k = 0; k < N; ++k) p.stride[0][k] = 0;
  }
  return p;
}

// Runs inner(ptrs, innermost strides, n) over flat elements [begin, end).
template <int N, class Inner>
void run_range(const Plan<N>& p, int64_t begin, int64_t end, const Inner& inner) {
  const int last = p.ndim - 1;
  const int64_t* s = p.stride[last];
  int64_t idx[kMaxDims];
  char* ptr[N];
  for (int k = 0; k < N; ++k) ptr[k] = p.data[k];
  int64_t rem = begin;
  for (int d = last; d >= 0; --d) {
    idx[d] = rem % p.shape[d];
    rem /= p.shape[d];
    for (int k = 0; k < N; ++k) ptr[k] += idx[d] * p.stride[d][k];
  }
  for (int64_t pos = begin;;) {
    const int64_t n = std::min(p.shape[last] - idx[last], end - pos);
    inner(ptr, s, n);
    pos += n;
    if (pos >= end) return;
    // The row is finished: back to its start, then step the outer dims.
    for (int k = 0; k < N; ++k) ptr[k] -= idx[last] * s[k];
    idx[last] = 0;
    for (int d = last - 1; d >= 0; --d) {
      for (int k = 0; k < N; ++k) ptr[k] += p.stride[d][k];
      if (++idx[d] < p.shape[d]) break;
      for (int k = 0; k < N; ++k) ptr[k] -= p.shape[d] * p.stride[d][k];
      idx[d] = 0;
    }
  }
}

// Functors with `void finish()`, called by each thread after its last row.
template <class F, class = void>
struct has_finish : std::false_type {};
template <class F>
struct has_finish<F, std::void_t<decltype(std::declval<const F&>().finish())>> : std::true_type {};

template <int N, class Inner>
void run(const Plan<N>& p, const Inner& inner, int64_t grain) {
  const int64_t numel = p.numel;
  if (numel == 0) return;
  const auto range = [&](int64_t b, int64_t e) {
    run_range(p, b, e, inner);
    if constexpr (has_finish<Inner>::value) inner.finish();
  };
  if (numel <= grain) return range(0, numel);
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    // Chunks are multiples of 64 elements so threads start on cache lines.
    const int64_t chunk = ((numel + nt - 1) / nt + 63) & ~int64_t{63};
    const int64_t b = std::min(numel, t * chunk), e = std::min(numel, b + chunk);
    if (b < e) range(b, e);
  }
}

// ------------------------------------------------------------------ inner kernels

template <class T>
inline const T& at(const char* p, int64_t i, int64_t s) {
  return *reinterpret_cast<const T*>(p + i * s);
}
template <class T>
inline T& at(char* p, int64_t i, int64_t s) {
  return *reinterpret_cast<T*>(p + i * s);
}

// Functors with a 16-lane float form, `f32x16 vec(f32x16)`, run it on contiguous floats.
template <class F, class = void>
struct has_vec : std::false_type {};
template <class F>
struct has_vec<F, std::void_t<decltype(std::declval<const F&>().vec(vm::f32x16{}))>>
    : std::true_type {};

// f over 16 floats lane by lane, in a loop GCC vectorizes (always inlined, as exp16).
template <class F>
__attribute__((always_inline)) inline vm::f32x16 lane_by_lane(const F& f, vm::f32x16 v) {
  float x[16];
  vm::store16(x, v);
#pragma omp simd
  for (int j = 0; j < 16; ++j) x[j] = f(x[j]);
  return vm::load16(x);
}

// out = f(a).  Contiguous and broadcast-scalar rows get vectorized loops; with
// `stream` set (an output too large for the cache) the vector form streams its stores,
// and so does the scalar form lane by lane with `stream_lanes` (set for the cheap ops,
// which are memory bound: a cached store also reads the output's line first).
template <class To, class Ta, class F>
struct Map1 {
  F f;
  bool stream = false, stream_lanes = false;
  void operator()(char* const* p, const int64_t* s, int64_t n) const {
    To* o = reinterpret_cast<To*>(p[0]);
    const Ta* a = reinterpret_cast<const Ta*>(p[1]);
    if (s[0] == sizeof(To) && s[1] == sizeof(Ta)) {
      if constexpr (std::is_same_v<To, float> && std::is_same_v<Ta, float> &&
                    has_vec<F>::value) {
        // (always inlined: a 16-lane form called out of line passes its lanes through
        // memory, and stalls reloading them)
        const auto vf = [this](vm::f32x16 v) __attribute__((always_inline)) { return f.vec(v); };
        if (stream) vm::map16_stream(a, o, n, vf);
        else vm::map16(a, o, n, vf);
      } else {
        if constexpr (std::is_same_v<To, float> && std::is_same_v<Ta, float>) {
          if (stream && stream_lanes)
            return vm::map16_stream(a, o, n, [this](vm::f32x16 v) __attribute__((always_inline)) {
              return lane_by_lane(f, v);
            });
        }
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
      }
    } else if (s[1] == 0) {
      const To r = f(*a);
      if (s[0] == sizeof(To)) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = r;
      } else {
        for (int64_t i = 0; i < n; ++i) at<To>(p[0], i, s[0]) = r;
      }
    } else {
      for (int64_t i = 0; i < n; ++i) at<To>(p[0], i, s[0]) = f(at<Ta>(p[1], i, s[1]));
    }
  }
};

template <bool CA, bool CB, class To, class T, class F>
inline void map2_fast(const F& f, To* o, const T* a, const T* b, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) o[i] = f(a[CA ? i : 0], b[CB ? i : 0]);
}

// Functors with a 16-lane float form of a binary op, `f32x16 vec(f32x16, f32x16)`.
template <class F, class = void>
struct has_vec2 : std::false_type {};
template <class F>
struct has_vec2<F, std::void_t<decltype(std::declval<const F&>().vec(vm::f32x16{}, vm::f32x16{}))>>
    : std::true_type {};

// o = vf(a, b) (16 lanes at a time) over n floats with o's lines streamed; a (b) is one
// broadcast value unless CA (CB).
template <bool CA, bool CB, class V>
void map2_stream(const V& vf, float* o, const float* a, const float* b, int64_t n) {
  const vm::f32x16 a0 = vm::f32x16{} + a[0], b0 = vm::f32x16{} + b[0];
  vm::stream16_from(o, n, [&](int64_t i, int64_t len) {
    return vf(CA ? vm::load16_upto(a + i, len) : a0, CB ? vm::load16_upto(b + i, len) : b0);
  });
}

// f over two sets of 16 floats lane by lane (as lane_by_lane).
template <class F>
__attribute__((always_inline)) inline vm::f32x16 lane_by_lane(const F& f, vm::f32x16 va,
                                                              vm::f32x16 vb) {
  float a[16], b[16];
  vm::store16(a, va);
  vm::store16(b, vb);
#pragma omp simd
  for (int j = 0; j < 16; ++j) a[j] = f(a[j], b[j]);
  return vm::load16(a);
}

// The same with cached stores, for ops whose vector form beats the vectorized element
// loop (their `static constexpr bool kVectorInCache`): those built on exp16.
template <class F, class = void>
struct vector_in_cache : std::false_type {};
template <class F>
struct vector_in_cache<F, std::enable_if_t<F::kVectorInCache>> : std::true_type {};
template <bool CA, bool CB, class F>
void map2_vec(const F& f, float* o, const float* a, const float* b, int64_t n) {
  const vm::f32x16 a0 = vm::f32x16{} + a[0], b0 = vm::f32x16{} + b[0];
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    vm::store16(o + i, f.vec(CA ? vm::load16(a + i) : a0, CB ? vm::load16(b + i) : b0));
  if (i < n)
    vm::store16_first(o + i, f.vec(CA ? vm::load16_first(a + i, n - i, 0.0f) : a0,
                                   CB ? vm::load16_first(b + i, n - i, 0.0f) : b0), n - i);
}

// out = f(a, b).  With `stream` (a float output too large for the cache) ops with a
// vector form stream their contiguous rows out, and so do the others lane by lane with
// `stream_lanes` (as Map1's).
template <class To, class T, class F>
struct Map2 {
  F f;
  bool stream = false, stream_lanes = false;
  void operator()(char* const* p, const int64_t* s, int64_t n) const {
    To* o = reinterpret_cast<To*>(p[0]);
    const T* a = reinterpret_cast<const T*>(p[1]);
    const T* b = reinterpret_cast<const T*>(p[2]);
    constexpr int64_t e = sizeof(T);
    if constexpr (std::is_same_v<To, float> && std::is_same_v<T, float>) {
      if (stream && s[0] == e && (has_vec2<F>::value || stream_lanes)) {
        const auto vf = [this](vm::f32x16 x, vm::f32x16 y) __attribute__((always_inline)) {
          if constexpr (has_vec2<F>::value) return f.vec(x, y);
          else return lane_by_lane(f, x, y);
        };
        if (s[1] == e && s[2] == e) return map2_stream<true, true>(vf, o, a, b, n);
        if (s[1] == e && s[2] == 0) return map2_stream<true, false>(vf, o, a, b, n);
        if (s[1] == 0 && s[2] == e) return map2_stream<false, true>(vf, o, a, b, n);
      }
      if constexpr (has_vec2<F>::value && vector_in_cache<F>::value) {
        if (s[0] == e) {
          if (s[1] == e && s[2] == e) return map2_vec<true, true>(f, o, a, b, n);
          if (s[1] == e && s[2] == 0) return map2_vec<true, false>(f, o, a, b, n);
          if (s[1] == 0 && s[2] == e) return map2_vec<false, true>(f, o, a, b, n);
        }
      }
    }
    if (s[0] == sizeof(To)) {
      if (s[1] == e && s[2] == e) return map2_fast<true, true>(f, o, a, b, n);
      if (s[1] == e && s[2] == 0) return map2_fast<true, false>(f, o, a, b, n);
      if (s[1] == 0 && s[2] == e) return map2_fast<false, true>(f, o, a, b, n);
    }
    for (int64_t i = 0; i < n; ++i)
      at<To>(p[0], i, s[0]) = f(at<T>(p[1], i, s[1]), at<T>(p[2], i, s[2]));
  }
};

template <bool CA, bool CB, class T>
inline void where_fast(T* o, const u8* c, const T* a, const T* b, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? a[CA ? i : 0] : b[CB ? i : 0];
}

template <class T>
struct WhereMap {
  void operator()(char* const* p, const int64_t* s, int64_t n) const {
    T* o = reinterpret_cast<T*>(p[0]);
    const u8* c = reinterpret_cast<const u8*>(p[1]);
    const T* a = reinterpret_cast<const T*>(p[2]);
    const T* b = reinterpret_cast<const T*>(p[3]);
    constexpr int64_t e = sizeof(T);
    if (s[0] == e && s[1] == 1) {
      if (s[2] == e && s[3] == e) return where_fast<true, true>(o, c, a, b, n);
      if (s[2] == e && s[3] == 0) return where_fast<true, false>(o, c, a, b, n);
      if (s[2] == 0 && s[3] == e) return where_fast<false, true>(o, c, a, b, n);
    }
    for (int64_t i = 0; i < n; ++i)
      at<T>(p[0], i, s[0]) = at<u8>(p[1], i, s[1]) ? at<T>(p[2], i, s[2]) : at<T>(p[3], i, s[3]);
  }
};

// Copies an output too large for the cache: contiguous rows by non-temporal stores,
// fenced once per thread (in finish) rather than once per row: rows of a strided output
// (one piece of a cat along dim 1) are a few KiB, and each fence waits for them to drain.
template <class T>
struct StreamCopy {
  void operator()(char* const* p, const int64_t* s, int64_t n) const {
    if (s[0] == sizeof(T) && s[1] == sizeof(T))
      return vm::stream_bytes<false>(p[0], p[1], n * s[0]);
    for (int64_t i = 0; i < n; ++i) at<T>(p[0], i, s[0]) = at<T>(p[1], i, s[1]);
  }
  void finish() const { _mm_sfence(); }
};

// A copy whose source is contiguous along a dim other than the output's innermost one (a
// transpose).  Row by row of the output, the source is read one column at a time, every
// element from another line and, a few hundred rows on, another page: a 2048 x 2048
// float transpose took 27 ms that way.  Square tiles do not cure it when the rows lie a
// power of two apart: then all the tile's lines fall in the same few cache sets (8-way
// on Zen 3), and 32 x 32 tiles still took 15 ms.  So a tile is kTileI output rows (a
// piece of each source line: a whole 64-byte line of floats) by kTileJ columns: it
// writes kTileI output lines at a time, and the next tile down reads the rest of the
// same source lines from L2.  (8 x 256 tiles, which suited the element loop, came out
// 5-10 % slower with the in-register transposes below on Zen 5; 32 x 128, 1.7x slower.)
constexpr int64_t kTileI = 16, kTileJ = 256;

#if defined(__AVX2__)
// dst row r, 8 elements of 4 bytes = element r of each of the 8 src rows (rows src_stride
// and dst_stride bytes apart): the usual unpack, shuffle and lane-permute network.
inline void transpose8x8(const char* src, int64_t src_stride, char* dst, int64_t dst_stride) {
  __m256 r[8], u[8];
  for (int k = 0; k < 8; ++k)
    r[k] = _mm256_loadu_ps(reinterpret_cast<const float*>(src + k * src_stride));
  for (int k = 0; k < 8; k += 2) {
    u[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
    u[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {
    r[k] = _mm256_shuffle_ps(u[k], u[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[k + 1] = _mm256_shuffle_ps(u[k], u[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[k + 2] = _mm256_shuffle_ps(u[k + 1], u[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[k + 3] = _mm256_shuffle_ps(u[k + 1], u[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int k = 0; k < 4; ++k) {
    float* lo = reinterpret_cast<float*>(dst + k * dst_stride);
    float* hi = reinterpret_cast<float*>(dst + (k + 4) * dst_stride);
    _mm256_storeu_ps(lo, _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
    _mm256_storeu_ps(hi, _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
  }
}
#endif

template <class T>
bool copy_transposed(const Plan<2>& p) {
  constexpr int64_t es = sizeof(T);
  const int last = p.ndim - 1;
  if (last < 1 || p.stride[last][0] != es || p.stride[last][1] == es) return false;
  int d = last - 1;  // the dim along which the source is contiguous
  while (d >= 0 && p.stride[d][1] != es) --d;
  if (d < 0 || p.shape[d] < kTileI || p.shape[last] < kTileI) return false;
  int nouter = 0;  // every other dim
  int64_t oshape[kMaxDims], ostride[kMaxDims][2], outer = 1;
  for (int k = 0; k < last; ++k) {
    if (k == d) continue;
    oshape[nouter] = p.shape[k];
    ostride[nouter][0] = p.stride[k][0];
    ostride[nouter][1] = p.stride[k][1];
    outer *= p.shape[k];
    ++nouter;
  }
  const int64_t ni = p.shape[d], nj = p.shape[last], out_i = p.stride[d][0],
                src_j = p.stride[last][1];
  const int64_t ti = (ni + kTileI - 1) / kTileI, tj = (nj + kTileJ - 1) / kTileJ;
  const int64_t tiles = outer * tj * ti;
  const bool parallel = p.numel > kGrainCheap;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < tiles; ++t) {  // tiles down a column of tiles, then across
    int64_t rest = t / (tj * ti);
    char* o = p.data[0];
    const char* x = p.data[1];
    for (int k = nouter - 1; k >= 0; --k) {
      const int64_t idx = rest % oshape[k];
      rest /= oshape[k];
      o += idx * ostride[k][0];
      x += idx * ostride[k][1];
    }
    const int64_t i0 = t % ti * kTileI, j0 = (t / ti) % tj * kTileJ;
    const int64_t i1 = std::min(ni, i0 + kTileI), j1 = std::min(nj, j0 + kTileJ);
    const auto columns = [&](int64_t ja, int64_t jb, int64_t ia) {  // rows [ia, i1)
      for (int64_t j = ja; j < jb; ++j) {
        const T* src = reinterpret_cast<const T*>(x + j * src_j);
        char* dst = o + j * es;
        for (int64_t i = ia; i < i1; ++i) at<T>(dst, i, out_i) = src[i];
      }
    };
    int64_t j = j0;
#if defined(__AVX2__)
    // 4-byte elements: 8 x 8 blocks transposed in registers, so that each store writes
    // 8 elements of an output row instead of one.
    if constexpr (es == 4) {
      for (; j + 8 <= j1; j += 8) {
        int64_t i = i0;
        for (; i + 8 <= i1; i += 8)
          transpose8x8(x + j * src_j + i * es, src_j, o + i * out_i + j * es, out_i);
        columns(j, j + 8, i);
      }
    }
#endif
    columns(j, j1, i0);
  }
  return true;
}

template <class T>
struct FillMap {
  T v;
  void operator()(char* const* p, const int64_t* s, int64_t n) const {
    if (s[0] == sizeof(T)) {
      T* o = reinterpret_cast<T*>(p[0]);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = v;
    } else {
      for (int64_t i = 0; i < n; ++i) at<T>(p[0], i, s[0]) = v;
    }
  }
};

// ------------------------------------------------------------------ dtype helpers

template <class F>
void by_dtype(DType t, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
    case DType::b8: return f(u8{});
  }
}

template <class T>
constexpr bool is_float_v = std::is_floating_point_v<T>;
template <class T>
constexpr bool is_bool_v = std::is_same_v<T, u8>;

// Integer arithmetic wraps (two's complement) like PyTorch instead of being UB.
template <class T>
inline T wrap_add(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
}
template <class T>
inline T wrap_sub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) - static_cast<U>(b));
}
template <class T>
inline T wrap_mul(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) * static_cast<U>(b));
}

template <class To, class Ti>
inline To convert(Ti x) {
  if constexpr (is_bool_v<To>) return static_cast<To>(x != 0);
  else if constexpr (is_bool_v<Ti>) return static_cast<To>(x != 0);
  else return static_cast<To>(x);
}

std::string shape_str(const View& v) {
  std::string s = "(";
  for (int d = 0; d < v.ndim; ++d) {
    if (d) s += ", ";
    s += std::to_string(v.shape[d]);
  }
  if (v.ndim == 1) s += ",";
  return s + ")";
}

void check_shape(const char* op, const char* what, const View& x, const View& out) {
  if (!same_shape(x, out))
    throw std::invalid_argument(std::string(op) + ": " + what + " shape " + shape_str(x) +
                                " does not match output shape " + shape_str(out));
}

[[noreturn]] void dtype_fail(const char* op, const char* what, DType got, const char* expected) {
  throw type_error(std::string(op) + ": " + what + " has dtype " + dtype_name(got) +
                   ", expected " + expected);
}

// ------------------------------------------------------------------ unary ops

const char* const kUnaryNames[] = {
    "neg", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs", "sign", "reciprocal",
    "sin", "cos", "tanh", "sigmoid", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh",
    "silu", "softplus", "erf", "square", "clamp", "logical_not", "floor", "ceil", "round",
    "trunc"};
static_assert(sizeof(kUnaryNames) / sizeof(kUnaryNames[0]) == int(UnaryOp::count_));

const char* const kBinaryNames[] = {
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "floordiv", "mod", "eq", "ne",
    "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "atan2", "relu_grad",
    "gelu_grad"};
static_assert(sizeof(kBinaryNames) / sizeof(kBinaryNames[0]) == int(BinaryOp::count_));

template <class T, class F>
void run_unary(const View& x, const View& out, const F& f, int64_t grain) {
  const View* v[2] = {&out, &x};
  const bool stream = out.data != x.data && vm::stream_output(numel(out) * int64_t(sizeof(T)));
  run(make_plan(v), Map1<T, T, F>{f, stream, grain == kGrainCheap}, grain);
}

// Float ops: f32 goes through the vectorizable routines of elementwise_math.h,
// f64 through libm.
#define GENESIS_FLOAT_UNARY(Name, expr)      \
  struct Name {                              \
    template <class T>                       \
    T operator()(T x) const {                \
      return expr;                           \
    }                                        \
  };
// ... and those with a 16-lane float form (see Map1).
#define GENESIS_FLOAT_UNARY_VEC(Name, expr, vec_expr)          \
  struct Name {                                                \
    template <class T>                                         \
    T operator()(T x) const {                                  \
      return expr;                                             \
    }                                                          \
    vm::f32x16 vec(vm::f32x16 x) const { return vec_expr; }    \
  };

GENESIS_FLOAT_UNARY_VEC(Exp, vm::exp(x), vm::exp16(x))
GENESIS_FLOAT_UNARY(Log, vm::log(x))
GENESIS_FLOAT_UNARY(Log1p, vm::log1p(x))
GENESIS_FLOAT_UNARY(Expm1, vm::expm1(x))
GENESIS_FLOAT_UNARY(Sqrt, std::sqrt(x))
GENESIS_FLOAT_UNARY(Rsqrt, T(1) / std::sqrt(x))
GENESIS_FLOAT_UNARY(Reciprocal, T(1) / x)
GENESIS_FLOAT_UNARY(Sin, std::sin(x))
GENESIS_FLOAT_UNARY(Cos, std::cos(x))
GENESIS_FLOAT_UNARY_VEC(Tanh, vm::tanh(x), vm::tanh16(x))
GENESIS_FLOAT_UNARY_VEC(Sigmoid, vm::sigmoid(x), vm::sigmoid16(x))
GENESIS_FLOAT_UNARY_VEC(Gelu, vm::gelu(x), vm::gelu16(x))
GENESIS_FLOAT_UNARY_VEC(GeluTanh, vm::gelu_tanh(x), vm::gelu_tanh16(x))
GENESIS_FLOAT_UNARY_VEC(Silu, x * vm::sigmoid(x), vm::silu16(x))
GENESIS_FLOAT_UNARY_VEC(Erf, vm::erf(x), vm::erf16(x))
GENESIS_FLOAT_UNARY(Round, std::nearbyint(x))
#undef GENESIS_FLOAT_UNARY
#undef GENESIS_FLOAT_UNARY_VEC

struct LeakyRelu {
  double slope;
  template <class T>
  T operator()(T x) const { return x > T(0) ? x : x * T(slope); }
};
struct Elu {
  double alpha;
  template <class T>
  T operator()(T x) const { return x > T(0) ? x : T(alpha) * vm::expm1(x); }
};
struct Softplus {
  double beta, threshold;
  template <class T>
  T operator()(T x) const {
    const T z = x * T(beta);
    return z > T(threshold) ? x : vm::log1p(vm::exp(z)) / T(beta);
  }
};

// Ops that also accept integers (floor/ceil/round/trunc are the identity there).
struct Neg {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_float_v<T>) return -x;
    else return wrap_sub(T(0), x);
  }
};
struct Abs {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_float_v<T>) return std::fabs(x);
    else return x < 0 ? wrap_sub(T(0), x) : x;
  }
};
struct Sign {  // sign(0) = 0 (keeping -0), sign(NaN) = NaN
  template <class T>
  T operator()(T x) const { return x > T(0) ? T(1) : x < T(0) ? T(-1) : x; }
};
struct Square {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_float_v<T>) return x * x;
    else return wrap_mul(x, x);
  }
};
struct Relu {  // NaN stays NaN
  template <class T>
  T operator()(T x) const { return x < T(0) ? T(0) : x; }
};
struct Floor {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_float_v<T>) return std::floor(x);
    else return x;
  }
};
struct Ceil {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_float_v<T>) return std::ceil(x);
    else return x;
  }
};
struct Trunc {
  template <class T>
  T operator()(T x) const {
    if constexpr (is_float_v<T>) return std::trunc(x);
    else return x;
  }
};
template <class T>
struct Clamp {  // min(max(x, lo), hi); NaN x passes through both compares
  T lo, hi;
  T operator()(T x) const {
    const T y = x < lo ? lo : x;
    return y > hi ? hi : y;
  }
};

// Clamp bounds in the tensor's dtype: a NaN bound is no bound; integer
// bounds round inwards (x >= 2.5 means x >= 3) and saturate to the dtype.
template <class T>
Clamp<T> make_clamp(double lo, double hi) {
  if constexpr (is_float_v<T>) {
    constexpr T inf = std::numeric_limits<T>::infinity();
    return {std::isnan(lo) ? -inf : T(lo), std::isnan(hi) ? inf : T(hi)};
  } else {
    constexpr double tmin = double(std::numeric_limits<T>::min());
    constexpr double tmax = double(std::numeric_limits<T>::max());
    auto sat = [&](double v) -> T {
      if (v <= tmin) return std::numeric_limits<T>::min();
      if (v >= tmax) return std::numeric_limits<T>::max();
      return T(v);
    };
    return {std::isnan(lo) ? std::numeric_limits<T>::min() : sat(std::ceil(lo)),
            std::isnan(hi) ? std::numeric_limits<T>::max() : sat(std::floor(hi))};
  }
}

template <class T>
void unary_float(UnaryOp op, const View& x, const View& out, double p0, double p1) {
  const int64_t g = kGrainCheap, gc = kGrainCostly;
  switch (op) {
    case UnaryOp::exp: return run_unary<T>(x, out, Exp{}, gc);
    case UnaryOp::log: return run_unary<T>(x, out, Log{}, gc);
    case UnaryOp::log1p: return run_unary<T>(x, out, Log1p{}, gc);
    case UnaryOp::expm1: return run_unary<T>(x, out, Expm1{}, gc);
    case UnaryOp::sqrt: return run_unary<T>(x, out, Sqrt{}, g);
    case UnaryOp::rsqrt: return run_unary<T>(x, out, Rsqrt{}, g);
    case UnaryOp::reciprocal: return run_unary<T>(x, out, Reciprocal{}, g);
    case UnaryOp::sin: return run_unary<T>(x, out, Sin{}, gc);
    case UnaryOp::cos: return run_unary<T>(x, out, Cos{}, gc);
    case UnaryOp::tanh: return run_unary<T>(x, out, Tanh{}, gc);
    case UnaryOp::sigmoid: return run_unary<T>(x, out, Sigmoid{}, gc);
    case UnaryOp::leaky_relu: return run_unary<T>(x, out, LeakyRelu{p0}, g);
    case UnaryOp::elu: return run_unary<T>(x, out, Elu{p0}, gc);
    case UnaryOp::gelu: return run_unary<T>(x, out, Gelu{}, gc);
    case UnaryOp::gelu_tanh: return run_unary<T>(x, out, GeluTanh{}, gc);
    case UnaryOp::silu: return run_unary<T>(x, out, Silu{}, gc);
    case UnaryOp::softplus: return run_unary<T>(x, out, Softplus{p0, p1}, gc);
    case UnaryOp::erf: return run_unary<T>(x, out, Erf{}, gc);
    case UnaryOp::round: return run_unary<T>(x, out, Round{}, g);
    default: break;
  }
  throw std::logic_error("unary: unhandled op");
}

// Ops defined for floats and integers; returns false if op is not one.
template <class T>
bool unary_numeric(UnaryOp op, const View& x, const View& out, double p0, double p1) {
  const int64_t g = kGrainCheap;
  switch (op) {
    case UnaryOp::neg: run_unary<T>(x, out, Neg{}, g); return true;
    case UnaryOp::abs: run_unary<T>(x, out, Abs{}, g); return true;
    case UnaryOp::sign: run_unary<T>(x, out, Sign{}, g); return true;
    case UnaryOp::square: run_unary<T>(x, out, Square{}, g); return true;
    case UnaryOp::relu: run_unary<T>(x, out, Relu{}, g); return true;
    case UnaryOp::clamp: run_unary<T>(x, out, make_clamp<T>(p0, p1), g); return true;
    case UnaryOp::floor: run_unary<T>(x, out, Floor{}, g); return true;
    case UnaryOp::ceil: run_unary<T>(x, out, Ceil{}, g); return true;
    case UnaryOp::trunc: run_unary<T>(x, out, Trunc{}, g); return true;
    default: return false;
  }
}

struct LogicalNot {
  template <class T>
  u8 operator()(T x) const { return x == T(0); }
};

// ------------------------------------------------------------------ binary ops

// Errors found inside parallel loops are recorded here and thrown afterwards.
enum ErrCode : int { kNoError = 0, kZeroDiv = 1, kNegPow = 2 };
struct ErrFlag {
  std::atomic<int>* code;
  void raise(int c) const { code->store(c, std::memory_order_relaxed); }
};

struct Add {
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (is_bool_v<T>) return (a | b) != 0;
    else if constexpr (is_float_v<T>) return a + b;
    else return wrap_add(a, b);
  }
  vm::f32x16 vec(vm::f32x16 a, vm::f32x16 b) const { return a + b; }
};
struct Sub {
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (is_float_v<T>) return a - b;
    else return wrap_sub(a, b);
  }
  vm::f32x16 vec(vm::f32x16 a, vm::f32x16 b) const { return a - b; }
};
struct Mul {
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (is_bool_v<T>) return (a != 0) & (b != 0);
    else if constexpr (is_float_v<T>) return a * b;
    else return wrap_mul(a, b);
  }
  vm::f32x16 vec(vm::f32x16 a, vm::f32x16 b) const { return a * b; }
};
struct Maximum {  // NaN propagates from either side
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (is_bool_v<T>) return (a | b) != 0;
    else return (a > b || a != a) ? a : b;
  }
};
struct Minimum {
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (is_bool_v<T>) return (a != 0) & (b != 0);
    else return (a < b || a != a) ? a : b;
  }
};
struct Atan2 {
  template <class T>
  T operator()(T a, T b) const { return std::atan2(a, b); }
};
struct ReluGrad {
  template <class T>
  T operator()(T a, T b) const { return b > T(0) ? a : T(0); }
};
// a * gelu'(b), gelu'(x) = Phi(x) + x phi(x): gelu's backward in one pass.
struct GeluGrad {
  template <class T>
  T operator()(T a, T b) const { return a * vm::gelu_derivative(b); }
  static constexpr bool kVectorInCache = true;
  vm::f32x16 vec(vm::f32x16 a, vm::f32x16 b) const { return a * vm::gelu_derivative16(b); }
};
struct FloatDiv {
  template <class T>
  T operator()(T a, T b) const { return a / b; }
};
// Python's float floor division (as in CPython and PyTorch): derived from
// fmod so that floordiv(a, b) * b + mod(a, b) == a holds as closely as possible.
struct FloatFloorDiv {
  template <class T>
  T operator()(T a, T b) const {
    if (b == T(0)) return a / b;
    const T m = std::fmod(a, b);
    T div = (a - m) / b;
    if (m != T(0) && ((b < T(0)) != (m < T(0)))) div -= T(1);
    if (div == T(0)) return std::copysign(T(0), a / b);
    T fl = std::floor(div);
    if (div - fl > T(0.5)) fl += T(1);
    return fl;
  }
};
struct FloatMod {  // result has the sign of the divisor
  template <class T>
  T operator()(T a, T b) const {
    T m = std::fmod(a, b);
    if (m != T(0) && ((b < T(0)) != (m < T(0)))) m += b;
    return m;
  }
};
struct FloatPow {
  template <class T>
  T operator()(T a, T b) const { return std::pow(a, b); }
};
// Integer division truncates (C semantics); floordiv/mod use Python's rules.
struct IntDiv {
  ErrFlag err;
  template <class T>
  T operator()(T a, T b) const {
    if (b == 0) return err.raise(kZeroDiv), T(0);
    if (b == -1) return wrap_sub(T(0), a);  // avoids INT_MIN / -1
    return a / b;
  }
};
struct IntFloorDiv {
  ErrFlag err;
  template <class T>
  T operator()(T a, T b) const {
    if (b == 0) return err.raise(kZeroDiv), T(0);
    if (b == -1) return wrap_sub(T(0), a);
    const T q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? T(q - 1) : q;
  }
};
struct IntMod {
  ErrFlag err;
  template <class T>
  T operator()(T a, T b) const {
    if (b == 0) return err.raise(kZeroDiv), T(0);
    if (b == -1) return T(0);
    const T r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? T(r + b) : r;
  }
};
struct IntPow {
  ErrFlag err;
  template <class T>
  T operator()(T a, T b) const {
    if (b < 0) {
      if (a == 1) return 1;
      if (a == -1) return (b & 1) ? T(-1) : T(1);
      return err.raise(kNegPow), T(0);
    }
    T r = 1;
    for (; b; b >>= 1, a = wrap_mul(a, a))
      if (b & 1) r = wrap_mul(r, a);
    return r;
  }
};

#define GENESIS_COMPARE(Name, expr)       \
  struct Name {                           \
    template <class T>                    \
    u8 operator()(T a, T b) const {       \
      return expr;                        \
    }                                     \
  };
GENESIS_COMPARE(Eq, a == b)
GENESIS_COMPARE(Ne, a != b)
GENESIS_COMPARE(Lt, a < b)
GENESIS_COMPARE(Le, a <= b)
GENESIS_COMPARE(Gt, a > b)
GENESIS_COMPARE(Ge, a >= b)
GENESIS_COMPARE(LogicalAnd, (a != T(0)) & (b != T(0)))
GENESIS_COMPARE(LogicalOr, (a != T(0)) | (b != T(0)))
GENESIS_COMPARE(LogicalXor, (a != T(0)) != (b != T(0)))
#undef GENESIS_COMPARE

template <class To, class T, class F>
void run_binary(const View& a, const View& b, const View& out, const F& f,
                int64_t grain = kGrainCheap) {
  const View* v[3] = {&out, &a, &b};
  // In-place ops read the output's lines anyway: no streaming.
  const bool stream = out.data != a.data && out.data != b.data &&
                      vm::stream_output(numel(out) * int64_t(sizeof(To)));
  run(make_plan(v), Map2<To, T, F>{f, stream, grain == kGrainCheap}, grain);
}

// Returns false when op is not defined for T.
template <class T>
bool binary_typed(BinaryOp op, const View& a, const View& b, const View& out, ErrFlag err) {
  constexpr bool fl = is_float_v<T>, bo = is_bool_v<T>;
  switch (op) {
    case BinaryOp::eq: run_binary<u8, T>(a, b, out, Eq{}); return true;
    case BinaryOp::ne: run_binary<u8, T>(a, b, out, Ne{}); return true;
    case BinaryOp::lt: run_binary<u8, T>(a, b, out, Lt{}); return true;
    case BinaryOp::le: run_binary<u8, T>(a, b, out, Le{}); return true;
    case BinaryOp::gt: run_binary<u8, T>(a, b, out, Gt{}); return true;
    case BinaryOp::ge: run_binary<u8, T>(a, b, out, Ge{}); return true;
    case BinaryOp::logical_and: run_binary<u8, T>(a, b, out, LogicalAnd{}); return true;
    case BinaryOp::logical_or: run_binary<u8, T>(a, b, out, LogicalOr{}); return true;
    case BinaryOp::logical_xor: run_binary<u8, T>(a, b, out, LogicalXor{}); return true;
    case BinaryOp::add: run_binary<T, T>(a, b, out, Add{}); return true;
    case BinaryOp::mul: run_binary<T, T>(a, b, out, Mul{}); return true;
    case BinaryOp::maximum: run_binary<T, T>(a, b, out, Maximum{}); return true;
    case BinaryOp::minimum: run_binary<T, T>(a, b, out, Minimum{}); return true;
    default: break;
  }
  if constexpr (bo) {
    return false;
  } else {
    switch (op) {
      case BinaryOp::sub: run_binary<T, T>(a, b, out, Sub{}); return true;
      default: break;
    }
    if constexpr (fl) {
      switch (op) {
        case BinaryOp::div: run_binary<T, T>(a, b, out, FloatDiv{}); return true;
        case BinaryOp::pow: run_binary<T, T>(a, b, out, FloatPow{}, kGrainCostly); return true;
        case BinaryOp::floordiv:
          run_binary<T, T>(a, b, out, FloatFloorDiv{}, kGrainCostly);
          return true;
        case BinaryOp::mod: run_binary<T, T>(a, b, out, FloatMod{}, kGrainCostly); return true;
        case BinaryOp::atan2: run_binary<T, T>(a, b, out, Atan2{}, kGrainCostly); return true;
        case BinaryOp::relu_grad: run_binary<T, T>(a, b, out, ReluGrad{}); return true;
        case BinaryOp::gelu_grad:
          run_binary<T, T>(a, b, out, GeluGrad{}, kGrainCostly);
          return true;
        default: return false;
      }
    } else {
      switch (op) {
        case BinaryOp::div: run_binary<T, T>(a, b, out, IntDiv{err}); return true;
        case BinaryOp::pow: run_binary<T, T>(a, b, out, IntPow{err}); return true;
        case BinaryOp::floordiv: run_binary<T, T>(a, b, out, IntFloorDiv{err}); return true;
        case BinaryOp::mod: run_binary<T, T>(a, b, out, IntMod{err}); return true;
        default: return false;
      }
    }
  }
}

bool writes_bool(BinaryOp op) {
  return (op >= BinaryOp::eq && op <= BinaryOp::ge) || op == BinaryOp::logical_and ||
         op == BinaryOp::logical_or || op == BinaryOp::logical_xor;
}

}  // namespace

// ------------------------------------------------------------------ entry points

void unary(UnaryOp op, const View& x, const View& out, double p0, double p1) {
  const char* name = kUnaryNames[int(op)];
  check_shape(name, "input", x, out);
  if (op == UnaryOp::logical_not) {
    if (out.dtype != DType::b8) dtype_fail(name, "output", out.dtype, "bool");
    const View* v[2] = {&out, &x};
    by_dtype(x.dtype, [&](auto tag) {
      using T = decltype(tag);
      run(make_plan(v), Map1<u8, T, LogicalNot>{}, kGrainCheap);
    });
    return;
  }
  if (out.dtype != x.dtype)
    dtype_fail(name, "output", out.dtype, dtype_name(x.dtype));
  bool done = false;
  by_dtype(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!is_bool_v<T>) {
      done = unary_numeric<T>(op, x, out, p0, p1);
      if constexpr (is_float_v<T>) {
        if (!done) {
          unary_float<T>(op, x, out, p0, p1);
          done = true;
        }
      }
    }
  });
  if (!done)
    dtype_fail(name, "input", x.dtype,
               (op == UnaryOp::neg || op == UnaryOp::abs || op == UnaryOp::sign ||
                op == UnaryOp::square || op == UnaryOp::clamp || op == UnaryOp::relu ||
                op == UnaryOp::floor || op == UnaryOp::ceil || op == UnaryOp::trunc)
                   ? "a float or integer dtype"
                   : "float32 or float64");
}

void binary(BinaryOp op, const View& a, const View& b, const View& out) {
  const char* name = kBinaryNames[int(op)];
  check_shape(name, "first input", a, out);
  check_shape(name, "second input", b, out);
  if (a.dtype != b.dtype)
    throw type_error(std::string(name) + ": inputs have different dtypes " +
                     dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
  const DType want = writes_bool(op) ? DType::b8 : a.dtype;
  if (out.dtype != want) dtype_fail(name, "output", out.dtype, dtype_name(want));
  std::atomic<int> code{kNoError};
  bool done = false;
  by_dtype(a.dtype, [&](auto tag) { done = binary_typed<decltype(tag)>(op, a, b, out, {&code}); });
  if (!done) dtype_fail(name, "input", a.dtype, "a numeric dtype");
  switch (code.load()) {
    case kZeroDiv: throw std::domain_error(std::string(name) + ": integer division by zero");
    case kNegPow:
      throw std::invalid_argument(std::string(name) +
                                  ": integers to negative integer powers are not allowed");
    default: break;
  }
}

void where(const View& cond, const View& a, const View& b, const View& out) {
  check_shape("where", "condition", cond, out);
  check_shape("where", "first input", a, out);
  check_shape("where", "second input", b, out);
  if (cond.dtype != DType::b8) dtype_fail("where", "condition", cond.dtype, "bool");
  if (a.dtype != out.dtype) dtype_fail("where", "first input", a.dtype, dtype_name(out.dtype));
  if (b.dtype != out.dtype) dtype_fail("where", "second input", b.dtype, dtype_name(out.dtype));
  const View* v[4] = {&out, &cond, &a, &b};
  by_dtype(out.dtype, [&](auto tag) {
    run(make_plan(v), WhereMap<decltype(tag)>{}, kGrainCheap);
  });
}

void copy(const View& src, const View& out, int64_t whole_bytes) {
  check_shape("copy", "source", src, out);
  const View* v[2] = {&out, &src};
  const auto plan = make_plan(v);
  by_dtype(out.dtype, [&](auto to_tag) {
    by_dtype(src.dtype, [&](auto from_tag) {
      using To = decltype(to_tag);
      using Ti = decltype(from_tag);
      if constexpr (std::is_same_v<To, Ti>) {
        if (copy_transposed<To>(plan)) return;
        if (vm::stream_output(std::max(numel(out) * int64_t(sizeof(To)), whole_bytes)))
          return run(plan, StreamCopy<To>{}, kGrainCheap);
      }
      auto conv = [](Ti x) { return convert<To, Ti>(x); };
      run(plan, Map1<To, Ti, decltype(conv)>{conv}, kGrainCheap);
    });
  });
}

void fill(const View& out, double value) {
  const View* v[1] = {&out};
  const auto plan = make_plan(v);
  by_dtype(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    run(plan, FillMap<T>{convert<T, double>(value)}, kGrainCheap);
  });
}

}  // namespace genesis::GENESIS_ISA_NS
