// Random numbers and dropout (dropout is the CUDA counterpart of csrc/dropout.cpp).
//
// Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel Random Numbers: As
// Easy as 1, 2, 3", SC 2011) is counter based: block i of four 32-bit words is
// philox(counter = (i, 0), key), so every thread computes its own block with no
// state, and element j of a fill depends only on the key and j (the backend
// draws a fresh key per call from the host generator).  Uniforms are in [0, 1):
// float32 from 24 bits of one word, float64 from 53 bits of two; normals come
// from pairs of uniforms by the Box-Muller transform.
#include "common.cuh"

typedef unsigned int u32;

struct Philox4 {
  u32 v[4];
};

__device__ __forceinline__ Philox4 philox4x32_10(u64 counter, u64 key) {
  Philox4 x = {{(u32)counter, (u32)(counter >> 32), 0u, 0u}};
  u32 k0 = (u32)key, k1 = (u32)(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const u64 p0 = (u64)0xD2511F53u * x.v[0], p1 = (u64)0xCD9E8D57u * x.v[2];
    const Philox4 y = {{(u32)(p1 >> 32) ^ x.v[1] ^ k0, (u32)p1, (u32)(p0 >> 32) ^ x.v[3] ^ k1,
                        (u32)p0}};
    x = y;
    k0 += 0x9E3779B9u;  // the Weyl sequence of the key schedule
    k1 += 0xBB67AE85u;
  }
  return x;
}

// Uniforms of one Philox block: 4 float32 or 2 float64.
template <class T> struct uniforms;
template <> struct uniforms<float> {
  static const int count = 4;
  __device__ static float at(const Philox4& b, int k) {
    return (float)(b.v[k] >> 8) * 5.9604644775390625e-8f;  // 2^-24
  }
};
template <> struct uniforms<double> {
  static const int count = 2;
  __device__ static double at(const Philox4& b, int k) {
    const u64 hi = b.v[2 * k] >> 5, lo = b.v[2 * k + 1] >> 6;  // 27 + 26 bits
    return (double)(hi * 67108864ull + lo) * 1.1102230246251565e-16;  // 2^-53
  }
};

// out[0, n): uniforms, or standard normals with `normal` (consecutive pairs).
template <class T>
__device__ __forceinline__ void fill_random_kernel(T* __restrict__ out, i64 n, u64 key,
                                                   int normal) {
  const int per = uniforms<T>::count;
  GENESIS_FOR(i, (n + per - 1) / per) {
    const Philox4 bits = philox4x32_10((u64)i, key);
    T u[uniforms<T>::count];
    for (int k = 0; k < per; ++k) u[k] = uniforms<T>::at(bits, k);
    if (normal) {
      for (int k = 0; k < per; k += 2) {
        const T r = m_sqrt(T(-2) * m_log(T(1) - u[k]));  // 1 - u in (0, 1]: log is finite
        const T theta = T(6.283185307179586) * u[k + 1];
        u[k] = r * m_cos(theta);
        u[k + 1] = r * m_sin(theta);
      }
    }
    for (int k = 0; k < per && i * per + k < n; ++k) out[i * per + k] = u[k];
  }
}

// Dropout over contiguous x with one uniform per row of `inner` elements:
// mask = (u >= p) / (1 - p) per row, out = x * mask.
template <class T>
__device__ __forceinline__ void dropout_kernel(const T* __restrict__ x, const T* __restrict__ u,
                                               double p, T* __restrict__ out,
                                               T* __restrict__ mask, i64 n, i64 inner) {
  const T scale = p < 1.0 ? T(1.0 / (1.0 - p)) : T(0);
  GENESIS_FOR(i, n) {
    const i64 r = i / inner;
    const T m = (double)u[r] >= p ? scale : T(0);  // compared in double: p is not rounded
    out[i] = x[i] * m;
    if (i == r * inner) mask[r] = m;
  }
}

#define GENESIS_RANDOM(T, s)                                                                   \
  extern "C" __global__ void fill_random_##s(T* out, i64 n, u64 key, int normal) {             \
    fill_random_kernel<T>(out, n, key, normal);                                                \
  }                                                                                            \
  extern "C" __global__ void dropout_##s(const T* x, const T* u, double p, T* out, T* mask,    \
                                         i64 n, i64 inner) {                                   \
    dropout_kernel<T>(x, u, p, out, mask, n, inner);                                           \
  }
GENESIS_RANDOM(float, f32)
GENESIS_RANDOM(double, f64)
#undef GENESIS_RANDOM
