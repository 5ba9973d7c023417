// Scalar math used by the elementwise kernels, written so the loops calling it
// vectorize.  Included only from elementwise.cpp (inside its per-ISA namespace).
#pragma once
#include <cmath>

namespace genesis::GENESIS_ISA_NS {
namespace {
namespace vm {

template <class T> inline T exp(T x) { return std::exp(x); }
template <class T> inline T log(T x) { return std::log(x); }
template <class T> inline T log1p(T x) { return std::log1p(x); }
template <class T> inline T expm1(T x) { return std::expm1(x); }
template <class T> inline T tanh(T x) { return std::tanh(x); }
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
