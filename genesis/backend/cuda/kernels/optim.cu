// Fused optimizer updates (the CUDA counterpart of csrc/optim.cpp): one
// grid-stride pass over a contiguous parameter that reads its gradient and
// state and writes the parameter and state back, in place.
//
// The arithmetic is csrc/optim.cpp's, operation for operation (PyTorch's
// single-tensor updates).  The scalars arrive already derived on the host
// (bias corrections, decayed learning rate) and rounded to the dtype where the
// CPU kernel rounds them.  Variant switches are kernel arguments, the same for
// every thread, so their branches never diverge; a buffer a variant does not
// use is passed as some other array of the dtype and never touched.
#include "common.cuh"

// torch.lerp with a scalar weight: the form used depends on |weight| < 0.5.
template <class T>
__device__ __forceinline__ T lerp(T self, T end, T w, T one_minus_w, bool small) {
  return small ? self + w * (end - self) : end - (end - self) * one_minus_w;
}

// maximize, then L2 weight decay: grad + weight_decay * param.
template <class T>
__device__ __forceinline__ T decayed_grad(T g, T p, bool maximize, bool decay, T wd) {
  const T d = maximize ? -g : g;
  return decay ? d + wd * p : d;
}

// SGD; `init` is the first step with momentum: the buffer becomes the gradient.
template <class T>
__device__ void sgd_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf,
                           i64 n, T wd, T mom, T keep, T neg_lr, int maximize, int decay,
                           int momentum, int init, int nesterov) {
  GENESIS_FOR(i, n) {
    T d = decayed_grad(g[i], p[i], maximize, decay, wd);
    if (momentum) {
      const T m = init ? d : buf[i] * mom + keep * d;
      buf[i] = m;
      d = nesterov ? d + mom * m : m;
    }
    p[i] = p[i] + neg_lr * d;
  }
}

// Adam / AdamW (`shrink` = 1 - lr * weight_decay, else exactly 1); AMSGrad
// keeps the running maximum of v in vmax.
template <class T>
__device__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                            T* __restrict__ v, T* __restrict__ vmax, i64 n, T shrink, T wd,
                            T w1, T one_minus_w1, T beta2, T w2, T neg_step_size, T bc2_sqrt,
                            T eps, int maximize, int l2, int small, int amsgrad) {
  GENESIS_FOR(i, n) {
    const T pi = p[i] * shrink;
    const T d = decayed_grad(g[i], pi, maximize, l2, wd);
    const T mi = lerp(m[i], d, w1, one_minus_w1, small);
    const T vi = v[i] * beta2 + w2 * d * d;
    m[i] = mi;
    v[i] = vi;
    T vd = vi;
    if (amsgrad) {
      const T old = vmax[i];  // torch.maximum: NaN propagates
      vd = (old != old || old > vi) ? old : vi;
      vmax[i] = vd;
    }
    const T denom = m_sqrt(vd) / bc2_sqrt + eps;
    p[i] = pi + neg_step_size * mi / denom;
  }
}

// RMSprop; `centered` subtracts the running mean of the gradient (ga) from the
// running square, `momentum` accumulates the step in buf.
template <class T>
__device__ void rmsprop_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ sq,
                               T* __restrict__ ga, T* __restrict__ buf, i64 n, T wd, T alpha,
                               T w, T one_minus_w, T eps, T mom, T neg_lr, int maximize,
                               int decay, int small, int centered, int momentum) {
  GENESIS_FOR(i, n) {
    const T d = decayed_grad(g[i], p[i], maximize, decay, wd);
    const T s = sq[i] * alpha + w * d * d;
    sq[i] = s;
    T avg;
    if (centered) {
      const T gi = lerp(ga[i], d, w, one_minus_w, small);
      ga[i] = gi;
      avg = m_sqrt(s + T(-1) * gi * gi);
    } else {
      avg = m_sqrt(s);
    }
    avg = avg + eps;
    if (momentum) {
      const T bi = buf[i] * mom + d / avg;
      buf[i] = bi;
      p[i] = p[i] + neg_lr * bi;
    } else {
      p[i] = p[i] + neg_lr * d / avg;
    }
  }
}

// Adagrad; neg_clr is the step's decayed learning rate, negated.
template <class T>
__device__ void adagrad_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ sum,
                               i64 n, T wd, T eps, T neg_clr, int maximize, int decay) {
  GENESIS_FOR(i, n) {
    const T d = decayed_grad(g[i], p[i], maximize, decay, wd);
    const T s = sum[i] + d * d;
    sum[i] = s;
    p[i] = p[i] + neg_clr * d / (m_sqrt(s) + eps);
  }
}

#define GENESIS_OPTIM(T, s)                                                                   \
  extern "C" __global__ void sgd_update_##s(T* p, const T* g, T* buf, i64 n, T wd, T mom,     \
                                            T keep, T neg_lr, int maximize, int decay,        \
                                            int momentum, int init, int nesterov) {           \
    sgd_update<T>(p, g, buf, n, wd, mom, keep, neg_lr, maximize, decay, momentum, init,       \
                  nesterov);                                                                  \
  }                                                                                           \
  extern "C" __global__ void adam_update_##s(T* p, const T* g, T* m, T* v, T* vmax, i64 n,    \
                                             T shrink, T wd, T w1, T one_minus_w1, T beta2,   \
                                             T w2, T neg_step_size, T bc2_sqrt, T eps,        \
                                             int maximize, int l2, int small, int amsgrad) {  \
    adam_update<T>(p, g, m, v, vmax, n, shrink, wd, w1, one_minus_w1, beta2, w2,              \
                   neg_step_size, bc2_sqrt, eps, maximize, l2, small, amsgrad);               \
  }                                                                                           \
  extern "C" __global__ void rmsprop_update_##s(T* p, const T* g, T* sq, T* ga, T* buf,       \
                                                i64 n, T wd, T alpha, T w, T one_minus_w,     \
                                                T eps, T mom, T neg_lr, int maximize,         \
                                                int decay, int small, int centered,           \
                                                int momentum) {                               \
    rmsprop_update<T>(p, g, sq, ga, buf, n, wd, alpha, w, one_minus_w, eps, mom, neg_lr,      \
                      maximize, decay, small, centered, momentum);                            \
  }                                                                                           \
  extern "C" __global__ void adagrad_update_##s(T* p, const T* g, T* sum, i64 n, T wd, T eps, \
                                                T neg_clr, int maximize, int decay) {         \
    adagrad_update<T>(p, g, sum, n, wd, eps, neg_clr, maximize, decay);                       \
  }

GENESIS_OPTIM(float, f32)
GENESIS_OPTIM(double, f64)
