// Loss kernels (contract in loss.h).  Compiled once per instruction set.
//
// Cross-entropy works row by row: a row is the C logits of one (n, s).  The
// forward reads a row twice (max, then sum of exp), which for rows that fit
// in L1/L2 is one pass over memory; the backward reads it once and writes the
// gradient, using the log-sum-exp the forward saved.  Row loops are plain
// loops over `exp_le0`, a branch-free exp that the compiler vectorizes (this
// file is built with -fno-trapping-math so its selects if-convert); row sums
// are kept in fixed partial-sum lanes (by_lanes).  Threads split the rows; a
// reduced loss is summed in fixed blocks of rows in double, so the result
// does not depend on the number of threads.
#include "loss.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "elementwise_math.h"

namespace genesis::GENESIS_ISA_NS {
namespace {

// Below this many logits a call stays on the calling thread.
constexpr int64_t kParallelWork = 1 << 15;
// Rows per partial sum of a reduced loss.
constexpr int64_t kRowBlock = 64;

enum Reduction { kNone = 0, kMean = 1, kSum = 2 };

template <class To, class From>
inline To bits(From f) {
  static_assert(sizeof(To) == sizeof(From));
  To t;
  std::memcpy(&t, &f, sizeof t);
  return t;
}

// exp(x) for the row loops, which only exponentiate x - max and x - lse <= 0.
// float: the shared vectorizable exp of elementwise_math.h.
__attribute__((always_inline)) inline float exp_le0(float x) { return vm::exp(x); }

// double, for x <= 0, within 2 ulp; -inf and values below the smallest
// subnormal give 0, NaN stays NaN.  x = n ln2 + r with |r| <= ln2/2 (n by the
// round-to-nearest magic constant), exp(r) by Cephes' Pade form, and 2^n
// applied as two factors so subnormal results underflow gracefully.
__attribute__((always_inline)) inline double exp_le0(double x) {
  const double xc = x < -760.0 ? -760.0 : x;
  const double magic = 6755399441055744.0;  // 1.5 * 2^52
  const double t = xc * 1.4426950408889634074 + magic;
  const double n = t - magic;
  const int64_t ni = bits<int64_t>(t) - bits<int64_t>(magic);
  double r = xc - n * 6.93145751953125E-1;
  r = r - n * 1.42860682030941723212E-6;
  const double z = r * r;
  const double px = r * ((1.26177193074810590878E-4 * z + 3.02994407707441961300E-2) * z +
                         9.99999999999999999910E-1);
  const double q = ((3.00198505138664455042E-6 * z + 2.52448340349684104192E-3) * z +
                    2.27265548208155028766E-1) * z + 2.00000000000000000009E0;
  const double e = 1.0 + 2.0 * px / (q - px);
  const int64_t h = ni >> 1;
  return e * bits<double>((h + 1023) << 52) * bits<double>((ni - h + 1023) << 52);
}

// ---------------------------------------------------------------- checks
std::string shape_str(const View& v) {
  std::string s = "(";
  for (int d = 0; d < v.ndim; ++d) {
    if (d) s += ", ";
    s += std::to_string(v.shape[d]);
  }
  return s + (v.ndim == 1 ? ",)" : ")");
}

[[noreturn]] void bad(const std::string& msg) {
  throw std::invalid_argument("cross_entropy: " + msg);
}

void expect_shape(const View& v, const char* name, std::initializer_list<int64_t> shape) {
  bool ok = v.ndim == static_cast<int>(shape.size());
  int d = 0;
  for (int64_t s : shape) ok = ok && v.shape[d++] == s;
  if (!ok) {
    std::string want = "(";
    d = 0;
    for (int64_t s : shape) want += (d++ ? ", " : "") + std::to_string(s);
    bad(std::string(name) + " has shape " + shape_str(v) + ", expected " + want +
        (shape.size() == 1 ? ",)" : ")"));
  }
}

void expect_dtype(const View& v, const char* name, DType t) {
  if (v.dtype != t)
    throw type_error(std::string("cross_entropy: ") + name + " must be " + dtype_name(t) +
                     ", got " + dtype_name(v.dtype));
}

int plan_threads(int64_t rows, int64_t C) {
  if (rows < 2 || rows * C < kParallelWork) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), rows));
}

// Shapes and strides shared by the four cross-entropy kernels, validated.
struct Problem {
  int64_t N, C, S, rows;
  double eps;     // label smoothing
  int reduction;
  bool smooth;

  Problem(const View& x, double label_smoothing, int red)
      : N(x.shape[0]), C(x.shape[1]), S(x.shape[2]), rows(x.shape[0] * x.shape[2]),
        eps(label_smoothing), reduction(red), smooth(label_smoothing > 0.0) {
    if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
      bad("label_smoothing must be in [0, 1], got " + std::to_string(label_smoothing));
    if (red < kNone || red > kSum) bad("unknown reduction " + std::to_string(red));
  }
};

void check_x(const View& x) {
  if (x.ndim != 3) bad("input must be viewed as (N, C, S), got shape " + shape_str(x));
  if (x.dtype != DType::f32 && x.dtype != DType::f64)
    throw type_error(std::string("cross_entropy: input must be float32 or float64, got ") +
                     dtype_name(x.dtype));
}

// Weights as a dense vector (ones when absent) and their sum.
template <class T>
std::vector<T> dense_weights(const View* w, int64_t C, DType t, double* total) {
  std::vector<T> out(static_cast<size_t>(C), T(1));
  if (w) {
    expect_dtype(*w, "weight", t);
    expect_shape(*w, "weight", {C});
    const T* p = static_cast<const T*>(w->data);
    for (int64_t c = 0; c < C; ++c) out[c] = p[c * w->stride[0]];
  }
  double s = 0;
  for (T v : out) s += v;
  *total = s;
  return out;
}

// Row reductions keep kLanes partial results apart: the fixed-width inner loop
// of by_lanes vectorizes without reassociating floating-point additions (and
// the results do not depend on the instruction set's vector width).
template <class T>
constexpr int kLanes = 64 / sizeof(T);

// body(c, j) for every column c of a row, j = the partial-result lane of c.
// The lane loop stays a loop (not unrolled into scalars) so that the loop
// vectorizer, which if-converts the selects, handles it.
template <int L, class F>
__attribute__((always_inline)) inline void by_lanes(int64_t C, F&& body) {
  int64_t c = 0;
  for (; c + L <= C; c += L)
#pragma GCC unroll 1
    for (int j = 0; j < L; ++j) body(c + j, j);
  for (; c < C; ++c) body(c, 0);
}

template <class T, int L>
inline T lane_total(const T (&acc)[L]) {
  T s = 0;
  for (int j = 0; j < L; ++j) s += acc[j];
  return s;
}

// Largest value of a row (NaN never wins; it reaches the loss through exp).  A
// contiguous row goes through ordered_extreme's several registers of partial maxima.
template <class T, bool Unit>
inline T row_max(const T* x, int64_t st, int64_t C) {
  if constexpr (Unit)
    return vm::ordered_extreme<T, true>(x, C, -std::numeric_limits<T>::infinity());
  constexpr int L = kLanes<T>;
  T m[L];
  for (int j = 0; j < L; ++j) m[j] = -std::numeric_limits<T>::infinity();
  by_lanes<L>(C, [&](int64_t c, int j) {
    const T v = x[Unit ? c : c * st];
    m[j] = v > m[j] ? v : m[j];
  });
  T r = m[0];
  for (int j = 1; j < L; ++j) r = m[j] > r ? m[j] : r;
  return r;
}

// Runs body(r0, r1, block) over row blocks, threads splitting the blocks.
template <class F>
void for_row_blocks(int64_t rows, int64_t C, F&& body) {
  const int64_t nblocks = (rows + kRowBlock - 1) / kRowBlock;
  const int nt = plan_threads(rows, C);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t b = 0; b < nblocks; ++b)
    body(b * kRowBlock, std::min(rows, (b + 1) * kRowBlock), b);
}

// Writes the reduced (or per-row) loss and the mean's divisor.
template <class T>
void finish(const Problem& p, const std::vector<double>& loss_parts,
            const std::vector<double>& weight_parts, const View& out, const View& total_weight) {
  double loss = 0, weight = 0;
  for (double v : loss_parts) loss += v;
  for (double v : weight_parts) weight += v;
  *static_cast<double*>(total_weight.data) = weight;
  if (p.reduction == kMean) *static_cast<T*>(out.data) = static_cast<T>(loss / weight);
  else if (p.reduction == kSum) *static_cast<T*>(out.data) = static_cast<T>(loss);
}

void check_outputs(const Problem& p, const View& x, const View& out, const View& lse,
                   const View& total_weight) {
  expect_dtype(out, "out", x.dtype);
  expect_dtype(lse, "lse", x.dtype);
  expect_dtype(total_weight, "total_weight", DType::f64);
  if (p.reduction == kNone) expect_shape(out, "out", {p.N, p.S});
  else expect_shape(out, "out", {});
  expect_shape(lse, "lse", {p.N, p.S});
  expect_shape(total_weight, "total_weight", {});
}

// ---------------------------------------------------------------- class targets
std::string label_bound(int64_t C, int64_t ignore) {
  return "for " + std::to_string(C) + " classes (expected a class index in [0, " +
         std::to_string(C) + ") or ignore_index " + std::to_string(ignore) + ")";
}

template <class T, bool Unit, bool Smooth>
void ce_forward(const Problem& p, const View& x, const View& target, const std::vector<T>& w,
                double wsum, int64_t ignore, const View& out, const View& lse,
                const View& total_weight) {
  const int64_t C = p.C, S = p.S;
  const T* X = static_cast<const T*>(x.data);
  const int64_t* Y = static_cast<const int64_t*>(target.data);
  T* L = static_cast<T*>(lse.data);
  T* O = static_cast<T*>(out.data);
  const T* W = w.data();
  const T keep = static_cast<T>(1.0 - p.eps), share = static_cast<T>(p.eps / C);
  const T Wt = static_cast<T>(wsum);
  const bool per_row = p.reduction == kNone;
  const int64_t nblocks = (p.rows + kRowBlock - 1) / kRowBlock;
  std::vector<double> loss_parts(per_row ? 0 : nblocks), weight_parts(nblocks);
  for_row_blocks(p.rows, C, [&](int64_t r0, int64_t r1, int64_t b) {
    double loss_acc = 0, weight_acc = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / S, s = r % S;
      const int64_t y = Y[n * target.stride[0] + s * target.stride[1]];
      T* lse_at = L + n * lse.stride[0] + s * lse.stride[1];
      T loss = 0;
      if (y == ignore) {
        *lse_at = 0;
      } else {
        const T* row = X + n * x.stride[0] + s * x.stride[2];
        const int64_t st = x.stride[1];
        const T m = row_max<T, Unit>(row, st, C);
        // Rows of contiguous classes follow each other: the exp pass, compute bound,
        // prefetches the next row (see vm::exp_sum).
        const T* next = Unit && S == 1 ? row + x.stride[0] : nullptr;
        constexpr bool kVectorExp = Unit && !Smooth && std::is_same_v<T, float>;
        if (next && !kVectorExp) vm::prefetch_block(next, C * int64_t(sizeof(T)));
        constexpr int Ln = kLanes<T>;
        T sums[Ln] = {}, wzs[Ln] = {};  // sum of exp(z) and of w * z, z = x - max
        if (Smooth) {
          by_lanes<Ln>(C, [&](int64_t c, int j) {
            const T z = row[Unit ? c : c * st] - m;
            sums[j] += exp_le0(z);
            wzs[j] += W[c] * z;
          });
        } else if constexpr (kVectorExp) {
          sums[0] = vm::exp_sum<T>(row, C, m, nullptr, next);
        } else {
          by_lanes<Ln>(C, [&](int64_t c, int j) {
            sums[j] += exp_le0(row[Unit ? c : c * st] - m);
          });
        }
        const T sum = lane_total(sums), wz = lane_total(wzs);
        const T log_sum = std::log(sum);
        const T nll = log_sum - (row[y * st] - m);  // -logp[y] >= 0, no cancellation
        // sum_c w[c] (-logp[c]) = W log_sum - sum_c w[c] z[c]: both terms >= 0
        loss = Smooth ? keep * W[y] * nll + share * (Wt * log_sum - wz) : W[y] * nll;
        *lse_at = m + log_sum;
        weight_acc += W[y];
      }
      if (per_row) O[n * out.stride[0] + s * out.stride[1]] = loss;
      else loss_acc += loss;
    }
    if (!per_row) loss_parts[b] = loss_acc;
    weight_parts[b] = weight_acc;
  });
  finish<T>(p, loss_parts, weight_parts, out, total_weight);
}

template <class T, bool Unit, bool Smooth>
void ce_backward(const Problem& p, const View& x, const View& target, const std::vector<T>& w,
                 double wsum, int64_t ignore, const View& lse, double norm, const View& grad,
                 const View& gi) {
  const int64_t C = p.C, S = p.S;
  const T* X = static_cast<const T*>(x.data);
  const int64_t* Y = static_cast<const int64_t*>(target.data);
  const T* L = static_cast<const T*>(lse.data);
  const T* G = static_cast<const T*>(grad.data);
  T* GI = static_cast<T*>(gi.data);
  const T* W = w.data();
  const T keep = static_cast<T>(1.0 - p.eps), share = static_cast<T>(p.eps / C);
  const T Wt = static_cast<T>(wsum);
  const T tnorm = static_cast<T>(norm);
  for_row_blocks(p.rows, C, [&](int64_t r0, int64_t r1, int64_t) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / S, s = r % S;
      const int64_t y = Y[n * target.stride[0] + s * target.stride[1]];
      T* out = GI + n * gi.stride[0] + s * gi.stride[2];
      const int64_t so = gi.stride[1];
      if (y == ignore) {
        for (int64_t c = 0; c < C; ++c) out[Unit ? c : c * so] = 0;
        continue;
      }
      const T* row = X + n * x.stride[0] + s * x.stride[2];
      const int64_t st = x.stride[1];
      const T lse_r = L[n * lse.stride[0] + s * lse.stride[1]];
      const T g = G[n * grad.stride[0] + s * grad.stride[1]] * tnorm;
      // d loss / d x[c] = g * (softmax[c] * a - b[c]) with
      // a = (1 - e) w[y] + (e / C) W and b[c] = (1 - e) w[y] [c == y] + (e / C) w[c]
      if (Smooth) {
        const T a = g * (keep * W[y] + share * Wt), b = g * share;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c)
          out[Unit ? c : c * so] = exp_le0(row[Unit ? c : c * st] - lse_r) * a - b * W[c];
        out[y * so] -= g * keep * W[y];
      } else {
        const T a = g * W[y];
        if constexpr (Unit && std::is_same_v<T, float>) {
          vm::map16(row, out, C, [=](vm::f32x16 v) { return vm::exp16(v - lse_r) * a; });
        } else {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c)
            out[Unit ? c : c * so] = exp_le0(row[Unit ? c : c * st] - lse_r) * a;
        }
        out[y * so] -= a;
      }
    }
  });
}

// ---------------------------------------------------------------- probability targets
template <class T, bool Unit>
void ce_prob_forward(const Problem& p, const View& x, const View& target,
                     const std::vector<T>& w, const View& out, const View& lse,
                     const View& total_weight) {
  const int64_t C = p.C, S = p.S;
  const T* X = static_cast<const T*>(x.data);
  const T* TT = static_cast<const T*>(target.data);
  T* L = static_cast<T*>(lse.data);
  T* O = static_cast<T*>(out.data);
  const T* W = w.data();
  const T keep = static_cast<T>(1.0 - p.eps), share = static_cast<T>(p.eps / C);
  const bool per_row = p.reduction == kNone;
  const int64_t nblocks = (p.rows + kRowBlock - 1) / kRowBlock;
  std::vector<double> loss_parts(per_row ? 0 : nblocks), weight_parts(nblocks);
  for_row_blocks(p.rows, C, [&](int64_t r0, int64_t r1, int64_t b) {
    double loss_acc = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / S, s = r % S;
      const T* row = X + n * x.stride[0] + s * x.stride[2];
      const T* trow = TT + n * target.stride[0] + s * target.stride[2];
      const int64_t st = x.stride[1], tt = target.stride[1];
      const T m = row_max<T, Unit>(row, st, C);
      // q = w * t' with t' = (1 - e) t + e / C; loss = sum q (log_sum - z)
      constexpr int Ln = kLanes<T>;
      T sums[Ln] = {}, qsums[Ln] = {}, qzs[Ln] = {};
      by_lanes<Ln>(C, [&](int64_t c, int j) {
        const T z = row[Unit ? c : c * st] - m;
        const T q = W[c] * (keep * trow[Unit ? c : c * tt] + share);
        sums[j] += exp_le0(z);
        qsums[j] += q;
        qzs[j] += q * z;
      });
      const T log_sum = std::log(lane_total(sums));
      const T loss = lane_total(qsums) * log_sum - lane_total(qzs);
      L[n * lse.stride[0] + s * lse.stride[1]] = m + log_sum;
      if (per_row) O[n * out.stride[0] + s * out.stride[1]] = loss;
      else loss_acc += loss;
    }
    if (!per_row) loss_parts[b] = loss_acc;
    weight_parts[b] = static_cast<double>(r1 - r0);
  });
  finish<T>(p, loss_parts, weight_parts, out, total_weight);
}

template <class T, bool Unit, bool TargetGrad>
void ce_prob_backward(const Problem& p, const View& x, const View& target,
                      const std::vector<T>& w, const View& lse, double norm, const View& grad,
                      const View& gi, const View* gt) {
  const int64_t C = p.C, S = p.S;
  const T* X = static_cast<const T*>(x.data);
  const T* TT = static_cast<const T*>(target.data);
  const T* L = static_cast<const T*>(lse.data);
  const T* G = static_cast<const T*>(grad.data);
  T* GI = static_cast<T*>(gi.data);
  T* GT = TargetGrad ? static_cast<T*>(gt->data) : nullptr;
  const T* W = w.data();
  const T keep = static_cast<T>(1.0 - p.eps), share = static_cast<T>(p.eps / C);
  const T tnorm = static_cast<T>(norm);
  for_row_blocks(p.rows, C, [&](int64_t r0, int64_t r1, int64_t) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / S, s = r % S;
      const T* row = X + n * x.stride[0] + s * x.stride[2];
      const T* trow = TT + n * target.stride[0] + s * target.stride[2];
      T* out = GI + n * gi.stride[0] + s * gi.stride[2];
      const int64_t st = x.stride[1], tt = target.stride[1], so = gi.stride[1];
      const T lse_r = L[n * lse.stride[0] + s * lse.stride[1]];
      const T g = G[n * grad.stride[0] + s * grad.stride[1]] * tnorm;
      constexpr int Ln = kLanes<T>;
      T qsums[Ln] = {};
      by_lanes<Ln>(C, [&](int64_t c, int j) {
        qsums[j] += W[c] * (keep * trow[Unit ? c : c * tt] + share);
      });
      // d loss / d x[c] = g * (softmax[c] * sum(q) - q[c])
      const T a = g * lane_total(qsums);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const T q = W[c] * (keep * trow[Unit ? c : c * tt] + share);
        out[Unit ? c : c * so] = exp_le0(row[Unit ? c : c * st] - lse_r) * a - g * q;
      }
      if (TargetGrad) {
        // d loss / d t[c] = -g (1 - e) w[c] logp[c]
        T* gtr = GT + n * gt->stride[0] + s * gt->stride[2];
        const int64_t sg = gt->stride[1];
        const T k = -g * keep;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c)
          gtr[Unit ? c : c * sg] = k * W[c] * (row[Unit ? c : c * st] - lse_r);
      }
    }
  });
}

template <class F>
void by_float(DType t, F&& f) {
  if (t == DType::f64) f(double{});
  else f(float{});
}

// ---------------------------------------------------------------- squared error
constexpr int64_t kErrorBlock = 4096;  // elements per partial sum (and per task)

// Sum of (a[i] - b[i])^2 over one block: float in 16-lane vectors, the lanes added in
// double at the end; double in a vectorized reduction.
template <class T>
double squared_error_block(const T* a, const T* b, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    vm::f32x16 acc{};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const vm::f32x16 d = vm::load16(a + i) - vm::load16(b + i);
      acc += d * d;
    }
    if (i < n) {
      const vm::f32x16 d =
          vm::load16_first(a + i, n - i, 0.0f) - vm::load16_first(b + i, n - i, 0.0f);
      acc += d * d;
    }
    float lanes[16];
    vm::store16(lanes, acc);
    double total = 0;
    for (float v : lanes) total += v;
    return total;
  } else {
    double total = 0;
#pragma omp simd reduction(+ : total)
    for (int64_t i = 0; i < n; ++i) total += (a[i] - b[i]) * (a[i] - b[i]);
    return total;
  }
}

}  // namespace

void squared_error_sum(const View& a, const View& b, double scale, const View& out) {
  if (a.dtype != b.dtype || (a.dtype != DType::f32 && a.dtype != DType::f64))
    throw type_error(std::string("squared_error_sum: expected two float32 or two float64 "
                                 "arrays, got ") + dtype_name(a.dtype) + " and " +
                     dtype_name(b.dtype));
  if (!same_shape(a, b) || !is_contiguous(a) || !is_contiguous(b))
    throw std::invalid_argument("squared_error_sum: expected contiguous arrays of one shape, "
                                "got " + shape_str(a) + " and " + shape_str(b));
  if (out.dtype != a.dtype || numel(out) != 1)
    throw std::invalid_argument("squared_error_sum: out must be one element of the inputs' "
                                "dtype, got " + shape_str(out) + " " + dtype_name(out.dtype));
  const int64_t n = numel(a), nblocks = (n + kErrorBlock - 1) / kErrorBlock;
  std::vector<double> parts(nblocks);
  by_float(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a.data);
    const T* pb = static_cast<const T*>(b.data);
    const int nt = n < kParallelWork ? 1 : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t k = 0; k < nblocks; ++k) {
      const int64_t i0 = k * kErrorBlock;
      parts[k] = squared_error_block(pa + i0, pb + i0, std::min(kErrorBlock, n - i0));
    }
  });
  double total = 0;  // the parts in order: the same sum on any number of threads
  for (double v : parts) total += v;
  by_float(a.dtype, [&](auto tag) {
    *static_cast<decltype(tag)*>(out.data) = static_cast<decltype(tag)>(scale * total);
  });
}

// ================================================================ public kernels
void check_labels(const View& labels, int64_t n, bool has_ignore, int64_t ignore,
                  const std::string& what, const std::string& bound) {
  if (labels.dtype != DType::i64 && labels.dtype != DType::i32)
    throw type_error(what + ": labels must be int64 or int32, got " + dtype_name(labels.dtype));
  const int64_t total = numel(labels);
  if (total == 0) return;
  const int nd = labels.ndim;
  int64_t idx[kMaxDims] = {};
  int64_t off = 0;
  for (int64_t i = 0; i < total; ++i) {
    const int64_t v = labels.dtype == DType::i64 ? static_cast<const int64_t*>(labels.data)[off]
                                                 : static_cast<const int32_t*>(labels.data)[off];
    if ((v < 0 || v >= n) && !(has_ignore && v == ignore))
      throw std::out_of_range(what + " " + std::to_string(v) + " is out of bounds " + bound);
    for (int d = nd - 1; d >= 0; --d) {  // row-major odometer
      off += labels.stride[d];
      if (++idx[d] < labels.shape[d]) break;
      off -= labels.stride[d] * labels.shape[d];
      idx[d] = 0;
    }
  }
}

void cross_entropy(const View& x, const View& target, const View* weight, int64_t ignore_index,
                   double label_smoothing, int reduction, const View& out, const View& lse,
                   const View& total_weight) {
  check_x(x);
  const Problem p(x, label_smoothing, reduction);
  expect_dtype(target, "target", DType::i64);
  expect_shape(target, "target", {p.N, p.S});
  check_outputs(p, x, out, lse, total_weight);
  check_labels(target, p.C, true, ignore_index, "cross_entropy: target",
               label_bound(p.C, ignore_index));
  const bool unit = x.stride[1] == 1;
  by_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    double wsum;
    const std::vector<T> w = dense_weights<T>(weight, p.C, x.dtype, &wsum);
    auto run = [&](auto unit_tag, auto smooth_tag) {
      ce_forward<T, decltype(unit_tag)::value, decltype(smooth_tag)::value>(
          p, x, target, w, wsum, ignore_index, out, lse, total_weight);
    };
    using Y = std::true_type;
    using N = std::false_type;
    if (unit) p.smooth ? run(Y{}, Y{}) : run(Y{}, N{});
    else p.smooth ? run(N{}, Y{}) : run(N{}, N{});
  });
}

void cross_entropy_backward(const View& x, const View& target, const View* weight,
                            int64_t ignore_index, double label_smoothing, int reduction,
                            const View& lse, const View& total_weight, const View& grad,
                            const View& grad_input) {
  check_x(x);
  const Problem p(x, label_smoothing, reduction);
  expect_dtype(target, "target", DType::i64);
  expect_shape(target, "target", {p.N, p.S});
  expect_dtype(lse, "lse", x.dtype);
  expect_shape(lse, "lse", {p.N, p.S});
  expect_dtype(total_weight, "total_weight", DType::f64);
  expect_shape(total_weight, "total_weight", {});
  expect_dtype(grad, "grad", x.dtype);
  expect_shape(grad, "grad", {p.N, p.S});
  expect_dtype(grad_input, "grad_input", x.dtype);
  expect_shape(grad_input, "grad_input", {p.N, p.C, p.S});
  check_labels(target, p.C, true, ignore_index, "cross_entropy: target",
               label_bound(p.C, ignore_index));
  const double norm =
      reduction == kMean ? 1.0 / *static_cast<const double*>(total_weight.data) : 1.0;
  const bool unit = x.stride[1] == 1 && grad_input.stride[1] == 1;
  by_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    double wsum;
    const std::vector<T> w = dense_weights<T>(weight, p.C, x.dtype, &wsum);
    auto run = [&](auto unit_tag, auto smooth_tag) {
      ce_backward<T, decltype(unit_tag)::value, decltype(smooth_tag)::value>(
          p, x, target, w, wsum, ignore_index, lse, norm, grad, grad_input);
    };
    using Y = std::true_type;
    using N = std::false_type;
    if (unit) p.smooth ? run(Y{}, Y{}) : run(Y{}, N{});
    else p.smooth ? run(N{}, Y{}) : run(N{}, N{});
  });
}

void cross_entropy_prob(const View& x, const View& target, const View* weight,
                        double label_smoothing, int reduction, const View& out, const View& lse,
                        const View& total_weight) {
  check_x(x);
  const Problem p(x, label_smoothing, reduction);
  expect_dtype(target, "target", x.dtype);
  expect_shape(target, "target", {p.N, p.C, p.S});
  check_outputs(p, x, out, lse, total_weight);
  const bool unit = x.stride[1] == 1 && target.stride[1] == 1;
  by_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    double wsum;
    const std::vector<T> w = dense_weights<T>(weight, p.C, x.dtype, &wsum);
    if (unit) ce_prob_forward<T, true>(p, x, target, w, out, lse, total_weight);
    else ce_prob_forward<T, false>(p, x, target, w, out, lse, total_weight);
  });
}

void cross_entropy_prob_backward(const View& x, const View& target, const View* weight,
                                 double label_smoothing, int reduction, const View& lse,
                                 const View& total_weight, const View& grad,
                                 const View& grad_input, const View* grad_target) {
  check_x(x);
  const Problem p(x, label_smoothing, reduction);
  expect_dtype(target, "target", x.dtype);
  expect_shape(target, "target", {p.N, p.C, p.S});
  expect_dtype(lse, "lse", x.dtype);
  expect_shape(lse, "lse", {p.N, p.S});
  expect_dtype(total_weight, "total_weight", DType::f64);
  expect_shape(total_weight, "total_weight", {});
  expect_dtype(grad, "grad", x.dtype);
  expect_shape(grad, "grad", {p.N, p.S});
  expect_dtype(grad_input, "grad_input", x.dtype);
  expect_shape(grad_input, "grad_input", {p.N, p.C, p.S});
  if (grad_target) {
    expect_dtype(*grad_target, "grad_target", x.dtype);
    expect_shape(*grad_target, "grad_target", {p.N, p.C, p.S});
  }
  const double norm =
      reduction == kMean ? 1.0 / *static_cast<const double*>(total_weight.data) : 1.0;
  const bool unit = x.stride[1] == 1 && target.stride[1] == 1 && grad_input.stride[1] == 1 &&
                    (!grad_target || grad_target->stride[1] == 1);
  by_float(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    double wsum;
    const std::vector<T> w = dense_weights<T>(weight, p.C, x.dtype, &wsum);
    auto run = [&](auto unit_tag, auto tg_tag) {
      ce_prob_backward<T, decltype(unit_tag)::value, decltype(tg_tag)::value>(
          p, x, target, w, lse, norm, grad, grad_input, grad_target);
    };
    using Y = std::true_type;
    using N = std::false_type;
    if (unit) grad_target ? run(Y{}, Y{}) : run(Y{}, N{});
    else grad_target ? run(N{}, Y{}) : run(N{}, N{});
  });
}

}  // namespace genesis::GENESIS_ISA_NS
