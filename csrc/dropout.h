// Dropout: the random numbers come from the caller (genesis's generator), so
// the kernel is deterministic given them.
#pragma once
#include "view.h"

namespace genesis {

#define GENESIS_DECLARE_DROPOUT(ns)                                                 \
  namespace ns {                                                                    \
  /* x and out are contiguous with the same shape and float dtype; u and mask are  \
     contiguous with R elements of that dtype, R dividing numel(x), so that x is   \
     R rows of numel(x) / R elements (R = numel(x) for dropout, N * C for          \
     dropout2d).  mask[r] = (u[r] >= p) / (1 - p) (0 everywhere when p == 1) and   \
     out[r, i] = x[r, i] * mask[r], so NaN and inf inputs stay NaN when dropped,   \
     as in PyTorch.  0 <= p <= 1. */                                                \
  void dropout(const View& x, const View& u, double p, const View& out,            \
               const View& mask);                                                   \
  }

GENESIS_DECLARE_DROPOUT(generic)
GENESIS_DECLARE_DROPOUT(avx2)
GENESIS_DECLARE_DROPOUT(avx512)

}  // namespace genesis
