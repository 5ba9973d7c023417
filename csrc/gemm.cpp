// Packed, register-blocked GEMM (BLIS/GotoBLAS structure), compiled once per
// instruction set.
//
//   for jc (NC columns of B/C):
//     for pc (KC deep slice):   pack B[pc:, jc:] into NR-wide panels (shared)
//       for ic (MC rows, per thread):   pack A[ic:, pc:] into panels of up to MR rows
//         for jr (NR):  for ir (panel_rows):  micro-kernel  C[rows x NR] (+)= A_panel * B_panel
//
// Packing reads a and b through their strides, so transposed, stepped,
// flipped and broadcast operands all cost the same as row-major ones.  Where a
// packed panel would serve only a few micro-kernel calls, a row-major operand is
// read in place instead.  Panels of B are zero padded to NR; tiles narrower than
// NR are computed into a small buffer and then copied to out.
#include <omp.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "gemm.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace genesis::GENESIS_ISA_NS {
namespace {

// ---------------------------------------------------------------- SIMD ops
// Simd<T>: V (register type), L (lanes), load (aligned), loadu, storeu, set1,
// fma(a, b, c) = a * b + c.
template <class T>
struct Simd;

#if defined(__AVX512F__)
template <>
struct Simd<float> {
  using V = __m512;
  static constexpr int L = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_load_ps(p); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(float s) { return _mm512_set1_ps(s); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
};
template <>
struct Simd<double> {
  using V = __m512d;
  static constexpr int L = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_load_pd(p); }
  static V loadu(const double* p) { return _mm512_loadu_pd(p); }
  static void storeu(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V set1(double s) { return _mm512_set1_pd(s); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
};
// 14 x 2 accumulators = 28 of 32 zmm registers.  A row-major A read in place (14 rows,
// 14 address streams per k) against packed, on Zen 5, one thread: 128 products 64x64 @
// 64x32 +15-19 %, 128 square +2-5 %, 256 square level; at 512 columns (16 panels of B)
// 3-5 % slower, so only up to 8 panels (256 columns) here.
constexpr int kMR = 14, kNV = 2;
constexpr int64_t kDirectAPanels = 8;
#elif defined(__AVX2__)
template <>
struct Simd<float> {
  using V = __m256;
  static constexpr int L = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_load_ps(p); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(float s) { return _mm256_set1_ps(s); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
};
template <>
struct Simd<double> {
  using V = __m256d;
  static constexpr int L = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_load_pd(p); }
  static V loadu(const double* p) { return _mm256_loadu_pd(p); }
  static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(double s) { return _mm256_set1_pd(s); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
};
// 6 x 2 accumulators = 12 of 16 ymm registers.
constexpr int kMR = 6, kNV = 2;
constexpr int64_t kDirectAPanels = 16;
#else
// Plain C++: GCC vector extensions lower to SSE2 on the x86-64 baseline.
template <class T>
struct Simd {
  typedef T V __attribute__((vector_size(16)));
  static constexpr int L = 16 / sizeof(T);
  static V zero() { return V{}; }
  static V load(const T* p) { return *reinterpret_cast<const V*>(p); }
  static V loadu(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void storeu(T* p, V v) { std::memcpy(p, &v, sizeof v); }
  static V set1(T s) { return V{} + s; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V add(V a, V b) { return a + b; }
};
constexpr int kMR = 6, kNV = 2;
constexpr int64_t kDirectAPanels = 16;
#endif

// ---------------------------------------------------------------- blocking
template <class T>
struct Blocking {
  static constexpr int MR = kMR;
  static constexpr int NR = kNV * Simd<T>::L;
  // KC x NR panel of B stays in L1, MC x KC block of A in L2, KC x NC of B in L3
  // (or in L2 too, see block_columns).
  static constexpr int64_t KC = 256;
  static constexpr int64_t MC = MR * (sizeof(T) == 4 ? 24 : 12);
};

// NC, the columns of one packed block of B.  On one thread with a 1 MiB L2 (AMD Zen 5),
// blocks of 512 columns (512 KiB of floats) keep B's block in L2 beside A's: 3-5 % faster
// at 2048 than 4096.  With a 2 MiB L2 (the Intel Xeons genesis also runs on) 512 was 5 %
// slower at 2048, and with two threads, whose every block costs two barriers, 2-4 %
// slower.  A 512 KiB L2 (AMD Zen 3) cannot hold such a block: there 512 only repacks A
// more often, 2 % slower at 1024 and 5 % at 2048.
int64_t block_columns(int nt) {
  static const bool l2_fits_512_columns = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return l2 >= (1l << 20) && l2 < (2l << 20);
  }();
  return nt == 1 && l2_fits_512_columns ? 512 : 4096;
}

// 64-byte aligned scratch that only grows; one per thread.
struct Scratch {
  void* p = nullptr;
  size_t cap = 0;
  ~Scratch() { release(); }
  void release() {
    if (p) ::operator delete(p, std::align_val_t(64));
    p = nullptr;
    cap = 0;
  }
  template <class T>
  T* get(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes > cap) {
      release();
      p = ::operator new(bytes, std::align_val_t(64));
      cap = bytes;
    }
    return static_cast<T*>(p);
  }
};
thread_local Scratch tl_pack_a, tl_pack_b;

// ---------------------------------------------------------------- micro-kernel
// C[ROWS x NR] = (add ? C : 0) + A[ROWS x kc] * B[kc x NR].  A is a packed panel (ROWS
// values per k) or, A_IN_PLACE, rows lda apart; B's rows lie ldb apart (NR in a packed
// panel).
template <class T, int NV, int ROWS, bool A_IN_PLACE>
inline void micro_kernel(int64_t kc, const T* __restrict A, int64_t lda, const T* __restrict B,
                         int64_t ldb, T* C, int64_t ldc, bool add) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int L = S::L, NR = NV * L;
  // C's rows lie ldc apart (often a multiple of 4 KiB, so they compete for the same
  // cache sets): start fetching them now, while the FMAs run.
#pragma GCC unroll 32
  for (int i = 0; i < ROWS; ++i) {
    __builtin_prefetch(C + i * ldc, 1);
    __builtin_prefetch(C + i * ldc + NR - 1, 1);
  }
  V acc[ROWS][NV];
#pragma GCC unroll 32
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = S::zero();
  // A packed: ROWS values per k.  In place: row i at A + i * lda, contiguous in k.
  const int64_t a_row = A_IN_PLACE ? lda : 1;
  for (int64_t k = 0; k < kc; ++k, A += A_IN_PLACE ? 1 : ROWS, B += ldb) {
    V b[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) b[j] = S::loadu(B + j * L);
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i) {
      const V a = S::set1(A[i * a_row]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = S::fma(a, b[j], acc[i][j]);
    }
  }
#pragma GCC unroll 32
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      T* c = C + i * ldc + j * L;
      S::storeu(c, add ? S::add(S::loadu(c), acc[i][j]) : acc[i][j]);
    }
}

// The micro-kernel for a panel of `rows` (1..MR) rows: a short last panel of A (M = 64 is
// 10 x 6 + 4 on AVX2) neither pays for MR rows of FMAs nor writes past C's last row (nor,
// read in place, past A's).
template <class T, int MR, int NV, bool A_IN_PLACE, int R = MR>
void panel_kernel(int64_t rows, int64_t kc, const T* A, int64_t lda, const T* B, int64_t ldb,
                  T* C, int64_t ldc, bool add) {
  if constexpr (R == 1) {
    micro_kernel<T, NV, 1, A_IN_PLACE>(kc, A, lda, B, ldb, C, ldc, add);
  } else {
    if (rows == R)
      micro_kernel<T, NV, R, A_IN_PLACE>(kc, A, lda, B, ldb, C, ldc, add);
    else
      panel_kernel<T, MR, NV, A_IN_PLACE, R - 1>(rows, kc, A, lda, B, ldb, C, ldc, add);
  }
}

// Rows of the panel of A that starts `rem` rows before the end of its block, for a depth
// of kc: MR, except that a deep block never ends in a panel of fewer than kMinPanelRows
// rows, whose 2 x rows accumulator chains could not hide the FMA latency (2 rows take as
// long per k as 4): 8 rows left are split 4 + 4 rather than 6 + 2 (M = 128 on AVX2).  A
// shallow one keeps the fewer calls, each of which loads and stores its tile of C.
constexpr int64_t kMinPanelRows = 4, kSplitDepth = 64;
template <int MR>
constexpr int64_t panel_rows(int64_t rem, int64_t kc) {
  if (rem > MR && rem < MR + kMinPanelRows && kc >= kSplitDepth) return rem - kMinPanelRows;
  return rem < MR ? rem : MR;
}

// ---------------------------------------------------------------- packing
// Strided operand: element (r, c) is p[r * rs + c * cs].
template <class T>
struct Operand {
  const T* p;
  int64_t rs, cs;
};

#if defined(__AVX512F__)
// Transposes the 16 x 16 block held in r (r[i] = row i) so that r[c] holds column c:
// pairs of rows interleave (unpack), then 4 x 4 blocks inside each 128-bit lane
// (shuffle_ps), then the lanes move between registers (two rounds of shuffle_f32x4).
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int q = 0; q < 4; ++q) {  // rows 4q .. 4q+3
    const __m512 lo01 = _mm512_unpacklo_ps(r[4 * q], r[4 * q + 1]);
    const __m512 hi01 = _mm512_unpackhi_ps(r[4 * q], r[4 * q + 1]);
    const __m512 lo23 = _mm512_unpacklo_ps(r[4 * q + 2], r[4 * q + 3]);
    const __m512 hi23 = _mm512_unpackhi_ps(r[4 * q + 2], r[4 * q + 3]);
    // t[4q + c], lane j: rows 4q..4q+3 of column 4j + c
    t[4 * q] = _mm512_shuffle_ps(lo01, lo23, 0x44);
    t[4 * q + 1] = _mm512_shuffle_ps(lo01, lo23, 0xEE);
    t[4 * q + 2] = _mm512_shuffle_ps(hi01, hi23, 0x44);
    t[4 * q + 3] = _mm512_shuffle_ps(hi01, hi23, 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 s0 = _mm512_shuffle_f32x4(t[c], t[4 + c], 0x44);
    const __m512 s1 = _mm512_shuffle_f32x4(t[c], t[4 + c], 0xEE);
    const __m512 s2 = _mm512_shuffle_f32x4(t[8 + c], t[12 + c], 0x44);
    const __m512 s3 = _mm512_shuffle_f32x4(t[8 + c], t[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(s0, s2, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(s0, s2, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(s1, s3, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(s1, s3, 0xDD);
  }
}

// dst[k * ld + i] = src[i * rs + k] for k < 16 and the first m (<= 16) rows, writing the
// lanes in `keep` of each k: one 16-deep block of a k-major panel, read row by row.
inline void pack_block16(const float* src, int64_t rs, int m, float* dst, int64_t ld,
                         __mmask16 keep) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = i < m ? _mm512_loadu_ps(src + i * rs) : _mm512_setzero_ps();
  transpose16x16(r);
  for (int k = 0; k < 16; ++k) _mm512_mask_storeu_ps(dst + k * ld, keep, r[k]);
}
#elif defined(__AVX2__)
// Transposes the 8 x 8 block held in r (r[i] = row i) so that r[c] holds column c: pairs
// of rows interleave (unpack), then 4 x 4 blocks inside each 128-bit lane (shuffle_ps),
// then the lanes swap between registers (permute2f128).
inline void transpose8x8(__m256 r[8]) {
  __m256 s[8];
  for (int h = 0; h < 2; ++h) {  // rows 4h .. 4h+3
    const __m256 lo01 = _mm256_unpacklo_ps(r[4 * h], r[4 * h + 1]);
    const __m256 hi01 = _mm256_unpackhi_ps(r[4 * h], r[4 * h + 1]);
    const __m256 lo23 = _mm256_unpacklo_ps(r[4 * h + 2], r[4 * h + 3]);
    const __m256 hi23 = _mm256_unpackhi_ps(r[4 * h + 2], r[4 * h + 3]);
    // s[4h + c], lane l (of 2): rows 4h..4h+3 of column 4l + c
    s[4 * h] = _mm256_shuffle_ps(lo01, lo23, 0x44);
    s[4 * h + 1] = _mm256_shuffle_ps(lo01, lo23, 0xEE);
    s[4 * h + 2] = _mm256_shuffle_ps(hi01, hi23, 0x44);
    s[4 * h + 3] = _mm256_shuffle_ps(hi01, hi23, 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x31);
  }
}

// Stores the first n (1..8) lanes of v at p.
inline void store_lanes(float* p, __m256 v, int n) {
  if (n == 8) return _mm256_storeu_ps(p, v);
  __m128 q = _mm256_castps256_ps128(v);
  if (n & 4) {
    _mm_storeu_ps(p, q);
    p += 4;
    q = _mm256_extractf128_ps(v, 1);
  }
  if (n & 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), q);
    p += 2;
    q = _mm_movehl_ps(q, q);
  }
  if (n & 1) _mm_store_ss(p, q);
}

// dst[k * ld + i] = src[i * rs + k] for k < 8 and the first m (<= 8) rows: one 8-deep
// block of a k-major panel, read row by row.
inline void pack_block8(const float* src, int64_t rs, int m, float* dst, int64_t ld) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = i < m ? _mm256_loadu_ps(src + i * rs) : _mm256_setzero_ps();
  transpose8x8(r);
  for (int k = 0; k < 8; ++k) store_lanes(dst + k * ld, r[k], m);
}
#endif

// dst[k * ld + i] = src[i * rs + k] for i < m, k < kc: rows contiguous in k, written
// k-major.  16-deep (AVX-512) or 8-deep (AVX2) blocks go through register transposes.
template <class T>
void pack_rows(const T* src, int64_t rs, int m, int64_t kc, T* __restrict dst, int64_t ld) {
  int64_t k0 = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __mmask16 keep = static_cast<__mmask16>((1u << m) - 1);
    for (; k0 + 16 <= kc; k0 += 16) pack_block16(src + k0, rs, m, dst + k0 * ld, ld, keep);
  }
#elif defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    for (; k0 + 8 <= kc; k0 += 8)
      for (int i0 = 0; i0 < m; i0 += 8)
        pack_block8(src + i0 * rs + k0, rs, m - i0 < 8 ? m - i0 : 8, dst + k0 * ld + i0, ld);
  }
#endif
  for (int i = 0; i < m; ++i) {
    const T* row = src + i * rs;
    for (int64_t k = k0; k < kc; ++k) dst[k * ld + i] = row[k];
  }
}

// A[mc x kc] -> panels of panel_rows() rows, each stored k-major (as many values per k
// as it has rows), panel by panel: the one of row i0 starts at dst + i0 * kc.
template <class T, int MR>
void pack_a(int64_t mc, int64_t kc, Operand<T> a, T* __restrict dst) {
  for (int64_t i0 = 0, m; i0 < mc; i0 += m, dst += m * kc) {
    m = panel_rows<MR>(mc - i0, kc);
    const T* src = a.p + i0 * a.rs;
    // Whole panels get MR as a constant: the transposes and copies then unroll inline.
    if (a.cs == 1) {  // rows contiguous in k
      if (m == MR)
        pack_rows(src, a.rs, MR, kc, dst, MR);
      else
        pack_rows(src, a.rs, static_cast<int>(m), kc, dst, m);
    } else if (a.rs == 1) {  // transposed A (columns contiguous): m consecutive values per k
      if (m == MR)
        for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * MR, src + k * a.cs, MR * sizeof(T));
      else
        for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * m, src + k * a.cs, m * sizeof(T));
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t i = 0; i < m; ++i) dst[k * m + i] = src[k * a.cs + i * a.rs];
    }
  }
}

// Panels [p0, p1) of B[kc x nc] -> NR-wide panels, each stored k-major, zero padded,
// panel p at dst + p * stride whatever kc is (so that a thread packing its panels of
// the next, shorter slice never writes where another thread's panels of this one lie).
template <class T, int NR>
void pack_b(int64_t kc, int64_t nc, int64_t p0, int64_t p1, Operand<T> b, T* __restrict dst,
            int64_t stride) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t j0 = p * NR;
    const int n = static_cast<int>(nc - j0 < NR ? nc - j0 : NR);
    const T* src = b.p + j0 * b.cs;
    T* d = dst + p * stride;
    if (b.cs == 1 && n == NR) {
      for (int64_t k = 0; k < kc; ++k) std::memcpy(d + k * NR, src + k * b.rs, NR * sizeof(T));
    } else if (b.rs == 1) {
      // Transposed B (columns contiguous in k): read each column sequentially, 16 at a time.
      for (int j = 0; j < NR; j += 16) {
        const int cols = n - j < 16 ? (n - j > 0 ? n - j : 0) : 16;
        if (cols) pack_rows(src + j * b.cs, b.cs, cols, kc, d + j, NR);
        for (int jj = j + cols; jj < j + 16 && jj < NR; ++jj)
          for (int64_t k = 0; k < kc; ++k) d[k * NR + jj] = T(0);
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const T* row = src + k * b.rs;
        int j = 0;
        for (; j < n; ++j) d[k * NR + j] = row[j * b.cs];
        for (; j < NR; ++j) d[k * NR + j] = T(0);
      }
    }
  }
}

// C[mc x n] (+)= A[mc x kc] * one panel of B (n <= NR columns, rows ldb apart): A's
// block read in place (rows lda apart) or packed (panel of row i at A + i * kc), one
// micro-kernel call per panel of its rows.  Not inlined into gemm_thread: there the
// micro-kernels' loops shared registers with the whole driver and kept the in-place
// rows' offsets on the stack, 1-5 % slower depending on the build.
template <class T, bool A_IN_PLACE>
[[gnu::noinline]] void block_times_panel(int64_t mc, int64_t kc, const T* A, int64_t lda,
                                         const T* B, int64_t ldb, int64_t n, Operand<T> c,
                                         bool add) {
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  alignas(64) T tile[MR * NR];
  for (int64_t ir = 0, m; ir < mc; ir += m) {
    m = panel_rows<MR>(mc - ir, kc);
    T* cij = const_cast<T*>(c.p) + ir * c.rs;
    const T* apanel = A + ir * (A_IN_PLACE ? lda : kc);
    if (n == NR && c.cs == 1) {
      panel_kernel<T, MR, kNV, A_IN_PLACE>(m, kc, apanel, lda, B, ldb, cij, c.rs, add);
    } else {
      panel_kernel<T, MR, kNV, A_IN_PLACE>(m, kc, apanel, lda, B, ldb, tile, NR, false);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          T& cv = cij[i * c.rs + j * c.cs];
          cv = add ? cv + tile[i * NR + j] : tile[i * NR + j];
        }
    }
  }
}

// ---------------------------------------------------------------- driver
// Up to this many MR-row panels of A, B is read in place rather than packed.
constexpr int64_t kDirectBRows = 6;
// Up to kDirectAPanels NR-column panels of B per thread (set per ISA above), a row-major
// A is read in place.
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// One thread's share of a 2-D GEMM into C (element (i, j) at c[i * c.rs + j * c.cs]).
// Called by every thread of a team of nt (or by one thread with nt == 1); threads are
// laid out as a tm x tn grid over (MR-row panels) x (NR-column panels) and share the
// packed B through bp.
template <class T>
void gemm_thread(int tid, int nt, int tm, int64_t M, int64_t N, int64_t K, Operand<T> a,
                 Operand<T> b, Operand<T> c, bool accumulate, T* bp) {
  using BL = Blocking<T>;
  constexpr int MR = BL::MR, NR = BL::NR;
  const int tn = nt / tm, ti = tid / tn, tj = tid % tn;
  const int64_t mpanels = ceil_div(M, MR);
  const int64_t m0 = min64(M, mpanels * ti / tm * MR), m1 = min64(M, mpanels * (ti + 1) / tm * MR);
  T* ap = tl_pack_a.get<T>(BL::MC * BL::KC);
  // With few rows of A, each panel of B would be packed for only a few micro-kernel
  // calls: the full-width panels of a row-major B are then read in place.  Unless it
  // is used once, not when its rows lie a multiple of 2 KiB apart: they would share a few
  // L1 sets and the panel would not stay in L1 between uses.
  const bool direct_b = b.cs == 1 && (M <= MR || (M <= kDirectBRows * MR &&
                                                  (b.rs * sizeof(T)) % 2048 != 0));
  // Likewise a row-major A whose panels each serve only a few panels of B (per thread)
  // is read in place: the micro-kernel's broadcasts take any address, and packing A
  // would cost as much as a good part of the FMAs.
  const bool direct_a = a.cs == 1 &&
                        ceil_div(ceil_div(min64(N, block_columns(nt)), NR), tn) <= kDirectAPanels;

  // With one row of threads (tm == 1) each thread packs exactly the panels of B it
  // reads, so the threads need not wait for each other, except between blocks of
  // columns: a narrower last block assigns the panels to threads anew.
  const bool b_shared = tm > 1;
  const int64_t panel_stride = NR * min64(K, BL::KC);  // between packed panels of B
  const int64_t NC = block_columns(nt);
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = min64(NC, N - jc), npanels = ceil_div(nc, NR);
    const int64_t q0 = npanels * tj / tn, q1 = npanels * (tj + 1) / tn;
    for (int64_t pc = 0; pc < K; pc += BL::KC) {
      const int64_t kc = min64(BL::KC, K - pc);
      const bool add = accumulate || pc > 0;
      if (b_shared || (nt > 1 && pc == 0 && jc > 0)) {
#pragma omp barrier
      }
      const int64_t full = direct_b ? nc / NR : 0;  // panels read in place
      const int64_t p0 = npanels * tid / nt, p1 = npanels * (tid + 1) / nt;
      pack_b<T, NR>(kc, nc, p0 > full ? p0 : full, p1 > full ? p1 : full,
                    {b.p + pc * b.rs + jc * b.cs, b.rs, b.cs}, bp, panel_stride);
      if (b_shared) {
#pragma omp barrier
      }
      for (int64_t ic = m0; ic < m1; ic += BL::MC) {
        const int64_t mc = min64(BL::MC, m1 - ic);
        if (!direct_a) pack_a<T, MR>(mc, kc, {a.p + ic * a.rs + pc * a.cs, a.rs, a.cs}, ap);
        for (int64_t q = q0; q < q1; ++q) {
          const int64_t jr = q * NR, n = min64(NR, nc - jr);
          const bool in_place = q < full;
          const T* bpanel = in_place ? b.p + pc * b.rs + (jc + jr) : bp + q * panel_stride;
          const int64_t ldb = in_place ? b.rs : NR;
          const T* ablock = direct_a ? a.p + ic * a.rs + pc : ap;
          T* cblock = const_cast<T*>(c.p) + ic * c.rs + (jc + jr) * c.cs;
          if (direct_a)
            block_times_panel<T, true>(mc, kc, ablock, a.rs, bpanel, ldb, n,
                                       {cblock, c.rs, c.cs}, add);
          else
            block_times_panel<T, false>(mc, kc, ablock, 0, bpanel, ldb, n, {cblock, c.rs, c.cs},
                                        add);
        }
      }
    }
  }
}

// Below this many multiply-adds a single thread is faster than waking a team.
constexpr int64_t kParallelWork = int64_t(1) << 18;

// Multiply-adds the micro-kernel runs for an M x N result, tails padded to full tiles.
template <class T>
int64_t padded_work(int64_t M, int64_t N) {
  using BL = Blocking<T>;
  return ceil_div(M, BL::MR) * BL::MR * ceil_div(N, BL::NR) * BL::NR;
}

// C[M x N] (row-major, contiguous) (+)= A[M x K] B[K x N].
template <class T>
void gemm2d(int64_t M, int64_t N, int64_t K, Operand<T> a, Operand<T> b, T* c, bool accumulate,
            int max_threads) {
  using BL = Blocking<T>;
  Operand<T> cv{c, N, 1};
  // A shape that fills the MR x NR tiles badly the other way round (a classifier head's
  // N = 10 pads to NR = 32 columns) is computed as Cᵀ = Bᵀ Aᵀ: only strides change,
  // and the tiles are written to C through the transposing edge path.
  if (padded_work<T>(N, M) * 10 < padded_work<T>(M, N) * 9) {
    std::swap(M, N);
    std::swap(a, b);
    std::swap(a.rs, a.cs);
    std::swap(b.rs, b.cs);
    cv = {c, 1, M};
  }
  const int nt = (M * N * K >= kParallelWork) ? max_threads : 1;
  const int64_t bp_elems = BL::KC * ceil_div(min64(N, block_columns(nt)), BL::NR) * BL::NR;
  T* bp = tl_pack_b.get<T>(bp_elems);
  if (nt <= 1) {
    gemm_thread<T>(0, 1, 1, M, N, K, a, b, cv, accumulate, bp);
    return;
  }
  // Lay the threads out as tm x tn over (row panels) x (column panels) so that the
  // busiest thread has the fewest micro-tiles (M = 64 is 5 row panels: split 2 + 3 rows,
  // it would leave one thread idle 1/3 of the time); on a tie prefer splitting columns,
  // where each thread packs only the panels of B it reads and no thread waits for another.
  const int64_t mp = ceil_div(M, BL::MR), np = ceil_div(min64(N, block_columns(nt)), BL::NR);
  int tm = 1;
  int64_t best = -1;
  for (int d = 1; d <= nt; ++d) {
    if (nt % d) continue;
    const int64_t load = ceil_div(mp, d) * ceil_div(np, nt / d);
    if (best < 0 || load < best) {
      best = load;
      tm = d;
    }
  }
#pragma omp parallel num_threads(nt)
  gemm_thread<T>(omp_get_thread_num(), omp_get_num_threads(), tm, M, N, K, a, b, cv, accumulate,
                 bp);
}

// ---------------------------------------------------------------- entry
std::string shape_str(const View& v) {
  std::string s = "[";
  for (int d = 0; d < v.ndim; ++d) s += (d ? ", " : "") + std::to_string(v.shape[d]);
  return s + "]";
}

void check(const View& a, const View& b, const View& out) {
  if (a.dtype != b.dtype || a.dtype != out.dtype)
    throw type_error(std::string("matmul: dtypes must match, got a ") + dtype_name(a.dtype) +
                     ", b " + dtype_name(b.dtype) + ", out " + dtype_name(out.dtype));
  if (a.dtype != DType::f32 && a.dtype != DType::f64)
    throw type_error(std::string("matmul: expected float32 or float64, got ") +
                     dtype_name(a.dtype));
  // The message is built only on failure: check() runs on every (often tiny) GEMM.
  auto fail = [&](const char* what) {
    throw std::invalid_argument(std::string("matmul: ") + what + ", got a " + shape_str(a) +
                                ", b " + shape_str(b) + ", out " + shape_str(out));
  };
  if (a.ndim < 2 || a.ndim != b.ndim || a.ndim != out.ndim)
    fail("expected a[..., M, K], b[..., K, N], out[..., M, N] with the same number (>= 2) of "
         "dimensions");
  const int n = a.ndim;
  for (int d = 0; d < n - 2; ++d)
    if (a.shape[d] != out.shape[d] || b.shape[d] != out.shape[d])
      fail("batch dimensions of a and b must equal out's");
  if (a.shape[n - 1] != b.shape[n - 2] || out.shape[n - 2] != a.shape[n - 2] ||
      out.shape[n - 1] != b.shape[n - 1])
    fail("expected a[..., M, K] @ b[..., K, N] -> out[..., M, N]");
  if (numel(out) > 0 && !is_contiguous(out)) fail("out must be C-contiguous");
}

// Offset of batch item `idx` (row-major over the leading nb dims) in v.
inline int64_t batch_offset(const View& v, int nb, int64_t idx) {
  int64_t off = 0;
  for (int d = nb - 1; d >= 0; --d) {
    off += (idx % v.shape[d]) * v.stride[d];
    idx /= v.shape[d];
  }
  return off;
}

template <class T>
void matmul_typed(const View& a, const View& b, const View& out, bool accumulate) {
  const int nd = out.ndim, nb = nd - 2;
  const int64_t M = out.shape[nd - 2], N = out.shape[nd - 1], K = a.shape[nd - 1];
  int64_t batch = 1;
  for (int d = 0; d < nb; ++d) batch *= out.shape[d];
  if (batch == 0 || M == 0 || N == 0) return;
  T* c = static_cast<T*>(out.data);
  if (K == 0) {
    if (!accumulate) std::memset(c, 0, sizeof(T) * batch * M * N);
    return;
  }
  const T* pa = static_cast<const T*>(a.data);
  const T* pb = static_cast<const T*>(b.data);
  auto item = [&](int64_t i, int threads) {
    gemm2d<T>(M, N, K, {pa + batch_offset(a, nb, i), a.stride[nd - 2], a.stride[nd - 1]},
              {pb + batch_offset(b, nb, i), b.stride[nd - 2], b.stride[nd - 1]},
              c + i * M * N, accumulate, threads);
  };
  const int max_threads = omp_get_max_threads();
  // Many small matrices: one matrix per thread, each thread a contiguous run of them (they
  // cost the same, and each thread then streams through memory of its own).
  if (batch > 1 && max_threads > 1 && M * N * K < kParallelWork * 16 &&
      batch * M * N * K >= kParallelWork) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < batch; ++i) item(i, 1);
    return;
  }
  for (int64_t i = 0; i < batch; ++i) item(i, max_threads);
}

}  // namespace

void matmul(const View& a, const View& b, const View& out, bool accumulate) {
  check(a, b, out);
  if (a.dtype == DType::f32)
    matmul_typed<float>(a, b, out, accumulate);
  else
    matmul_typed<double>(a, b, out, accumulate);
}

}  // namespace genesis::GENESIS_ISA_NS
