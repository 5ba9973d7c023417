// Scalar math used by the elementwise, reduction and loss kernels, written so
// the loops calling it vectorize.  Included only from kernel sources compiled
// per instruction set (its functions live in their per-ISA namespace).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

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
// x = n ln2 + r with |r| <= ln2/2 (ln2 in two parts), e^r by Cephes' degree-6
// polynomial (about 1 ulp), 2^n from exponent bits in two factors so that
// results down to the denormals and up to overflow come out right.
template <> inline float exp(float x) {
  const float xc = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);  // NaN passes
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (xc * 1.44269504088896341f + kRound) - kRound;
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t half = ni >> 1;
  return p * bits_to_float((half + 127) << 23) * bits_to_float((ni - half + 127) << 23);
}
template <class T> inline T log(T x) { return std::log(x); }
template <class T> inline T log1p(T x) { return std::log1p(x); }
template <class T> inline T expm1(T x) { return std::expm1(x); }
template <class T> inline T tanh(T x) { return std::tanh(x); }

// float tanh: Cephes' odd polynomial near 0 (where 1 - 2/(e^2x + 1) would
// cancel), otherwise through the vectorizable exp above.
template <> inline float tanh(float x) {
  const float a = std::fabs(x);
  const float s = x * x;
  float p = -5.70498872745e-3f;
  p = p * s + 2.06390887954e-2f;
  p = p * s - 5.37397155531e-2f;
  p = p * s + 1.33314422036e-1f;
  p = p * s - 3.33332819422e-1f;
  const float small = p * s * x + x;
  const float big = 1.0f - 2.0f / (exp(2.0f * a) + 1.0f);
  return std::copysign(a < 0.625f ? std::fabs(small) : big, x);  // odd, keeps -0
}
template <class T> inline T erf(T x) { return std::erf(x); }

// 1 / (1 + e^-x) without overflow: e^-|x| <= 1 always.
template <class T> inline T sigmoid(T x) {
  const T e = exp(-std::fabs(x));
  const T r = T(1) / (T(1) + e);
  return x >= T(0) ? r : e * r;
}
// x * Phi(x) with Phi(x) = erfc(-x/sqrt2)/2, accurate in the far negative tail.
template <class T> inline T gelu(T x) {
  return T(0.5) * x * std::erfc(-x * T(0.70710678118654752440));
}
// 0.5x(1 + tanh(u)) == x * sigmoid(2u), which does not cancel for x << 0.
template <class T> inline T gelu_tanh(T x) {
  const T u = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
  return x * sigmoid(T(2) * u);
}

}  // namespace vm
}  // namespace
}  // namespace genesis::GENESIS_ISA_NS
