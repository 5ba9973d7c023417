// Loss kernels: fused cross-entropy (log-softmax and NLL in one pass per row)
// and the class-label bounds check shared by the losses and embedding, and the
// squared-error sum of mse_loss.
//
// Cross-entropy sees its input as x (N, C, S): N samples, C classes along
// dim 1, S positions (the product of the trailing dims d1, ...).  One "row"
// is the C logits of one (n, s); rows are max-subtracted, so logits of any
// magnitude are stable.  Semantics are PyTorch's F.cross_entropy:
//
//   class targets y (N, S) int64, weights w (C) (all 1 when absent), smoothing e:
//     loss = (1 - e) w[y] (-logp[y]) + (e / C) sum_c w[c] (-logp[c]),  0 if y == ignore
//     mean divides the sum by total_weight = sum of w[y] over non-ignored rows
//   probability targets t (N, C, S) (same shape as x):
//     loss = -sum_c w[c] t'[c] logp[c],  t' = (1 - e) t + e / C
//     mean divides the sum by total_weight = N * S
//
// reduction: 0 none (out is (N, S)), 1 mean, 2 sum (out is 0-d).  lse (N, S)
// receives each row's log-sum-exp and total_weight (0-d float64) the divisor
// of the mean; the backward kernels take both back instead of recomputing.
// x, out, lse, w, t and gradients share one float dtype (f32 or f64).
#pragma once
#include <string>

#include "view.h"

namespace genesis {

#define GENESIS_DECLARE_LOSS(ns)                                                     \
  namespace ns {                                                                     \
  /* Throws std::out_of_range for the first label (row-major) outside [0, n) that  \
     is not `ignore` (when has_ignore): "<what> <label> is out of bounds <bound>". \
     labels are int64 or int32. */                                                 \
  void check_labels(const View& labels, int64_t n, bool has_ignore, int64_t ignore, \
                    const std::string& what, const std::string& bound);            \
  /* Forward with class targets; weight may be null.  Labels are bounds-checked   \
     before anything is written. */                                                \
  void cross_entropy(const View& x, const View& target, const View* weight,         \
                     int64_t ignore_index, double label_smoothing, int reduction,   \
                     const View& out, const View& lse, const View& total_weight);   \
  /* grad_input (N, C, S) = g * (softmax(x) * a - b) per row, where g is grad    \
     (N, S) (broadcast with 0 strides for a reduced loss) divided by             \
     total_weight for the mean; ignored rows get 0. */                             \
  void cross_entropy_backward(const View& x, const View& target, const View* weight,\
                              int64_t ignore_index, double label_smoothing,         \
                              int reduction, const View& lse,                       \
                              const View& total_weight, const View& grad,           \
                              const View& grad_input);                              \
  /* Forward with probability targets; weight may be null. */                      \
  void cross_entropy_prob(const View& x, const View& target, const View* weight,    \
                          double label_smoothing, int reduction, const View& out,   \
                          const View& lse, const View& total_weight);               \
  /* out (one element, the inputs' dtype) = scale * sum of (a - b)^2 over         \
     contiguous a and b of one shape and float dtype, summed in double: the        \
     forward of mse_loss's mean and sum in one pass over both. */                  \
  void squared_error_sum(const View& a, const View& b, double scale,               \
                         const View& out);                                         \
  /* Gradients for probability targets; grad_target (N, C, S) may be null. */       \
  void cross_entropy_prob_backward(const View& x, const View& target,               \
                                   const View* weight, double label_smoothing,      \
                                   int reduction, const View& lse,                  \
                                   const View& total_weight, const View& grad,      \
                                   const View& grad_input, const View* grad_target);\
  }

GENESIS_DECLARE_LOSS(generic)
GENESIS_DECLARE_LOSS(avx2)
GENESIS_DECLARE_LOSS(avx512)

}  // namespace genesis
