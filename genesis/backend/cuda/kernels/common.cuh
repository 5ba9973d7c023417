// Shared by the CUDA kernel files.  Written for NVRTC (no standard headers)
// and for the CPU emulator (genesis/backend/cuda/emulator/cuda_emu.h).
//
// Strided operands: a kernel gets a `meta` array of int64 laid out as
//   shape[ndim], stride of operand 0[ndim], stride of operand 1[ndim], ...
// (strides in elements, 0 for broadcast dims, negative for flipped ones) and
// maps a row-major linear index to one offset per operand.
#pragma once

typedef long long i64;
typedef unsigned long long u64;
typedef unsigned char b8;  // bool storage: read as != 0, written as 0/1

#define GENESIS_BLOCK 256
#define GENESIS_FULL_MASK 0xffffffffu

// Offsets of linear index i in N operands described by meta (see above).
template <int N>
__device__ __forceinline__ void strided_offsets(i64 i, int ndim, const i64* __restrict__ meta,
                                                i64 (&off)[N]) {
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    const i64 n = meta[d];
    const i64 q = i / n;
    const i64 r = i - q * n;
    i = q;
    for (int k = 0; k < N; ++k) off[k] += r * meta[(k + 1) * ndim + d];
  }
}

// Grid-stride loop over [0, n).
#define GENESIS_FOR(i, n)                                                          \
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < (n);                \
       i += (i64)blockDim.x * gridDim.x)

// ------------------------------------------------------------------ types
template <class T> struct is_float { static const bool value = false; };
template <> struct is_float<float> { static const bool value = true; };
template <> struct is_float<double> { static const bool value = true; };
template <class A, class B> struct is_same { static const bool value = false; };
template <class A> struct is_same<A, A> { static const bool value = true; };
template <class T> struct unsigned_of { typedef T type; };
template <> struct unsigned_of<int> { typedef unsigned int type; };
template <> struct unsigned_of<i64> { typedef u64 type; };

// NVRTC has no INFINITY/NAN macros: build them from their bits.
template <class T> __device__ __forceinline__ T infinity();
template <> __device__ __forceinline__ float infinity<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double infinity<double>() {
  return __longlong_as_double(0x7ff0000000000000LL);
}
template <class T> __device__ __forceinline__ T quiet_nan();
template <> __device__ __forceinline__ float quiet_nan<float>() { return __int_as_float(0x7fc00000); }
template <> __device__ __forceinline__ double quiet_nan<double>() {
  return __longlong_as_double(0x7ff8000000000000LL);
}

// Extremes of each dtype (identities of max/min).
template <class T> __device__ __forceinline__ T lowest() { return -infinity<T>(); }
template <> __device__ __forceinline__ int lowest<int>() { return -2147483647 - 1; }
template <> __device__ __forceinline__ i64 lowest<i64>() { return -9223372036854775807LL - 1; }
template <> __device__ __forceinline__ b8 lowest<b8>() { return 0; }
template <class T> __device__ __forceinline__ T highest() { return infinity<T>(); }
template <> __device__ __forceinline__ int highest<int>() { return 2147483647; }
template <> __device__ __forceinline__ i64 highest<i64>() { return 9223372036854775807LL; }
template <> __device__ __forceinline__ b8 highest<b8>() { return 1; }

// Integer arithmetic wraps (two's complement) like PyTorch instead of being UB.
template <class T> __device__ __forceinline__ T wrap_add(T a, T b) {
  typedef typename unsigned_of<T>::type U;
  return (T)((U)a + (U)b);
}
template <class T> __device__ __forceinline__ T wrap_sub(T a, T b) {
  typedef typename unsigned_of<T>::type U;
  return (T)((U)a - (U)b);
}
template <class T> __device__ __forceinline__ T wrap_mul(T a, T b) {
  typedef typename unsigned_of<T>::type U;
  return (T)((U)a * (U)b);
}

// min/max of one type (the emulator has no CUDA min/max overloads).
template <class T> __device__ __forceinline__ T min_of(T a, T b) { return b < a ? b : a; }
template <class T> __device__ __forceinline__ T max_of(T a, T b) { return a < b ? b : a; }

// ------------------------------------------------------------------ math
// One name per function for float and double (the CUDA math API has both).
#define GENESIS_MATH1(name, f32, f64)                                                   \
  __device__ __forceinline__ float name(float x) { return f32(x); }                    \
  __device__ __forceinline__ double name(double x) { return f64(x); }
GENESIS_MATH1(m_exp, expf, exp)
GENESIS_MATH1(m_log, logf, log)
GENESIS_MATH1(m_log1p, log1pf, log1p)
GENESIS_MATH1(m_expm1, expm1f, expm1)
GENESIS_MATH1(m_sqrt, sqrtf, sqrt)
GENESIS_MATH1(m_sin, sinf, sin)
GENESIS_MATH1(m_cos, cosf, cos)
GENESIS_MATH1(m_tanh, tanhf, tanh)
GENESIS_MATH1(m_erf, erff, erf)
GENESIS_MATH1(m_erfc, erfcf, erfc)
GENESIS_MATH1(m_fabs, fabsf, fabs)
GENESIS_MATH1(m_floor, floorf, floor)
GENESIS_MATH1(m_ceil, ceilf, ceil)
GENESIS_MATH1(m_trunc, truncf, trunc)
GENESIS_MATH1(m_rint, rintf, rint)
#undef GENESIS_MATH1
#define GENESIS_MATH2(name, f32, f64)                                                   \
  __device__ __forceinline__ float name(float x, float y) { return f32(x, y); }        \
  __device__ __forceinline__ double name(double x, double y) { return f64(x, y); }
GENESIS_MATH2(m_pow, powf, pow)
GENESIS_MATH2(m_fmod, fmodf, fmod)
GENESIS_MATH2(m_atan2, atan2f, atan2)
GENESIS_MATH2(m_copysign, copysignf, copysign)
#undef GENESIS_MATH2

// 1 / (1 + e^-x) without overflow: e^-|x| <= 1 always.
template <class T> __device__ __forceinline__ T sigmoid(T x) {
  const T e = m_exp(-m_fabs(x));
  const T r = T(1) / (T(1) + e);
  return x >= T(0) ? r : e * r;
}

// ------------------------------------------------------------------ block reductions
// Sum of v over the block (every thread gets it); `scratch` holds 32 values.
// Warp shuffles reduce each warp, then warp 0 reduces the warp totals.
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(GENESIS_FULL_MASK, v, o);
  return v;
}

// Block size must be a multiple of 32 for the block_* helpers.
template <class T, class F>
__device__ __forceinline__ T block_reduce(T v, T* scratch, F combine) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  for (int o = 16; o > 0; o >>= 1) v = combine(v, __shfl_xor_sync(GENESIS_FULL_MASK, v, o));
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = scratch[lane < nwarps ? lane : 0];
    for (int o = 16; o > 0; o >>= 1) {
      const T other = __shfl_xor_sync(GENESIS_FULL_MASK, w, o);
      if ((lane ^ o) < nwarps && lane < nwarps) w = combine(w, other);
    }
    if (lane == 0) scratch[0] = w;
  }
  __syncthreads();
  return scratch[0];
}

// ------------------------------------------------------------------ error flags
// Kernels that validate indices record the lowest failing position in
// err[0] (initialised to INT64_MAX by the caller) with atomicMin, so the
// reported index is the first bad one in row-major order on any schedule.
__device__ __forceinline__ void flag_position(i64* err, i64 pos) {
  atomicMin((unsigned long long*)err, (unsigned long long)pos);
}
