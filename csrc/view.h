// The one data type every kernel sees: a strided view of a buffer owned by
// Python (numpy or cupy supplies the memory; kernels never allocate tensors).
//
// Header rules (kernels are compiled once per instruction set, see
// CMakeLists.txt): this header declares only plain structs and `static inline`
// helpers, so no function compiled with AVX-512 flags can be merged by the
// linker into the generic code path.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace genesis {

enum class DType : int8_t { f32 = 0, f64 = 1, i32 = 2, i64 = 3, b8 = 4 };

inline constexpr int kMaxDims = 16;

// shape and strides are in elements (not bytes); strides may be 0 (broadcast)
// or negative (flipped views).
struct View {
  void* data = nullptr;
  DType dtype = DType::f32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
};

static inline int64_t numel(const View& v) {
  int64_t n = 1;
  for (int d = 0; d < v.ndim; ++d) n *= v.shape[d];
  return n;
}

static inline bool is_contiguous(const View& v) {
  int64_t expected = 1;
  for (int d = v.ndim - 1; d >= 0; --d) {
    if (v.shape[d] != 1 && v.stride[d] != expected) return false;
    expected *= v.shape[d];
  }
  return true;
}

static inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
  }
  return "?";
}

static inline bool same_shape(const View& a, const View& b) {
  if (a.ndim != b.ndim) return false;
  for (int d = 0; d < a.ndim; ++d)
    if (a.shape[d] != b.shape[d]) return false;
  return true;
}

// Errors raised by kernels: pybind11 turns std::invalid_argument into
// ValueError, std::out_of_range into IndexError, std::domain_error into
// ValueError and genesis::type_error (below) into TypeError.
struct type_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace genesis

// Kernel sources compiled per instruction set wrap their code in
//   namespace genesis::GENESIS_ISA_NS { ... }
// so each copy has its own symbols.
#ifndef GENESIS_ISA_NS
#define GENESIS_ISA_NS generic
#endif
