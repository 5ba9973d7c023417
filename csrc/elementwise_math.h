// Scalar math used by the elementwise, reduction and loss kernels, written so
// the loops calling it vectorize.  Included only from kernel sources compiled
// per instruction set (its functions live in their per-ISA namespace).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <immintrin.h>

#include "streaming.h"

namespace genesis::GENESIS_ISA_NS {
namespace {
namespace vm {

template <class T> inline T exp(T x) { return std::exp(x); }

inline float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

// float e^x without libm calls, so `omp simd` loops over it vectorize:
// x = (4n + j) ln2/4 + r with |r| <= ln2/8 (ln2/4 in two parts), e^x = 2^n 2^(j/4) e^r.
// 2^(j/4) is one of four constants (picked by bit masks in the scalar form, by a
// register permute in the vector forms below), e^r - 1 a degree-4 polynomial (minimax
// over |r| <= ln2/8), and 2^n comes from exponent bits in two factors so that results
// down to the denormals and up to overflow come out right.  At most 0.97 ulp from e^x.  The
// short reduction needs 8 multiply-adds where a degree-6 polynomial over
// |r| <= ln2/2 needs 10, and its dependency chain is shorter.
// exp_reduce, shared with the vector exps, returns r and sets k and
// k_plus_round = k + kExpRound, whose low mantissa bits hold k as an integer;
// exp_scaled then gives 2^(j/4) e^r from t = 2^(j/4).
constexpr float kExpRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
// 2^(j/4) rounded to float, four times over, so that a permute by the low 2 (AVX2's
// in-lane vpermilps) or 4 (AVX-512's vpermps) bits of k picks entry j = k mod 4.
alignas(64) inline constexpr float kExp2Quarters[16] = {
    0x1p+0f, 0x1.306fe0p+0f, 0x1.6a09e6p+0f, 0x1.ae89fap+0f,
    0x1p+0f, 0x1.306fe0p+0f, 0x1.6a09e6p+0f, 0x1.ae89fap+0f,
    0x1p+0f, 0x1.306fe0p+0f, 0x1.6a09e6p+0f, 0x1.ae89fap+0f,
    0x1p+0f, 0x1.306fe0p+0f, 0x1.6a09e6p+0f, 0x1.ae89fap+0f};
// a * b + c, in one rounding where the instruction set has FMA.  Written out for float:
// the compiler contracts a * b + c in straight-line vector code, but not always in the
// scalar exp, whose table select it may turn into branches.
inline float madd(float a, float b, float c) {
#if defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}
template <class V, class B, class C>
inline V madd(V a, B b, C c) {
  return a * b + c;
}
template <class V>
inline V exp_reduce(V x, V& k, V& k_plus_round) {
  k_plus_round = madd(x, 5.770780086517334f, kExpRound);  // 4 / ln2
  k = k_plus_round - kExpRound;
  return madd(k, 2.12194440e-4f / 4, madd(k, -0.693359375f / 4, x));
}
template <class V>
inline V exp_scaled(V r, V t) {
  const V q =
      madd(madd(r, 4.1641734540462494e-2f, 1.6672109067440033e-1f), r, 5.000001788139343e-1f);
  return madd(t, madd(q, r * r, r), t);
}
inline int32_t float_to_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}
template <> inline float exp(float x) {
  float k, k_plus_round;
  const float r = exp_reduce(x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x), k,
                             k_plus_round);  // NaN passes
  const int32_t kbits = float_to_bits(k_plus_round);
  // The entry by bit masks, not a table load (which GCC would vectorize only as a
  // gather) nor selects (which it turns into branches and then duplicates the code
  // around them for each case).
  const int32_t q0 = float_to_bits(kExp2Quarters[0]), q1 = float_to_bits(kExp2Quarters[1]);
  const int32_t q2 = float_to_bits(kExp2Quarters[2]), q3 = float_to_bits(kExp2Quarters[3]);
  const int32_t bit0 = -(kbits & 1), bit1 = -((kbits >> 1) & 1);
  const int32_t lo = q0 ^ (bit0 & (q0 ^ q1)), hi = q2 ^ (bit0 & (q2 ^ q3));
  const float t = bits_to_float(lo ^ (bit1 & (lo ^ hi)));
  const float e = exp_scaled(r, t);
  // n = floor(k / 4), in [-150, 128] after the clamp; a NaN's bits give a NaN anyway.
  const uint32_t n = static_cast<uint32_t>((kbits - float_to_bits(kExpRound)) >> 2);
  const uint32_t half = static_cast<uint32_t>(static_cast<int32_t>(n) >> 1);
  return e * bits_to_float(static_cast<int32_t>((half + 127) << 23)) *
         bits_to_float(static_cast<int32_t>((n - half + 127) << 23));
}

// ---------------------------------------------------------------- 16-lane vectors
// Loops that are mostly exp are written over 16 floats at a time (one register on
// AVX-512, two on AVX2, four on SSE2), so that the exp below can use AVX-512's
// vscalefps where it exists.  The same lanes on every instruction set, so sums over
// lanes do not depend on it.
#if defined(__AVX2__) && !defined(__AVX512F__)
// AVX2: a pair of registers.  (GCC moves a 64-byte vector type through memory lane by
// lane when the instruction set has no 64-byte registers.)
struct f32x16 {
  __m256 lo, hi;
};
inline f32x16 operator+(f32x16 a, f32x16 b) { return {a.lo + b.lo, a.hi + b.hi}; }
inline f32x16 operator-(f32x16 a, f32x16 b) { return {a.lo - b.lo, a.hi - b.hi}; }
inline f32x16 operator*(f32x16 a, f32x16 b) { return {a.lo * b.lo, a.hi * b.hi}; }
inline f32x16 operator+(f32x16 a, float s) { return {a.lo + s, a.hi + s}; }
inline f32x16 operator-(f32x16 a, float s) { return {a.lo - s, a.hi - s}; }
inline f32x16 operator*(f32x16 a, float s) { return {a.lo * s, a.hi * s}; }
inline f32x16& operator+=(f32x16& a, f32x16 b) { return a = a + b; }

inline f32x16 load16(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
inline void store16(float* p, f32x16 v) {
  _mm256_storeu_ps(p, v.lo);
  _mm256_storeu_ps(p + 8, v.hi);
}
// v with lanes n..15 set to 0.
inline f32x16 zero_past(f32x16 v, int64_t n) {
  const __m256i k = _mm256_set1_epi32(static_cast<int32_t>(n));
  const __m256i lo = _mm256_cmpgt_epi32(k, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i hi = _mm256_cmpgt_epi32(k, _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15));
  return {_mm256_and_ps(v.lo, _mm256_castsi256_ps(lo)), _mm256_and_ps(v.hi, _mm256_castsi256_ps(hi))};
}
#else
using f32x16 = float __attribute__((vector_size(64)));
using i32x16 = int32_t __attribute__((vector_size(64)));

inline f32x16 load16(const float* p) {
  f32x16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, f32x16 v) { std::memcpy(p, &v, sizeof v); }
// v with lanes n..15 set to 0.
inline f32x16 zero_past(f32x16 v, int64_t n) {
  const i32x16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return (f32x16)((i32x16)v & (lane < static_cast<int32_t>(n)));
}
#endif
// The first n < 16 lanes from p; the others are `fill`.
inline f32x16 load16_first(const float* p, int64_t n, float fill) {
  float buf[16];
  for (int j = 0; j < 16; ++j) buf[j] = j < n ? p[j] : fill;
  return load16(buf);
}
inline void store16_first(float* p, f32x16 v, int64_t n) {
  float buf[16];
  store16(buf, v);
  for (int j = 0; j < n; ++j) p[j] = buf[j];
}
inline float lane_sum(f32x16 v) {
  float lanes[16];
  store16(lanes, v);
  float s = 0;
  for (int j = 0; j < 16; ++j) s += lanes[j];
  return s;
}

// y[i] = f(x[i]) over n contiguous floats, 16 at a time (x == y allowed).
template <class F>
inline void map16(const float* x, float* y, int64_t n, F&& f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) store16(y + i, f(load16(x + i)));
  if (i < n) store16_first(y + i, f(load16_first(x + i, n - i, 0.0f)), n - i);
}

// Stores v at p, 64-byte aligned, with a non-temporal store: the line goes to memory
// without first being read into the cache.
inline void stream16(float* p, f32x16 v) {
#if defined(__AVX512F__)
  _mm512_stream_ps(p, v);
#elif defined(__AVX2__)
  _mm256_stream_ps(p, v.lo);
  _mm256_stream_ps(p + 8, v.hi);
#else
  __m128 quarter[4];
  std::memcpy(quarter, &v, sizeof v);
  for (int j = 0; j < 4; ++j) _mm_stream_ps(p + 4 * j, quarter[j]);
#endif
}

// Whether an output of this many bytes is written with non-temporal stores.
inline bool stream_output(int64_t bytes) { return bytes >= streaming::min_bytes(); }

// y[i, i + 16) = at(i, 16) for n contiguous floats, the whole 64-byte lines of y by
// non-temporal stores in the same loop as at()'s loads (stores streamed in bursts
// stall the loads behind them); at(i, len < 16) gives the first len lanes of the
// partial vectors before and after the aligned lines.  Without Fence the caller issues
// the _mm_sfence (once, after a loop that streams a line in pieces: each fence waits
// for the streamed stores to drain).
template <bool Fence = true, class At>
inline void stream16_from(float* y, int64_t n, At&& at) {
  const auto part = [&](int64_t i, int64_t len) {
    for (; len >= 16; i += 16, len -= 16) store16(y + i, at(i, 16));
    if (len > 0) store16_first(y + i, at(i, len), len);
  };
  if (reinterpret_cast<uintptr_t>(y) % alignof(float)) return part(0, n);
  const int64_t head = std::min<int64_t>(n, ((64 - (reinterpret_cast<uintptr_t>(y) & 63)) & 63) / 4);
  part(0, head);
  int64_t i = head;
  for (; i + 16 <= n; i += 16) stream16(y + i, at(i, 16));
  part(i, n - i);
  if (Fence) _mm_sfence();  // order the streamed lines before whatever this thread stores next
}

// The first len <= 16 floats at p (the others 0).
inline f32x16 load16_upto(const float* p, int64_t len) {
  return len == 16 ? load16(p) : load16_first(p, len, 0.0f);
}

// map16 with y's lines streamed (see stream16_from).  x is prefetched 2 KiB ahead: with
// the hardware prefetcher alone, exp of 16M floats on one Zen 3 core took 5.6-5.8 ms, with
// this 5.2-5.3 (a prefetch never faults, past x's end too).
constexpr int64_t kMapPrefetch = 512;
template <bool Fence = true, class F>
inline void map16_stream(const float* x, float* y, int64_t n, F&& f) {
  stream16_from<Fence>(y, n, [&](int64_t i, int64_t len) __attribute__((always_inline)) {
    __builtin_prefetch(x + i + kMapPrefetch);
    return f(load16_upto(x + i, len));
  });
}

// dst[0, bytes) = src[0, bytes), the whole 64-byte lines of dst by non-temporal stores
// (bit copies: the float loads and stores do no arithmetic).  Without Fence the caller
// issues the _mm_sfence, as for stream16_from.
template <bool Fence = true>
inline void stream_bytes(void* dst, const void* src, int64_t bytes) {
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  const int64_t head = std::min<int64_t>(bytes, (64 - (reinterpret_cast<uintptr_t>(d) & 63)) & 63);
  std::memcpy(d, s, head);
  int64_t i = head;
  for (; i + 64 <= bytes; i += 64)
    stream16(reinterpret_cast<float*>(d + i), load16(reinterpret_cast<const float*>(s + i)));
  std::memcpy(d + i, s + i, bytes - i);
  if (Fence) _mm_sfence();
}

#if defined(__AVX2__) && !defined(__AVX512F__)
// exp of 8 floats, the scalar exp's operations on AVX2 registers: vminps/vmaxps clamp
// (NaN passing through), vpermilps looks 2^(j/4) up by the low 2 bits of k (an in-lane
// permute: on Zen 3 the cross-lane vpermps competes with the multiply-adds for their
// pipes), and the two factors of 2^n are built with integer shifts.
inline __m256 exp8_table(__m256 k_plus_round) {
  return _mm256_permutevar_ps(_mm256_load_ps(kExp2Quarters), _mm256_castps_si256(k_plus_round));
}
inline __m256 exp8(__m256 x) {
  __m256 k, k_plus_round;
  const __m256 r = exp_reduce(
      _mm256_max_ps(_mm256_set1_ps(-104.0f), _mm256_min_ps(_mm256_set1_ps(89.0f), x)), k,
      k_plus_round);
  const __m256 e = exp_scaled(r, exp8_table(k_plus_round));
  const __m256i round_bits = _mm256_set1_epi32(float_to_bits(kExpRound));
  const __m256i n = _mm256_srai_epi32(
      _mm256_sub_epi32(_mm256_castps_si256(k_plus_round), round_bits), 2);  // floor(k / 4)
  const __m256i half = _mm256_srai_epi32(n, 1), bias = _mm256_set1_epi32(127);
  const __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
  const __m256 f2 = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(n, half), bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(e, f1), f2);
}

// Whether all 16 lanes (lo, hi) lie in [-87, 87].  Inside, n is in [-126, 125], so the
// result 2^(j/4) e^r * 2^n is a normal float and rounds once, as its product with f1 and
// f2 does.  Compared as integers:
// the bits of |x| order as |x| does, with infinities and NaNs above every finite value,
// so one integer max per lane pair and one compare cover all 16 lanes.
inline bool exp16_normal_range(__m256 lo, __m256 hi) {
  const __m256i abs = _mm256_set1_epi32(0x7fffffff);
  const __m256i magnitude = _mm256_max_epi32(_mm256_and_si256(_mm256_castps_si256(lo), abs),
                                             _mm256_and_si256(_mm256_castps_si256(hi), abs));
  const __m256i limit = _mm256_castps_si256(_mm256_set1_ps(87.0f));
  return !_mm256_movemask_epi8(_mm256_cmpgt_epi32(magnitude, limit));
}

// The bits of 2^(j/4) less j << 21, for exp8_normal_range: adding k << 21 = (n << 23) +
// (j << 21) to entry j gives the bits of 2^(j/4) 2^n.
constexpr int32_t exp2_quarter_less_j(int j) {
  return __builtin_bit_cast(int32_t, kExp2Quarters[j]) - ((j % 4) << 21);
}
alignas(32) inline constexpr int32_t kExp2QuartersLessJ[8] = {
    exp2_quarter_less_j(0), exp2_quarter_less_j(1), exp2_quarter_less_j(2),
    exp2_quarter_less_j(3), exp2_quarter_less_j(4), exp2_quarter_less_j(5),
    exp2_quarter_less_j(6), exp2_quarter_less_j(7)};

// exp8 for x in [-87, 87], to the bit: no clamp, and no multiply by 2^n either.  There
// n is in [-126, 125] and 2^(j/4) e^r >= 2^(2/4) e^(-ln2/8) > 1 where n = -126, so
// t = 2^(j/4) 2^n and t e^r are normal floats: t comes from an integer add of k's bits in
// k + kExpRound (kExpRound's own bits shift out) to the table entry, and t + t p rounds
// to 2^n times what the scalar exp's 2^(j/4) + 2^(j/4) p rounds to.
inline __m256 exp8_normal_range(__m256 x) {
  __m256 k, k_plus_round;
  const __m256 r = exp_reduce(x, k, k_plus_round);
  const __m256i kbits = _mm256_castps_si256(k_plus_round);
  const __m256i entry = _mm256_castps_si256(_mm256_permutevar_ps(
      _mm256_load_ps(reinterpret_cast<const float*>(kExp2QuartersLessJ)), kbits));
  return exp_scaled(r, _mm256_castsi256_ps(_mm256_add_epi32(entry, _mm256_slli_epi32(kbits, 21))));
}
#endif

// exp of 16 floats: the scalar exp above, lane by lane, to the bit.  AVX-512 has
// it in fewer instructions: vminps/vmaxps clamp (NaN passing through), vpermps looks
// the table up, and vscalefps applies 2^n in one step, rounding once into the
// subnormals as the two factors do.
// AVX2 runs exp8 on each register of the pair, or exp8_normal_range when all 16 lanes
// allow it; without either, the scalar exp runs in a loop the compiler vectorizes at
// its own width.  Always inlined: out of line (inside a larger caller such as gelu16) its
// 16 lanes go through memory, and reloading them stalls.
__attribute__((always_inline)) inline f32x16 exp16(f32x16 x) {
#if defined(__AVX512F__)
  f32x16 k, k_plus_round;
  const f32x16 r = exp_reduce(
      _mm512_max_ps(_mm512_set1_ps(-104.0f), _mm512_min_ps(_mm512_set1_ps(89.0f), x)), k,
      k_plus_round);
  const f32x16 t = _mm512_permutexvar_ps(_mm512_castps_si512(k_plus_round),
                                         _mm512_load_ps(kExp2Quarters));
  // vscalefps scales by 2^floor(k / 4) = 2^n.
  return _mm512_scalef_ps(exp_scaled(r, t), k * 0.25f);
#elif defined(__AVX2__)
  // Inputs usually lie in the normal range, where the cheaper exp8 applies.
  if (exp16_normal_range(x.lo, x.hi)) return {exp8_normal_range(x.lo), exp8_normal_range(x.hi)};
  return {exp8(x.lo), exp8(x.hi)};
#else
  float in[16], out[16];
  store16(in, x);
#pragma omp simd
  for (int j = 0; j < 16; ++j) out[j] = exp(in[j]);
  return load16(out);
#endif
}

// Lanes of the sum of exp(x[i] - m) over n contiguous floats; each exp is also
// stored in y unless y is null.
inline f32x16 exp_sum16(const float* x, int64_t n, float m, float* y) {
  f32x16 sum{};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const f32x16 e = exp16(load16(x + i) - m);
    if (y) store16(y + i, e);
    sum += e;
  }
  if (i < n) {
    const f32x16 e = zero_past(exp16(load16_first(x + i, n - i, m) - m), n - i);
    if (y) store16_first(y + i, e, n - i);
    sum += e;
  }
  return sum;
}

// Elements of exp_sum between prefetches of the next line.
constexpr int64_t kPrefetchBlock = 256;

inline void prefetch_block(const void* next, int64_t bytes) {
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(static_cast<const char*>(next) + b);
}

// Sum of exp(x[i] - m) over a contiguous line of a softmax-like kernel, each exp also
// stored in y unless y is null.  When lines follow each other in memory, `next` is
// the following one (else null): this pass is compute bound, so it prefetches that
// line a block at a time, and the next line's load overlaps these exps instead of
// following them.  (Past the last line it points outside the array: prefetches never
// fault.)
template <class T>
inline T exp_sum(const T* x, int64_t n, T m, T* y, const T* next) {
  T sum = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kPrefetchBlock) {
    const int64_t i1 = std::min(n, i0 + kPrefetchBlock);
    if (next) prefetch_block(next + i0, (i1 - i0) * int64_t(sizeof(T)));
#pragma omp simd reduction(+ : sum)
    for (int64_t i = i0; i < i1; ++i) {
      const T e = vm::exp(x[i] - m);
      if (y) y[i] = e;
      sum += e;
    }
  }
  return sum;
}

// float: 16 lanes at a time through the vector exp, calling after_block(i0, len) after
// each block (the pipelined softmax streams the previous row out there).
template <class AfterBlock>
inline float exp_sum_blocks(const float* x, int64_t n, float m, float* y, const float* next,
                            AfterBlock&& after_block) {
  vm::f32x16 sum{};
  for (int64_t i0 = 0; i0 < n; i0 += kPrefetchBlock) {
    const int64_t len = std::min(kPrefetchBlock, n - i0);
    if (next) prefetch_block(next + i0, len * int64_t(sizeof(float)));
    sum += exp_sum16(x + i0, len, m, y ? y + i0 : nullptr);
    after_block(i0, len);
  }
  return vm::lane_sum(sum);
}
template <>
inline float exp_sum(const float* x, int64_t n, float m, float* y, const float* next) {
  return exp_sum_blocks(x, n, m, y, next, [](int64_t, int64_t) {});
}

// max (or min) of x[0..n) and r, contiguous, comparing with > (<): NaNs are skipped, and
// with FindNaN *has_nan says whether there was one (the same pass: the line is read once).
// Long rows keep kLanes partial results (four AVX2 registers, two AVX-512 ones): with the
// one register of a plain reduction the loop waits on each compare's latency (about 1.8
// cycles per 8 floats on Zen 3, against 0.7 with four).  The order of the comparisons
// decides only which of -0 and +0 wins, as the vector lanes already did.
template <class T, bool IsMax, bool FindNaN = false>
T ordered_extreme(const T* x, int64_t n, T r, bool* has_nan = nullptr) {
  const auto pick = [](T a, T b) { return IsMax ? (a > b ? a : b) : (a < b ? a : b); };
  using Flag = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;  // vectorizes beside T
  constexpr int64_t kLanes = 128 / sizeof(T);
  Flag nan = 0;
  if (n >= 2 * kLanes) {
    T acc[kLanes];
    Flag nans[kLanes] = {};
    for (int64_t j = 0; j < kLanes; ++j) acc[j] = r;
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
#pragma omp simd
      for (int64_t j = 0; j < kLanes; ++j) {
        const T v = x[i + j];
        acc[j] = pick(v, acc[j]);
        if constexpr (FindNaN) nans[j] |= v != v;
      }
    for (int64_t j = 0; j < kLanes; ++j) r = pick(acc[j], r), nan |= nans[j];
    x += i;
    n -= i;
  }
  if constexpr (IsMax) {
#pragma omp simd reduction(max : r) reduction(| : nan)
    for (int64_t i = 0; i < n; ++i) r = x[i] > r ? x[i] : r, nan |= FindNaN && x[i] != x[i];
  } else {
#pragma omp simd reduction(min : r) reduction(| : nan)
    for (int64_t i = 0; i < n; ++i) r = x[i] < r ? x[i] : r, nan |= FindNaN && x[i] != x[i];
  }
  if constexpr (FindNaN) *has_nan = nan != 0;
  return r;
}

template <class T> inline T log(T x) { return std::log(x); }
template <class T> inline T log1p(T x) { return std::log1p(x); }

// float log without libm calls: x = 2^e m with m in [sqrt(1/2), sqrt 2) from the bits
// (subnormals scaled by 2^23 first), then Cephes' logf, log(m) = f - f^2/2 + f^3 P(f)
// with f = m - 1 (P of degree 8, about 1 ulp) and e ln2 in two parts.
template <> inline float log(float x) {
  const bool subnormal = x < 1.17549435e-38f;
  const float xs = subnormal ? x * 8388608.0f : x;
  int32_t bits;
  std::memcpy(&bits, &xs, sizeof bits);
  int32_t e = ((bits >> 23) & 0xff) - 126 - (subnormal ? 23 : 0);
  float m = bits_to_float((bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const bool low = m < 0.707106781186547524f;
  e -= low;
  const float f = low ? m + m - 1.0f : m - 1.0f;  // exact
  const float fe = static_cast<float>(e), f2 = f * f, f4 = f2 * f2;
  const float p01 = 7.0376836292e-2f * f - 1.1514610310e-1f;  // P by Estrin's scheme
  const float p23 = 1.1676998740e-1f * f - 1.2420140846e-1f;
  const float p45 = 1.4249322787e-1f * f - 1.6668057665e-1f;
  const float p67 = 2.0000714765e-1f * f - 2.4999993993e-1f;
  const float p = ((p01 * f2 + p23) * f4 + (p45 * f2 + p67)) * f + 3.3333331174e-1f;
  const float y = (p * f * f2 + fe * -2.12194440e-4f) - 0.5f * f2;
  const float r = (f + y) + fe * 0.693359375f;
  if (x == std::numeric_limits<float>::infinity()) return x;
  return x > 0.0f ? r : x == 0.0f ? -std::numeric_limits<float>::infinity()
                                  : std::numeric_limits<float>::quiet_NaN();
}

// float log1p through the log above: log(u) x / (u - 1) with u = 1 + x (Goldberg), which
// cancels the rounding of u; x itself where u rounds to 1.
template <> inline float log1p(float x) {
  const float u = 1.0f + x;
  const float r = log(u) * (x / (u - 1.0f));
  if (x == std::numeric_limits<float>::infinity()) return x;
  return u == 1.0f ? x : r;
}
template <class T> inline T expm1(T x) { return std::expm1(x); }
template <class T> inline T tanh(T x) { return std::tanh(x); }

// float tanh from e = e^2|x|: Cephes' odd polynomial near 0 (where 1 - 2/(e + 1) would
// cancel), otherwise 1 - 2/(e + 1).
inline float tanh_from_exp(float x, float e) {
  const float a = std::fabs(x);
  const float s = x * x;
  float p = -5.70498872745e-3f;
  p = p * s + 2.06390887954e-2f;
  p = p * s - 5.37397155531e-2f;
  p = p * s + 1.33314422036e-1f;
  p = p * s - 3.33332819422e-1f;
  const float small = p * s * x + x;
  const float big = 1.0f - 2.0f / (e + 1.0f);
  return std::copysign(a < 0.625f ? std::fabs(small) : big, x);  // odd, keeps -0
}
inline float twice_abs(float x) { return 2.0f * std::fabs(x); }
template <> inline float tanh(float x) { return tanh_from_exp(x, exp(twice_abs(x))); }
template <class T> inline T erf(T x) { return std::erf(x); }
template <class T> inline T erfc(T x) { return std::erfc(x); }

// float erfc without libm calls (libm's loops one element at a time): Numerical
// Recipes' erfcc, t e^(P(t) - z^2) with t = 1 / (1 + z/2), z = |x|, relative error
// below 1.1e-7 over the floats.  Rounding z^2 would be amplified in the tail (ulp(z^2)
// is 4e-6 near z = 10, the relative error of the result), so z^2 is split exactly into
// h + rest (h the square of z's top 12 bits, exact; rest < 0.1), and the rounding error
// of (P - rest) - h, found by a two-sum, goes back in as a factor 1 + err.
// erfc(x) = t e^s (1 + err): the parts before the exponential.
inline float erfc_exponent(float x, float& t, float& err) {
  const float a = std::fabs(x);
  const float z = a > 10.5f ? 10.5f : a;  // erfc(10.5) is below the denormals; NaN passes
  t = 1.0f / (1.0f + 0.5f * z);
  // P(t) by Estrin's scheme: pairs, then powers t^2, t^4, t^8 (a quarter of Horner's
  // dependent steps: the loop over this erfc waits on latency, not on throughput).
  const float t2 = t * t, t4 = t2 * t2;
  const float p01 = 1.00002368f * t - 1.26551223f, p23 = 0.09678418f * t + 0.37409196f;
  const float p45 = 0.27886807f * t - 0.18628806f, p67 = 1.48851587f * t - 1.13520398f;
  const float p89 = 0.17087277f * t - 0.82215223f;
  const float p = (p01 + p23 * t2) + (p45 + p67 * t2) * t4 + p89 * (t4 * t4);
  int32_t bits;
  std::memcpy(&bits, &z, sizeof bits);
  const float zh = bits_to_float(bits & ~0xfff), zl = z - zh;
  const float h = zh * zh, q = p - zl * (z + zh);  // q - h = P - z^2
  const float s = q - h;
  const float q_part = s + h, h_part = s - q_part;  // two-sum: q - h = s + err exactly
  err = (q - q_part) - (h + h_part);
  return s;
}
// erfc from its parts and e^s.
inline float erfc_finish(float x, float t, float exp_s, float err) {
  const float e = t * exp_s * (1.0f + err);
  return x >= 0.0f ? e : 2.0f - e;  // NaN: 2 - NaN
}
template <> inline float erfc(float x) {
  float t, err;
  const float s = erfc_exponent(x, t, err);
  return erfc_finish(x, t, exp(s), err);
}

// float erf: its Taylor series where |x| < 0.5 (7 terms: the next is 1e-9 of erf(x)),
// else +-(1 - erfc(|x|)), which does not cancel there (erfc(0.5) = 0.48).
// erf_finish takes erfc(|x|) and gives erf(x); erf16 (below) computes the same through
// exp16.
inline float erf_finish(float x, float erfc_abs) {
  const float s = x * x;
  float p = 1.2055333e-4f;  // 2/sqrt(pi) (-1)^k / (k! (2k + 1)), k = 6 .. 0
  p = p * s - 8.5483270e-4f;
  p = p * s + 5.2239776e-3f;
  p = p * s - 2.6866171e-2f;
  p = p * s + 1.1283792e-1f;
  p = p * s - 3.7612639e-1f;
  p = p * s + 1.1283792f;
  const float small = p * x;
  const float big = std::copysign(1.0f - erfc_abs, x);
  return std::fabs(x) < 0.5f ? small : big;
}
template <> inline float erf(float x) { return erf_finish(x, erfc(std::fabs(x))); }

// finish(x, exp(arg(x))) lane by lane over 16 floats, the exps through exp16: in a
// vectorized loop the scalar exp keeps its clamp and two-factor scaling on every lane,
// where exp16 takes its cheaper normal-range path.  With exp16 equal to exp to the bit,
// the result is that of the scalar form.  Always inlined, as exp16.
template <class Arg, class Finish>
__attribute__((always_inline)) inline f32x16 with_exp16(f32x16 v, Arg&& arg, Finish&& finish) {
  float x[16], a[16], e[16], out[16];
  store16(x, v);
#pragma omp simd
  for (int j = 0; j < 16; ++j) a[j] = arg(x[j]);
  store16(e, exp16(load16(a)));
#pragma omp simd
  for (int j = 0; j < 16; ++j) out[j] = finish(x[j], e[j]);
  return load16(out);
}

// 1 / (1 + e^-x) without overflow, from e = e^-|x| <= 1.
template <class T> inline T sigmoid_from_exp(T x, T e) {
  const T r = T(1) / (T(1) + e);
  return x >= T(0) ? r : e * r;
}
template <class T> inline T sigmoid(T x) { return sigmoid_from_exp(x, exp(-std::fabs(x))); }
template <class T> inline T neg_abs(T x) { return -std::fabs(x); }
inline f32x16 sigmoid16(f32x16 v) {
  return with_exp16(v, neg_abs<float>, sigmoid_from_exp<float>);
}
inline f32x16 tanh16(f32x16 v) { return with_exp16(v, twice_abs, tanh_from_exp); }
// x * sigmoid(x)
inline f32x16 silu16(f32x16 v) {
  return with_exp16(v, neg_abs<float>, [](float x, float e) { return x * sigmoid_from_exp(x, e); });
}
// x * Phi(x) with Phi(x) = erfc(-x/sqrt2)/2, accurate in the far negative tail.
template <class T> inline T gelu(T x) {
  return T(0.5) * x * erfc(-x * T(0.70710678118654752440));
}
// erfc(-x/sqrt2) of 16 floats, to the bit as erfc() lane by lane, its exponential
// through exp16: in a vectorized loop the scalar exp keeps its clamp and two-factor
// scaling on every lane (half of gelu's time), where exp16 takes its cheaper
// normal-range path.  Always inlined: called out of line, with the 16 lanes passed
// through memory, gelu ran at 2.9 ns per element instead of 1.7.
__attribute__((always_inline)) inline f32x16 erfc_neg_scaled16(f32x16 v) {
  float x[16], z[16], s[16], t[16], err[16], es[16], out[16];
  store16(x, v);
#pragma omp simd
  for (int j = 0; j < 16; ++j) {
    z[j] = -x[j] * 0.70710678118654752440f;
    s[j] = erfc_exponent(z[j], t[j], err[j]);
  }
  store16(es, exp16(load16(s)));
#pragma omp simd
  for (int j = 0; j < 16; ++j) out[j] = erfc_finish(z[j], t[j], es[j], err[j]);
  return load16(out);
}
// erf of 16 floats, to the bit as erf() lane by lane, erfc(|x|)'s exponential through
// exp16 (the scalar exp's clamp and two-factor scaling were half of erf's time).
__attribute__((always_inline)) inline f32x16 erf16(f32x16 v) {
  float x[16], s[16], t[16], err[16], es[16], out[16];
  store16(x, v);
#pragma omp simd
  for (int j = 0; j < 16; ++j) s[j] = erfc_exponent(std::fabs(x[j]), t[j], err[j]);
  store16(es, exp16(load16(s)));
#pragma omp simd
  for (int j = 0; j < 16; ++j)
    out[j] = erf_finish(x[j], erfc_finish(std::fabs(x[j]), t[j], es[j], err[j]));
  return load16(out);
}
__attribute__((always_inline)) inline f32x16 gelu16(f32x16 v) {
  return (v * 0.5f) * erfc_neg_scaled16(v);
}

// d gelu / dx = Phi(x) + x phi(x), phi the standard normal density, from erfc(-x/sqrt2)
// and e^(-x^2/2).
template <class T> inline T gelu_derivative_from(T x, T erfc_neg_scaled, T e) {
  return T(0.5) * erfc_neg_scaled + x * (T(0.39894228040143267794) * e);
}
template <class T> inline T gelu_derivative(T x) {
  return gelu_derivative_from(x, erfc(-x * T(0.70710678118654752440)), exp(T(-0.5) * x * x));
}
// The same over 16 floats, to the bit, both exponentials through exp16 (the arithmetic
// around them in element loops, as in the scalar form, so that it contracts to the same
// fused multiply-adds).
__attribute__((always_inline)) inline f32x16 gelu_derivative16(f32x16 v) {
  float x[16], q[16], en[16], e[16], out[16];
  store16(x, v);
  store16(en, erfc_neg_scaled16(v));
#pragma omp simd
  for (int j = 0; j < 16; ++j) q[j] = -0.5f * x[j] * x[j];
  store16(e, exp16(load16(q)));
#pragma omp simd
  for (int j = 0; j < 16; ++j) out[j] = gelu_derivative_from(x[j], en[j], e[j]);
  return load16(out);
}
// 0.5x(1 + tanh(u)) == x * sigmoid(2u), which does not cancel for x << 0.
template <class T> inline T gelu_tanh_arg(T x) {  // 2u
  return T(1.5957691216057307118) * (x + T(0.044715) * x * x * x);
}
template <class T> inline T gelu_tanh(T x) { return x * sigmoid(gelu_tanh_arg(x)); }
inline f32x16 gelu_tanh16(f32x16 v) {
  return with_exp16(
      v, [](float x) { return -std::fabs(gelu_tanh_arg(x)); },
      [](float x, float e) { return x * sigmoid_from_exp(gelu_tanh_arg(x), e); });
}

}  // namespace vm
}  // namespace
}  // namespace genesis::GENESIS_ISA_NS
