// Dropout kernel (contract in dropout.h): one pass that writes the mask and
// the output.
#include "dropout.h"

#include <omp.h>

#include <string>

namespace genesis::GENESIS_ISA_NS {
namespace {

// Below this many elements a call stays on the calling thread.
constexpr int64_t kParallelWork = 1 << 15;

template <class T>
void dropout_rows(const T* x, const T* u, double p, T* out, T* mask, int64_t rows,
                  int64_t inner) {
  const T scale = p < 1.0 ? T(1.0 / (1.0 - p)) : T(0);
  if (inner == 1) {
#pragma omp parallel for simd schedule(static) if (rows >= kParallelWork)
    for (int64_t i = 0; i < rows; ++i) {
      // compared in double so that p is not rounded to float32
      const T m = double(u[i]) >= p ? scale : T(0);
      mask[i] = m;
      out[i] = x[i] * m;
    }
    return;
  }
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T m = double(u[r]) >= p ? scale : T(0);
    mask[r] = m;
    const T* xr = x + r * inner;
    T* orow = out + r * inner;
#pragma omp simd
    for (int64_t i = 0; i < inner; ++i) orow[i] = xr[i] * m;
  }
}

void check(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("dropout: " + message);
}

}  // namespace

void dropout(const View& x, const View& u, double p, const View& out, const View& mask) {
  if (x.dtype != DType::f32 && x.dtype != DType::f64)
    throw type_error(std::string("dropout: input has dtype ") + dtype_name(x.dtype) +
                     ", expected float32 or float64");
  if (u.dtype != x.dtype || out.dtype != x.dtype || mask.dtype != x.dtype)
    throw type_error("dropout: random numbers, output and mask must have the input's dtype " +
                     std::string(dtype_name(x.dtype)));
  check(p >= 0.0 && p <= 1.0, "probability has to be between 0 and 1, but got " +
                                  std::to_string(p));
  check(same_shape(x, out), "output shape does not match the input shape");
  const int64_t n = numel(x), rows = numel(u);
  check(numel(mask) == rows, "mask and random numbers have different sizes");
  if (n == 0) return;
  check(is_contiguous(x) && is_contiguous(u) && is_contiguous(out) && is_contiguous(mask),
        "input, random numbers, output and mask must be contiguous");
  check(rows > 0 && n % rows == 0,
        "random numbers (" + std::to_string(rows) + " elements) do not divide the input (" +
            std::to_string(n) + " elements) into rows");
  if (x.dtype == DType::f32)
    dropout_rows(static_cast<const float*>(x.data), static_cast<const float*>(u.data), p,
                 static_cast<float*>(out.data), static_cast<float*>(mask.data), rows, n / rows);
  else
    dropout_rows(static_cast<const double*>(x.data), static_cast<const double*>(u.data), p,
                 static_cast<double*>(out.data), static_cast<double*>(mask.data), rows,
                 n / rows);
}

}  // namespace genesis::GENESIS_ISA_NS
