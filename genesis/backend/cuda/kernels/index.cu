// Indexing kernels: gather/scatter_add, advanced indexing, nonzero, sort/topk,
// one_hot (the CUDA counterpart of csrc/index.cpp).  Indices are int64.
//
// Every index is bounds-checked: a kernel that finds a bad one records its
// position with flag_position (common.cuh) and writes nothing for it; the
// caller turns the flag into IndexError naming the index and the size.  Ops
// that update in place (scatter_add, index_put) run check_index first, so a
// bad index leaves the destination untouched, as on the CPU.
#include "common.cuh"

// Flags the first i (row-major over meta's shape) whose index falls outside
// [0, size) (or [-size, size) with wrap); size = sizes[i / per].
extern "C" __global__ void check_index(const i64* __restrict__ idx, i64 n, int ndim,
                                       const i64* __restrict__ meta,
                                       const i64* __restrict__ sizes, i64 per, int wrap,
                                       i64* err) {
  GENESIS_FOR(i, n) {
    i64 off[1];
    strided_offsets<1>(i, ndim, meta, off);
    const i64 v = idx[off[0]], size = sizes[i / per];
    if (v < (wrap ? -size : 0) || v >= size) flag_position(err, i);
  }
}

// ------------------------------------------------------------------ gather / scatter_add
// meta: index shape, then the strides of index, out (gather) or src (scatter),
// and x or out with the indexed dim's stride set to 0 (it comes from the index).
template <class T>
__device__ __forceinline__ void gather_kernel(const T* __restrict__ x, const i64* __restrict__ index,
                                              T* __restrict__ out, i64 n, int ndim,
                                              const i64* __restrict__ meta, i64 size,
                                              i64 dstride, i64* err) {
  GENESIS_FOR(i, n) {
    i64 off[3];
    strided_offsets<3>(i, ndim, meta, off);
    const i64 v = index[off[0]];
    if (v < 0 || v >= size) {
      flag_position(err, i);
      continue;
    }
    out[off[1]] = x[off[2] + v * dstride];
  }
}

// Integers add through the unsigned atomics (two's complement wraps alike).
__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int* p, int v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(i64* p, i64 v) {
  atomicAdd((unsigned long long*)p, (unsigned long long)v);
}

// out[..., index[i], ...] += src[i]; colliding indices meet in atomics.
template <class T>
__device__ __forceinline__ void scatter_add_kernel(T* out, const i64* __restrict__ index,
                                                   const T* __restrict__ src, i64 n, int ndim,
                                                   const i64* __restrict__ meta, i64 dstride) {
  GENESIS_FOR(i, n) {
    i64 off[3];
    strided_offsets<3>(i, ndim, meta, off);
    atomic_add(&out[off[2] + index[off[0]] * dstride], src[off[1]]);
  }
}

// ------------------------------------------------------------------ advanced indexing
// idx holds k index arrays stacked contiguously, (k, nB), already checked;
// ks holds the k indexed sizes then the k strides of the indexed tensor.
// Element i = (b, t): b walks B (bmeta: shape, then strides of the other
// operand over B), t walks the trailing slice (tmeta: shape, then the
// strides of the indexed tensor and of the other operand).
__device__ __forceinline__ i64 indexed_offset(const i64* __restrict__ idx, i64 b, i64 nB, int k,
                                              const i64* __restrict__ ks) {
  i64 off = 0;
  for (int j = 0; j < k; ++j) {
    const i64 v = idx[j * nB + b], size = ks[j];
    off += (v < 0 ? v + size : v) * ks[k + j];
  }
  return off;
}

template <class T>
__device__ __forceinline__ void index_gather_kernel(const T* __restrict__ x,
                                                    const i64* __restrict__ idx,
                                                    T* __restrict__ out, i64 nB, i64 tn, int k,
                                                    const i64* __restrict__ ks, int nbd,
                                                    const i64* __restrict__ bmeta, int ntd,
                                                    const i64* __restrict__ tmeta) {
  GENESIS_FOR(i, nB * tn) {
    const i64 b = i / tn, t = i - b * tn;
    i64 bo[1], to[2];
    strided_offsets<1>(b, nbd, bmeta, bo);
    strided_offsets<2>(t, ntd, tmeta, to);
    out[bo[0] + to[1]] = x[indexed_offset(idx, b, nB, k, ks) + to[0]];
  }
}

// dst[idx[b], t] = src[b, t] (or += with accumulate).  Without accumulate,
// which of several writes to one element wins is unspecified (as in PyTorch).
template <class T>
__device__ __forceinline__ void index_put_kernel(T* dst, const i64* __restrict__ idx,
                                                 const T* __restrict__ src, i64 nB, i64 tn, int k,
                                                 const i64* __restrict__ ks, int nbd,
                                                 const i64* __restrict__ bmeta, int ntd,
                                                 const i64* __restrict__ tmeta, int accumulate) {
  GENESIS_FOR(i, nB * tn) {
    const i64 b = i / tn, t = i - b * tn;
    i64 bo[1], to[2];
    strided_offsets<1>(b, nbd, bmeta, bo);
    strided_offsets<2>(t, ntd, tmeta, to);
    T* d = &dst[indexed_offset(idx, b, nB, k, ks) + to[0]];
    const T v = src[bo[0] + to[1]];
    if constexpr (is_same<T, b8>::value) {
      *d = v;
    } else {
      if (accumulate) atomic_add(d, v);
      else *d = v;
    }
  }
}

// ------------------------------------------------------------------ nonzero
// flags[i] = mask[i] != 0 and csum its inclusive scan (both contiguous, in the
// mask's row-major order); the true element i goes to row csum[i] - 1.
extern "C" __global__ void nonzero_write(const i64* __restrict__ flags,
                                         const i64* __restrict__ csum, i64* __restrict__ out,
                                         i64 n, int ndim, const i64* __restrict__ shape) {
  GENESIS_FOR(i, n) {
    if (!flags[i]) continue;
    i64* row = out + (csum[i] - 1) * ndim;
    i64 rest = i;
    for (int d = ndim - 1; d >= 0; --d) {
      const i64 q = rest / shape[d];
      row[d] = rest - q * shape[d];
      rest = q;
    }
  }
}

// ------------------------------------------------------------------ sort / topk
// One block per line: the line is copied to scratch padded to P (a power of
// two) and bitonic-sorted there with a barrier between stages.  Elements are
// (value, position) pairs compared as the CPU's stable sort orders them (NaN
// largest, ties by position), so the network gives the stable order; padding
// (position -1) sorts after everything.
template <class T> __device__ __forceinline__ bool less_nan_last(T a, T b) {
  if constexpr (is_float<T>::value) return a == a && (b != b || a < b);
  else return a < b;
}

template <class T>
__device__ __forceinline__ bool sorts_before(T av, i64 ai, T bv, i64 bi, int descending) {
  if (ai < 0 || bi < 0) return bi < 0 && ai >= 0;
  if (descending) return less_nan_last(bv, av) || (!less_nan_last(av, bv) && ai < bi);
  return less_nan_last(av, bv) || (!less_nan_last(bv, av) && ai < bi);
}

template <class T>
__device__ __forceinline__ void sort_kernel(const T* __restrict__ x, T* __restrict__ values,
                                            i64* __restrict__ indices, T* sv, i64* si, i64 nlines,
                                            i64 n, i64 P, i64 k, i64 sx, i64 svs, i64 sis, int nk,
                                            const i64* __restrict__ kmeta, int descending) {
  for (i64 line = blockIdx.x; line < nlines; line += gridDim.x) {
    i64 off[3];
    strided_offsets<3>(line, nk, kmeta, off);
    T* v = sv + blockIdx.x * P;  // each block sorts in its own scratch row
    i64* p = si + blockIdx.x * P;
    for (i64 j = threadIdx.x; j < P; j += blockDim.x) {
      v[j] = j < n ? x[off[0] + j * sx] : T(0);
      p[j] = j < n ? j : -1;
    }
    __syncthreads();
    for (i64 size = 2; size <= P; size <<= 1) {
      for (i64 stride = size >> 1; stride > 0; stride >>= 1) {
        for (i64 i = threadIdx.x; i < P; i += blockDim.x) {
          const i64 j = i ^ stride;
          if (j <= i) continue;
          const bool up = (i & size) == 0;  // this pair's run sorts ascending
          const bool swap = up ? sorts_before(v[j], p[j], v[i], p[i], descending)
                               : sorts_before(v[i], p[i], v[j], p[j], descending);
          if (swap) {
            const T tv = v[i];
            v[i] = v[j];
            v[j] = tv;
            const i64 tp = p[i];
            p[i] = p[j];
            p[j] = tp;
          }
        }
        __syncthreads();
      }
    }
    for (i64 j = threadIdx.x; j < k; j += blockDim.x) {
      values[off[1] + j * svs] = v[j];
      indices[off[2] + j * sis] = p[j];
    }
    __syncthreads();  // the scratch row is reused by this block's next line
  }
}

// ------------------------------------------------------------------ one_hot
// out[..., c] = (index[...] == c); meta: index shape, index strides, out strides.
template <class T>
__device__ __forceinline__ void one_hot_kernel(const i64* __restrict__ index, T* __restrict__ out,
                                               i64 n, int ndim, const i64* __restrict__ meta,
                                               i64 C, i64 cs, i64* err) {
  GENESIS_FOR(i, n) {
    i64 off[2];
    strided_offsets<2>(i, ndim, meta, off);
    const i64 c = index[off[0]];
    if (c < 0 || c >= C) {
      flag_position(err, i);
      continue;
    }
    for (i64 j = 0; j < C; ++j) out[off[1] + j * cs] = T(j == c);
  }
}

// ------------------------------------------------------------------ entry points
#define GENESIS_INDEX(T, s)                                                                  \
  extern "C" __global__ void gather_##s(const T* x, const i64* index, T* out, i64 n,          \
                                        int ndim, const i64* meta, i64 size, i64 dstride,     \
                                        i64* err) {                                           \
    gather_kernel<T>(x, index, out, n, ndim, meta, size, dstride, err);                       \
  }                                                                                           \
  extern "C" __global__ void index_gather_##s(const T* x, const i64* idx, T* out, i64 nB,     \
                                              i64 tn, int k, const i64* ks, int nbd,          \
                                              const i64* bmeta, int ntd, const i64* tmeta) {  \
    index_gather_kernel<T>(x, idx, out, nB, tn, k, ks, nbd, bmeta, ntd, tmeta);               \
  }                                                                                           \
  extern "C" __global__ void index_put_##s(T* dst, const i64* idx, const T* src, i64 nB,      \
                                           i64 tn, int k, const i64* ks, int nbd,             \
                                           const i64* bmeta, int ntd, const i64* tmeta,       \
                                           int accumulate) {                                  \
    index_put_kernel<T>(dst, idx, src, nB, tn, k, ks, nbd, bmeta, ntd, tmeta, accumulate);    \
  }                                                                                           \
  extern "C" __global__ void sort_##s(const T* x, T* values, i64* indices, T* sv, i64* si,    \
                                      i64 nlines, i64 n, i64 P, i64 k, i64 sx, i64 svs,       \
                                      i64 sis, int nk, const i64* kmeta, int descending) {    \
    sort_kernel<T>(x, values, indices, sv, si, nlines, n, P, k, sx, svs, sis, nk, kmeta,      \
                   descending);                                                               \
  }                                                                                           \
  extern "C" __global__ void one_hot_##s(const i64* index, T* out, i64 n, int ndim,           \
                                         const i64* meta, i64 C, i64 cs, i64* err) {          \
    one_hot_kernel<T>(index, out, n, ndim, meta, C, cs, err);                                 \
  }
GENESIS_INDEX(float, f32)
GENESIS_INDEX(double, f64)
GENESIS_INDEX(int, i32)
GENESIS_INDEX(i64, i64)
GENESIS_INDEX(b8, b8)
#undef GENESIS_INDEX

#define GENESIS_SCATTER(T, s)                                                                \
  extern "C" __global__ void scatter_add_##s(T* out, const i64* index, const T* src, i64 n,   \
                                             int ndim, const i64* meta, i64 dstride) {        \
    scatter_add_kernel<T>(out, index, src, n, ndim, meta, dstride);                           \
  }
GENESIS_SCATTER(float, f32)
GENESIS_SCATTER(double, f64)
GENESIS_SCATTER(int, i32)
GENESIS_SCATTER(i64, i64)
#undef GENESIS_SCATTER
