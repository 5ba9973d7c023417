// Fused optimizer updates (contract in optim.h).
//
// Each update is one loop over the parameter's elements that reads the
// gradient and state and writes the parameter and state back, so every buffer
// is touched once per step.  The arithmetic mirrors PyTorch's single-tensor
// implementations step by step (same operations, same order, scalars rounded
// to the tensor's dtype where PyTorch rounds them).  This file is compiled
// with -ffp-contract=off: no multiply-add is fused, so every instruction-set
// copy produces the same bits and a resumed run continues exactly.
//
// Which buffers a variant touches is a template parameter (no branch on it in
// the loop); cheap per-element choices such as weight decay are selects the
// compiler if-converts.  Work above kGrain elements is split across OpenMP
// threads in chunks that start on cache lines.
#include "optim.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace genesis::GENESIS_ISA_NS {
namespace {

constexpr int64_t kGrain = 1 << 14;

// `body` captures by value and each thread runs its own copy: the copy's
// scalars become registers, which stores through the array pointers provably
// cannot change, so the loop vectorizes.
template <class F>
void parallel_for(int64_t n, const F& body) {
  if (n <= kGrain) {
    F local = body;
    local(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    F local = body;
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = ((n + nt - 1) / nt + 63) & ~int64_t{63};
    const int64_t b = std::min(n, t * chunk), e = std::min(n, b + chunk);
    if (b < e) local(b, e);
  }
}

// ---------------------------------------------------------------- validation
std::string shape_str(const View& v) {
  std::string s = "(";
  for (int d = 0; d < v.ndim; ++d) {
    if (d) s += ", ";
    s += std::to_string(v.shape[d]);
  }
  return s + (v.ndim == 1 ? ",)" : ")");
}

void check_param(const char* op, const View& param) {
  if (param.dtype != DType::f32 && param.dtype != DType::f64)
    throw type_error(std::string(op) + ": param has dtype " + dtype_name(param.dtype) +
                     ", expected float32 or float64");
  if (!is_contiguous(param))
    throw std::invalid_argument(std::string(op) + ": param must be contiguous");
}

void check_like(const char* op, const char* name, const View& v, const View& param) {
  if (!same_shape(v, param))
    throw std::invalid_argument(std::string(op) + ": " + name + " has shape " + shape_str(v) +
                                " but param has shape " + shape_str(param));
  if (v.dtype != param.dtype)
    throw type_error(std::string(op) + ": " + name + " has dtype " + dtype_name(v.dtype) +
                     " but param has dtype " + dtype_name(param.dtype));
  if (!is_contiguous(v))
    throw std::invalid_argument(std::string(op) + ": " + name + " must be contiguous");
}

void check_step(const char* op, const View& step) {
  if (step.dtype != DType::f32 || numel(step) != 1)
    throw type_error(std::string(op) + ": step must be a float32 tensor with one element, got " +
                     dtype_name(step.dtype) + " of shape " + shape_str(step));
}

void check_buffer_matches(const char* op, const char* name, bool wanted, const View* buf,
                          const char* why) {
  if (wanted != (buf != nullptr))
    throw std::invalid_argument(std::string(op) + ": " + name + (wanted ? " is required " :
                                " must be omitted ") + why);
}

// The step counter is incremented first, as PyTorch does before using it.
double next_step(const View& step) {
  float& s = *static_cast<float*>(step.data);
  s = s + 1.0f;
  return s;
}

template <class T>
T* ptr(const View& v) {
  return static_cast<T*>(v.data);
}
template <class T>
T* ptr(const View* v) {
  return v ? static_cast<T*>(v->data) : nullptr;
}

// torch.lerp with a scalar weight: the form used depends on |weight| < 0.5.
template <class T>
inline T lerp(T self, T end, T w, T one_minus_w, bool small) {
  return small ? self + w * (end - self) : end - (end - self) * one_minus_w;
}

// maximize, then L2 weight decay: grad + weight_decay * param.
template <class T>
inline T decayed_grad(T g, T p, bool maximize, bool decay, T wd) {
  const T d = maximize ? -g : g;
  return decay ? d + wd * p : d;
}

// ---------------------------------------------------------------- SGD
template <class T, bool Momentum, bool Init, bool Nesterov>
void sgd_loop(const View& param, const View& grad, const View* buffer, const SgdArgs& a) {
  T* __restrict p = ptr<T>(param);
  const T* __restrict g = ptr<T>(grad);
  T* __restrict buf = ptr<T>(buffer);
  const bool maximize = a.maximize, decay = a.weight_decay != 0;
  const T wd = T(a.weight_decay), mom = T(a.momentum), keep = T(1 - a.dampening);
  const T neg_lr = T(-a.lr);
  parallel_for(numel(param), [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      T d = decayed_grad(g[i], p[i], maximize, decay, wd);
      if constexpr (Momentum) {
        T m;
        if constexpr (Init) m = d;
        else m = buf[i] * mom + keep * d;
        buf[i] = m;
        d = Nesterov ? d + mom * m : m;
      }
      p[i] = p[i] + neg_lr * d;
    }
  });
}

template <class T>
void sgd_typed(const View& param, const View& grad, const View* buf, const SgdArgs& a) {
  if (!buf) return sgd_loop<T, false, false, false>(param, grad, buf, a);
  if (a.init_buffer)
    return a.nesterov ? sgd_loop<T, true, true, true>(param, grad, buf, a)
                      : sgd_loop<T, true, true, false>(param, grad, buf, a);
  return a.nesterov ? sgd_loop<T, true, false, true>(param, grad, buf, a)
                    : sgd_loop<T, true, false, false>(param, grad, buf, a);
}

// ---------------------------------------------------------------- Adam / AdamW
template <class T, bool Amsgrad>
void adam_loop(const View& param, const View& grad, const View& exp_avg, const View& exp_avg_sq,
               const View* max_exp_avg_sq, double step, const AdamArgs& a) {
  T* __restrict p = ptr<T>(param);
  const T* __restrict g = ptr<T>(grad);
  T* __restrict m = ptr<T>(exp_avg);
  T* __restrict v = ptr<T>(exp_avg_sq);
  T* __restrict vmax = ptr<T>(max_exp_avg_sq);
  const bool maximize = a.maximize;
  const bool l2 = a.weight_decay != 0 && !a.decoupled_weight_decay;
  // AdamW shrinks the parameter first; without decay the factor is exactly 1.
  const T shrink = T(a.decoupled_weight_decay ? 1 - a.lr * a.weight_decay : 1.0);
  const T wd = T(a.weight_decay);
  const T w1 = T(1 - a.beta1), one_minus_w1 = T(1) - w1;
  const bool small = std::fabs(w1) < T(0.5);
  const T beta2 = T(a.beta2), w2 = T(1 - a.beta2);
  const double bias_correction1 = 1 - std::pow(a.beta1, step);
  const double bias_correction2 = 1 - std::pow(a.beta2, step);
  const T neg_step_size = T(-(a.lr / bias_correction1));
  const T bc2_sqrt = T(std::pow(bias_correction2, 0.5));
  const T eps = T(a.eps);
  parallel_for(numel(param), [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const T pi = p[i] * shrink;
      const T d = decayed_grad(g[i], pi, maximize, l2, wd);
      const T mi = lerp(m[i], d, w1, one_minus_w1, small);
      const T vi = v[i] * beta2 + w2 * d * d;
      m[i] = mi;
      v[i] = vi;
      T vd = vi;
      if constexpr (Amsgrad) {
        const T old = vmax[i];  // torch.maximum: NaN propagates
        vd = (old != old || old > vi) ? old : vi;
        vmax[i] = vd;
      }
      const T denom = std::sqrt(vd) / bc2_sqrt + eps;
      p[i] = pi + neg_step_size * mi / denom;
    }
  });
}

// ---------------------------------------------------------------- RMSprop
template <class T, bool Centered, bool Momentum>
void rmsprop_loop(const View& param, const View& grad, const View& square_avg,
                  const View* grad_avg, const View* buffer, const RmspropArgs& a) {
  T* __restrict p = ptr<T>(param);
  const T* __restrict g = ptr<T>(grad);
  T* __restrict sq = ptr<T>(square_avg);
  T* __restrict ga = ptr<T>(grad_avg);
  T* __restrict buf = ptr<T>(buffer);
  const bool maximize = a.maximize, decay = a.weight_decay != 0;
  const T wd = T(a.weight_decay), alpha = T(a.alpha), w = T(1 - a.alpha);
  const T one_minus_w = T(1) - w;
  const bool small = std::fabs(w) < T(0.5);
  const T eps = T(a.eps), mom = T(a.momentum), neg_lr = T(-a.lr);
  parallel_for(numel(param), [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const T d = decayed_grad(g[i], p[i], maximize, decay, wd);
      const T s = sq[i] * alpha + w * d * d;
      sq[i] = s;
      T avg;
      if constexpr (Centered) {
        const T gi = lerp(ga[i], d, w, one_minus_w, small);
        ga[i] = gi;
        avg = std::sqrt(s + T(-1) * gi * gi);
      } else {
        avg = std::sqrt(s);
      }
      avg = avg + eps;
      if constexpr (Momentum) {
        const T bi = buf[i] * mom + d / avg;
        buf[i] = bi;
        p[i] = p[i] + neg_lr * bi;
      } else {
        p[i] = p[i] + neg_lr * d / avg;
      }
    }
  });
}

// ---------------------------------------------------------------- Adagrad
template <class T>
void adagrad_loop(const View& param, const View& grad, const View& state_sum, double step,
                  const AdagradArgs& a) {
  T* __restrict p = ptr<T>(param);
  const T* __restrict g = ptr<T>(grad);
  T* __restrict sum = ptr<T>(state_sum);
  const bool maximize = a.maximize, decay = a.weight_decay != 0;
  const T wd = T(a.weight_decay), eps = T(a.eps);
  const T neg_clr = T(-(a.lr / (1 + (step - 1) * a.lr_decay)));
  parallel_for(numel(param), [=](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const T d = decayed_grad(g[i], p[i], maximize, decay, wd);
      const T s = sum[i] + d * d;
      sum[i] = s;
      p[i] = p[i] + neg_clr * d / (std::sqrt(s) + eps);
    }
  });
}

template <class F>
void by_float(DType t, F&& f) {
  if (t == DType::f32) f(float{});
  else f(double{});
}

}  // namespace

void sgd_update(const View& param, const View& grad, const View* momentum_buffer,
                const SgdArgs& args) {
  constexpr const char* op = "sgd_update";
  check_param(op, param);
  check_like(op, "grad", grad, param);
  check_buffer_matches(op, "momentum_buffer", args.momentum != 0, momentum_buffer,
                       "exactly when momentum != 0");
  if (momentum_buffer) check_like(op, "momentum_buffer", *momentum_buffer, param);
  by_float(param.dtype, [&](auto t) {
    sgd_typed<decltype(t)>(param, grad, momentum_buffer, args);
  });
}

void adam_update(const View& param, const View& grad, const View& exp_avg,
                 const View& exp_avg_sq, const View* max_exp_avg_sq, const View& step,
                 const AdamArgs& args) {
  constexpr const char* op = "adam_update";
  check_param(op, param);
  check_like(op, "grad", grad, param);
  check_like(op, "exp_avg", exp_avg, param);
  check_like(op, "exp_avg_sq", exp_avg_sq, param);
  if (max_exp_avg_sq) check_like(op, "max_exp_avg_sq", *max_exp_avg_sq, param);
  check_step(op, step);
  const double t = next_step(step);
  by_float(param.dtype, [&](auto x) {
    using T = decltype(x);
    if (max_exp_avg_sq) adam_loop<T, true>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, t,
                                           args);
    else adam_loop<T, false>(param, grad, exp_avg, exp_avg_sq, nullptr, t, args);
  });
}

void rmsprop_update(const View& param, const View& grad, const View& square_avg,
                    const View* grad_avg, const View* momentum_buffer, const View& step,
                    const RmspropArgs& args) {
  constexpr const char* op = "rmsprop_update";
  check_param(op, param);
  check_like(op, "grad", grad, param);
  check_like(op, "square_avg", square_avg, param);
  if (grad_avg) check_like(op, "grad_avg", *grad_avg, param);
  check_buffer_matches(op, "momentum_buffer", args.momentum > 0, momentum_buffer,
                       "exactly when momentum > 0");
  if (momentum_buffer) check_like(op, "momentum_buffer", *momentum_buffer, param);
  check_step(op, step);
  next_step(step);
  by_float(param.dtype, [&](auto x) {
    using T = decltype(x);
    const View *ga = grad_avg, *mb = momentum_buffer;
    if (ga && mb) rmsprop_loop<T, true, true>(param, grad, square_avg, ga, mb, args);
    else if (ga) rmsprop_loop<T, true, false>(param, grad, square_avg, ga, mb, args);
    else if (mb) rmsprop_loop<T, false, true>(param, grad, square_avg, ga, mb, args);
    else rmsprop_loop<T, false, false>(param, grad, square_avg, ga, mb, args);
  });
}

void adagrad_update(const View& param, const View& grad, const View& state_sum,
                    const View& step, const AdagradArgs& args) {
  constexpr const char* op = "adagrad_update";
  check_param(op, param);
  check_like(op, "grad", grad, param);
  check_like(op, "state_sum", state_sum, param);
  check_step(op, step);
  const double t = next_step(step);
  by_float(param.dtype, [&](auto x) {
    adagrad_loop<decltype(x)>(param, grad, state_sum, t, args);
  });
}

}  // namespace genesis::GENESIS_ISA_NS
