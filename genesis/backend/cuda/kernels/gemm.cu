// Matrix multiplication: our own tiled shared-memory GEMM (the CUDA
// counterpart of csrc/gemm.cpp; no cuBLAS).
//
// C[b][M, N] = A[b][M, K] @ B[b][K, N] for every batch index b.  A block
// computes a 64 x 64 tile of C with 256 threads, each a 4 x 4 register tile;
// per step it stages a 64 x 16 panel of A (stored transposed, so a thread
// reads its four rows as one row of the panel) and a 16 x 64 panel of B in
// shared memory.  Operands may have any strides (transposed or broadcast
// operands are read in place); batch dims come in `bmeta` (shape, then the
// strides of A, B and C), walked by blockIdx.z.
#include "common.cuh"

#define TM 64
#define TN 64
#define TK 16

template <class T>
__device__ __forceinline__ void matmul_kernel(const T* __restrict__ A, const T* __restrict__ B,
                                              T* __restrict__ C, i64 M, i64 N, i64 K, i64 sam,
                                              i64 sak, i64 sbk, i64 sbn, i64 scm, i64 scn,
                                              i64 nbatch, int nb, const i64* __restrict__ bmeta) {
  __shared__ T As[TK][TM];
  __shared__ T Bs[TK][TN];
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const i64 m0 = (i64)blockIdx.y * TM, n0 = (i64)blockIdx.x * TN;
  for (i64 batch = blockIdx.z; batch < nbatch; batch += gridDim.z) {
    i64 off[3];
    strided_offsets<3>(batch, nb, bmeta, off);
    const T* a = A + off[0];
    const T* b = B + off[1];
    T acc[4][4];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
    for (i64 k0 = 0; k0 < K; k0 += TK) {
      for (int r = 0; r < 4; ++r) {
        const int e = t + 256 * r;
        const int am = e / TK, ak = e % TK;  // consecutive threads read along k
        const i64 gm = m0 + am, gk = k0 + ak;
        As[ak][am] = (gm < M && gk < K) ? a[gm * sam + gk * sak] : T(0);
        const int bk = e / TN, bn = e % TN;  // consecutive threads read along n
        const i64 hk = k0 + bk, hn = n0 + bn;
        Bs[bk][bn] = (hk < K && hn < N) ? b[hk * sbk + hn * sbn] : T(0);
      }
      __syncthreads();  // the panels are complete
      for (int kk = 0; kk < TK; ++kk) {
        T av[4], bv[4];
        for (int i = 0; i < 4; ++i) av[i] = As[kk][ty * 4 + i];
        for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx * 4 + j];
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
      }
      __syncthreads();  // everyone is done with the panels before they are overwritten
    }
    T* c = C + off[2];
    for (int i = 0; i < 4; ++i) {
      const i64 gm = m0 + ty * 4 + i;
      for (int j = 0; j < 4; ++j) {
        const i64 gn = n0 + tx * 4 + j;
        if (gm < M && gn < N) c[gm * scm + gn * scn] = acc[i][j];
      }
    }
  }
}

#define GENESIS_MATMUL(T, s)                                                                 \
  extern "C" __global__ void matmul_##s(const T* A, const T* B, T* C, i64 M, i64 N, i64 K,    \
                                        i64 sam, i64 sak, i64 sbk, i64 sbn, i64 scm, i64 scn, \
                                        i64 nbatch, int nb, const i64* bmeta) {               \
    matmul_kernel<T>(A, B, C, M, N, K, sam, sak, sbk, sbn, scm, scn, nbatch, nb, bmeta);      \
  }
GENESIS_MATMUL(float, f32)
GENESIS_MATMUL(double, f64)
#undef GENESIS_MATMUL
