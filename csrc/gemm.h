// Matrix multiplication: our own packed, register-blocked, multi-threaded GEMM.
#pragma once
#include "view.h"

namespace genesis {

#define GENESIS_DECLARE_GEMM(ns)                                                   \
  namespace ns {                                                                   \
  /* out[..., M, N] (+)= a[..., M, K] @ b[..., K, N].  a and b may have any      \
     strides (transposed operands are handled while packing, never copied       \
     first); their batch dims are already broadcast to out's (0 strides ok).    \
     out is C-contiguous.  dtype f32 or f64, the same for all three.  With      \
     accumulate the product is added to out, otherwise out is overwritten      \
     (K == 0 gives zeros). */                                                    \
  void matmul(const View& a, const View& b, const View& out, bool accumulate);    \
  }

GENESIS_DECLARE_GEMM(generic)
GENESIS_DECLARE_GEMM(avx2)
GENESIS_DECLARE_GEMM(avx512)

}  // namespace genesis
