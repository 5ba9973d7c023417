// Fused optimizer updates: one pass over each parameter and its state buffers,
// in place.  Each follows the single-tensor update of PyTorch's optimizer of
// the same name, operation for operation, so trajectories agree with it.
//
// Every array is contiguous and has the parameter's shape and dtype (f32 or
// f64); optional buffers are null when unused.  Scalars are taken as doubles
// and rounded to the parameter's dtype where PyTorch rounds them (its tensor
// ops take Python scalars in the tensor's dtype).  `step` is the parameter's
// step counter: a float32 scalar in host memory that the update increments
// first, then reads to derive bias corrections or learning-rate decay.
#pragma once
#include "view.h"

namespace genesis {

struct SgdArgs {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize;
  bool init_buffer;  // first step with momentum: the buffer becomes the gradient
};

struct AdamArgs {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled_weight_decay;  // AdamW: param *= 1 - lr * weight_decay
  bool maximize;
};

struct RmspropArgs {
  double lr, alpha, eps, weight_decay, momentum;
  bool maximize;
};

struct AdagradArgs {
  double lr, lr_decay, weight_decay, eps;
  bool maximize;
};

#define GENESIS_DECLARE_OPTIM(ns)                                                   \
  namespace ns {                                                                    \
  /* momentum_buffer is null when momentum == 0. */                                 \
  void sgd_update(const View& param, const View& grad, const View* momentum_buffer, \
                  const SgdArgs& args);                                             \
  /* max_exp_avg_sq non-null selects AMSGrad. */                                    \
  void adam_update(const View& param, const View& grad, const View& exp_avg,        \
                   const View& exp_avg_sq, const View* max_exp_avg_sq,              \
                   const View& step, const AdamArgs& args);                         \
  /* grad_avg non-null selects the centered variant; momentum_buffer is null     \
     exactly when momentum == 0. */                                                 \
  void rmsprop_update(const View& param, const View& grad, const View& square_avg,  \
                      const View* grad_avg, const View* momentum_buffer,            \
                      const View& step, const RmspropArgs& args);                   \
  void adagrad_update(const View& param, const View& grad, const View& state_sum,   \
                      const View& step, const AdagradArgs& args);                   \
  }

GENESIS_DECLARE_OPTIM(generic)
GENESIS_DECLARE_OPTIM(avx2)
GENESIS_DECLARE_OPTIM(avx512)

}  // namespace genesis
