// Normalization kernels: batch norm, layer norm and group norm, forward and
// backward.  Inputs and upstream gradients must be contiguous (the backend
// makes them so); per-channel vectors (weight, bias, running statistics) may
// be strided 1-D Views, because running statistics are updated in place in
// the caller's memory.  Layer norm's weight and bias must be contiguous.
// Absent optional operands are nullptr.  All operands share one float dtype
// (f32 or f64); statistics are accumulated in double.
#pragma once
#include "view.h"

namespace genesis {

#define GENESIS_DECLARE_NORM(ns)                                                      \
  namespace ns {                                                                      \
  /* x is (N, C, *).  Training: per-channel mean and biased variance of x; when     \
     running_mean/var are given they become (1 - momentum) * running + momentum *   \
     stat, with the unbiased variance.  Eval: the running statistics are used.       \
     out = (x - mean) * invstd * weight + bias; save_mean and save_invstd (C        \
     elements each, contiguous) receive the statistics used. */                       \
  void batch_norm_forward(const View& x, const View* weight, const View* bias,       \
                          const View* running_mean, const View* running_var,         \
                          bool training, double momentum, double eps, const View& out, \
                          const View& save_mean, const View& save_invstd);           \
  /* Gradients of batch_norm_forward given its saved statistics.  In training the   \
     statistics depend on x; in eval they are constants.  Any output may be null. */ \
  void batch_norm_backward(const View& grad, const View& x, const View* weight,      \
                           const View& save_mean, const View& save_invstd,           \
                           bool training, const View* grad_input,                    \
                           const View* grad_weight, const View* grad_bias);          \
  /* x is viewed as (M, K), K the product of its last norm_ndim dims; weight and     \
     bias hold K elements.  mean and rstd receive M elements each. */                \
  void layer_norm_forward(const View& x, int norm_ndim, const View* weight,          \
                          const View* bias, double eps, const View& out,             \
                          const View& mean, const View& rstd);                       \
  void layer_norm_backward(const View& grad, const View& x, int norm_ndim,           \
                           const View& mean, const View& rstd, const View* weight,   \
                           const View* grad_input, const View* grad_weight,          \
                           const View* grad_bias);                                   \
  /* x is (N, C, *) split into num_groups groups of C / num_groups channels;        \
     mean and rstd receive N * num_groups elements; weight/bias are per channel. */  \
  void group_norm_forward(const View& x, int64_t num_groups, const View* weight,     \
                          const View* bias, double eps, const View& out,             \
                          const View& mean, const View& rstd);                       \
  void group_norm_backward(const View& grad, const View& x, int64_t num_groups,      \
                           const View& mean, const View& rstd, const View* weight,   \
                           const View* grad_input, const View* grad_weight,          \
                           const View* grad_bias);                                   \
  }

GENESIS_DECLARE_NORM(generic)
GENESIS_DECLARE_NORM(avx2)
GENESIS_DECLARE_NORM(avx512)

}  // namespace genesis
