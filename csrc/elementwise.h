// Elementwise kernels: unary math, binary arithmetic and comparisons, where,
// dtype-converting copy and fill.  Every input is a View already broadcast to
// the output's shape (0 strides), so broadcasting costs no copy.
#pragma once
#include "view.h"

namespace genesis {

enum class UnaryOp : int {
  neg, exp, log, log1p, expm1, sqrt, rsqrt, abs, sign, reciprocal, sin, cos,
  tanh, sigmoid, relu, leaky_relu /*p0 = negative slope*/, elu /*p0 = alpha*/,
  gelu /*erf form*/, gelu_tanh, silu, softplus /*p0 = beta, p1 = threshold*/,
  erf, square, clamp /*p0 = min, p1 = max; NaN bound = no bound*/,
  logical_not, floor, ceil, round, trunc,
  count_  // number of ops, keep last
};

enum class BinaryOp : int {
  add, sub, mul, div, pow, maximum, minimum, floordiv, mod /*Python/PyTorch sign rule*/,
  eq, ne, lt, le, gt, ge, logical_and, logical_or, logical_xor, atan2,
  relu_grad /*a where b > 0, else 0: the gradient a of relu at b*/,
  gelu_grad /*a * gelu'(b): the gradient a of gelu (erf form) at b*/,
  count_  // keep last
};

#define GENESIS_DECLARE_ELEMENTWISE(ns)                                            \
  namespace ns {                                                                   \
  /* out = op(x); x and out have the same shape and dtype (logical_not: bool);   \
     float ops require f32/f64, neg/abs/sign/square/clamp/max/min accept ints. */  \
  void unary(UnaryOp op, const View& x, const View& out, double p0, double p1);   \
  /* out = op(a, b); a, b same dtype, broadcast to out's shape; comparisons and  \
     logical ops write bool, the rest write a's dtype. */                         \
  void binary(BinaryOp op, const View& a, const View& b, const View& out);        \
  /* out = cond ? a : b; cond bool, a/b/out same dtype. */                        \
  void where(const View& cond, const View& a, const View& b, const View& out);    \
  /* out = src converted to out's dtype (float->int truncates toward zero,       \
     any->bool is != 0).  src broadcast to out's shape.  whole_bytes: the size of \
     the output that out is a part of when an op fills one piece by piece (cat), \
     else 0; outputs too large for the cache take streaming stores. */           \
  void copy(const View& src, const View& out, int64_t whole_bytes = 0);          \
  /* every element of out = value (converted to out's dtype). */                  \
  void fill(const View& out, double value);                                       \
  }

GENESIS_DECLARE_ELEMENTWISE(generic)
GENESIS_DECLARE_ELEMENTWISE(avx2)
GENESIS_DECLARE_ELEMENTWISE(avx512)

}  // namespace genesis
