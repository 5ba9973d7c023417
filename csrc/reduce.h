// Reductions, scans and softmax.  An output View has the input's ndim with
// size 1 on every reduced dimension (keepdim layout); Python squeezes after.
#pragma once
#include "view.h"

namespace genesis {

enum class ReduceOp : int { sum, prod, max, min, count_ };

#define GENESIS_DECLARE_REDUCE(ns)                                                 \
  namespace ns {                                                                   \
  /* out[i] = op over x of the dims where out.shape[d] == 1.  Same dtype for x   \
     and out (f32, f64, i32, i64, bool: max/min = any/all), except that sum and  \
     prod of integers or bools may write int64.  Float sums                      \
     accumulate in double-or-pairwise fashion so 16M-element sums stay accurate. \
     NaN propagates through max/min.  Callers never pass an empty max/min. */     \
  void reduce(ReduceOp op, const View& x, const View& out);                       \
  /* max/min along one dim with the index of the first extreme element.         \
     values has x's dtype, indices int64; both keepdim-shaped. NaN wins. */      \
  void reduce_arg(bool is_max, const View& x, int dim, const View& values,        \
                  const View& indices);                                           \
  /* inclusive cumulative sum along dim; out same shape/dtype as x. */            \
  void cumsum(const View& x, int dim, const View& out);                          \
  /* softmax (log_softmax if log) along dim, max-subtracted so logits of any     \
     magnitude are stable; out same shape/dtype as x (f32/f64). */               \
  void softmax(const View& x, int dim, bool log, const View& out);               \
  /* gradient of softmax given its output y and upstream grad g:                 \
     softmax:      out = y * (g - sum(g * y))                                    \
     log_softmax:  out = g - exp(y) * sum(g)      (sums along dim) */            \
  void softmax_backward(const View& y, const View& g, int dim, bool log,          \
                        const View& out);                                         \
  }

GENESIS_DECLARE_REDUCE(generic)
GENESIS_DECLARE_REDUCE(avx2)
GENESIS_DECLARE_REDUCE(avx512)

}  // namespace genesis
