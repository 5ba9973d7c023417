// Elementwise kernels: unary math, binary arithmetic and comparisons, where,
// dtype-converting copy and fill, over operands of any strides (the CUDA
// counterpart of csrc/elementwise.cpp, with the same op codes and rules).
//
// Every kernel is a grid-stride loop over the n elements of the output; the
// operands' shape and strides come in `meta` (common.cuh), already broadcast
// to the output's shape and with mergeable dims merged by the caller.
#include "common.cuh"

// Op codes: the order of UnaryOp / BinaryOp in csrc/elementwise.h (checked by
// tests/test_cuda_nvrtc.py).
enum UnaryOp {
  U_neg, U_exp, U_log, U_log1p, U_expm1, U_sqrt, U_rsqrt, U_abs, U_sign, U_reciprocal, U_sin,
  U_cos, U_tanh, U_sigmoid, U_relu, U_leaky_relu, U_elu, U_gelu, U_gelu_tanh, U_silu,
  U_softplus, U_erf, U_square, U_clamp, U_logical_not, U_floor, U_ceil, U_round, U_trunc
};
enum BinaryOp {
  B_add, B_sub, B_mul, B_div, B_pow, B_maximum, B_minimum, B_floordiv, B_mod, B_eq, B_ne, B_lt,
  B_le, B_gt, B_ge, B_logical_and, B_logical_or, B_logical_xor, B_atan2, B_relu_grad,
  B_gelu_grad
};
// Error codes written to err[0] by integer ops (as csrc/elementwise.cpp).
enum { E_ZERO_DIV = 1, E_NEG_POW = 2 };

// ------------------------------------------------------------------ unary
template <class T>
__device__ __forceinline__ T unary_float(int op, T x, double p0, double p1) {
  switch (op) {
    case U_exp: return m_exp(x);
    case U_log: return m_log(x);
    case U_log1p: return m_log1p(x);
    case U_expm1: return m_expm1(x);
    case U_sqrt: return m_sqrt(x);
    case U_rsqrt: return T(1) / m_sqrt(x);
    case U_reciprocal: return T(1) / x;
    case U_sin: return m_sin(x);
    case U_cos: return m_cos(x);
    case U_tanh: return m_tanh(x);
    case U_sigmoid: return sigmoid(x);
    case U_leaky_relu: return x > T(0) ? x : x * T(p0);
    case U_elu: return x > T(0) ? x : T(p0) * m_expm1(x);
    // x * Phi(x) with Phi(x) = erfc(-x/sqrt2)/2, accurate in the far negative tail.
    case U_gelu: return T(0.5) * x * m_erfc(-x * T(0.70710678118654752440));
    // 0.5x(1 + tanh(u)) == x * sigmoid(2u), which does not cancel for x << 0.
    case U_gelu_tanh: {
      const T u = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
      return x * sigmoid(T(2) * u);
    }
    case U_silu: return x * sigmoid(x);
    case U_softplus: {
      const T z = x * T(p0);
      return z > T(p1) ? x : m_log1p(m_exp(z)) / T(p0);
    }
    case U_erf: return m_erf(x);
    case U_round: return m_rint(x);  // half to even, as nearbyint in the default mode
    case U_floor: return m_floor(x);
    case U_ceil: return m_ceil(x);
    case U_trunc: return m_trunc(x);
    default: return x;
  }
}

// Ops also defined for integers (floor/ceil/round/trunc are the identity there).
template <class T>
__device__ __forceinline__ T unary_numeric(int op, T x, T lo, T hi) {
  switch (op) {
    case U_neg:
      if constexpr (is_float<T>::value) return -x;
      else return wrap_sub(T(0), x);
    case U_abs:
      if constexpr (is_float<T>::value) return m_fabs(x);
      else return x < 0 ? wrap_sub(T(0), x) : x;
    case U_sign: return x > T(0) ? T(1) : x < T(0) ? T(-1) : x;  // keeps -0 and NaN
    case U_square:
      if constexpr (is_float<T>::value) return x * x;
      else return wrap_mul(x, x);
    case U_relu: return x < T(0) ? T(0) : x;  // NaN stays NaN
    case U_clamp: {  // NaN x passes through both compares
      const T y = x < lo ? lo : x;
      return y > hi ? hi : y;
    }
    default: return x;  // floor, ceil, round, trunc of an integer
  }
}

// Clamp bounds in the dtype: a NaN bound is no bound; integer bounds round
// inwards (x >= 2.5 means x >= 3) and saturate to the dtype.
template <class T> __device__ __forceinline__ T clamp_bound(double v, bool upper) {
  if (v != v) return upper ? highest<T>() : lowest<T>();
  if constexpr (is_float<T>::value) {
    return T(v);
  } else {
    const double r = upper ? floor(v) : ceil(v);
    if (r <= (double)lowest<T>()) return lowest<T>();
    if (r >= (double)highest<T>()) return highest<T>();
    return T(r);
  }
}

template <class T>
__device__ __forceinline__ void unary_kernel(const T* __restrict__ x, T* __restrict__ out, i64 n,
                                             int ndim, const i64* __restrict__ meta, double p0,
                                             double p1, int op) {
  const T lo = clamp_bound<T>(p0, false), hi = clamp_bound<T>(p1, true);
  GENESIS_FOR(i, n) {
    i64 off[2];
    strided_offsets<2>(i, ndim, meta, off);
    const T v = x[off[1]];
    T r;
    if constexpr (is_float<T>::value) {
      const bool numeric = op == U_neg || op == U_abs || op == U_sign || op == U_square ||
                           op == U_relu || op == U_clamp;
      r = numeric ? unary_numeric<T>(op, v, lo, hi) : unary_float<T>(op, v, p0, p1);
    } else {
      r = unary_numeric<T>(op, v, lo, hi);
    }
    out[off[0]] = r;
  }
}

template <class T>
__device__ __forceinline__ void logical_not_kernel(const T* __restrict__ x, b8* __restrict__ out,
                                                   i64 n, int ndim, const i64* __restrict__ meta) {
  GENESIS_FOR(i, n) {
    i64 off[2];
    strided_offsets<2>(i, ndim, meta, off);
    out[off[0]] = x[off[1]] == T(0);
  }
}

// ------------------------------------------------------------------ binary
// Python's float floor division (CPython and PyTorch): derived from fmod so that
// floordiv(a, b) * b + mod(a, b) == a holds as closely as possible.
template <class T> __device__ __forceinline__ T float_floordiv(T a, T b) {
  if (b == T(0)) return a / b;
  const T m = m_fmod(a, b);
  T div = (a - m) / b;
  if (m != T(0) && ((b < T(0)) != (m < T(0)))) div -= T(1);
  if (div == T(0)) return m_copysign(T(0), a / b);
  T fl = m_floor(div);
  if (div - fl > T(0.5)) fl += T(1);
  return fl;
}
template <class T> __device__ __forceinline__ T float_mod(T a, T b) {  // sign of the divisor
  T m = m_fmod(a, b);
  if (m != T(0) && ((b < T(0)) != (m < T(0)))) m += b;
  return m;
}

// Integer division truncates (C); floordiv/mod follow Python.  Errors go to err.
template <class T> __device__ __forceinline__ T int_binary(int op, T a, T b, int* err) {
  switch (op) {
    case B_div:
      if (b == 0) return atomicMax(err, (int)E_ZERO_DIV), T(0);
      if (b == -1) return wrap_sub(T(0), a);  // avoids INT_MIN / -1
      return a / b;
    case B_floordiv: {
      if (b == 0) return atomicMax(err, (int)E_ZERO_DIV), T(0);
      if (b == -1) return wrap_sub(T(0), a);
      const T q = a / b;
      return (a % b != 0 && ((a < 0) != (b < 0))) ? T(q - 1) : q;
    }
    case B_mod: {
      if (b == 0) return atomicMax(err, (int)E_ZERO_DIV), T(0);
      if (b == -1) return T(0);
      const T r = a % b;
      return (r != 0 && ((r < 0) != (b < 0))) ? T(r + b) : r;
    }
    case B_pow: {
      if (b < 0) {
        if (a == 1) return 1;
        if (a == -1) return (b & 1) ? T(-1) : T(1);
        return atomicMax(err, (int)E_NEG_POW), T(0);
      }
      T r = 1;
      for (; b; b >>= 1, a = wrap_mul(a, a))
        if (b & 1) r = wrap_mul(r, a);
      return r;
    }
    default: return 0;
  }
}

// Arithmetic writing the inputs' dtype.  bool: add = or, mul = and.
template <class T> __device__ __forceinline__ T arith(int op, T a, T b, int* err) {
  switch (op) {
    case B_add:
      if constexpr (is_same<T, b8>::value) return (a | b) != 0;
      else if constexpr (is_float<T>::value) return a + b;
      else return wrap_add(a, b);
    case B_mul:
      if constexpr (is_same<T, b8>::value) return (a != 0) & (b != 0);
      else if constexpr (is_float<T>::value) return a * b;
      else return wrap_mul(a, b);
    case B_maximum:  // NaN propagates from either side
      if constexpr (is_same<T, b8>::value) return (a | b) != 0;
      else return (a > b || a != a) ? a : b;
    case B_minimum:
      if constexpr (is_same<T, b8>::value) return (a != 0) & (b != 0);
      else return (a < b || a != a) ? a : b;
    default: break;
  }
  if constexpr (is_same<T, b8>::value) {
    return 0;
  } else if constexpr (is_float<T>::value) {
    switch (op) {
      case B_sub: return a - b;
      case B_div: return a / b;
      case B_pow: return m_pow(a, b);
      case B_floordiv: return float_floordiv(a, b);
      case B_mod: return float_mod(a, b);
      case B_atan2: return m_atan2(a, b);
      case B_relu_grad: return b > T(0) ? a : T(0);
      case B_gelu_grad:  // a * (Phi(b) + b phi(b))
        return a * (T(0.5) * m_erfc(-b * T(0.70710678118654752440)) +
                    b * (T(0.39894228040143267794) * m_exp(T(-0.5) * b * b)));
      default: return 0;
    }
  } else {
    if (op == B_sub) return wrap_sub(a, b);
    return int_binary(op, a, b, err);
  }
}

template <class T>
__device__ __forceinline__ b8 compare(int op, T a, T b) {
  switch (op) {
    case B_eq: return a == b;
    case B_ne: return a != b;
    case B_lt: return a < b;
    case B_le: return a <= b;
    case B_gt: return a > b;
    case B_ge: return a >= b;
    case B_logical_and: return (a != T(0)) & (b != T(0));
    case B_logical_or: return (a != T(0)) | (b != T(0));
    default: return (a != T(0)) != (b != T(0));  // logical_xor
  }
}

template <class T>
__device__ __forceinline__ void binary_kernel(const T* a, const T* b, T* out, i64 n, int ndim,
                                              const i64* __restrict__ meta, int op, int* err) {
  GENESIS_FOR(i, n) {
    i64 off[3];
    strided_offsets<3>(i, ndim, meta, off);
    out[off[0]] = arith<T>(op, a[off[1]], b[off[2]], err);
  }
}

template <class T>
__device__ __forceinline__ void compare_kernel(const T* __restrict__ a, const T* __restrict__ b,
                                               b8* __restrict__ out, i64 n, int ndim,
                                               const i64* __restrict__ meta, int op) {
  GENESIS_FOR(i, n) {
    i64 off[3];
    strided_offsets<3>(i, ndim, meta, off);
    out[off[0]] = compare<T>(op, a[off[1]], b[off[2]]);
  }
}

template <class T>
__device__ __forceinline__ void where_kernel(const b8* __restrict__ c, const T* __restrict__ a,
                                             const T* __restrict__ b, T* __restrict__ out, i64 n,
                                             int ndim, const i64* __restrict__ meta) {
  GENESIS_FOR(i, n) {
    i64 off[4];
    strided_offsets<4>(i, ndim, meta, off);
    out[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]];
  }
}

// float -> int truncates toward zero; anything -> bool is != 0.
template <class To, class Ti> __device__ __forceinline__ To convert(Ti x) {
  if constexpr (is_same<To, b8>::value || is_same<Ti, b8>::value) return (To)(x != Ti(0));
  else return (To)x;
}

template <class To, class Ti>
__device__ __forceinline__ void copy_kernel(const Ti* __restrict__ x, To* __restrict__ out, i64 n,
                                            int ndim, const i64* __restrict__ meta) {
  GENESIS_FOR(i, n) {
    i64 off[2];
    strided_offsets<2>(i, ndim, meta, off);
    out[off[0]] = convert<To, Ti>(x[off[1]]);
  }
}

template <class T>
__device__ __forceinline__ void fill_kernel(T* __restrict__ out, i64 n, int ndim,
                                            const i64* __restrict__ meta, double value) {
  const T v = convert<T, double>(value);
  GENESIS_FOR(i, n) {
    i64 off[1];
    strided_offsets<1>(i, ndim, meta, off);
    out[off[0]] = v;
  }
}

// ------------------------------------------------------------------ entry points
#define GENESIS_UNARY(T, s)                                                                  \
  extern "C" __global__ void unary_##s(const T* x, T* out, i64 n, int ndim, const i64* meta,  \
                                       double p0, double p1, int op) {                        \
    unary_kernel<T>(x, out, n, ndim, meta, p0, p1, op);                                       \
  }
GENESIS_UNARY(float, f32)
GENESIS_UNARY(double, f64)
GENESIS_UNARY(int, i32)
GENESIS_UNARY(i64, i64)
#undef GENESIS_UNARY

#define GENESIS_ELEMENTWISE(T, s)                                                            \
  extern "C" __global__ void logical_not_##s(const T* x, b8* out, i64 n, int ndim,            \
                                             const i64* meta) {                               \
    logical_not_kernel<T>(x, out, n, ndim, meta);                                             \
  }                                                                                           \
  extern "C" __global__ void binary_##s(const T* a, const T* b, T* out, i64 n, int ndim,      \
                                        const i64* meta, int op, int* err) {                  \
    binary_kernel<T>(a, b, out, n, ndim, meta, op, err);                                      \
  }                                                                                           \
  extern "C" __global__ void compare_##s(const T* a, const T* b, b8* out, i64 n, int ndim,    \
                                         const i64* meta, int op) {                           \
    compare_kernel<T>(a, b, out, n, ndim, meta, op);                                          \
  }                                                                                           \
  extern "C" __global__ void where_##s(const b8* c, const T* a, const T* b, T* out, i64 n,    \
                                       int ndim, const i64* meta) {                           \
    where_kernel<T>(c, a, b, out, n, ndim, meta);                                             \
  }                                                                                           \
  extern "C" __global__ void fill_##s(T* out, i64 n, int ndim, const i64* meta, double v) {   \
    fill_kernel<T>(out, n, ndim, meta, v);                                                    \
  }
GENESIS_ELEMENTWISE(float, f32)
GENESIS_ELEMENTWISE(double, f64)
GENESIS_ELEMENTWISE(int, i32)
GENESIS_ELEMENTWISE(i64, i64)
GENESIS_ELEMENTWISE(b8, b8)
#undef GENESIS_ELEMENTWISE

#define GENESIS_COPY(To, so, Ti, si)                                                         \
  extern "C" __global__ void copy_##so##_##si(const Ti* x, To* out, i64 n, int ndim,          \
                                              const i64* meta) {                              \
    copy_kernel<To, Ti>(x, out, n, ndim, meta);                                               \
  }
#define GENESIS_COPY_FROM(Ti, si)                                                            \
  GENESIS_COPY(float, f32, Ti, si)                                                            \
  GENESIS_COPY(double, f64, Ti, si)                                                           \
  GENESIS_COPY(int, i32, Ti, si)                                                              \
  GENESIS_COPY(i64, i64, Ti, si)                                                              \
  GENESIS_COPY(b8, b8, Ti, si)
GENESIS_COPY_FROM(float, f32)
GENESIS_COPY_FROM(double, f64)
GENESIS_COPY_FROM(int, i32)
GENESIS_COPY_FROM(i64, i64)
GENESIS_COPY_FROM(b8, b8)
#undef GENESIS_COPY_FROM
#undef GENESIS_COPY
