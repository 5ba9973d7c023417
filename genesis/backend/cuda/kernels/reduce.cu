// Reductions, scans and softmax (the CUDA counterpart of csrc/reduce.cpp).
//
// reduce: the caller splits x's dims into kept ones (kmeta: shape, x strides,
// out strides) and reduced ones (rmeta: shape, x strides).  Each block reduces
// one output at a time (threads stride over the reduced elements, then warp
// shuffles and shared memory combine them); with mode 1 each thread reduces
// whole outputs alone, for many tiny reductions.
//
// reduce_arg, cumsum, softmax and softmax_backward work along one dim: one
// block per line; kmeta describes the other dims (shape, then each operand's
// strides) and the line's length and strides come as scalars.
#include "common.cuh"

// Op codes of csrc/reduce.h (checked by tests/test_cuda_nvrtc.py).
enum ReduceOp { R_sum, R_prod, R_max, R_min };

// Accumulators: double for floats (as the CPU's float sums), int64 otherwise
// (integer sums and products wrap; bool max/min are any/all).
template <class T> struct acc_of { typedef i64 type; };
template <> struct acc_of<float> { typedef double type; };
template <> struct acc_of<double> { typedef double type; };

// Ti is the input type: over bools, max and min start from false and true.
template <class Ti, class A> __device__ __forceinline__ A reduce_identity(int op) {
  const bool logical = is_same<Ti, b8>::value;
  switch (op) {
    case R_sum: return A(0);
    case R_prod: return A(1);
    case R_max: return logical ? A(0) : lowest<A>();
    default: return logical ? A(1) : highest<A>();
  }
}

template <class A> __device__ __forceinline__ A reduce_combine(int op, A a, A b) {
  switch (op) {
    case R_sum:
      if constexpr (is_float<A>::value) return a + b;
      else return wrap_add(a, b);
    case R_prod:
      if constexpr (is_float<A>::value) return a * b;
      else return wrap_mul(a, b);
    default:  // max/min; NaN wins
      if (a != a) return a;
      if (b != b) return b;
      return op == R_max ? (b > a ? b : a) : (b < a ? b : a);
  }
}

template <class To, class A> __device__ __forceinline__ To from_acc(A v) {
  if constexpr (is_same<To, b8>::value) return v != A(0);
  else return (To)v;
}

template <class Ti, class To>
__device__ __forceinline__ void reduce_kernel(const Ti* __restrict__ x, To* __restrict__ out,
                                              i64 nout, i64 nred, int nk,
                                              const i64* __restrict__ kmeta, int nr,
                                              const i64* __restrict__ rmeta, int op, int mode) {
  typedef typename acc_of<Ti>::type A;
  if (mode == 1) {
    GENESIS_FOR(o, nout) {
      i64 ko[2];
      strided_offsets<2>(o, nk, kmeta, ko);
      A acc = reduce_identity<Ti, A>(op);
      for (i64 j = 0; j < nred; ++j) {
        i64 ro[1];
        strided_offsets<1>(j, nr, rmeta, ro);
        acc = reduce_combine<A>(op, acc, (A)x[ko[0] + ro[0]]);
      }
      out[ko[1]] = from_acc<To, A>(acc);
    }
    return;
  }
  __shared__ A scratch[32];
  for (i64 o = blockIdx.x; o < nout; o += gridDim.x) {
    i64 ko[2];
    strided_offsets<2>(o, nk, kmeta, ko);
    A acc = reduce_identity<Ti, A>(op);
    for (i64 j = threadIdx.x; j < nred; j += blockDim.x) {
      i64 ro[1];
      strided_offsets<1>(j, nr, rmeta, ro);
      acc = reduce_combine<A>(op, acc, (A)x[ko[0] + ro[0]]);
    }
    acc = block_reduce(acc, scratch, [op](A a, A b) { return reduce_combine<A>(op, a, b); });
    if (threadIdx.x == 0) out[ko[1]] = from_acc<To, A>(acc);
  }
}

// ------------------------------------------------------------------ arg max/min
// (value, index) a is preferred to b: the extreme value, NaN first, ties to the
// lower index; index -1 marks "no element yet".
template <class A>
__device__ __forceinline__ bool arg_better(A av, i64 ai, A bv, i64 bi, int is_max) {
  if (bi < 0) return true;
  if (ai < 0) return false;
  const bool an = av != av, bn = bv != bv;
  if (an || bn) return an && bn ? ai < bi : an;
  if (av == bv) return ai < bi;
  return is_max ? av > bv : av < bv;
}

template <class T>
__device__ __forceinline__ void reduce_arg_kernel(const T* __restrict__ x, T* __restrict__ values,
                                                  i64* __restrict__ indices, i64 nlines, i64 n,
                                                  i64 sx, int nk, const i64* __restrict__ kmeta,
                                                  int is_max) {
  typedef typename acc_of<T>::type A;
  __shared__ A sv[32];
  __shared__ i64 si[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  for (i64 line = blockIdx.x; line < nlines; line += gridDim.x) {
    i64 off[3];
    strided_offsets<3>(line, nk, kmeta, off);
    A bv = A(0);
    i64 bi = -1;
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
      const A v = (A)x[off[0] + j * sx];
      if (arg_better(v, j, bv, bi, is_max)) bv = v, bi = j;
    }
    for (int o = 16; o > 0; o >>= 1) {
      const A ov = __shfl_xor_sync(GENESIS_FULL_MASK, bv, o);
      const i64 oi = __shfl_xor_sync(GENESIS_FULL_MASK, bi, o);
      if (arg_better(ov, oi, bv, bi, is_max)) bv = ov, bi = oi;
    }
    __syncthreads();  // the previous line's results have been read
    if (lane == 0) sv[warp] = bv, si[warp] = bi;
    __syncthreads();
    if (warp == 0) {
      bv = lane < nwarps ? sv[lane] : A(0);
      bi = lane < nwarps ? si[lane] : -1;
      for (int o = 16; o > 0; o >>= 1) {
        const A ov = __shfl_xor_sync(GENESIS_FULL_MASK, bv, o);
        const i64 oi = __shfl_xor_sync(GENESIS_FULL_MASK, bi, o);
        if (arg_better(ov, oi, bv, bi, is_max)) bv = ov, bi = oi;
      }
      if (lane == 0) {
        values[off[1]] = from_acc<T, A>(bv);
        indices[off[2]] = bi;
      }
    }
  }
}

// ------------------------------------------------------------------ cumsum
// Chunks of blockDim elements: each warp scans with __shfl_up_sync, warp 0
// scans the warp totals, and a carry moves the running sum to the next chunk.
template <class T>
__device__ __forceinline__ void cumsum_kernel(const T* __restrict__ x, T* __restrict__ out,
                                              i64 nlines, i64 n, i64 sx, i64 so, int nk,
                                              const i64* __restrict__ kmeta) {
  typedef typename acc_of<T>::type A;
  __shared__ A totals[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  for (i64 line = blockIdx.x; line < nlines; line += gridDim.x) {
    i64 off[2];
    strided_offsets<2>(line, nk, kmeta, off);
    A carry = A(0);
    for (i64 base = 0; base < n; base += blockDim.x) {
      const i64 j = base + threadIdx.x;
      A v = j < n ? (A)x[off[0] + j * sx] : A(0);
      for (int o = 1; o < 32; o <<= 1) {
        const A w = __shfl_up_sync(GENESIS_FULL_MASK, v, o);
        if (lane >= o) v = reduce_combine<A>(R_sum, v, w);
      }
      if (lane == 31) totals[warp] = v;
      __syncthreads();
      if (warp == 0) {
        A t = lane < nwarps ? totals[lane] : A(0);
        for (int o = 1; o < 32; o <<= 1) {
          const A w = __shfl_up_sync(GENESIS_FULL_MASK, t, o);
          if (lane >= o) t = reduce_combine<A>(R_sum, t, w);
        }
        if (lane < nwarps) totals[lane] = t;  // inclusive prefix of the warp totals
      }
      __syncthreads();
      if (warp > 0) v = reduce_combine<A>(R_sum, v, totals[warp - 1]);
      v = reduce_combine<A>(R_sum, v, carry);
      if (j < n) out[off[1] + j * so] = from_acc<T, A>(v);
      carry = reduce_combine<A>(R_sum, carry, totals[nwarps - 1]);
      __syncthreads();  // totals is rewritten by the next chunk
    }
  }
}

// ------------------------------------------------------------------ softmax
template <class T> __device__ __forceinline__ T max_nan(T a, T b) {
  if (a != a) return a;
  if (b != b) return b;
  return b > a ? b : a;
}

template <class T>
__device__ __forceinline__ void softmax_kernel(const T* __restrict__ x, T* __restrict__ out,
                                               i64 nlines, i64 n, i64 sx, i64 so, int nk,
                                               const i64* __restrict__ kmeta, int log) {
  __shared__ T scratch[32];
  for (i64 line = blockIdx.x; line < nlines; line += gridDim.x) {
    i64 off[2];
    strided_offsets<2>(line, nk, kmeta, off);
    const T* xl = x + off[0];
    T* ol = out + off[1];
    T m = -infinity<T>();
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) m = max_nan(m, xl[j * sx]);
    m = block_reduce(m, scratch, [](T a, T b) { return max_nan(a, b); });
    if (m == -infinity<T>()) m = T(0);  // all -inf: 0/0 = NaN, as PyTorch
    T s = T(0);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) s += m_exp(xl[j * sx] - m);
    s = block_reduce(s, scratch, [](T a, T b) { return a + b; });
    if (log) {
      const T ls = m_log(s);
      for (i64 j = threadIdx.x; j < n; j += blockDim.x) ol[j * so] = (xl[j * sx] - m) - ls;
    } else {
      const T inv = T(1) / s;
      for (i64 j = threadIdx.x; j < n; j += blockDim.x) ol[j * so] = m_exp(xl[j * sx] - m) * inv;
    }
  }
}

// softmax:     out = y * (g - sum(g * y))
// log_softmax: out = g - exp(y) * sum(g)        (sums along the line)
template <class T>
__device__ __forceinline__ void softmax_backward_kernel(const T* __restrict__ y,
                                                        const T* __restrict__ g,
                                                        T* __restrict__ out, i64 nlines, i64 n,
                                                        i64 sy, i64 sg, i64 so, int nk,
                                                        const i64* __restrict__ kmeta, int log) {
  __shared__ T scratch[32];
  for (i64 line = blockIdx.x; line < nlines; line += gridDim.x) {
    i64 off[3];
    strided_offsets<3>(line, nk, kmeta, off);
    const T* yl = y + off[0];
    const T* gl = g + off[1];
    T* ol = out + off[2];
    T dot = T(0);
    for (i64 j = threadIdx.x; j < n; j += blockDim.x)
      dot += log ? gl[j * sg] : gl[j * sg] * yl[j * sy];
    dot = block_reduce(dot, scratch, [](T a, T b) { return a + b; });
    for (i64 j = threadIdx.x; j < n; j += blockDim.x)
      ol[j * so] = log ? gl[j * sg] - m_exp(yl[j * sy]) * dot : yl[j * sy] * (gl[j * sg] - dot);
  }
}

// ------------------------------------------------------------------ entry points
#define GENESIS_REDUCE(Ti, si, To, so)                                                       \
  extern "C" __global__ void reduce_##si##_##so(const Ti* x, To* out, i64 nout, i64 nred,     \
                                                int nk, const i64* kmeta, int nr,             \
                                                const i64* rmeta, int op, int mode) {         \
    reduce_kernel<Ti, To>(x, out, nout, nred, nk, kmeta, nr, rmeta, op, mode);                \
  }
GENESIS_REDUCE(float, f32, float, f32)
GENESIS_REDUCE(double, f64, double, f64)
GENESIS_REDUCE(int, i32, int, i32)
GENESIS_REDUCE(i64, i64, i64, i64)
GENESIS_REDUCE(b8, b8, b8, b8)
GENESIS_REDUCE(int, i32, i64, i64)
GENESIS_REDUCE(b8, b8, i64, i64)
#undef GENESIS_REDUCE

#define GENESIS_ALONG(T, s)                                                                  \
  extern "C" __global__ void reduce_arg_##s(const T* x, T* values, i64* indices, i64 nlines,  \
                                            i64 n, i64 sx, int nk, const i64* kmeta,          \
                                            int is_max) {                                     \
    reduce_arg_kernel<T>(x, values, indices, nlines, n, sx, nk, kmeta, is_max);               \
  }                                                                                           \
  extern "C" __global__ void cumsum_##s(const T* x, T* out, i64 nlines, i64 n, i64 sx,        \
                                        i64 so, int nk, const i64* kmeta) {                   \
    cumsum_kernel<T>(x, out, nlines, n, sx, so, nk, kmeta);                                   \
  }
GENESIS_ALONG(float, f32)
GENESIS_ALONG(double, f64)
GENESIS_ALONG(int, i32)
GENESIS_ALONG(i64, i64)
GENESIS_ALONG(b8, b8)
#undef GENESIS_ALONG

#define GENESIS_SOFTMAX(T, s)                                                                \
  extern "C" __global__ void softmax_##s(const T* x, T* out, i64 nlines, i64 n, i64 sx,       \
                                         i64 so, int nk, const i64* kmeta, int log) {         \
    softmax_kernel<T>(x, out, nlines, n, sx, so, nk, kmeta, log);                             \
  }                                                                                           \
  extern "C" __global__ void softmax_backward_##s(const T* y, const T* g, T* out, i64 nlines, \
                                                  i64 n, i64 sy, i64 sg, i64 so, int nk,      \
                                                  const i64* kmeta, int log) {                \
    softmax_backward_kernel<T>(y, g, out, nlines, n, sy, sg, so, nk, kmeta, log);             \
  }
GENESIS_SOFTMAX(float, f32)
GENESIS_SOFTMAX(double, f64)
#undef GENESIS_SOFTMAX
