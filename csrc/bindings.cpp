// The only pybind11 file: converts numpy arrays into Views, picks the
// instruction-set copy of each hot kernel, and releases the GIL around work.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <omp.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "conv.h"
#include "dropout.h"
#include "elementwise.h"
#include "gemm.h"
#include "host_cache.h"
#include "streaming.h"
#include "index.h"
#include "loss.h"
#include "norm.h"
#include "optim.h"
#include "pool.h"
#include "reduce.h"
#include "rnn.h"
#include "upsample.h"

namespace py = pybind11;
using namespace genesis;

namespace {

// ---------------------------------------------------------------- arrays
DType dtype_of(const py::array& a) {
  const char kind = a.dtype().kind();
  const auto size = a.itemsize();
  if (kind == 'f' && size == 4) return DType::f32;
  if (kind == 'f' && size == 8) return DType::f64;
  if (kind == 'i' && size == 4) return DType::i32;
  if (kind == 'i' && size == 8) return DType::i64;
  if (kind == 'b' && size == 1) return DType::b8;
  throw type_error("genesis kernels do not support numpy dtype " +
                   std::string(py::str(a.dtype())));
}

View view_of(const py::array& a, bool writable = false) {
  if (writable && !a.writeable())
    throw std::invalid_argument("genesis: output array is read-only");
  View v;
  v.dtype = dtype_of(a);
  v.ndim = static_cast<int>(a.ndim());
  if (v.ndim > kMaxDims)
    throw std::invalid_argument("genesis supports at most " + std::to_string(kMaxDims) +
                                " dimensions, got " + std::to_string(v.ndim));
  v.data = const_cast<void*>(a.data());
  const auto item = a.itemsize();
  for (int d = 0; d < v.ndim; ++d) {
    v.shape[d] = a.shape(d);
    if (a.strides(d) % item != 0)
      throw std::invalid_argument("genesis: array strides must be multiples of the item size");
    v.stride[d] = a.strides(d) / item;
  }
  return v;
}

View out_of(const py::array& a) { return view_of(a, true); }

std::string shape_text(const View& v) {
  std::string s = "(";
  for (int d = 0; d < v.ndim; ++d) s += (d ? ", " : "") + std::to_string(v.shape[d]);
  return s + (v.ndim == 1 ? ",)" : ")");
}

// Input `v` read as an operand of out's shape by numpy's broadcasting rules: missing
// leading dims and dims of size 1 get stride 0, so Python passes inputs as they are
// instead of building broadcast views first.
View broadcast_as(const View& v, const View& out, const char* op) {
  const int off = out.ndim - v.ndim;
  bool ok = off >= 0;
  View r = v;
  r.ndim = out.ndim;
  for (int d = out.ndim - 1; ok && d >= 0; --d) {
    const int s = d - off;
    const int64_t n = s >= 0 ? v.shape[s] : 1;
    ok = n == out.shape[d] || n == 1;
    r.shape[d] = out.shape[d];
    r.stride[d] = s >= 0 && n == out.shape[d] ? v.stride[s] : 0;
  }
  if (!ok)
    throw std::invalid_argument(std::string(op) + ": an operand of shape " + shape_text(v) +
                                " does not broadcast to the output's shape " + shape_text(out));
  return r;
}

std::vector<View> views_of(const std::vector<py::array>& arrays) {
  std::vector<View> out;
  out.reserve(arrays.size());
  for (const auto& a : arrays) out.push_back(view_of(a));
  return out;
}

// Releasing the GIL costs a little; only worth it for real work.
struct MaybeRelease {
  explicit MaybeRelease(int64_t work) {
    if (work >= (1 << 14)) state = PyEval_SaveThread();
  }
  ~MaybeRelease() {
    if (state) PyEval_RestoreThread(state);
  }
  PyThreadState* state = nullptr;
};

// ---------------------------------------------------------------- ISA dispatch
enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

Isa best_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
  return Isa::generic;
}

Isa g_isa = best_isa();

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

void set_isa(const std::string& name) {
  Isa want;
  if (name == "generic") want = Isa::generic;
  else if (name == "avx2") want = Isa::avx2;
  else if (name == "avx512") want = Isa::avx512;
  else if (name == "best") want = best_isa();
  else throw std::invalid_argument("set_isa: unknown instruction set '" + name +
                                   "' (expected generic, avx2, avx512 or best)");
  if (static_cast<int>(want) > static_cast<int>(best_isa()))
    throw std::invalid_argument(std::string("set_isa: this processor does not support ") +
                                isa_name(want));
  g_isa = want;
}

#define DISPATCH(fn, ...)                                  \
  do {                                                     \
    switch (g_isa) {                                       \
      case Isa::avx512: avx512::fn(__VA_ARGS__); break;    \
      case Isa::avx2: avx2::fn(__VA_ARGS__); break;        \
      default: generic::fn(__VA_ARGS__); break;            \
    }                                                      \
  } while (0)

template <class E>
E op_from_int(int op, const char* what) {
  if (op < 0 || op >= static_cast<int>(E::count_))
    throw std::invalid_argument(std::string("genesis: unknown ") + what + " op " +
                                std::to_string(op));
  return static_cast<E>(op);
}

int normalize_dim(int dim, int ndim, const char* op) {
  if (dim < -ndim || dim >= (ndim == 0 ? 1 : ndim))
    throw std::out_of_range(std::string(op) + ": dim " + std::to_string(dim) +
                            " out of range for a tensor of " + std::to_string(ndim) +
                            " dimensions");
  return dim < 0 ? dim + ndim : dim;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "genesis native CPU kernels";
  py::register_exception<type_error>(m, "KernelTypeError", PyExc_TypeError);

  // ------------------------------------------------------------ runtime
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
    omp_set_num_threads(n);
  });
  m.def("get_num_threads", []() { return omp_get_max_threads(); });
  m.def("set_isa", &set_isa, "Force the instruction set kernels use (testing aid).");
  m.def("get_isa", []() { return std::string(isa_name(g_isa)); });
  m.def("best_isa", []() { return std::string(isa_name(best_isa())); });

  // ------------------------------------------------------------ memory
  // An uninitialized C-contiguous array whose memory comes from the host block
  // cache; the capsule it keeps as its base gives the block back.
  m.def("empty", [](const std::vector<py::ssize_t>& shape, const py::object& dtype) {
    const py::dtype dt = py::dtype::from_args(dtype);
    size_t bytes = static_cast<size_t>(dt.itemsize());
    for (const py::ssize_t d : shape) {
      if (d < 0) throw std::invalid_argument("empty: negative dimensions are not allowed");
      if (d && bytes > (SIZE_MAX >> 1) / static_cast<size_t>(d))
        throw std::invalid_argument("empty: array is too big");
      bytes *= static_cast<size_t>(d);
    }
    void* block = host_cache::allocate(bytes);
    py::capsule owner(block, [](void* b) { host_cache::release(b); });
    return py::array(dt, shape, block, owner);
  }, py::arg("shape"), py::arg("dtype"));
  m.def("host_cache_stats", []() {
    const host_cache::Stats s = host_cache::stats();
    py::dict d;
    d["cached_bytes"] = s.cached_bytes;
    d["live_bytes"] = s.live_bytes;
    d["limit"] = s.limit;
    d["hits"] = s.hits;
    d["misses"] = s.misses;
    return d;
  });
  m.def("host_cache_empty", &host_cache::empty);
  m.def("host_cache_set_limit", [](py::ssize_t bytes) {
    if (bytes < 0) throw std::invalid_argument("set_cache_limit: nbytes must be >= 0, got " +
                                               std::to_string(bytes));
    host_cache::set_limit(static_cast<size_t>(bytes));
  });

  m.def("stream_min_bytes", &streaming::min_bytes);
  m.def("set_stream_min_bytes", [](int64_t bytes) {
    if (bytes < 0) throw std::invalid_argument("set_stream_min_bytes: bytes must be >= 0, got " +
                                               std::to_string(bytes));
    streaming::set_min_bytes(bytes);
  });

  // Op codes, so Python refers to kernels by name.
  py::dict unary_ops, binary_ops, reduce_ops;
#define U(name) unary_ops[#name] = static_cast<int>(UnaryOp::name)
  U(neg); U(exp); U(log); U(log1p); U(expm1); U(sqrt); U(rsqrt); U(abs); U(sign);
  U(reciprocal); U(sin); U(cos); U(tanh); U(sigmoid); U(relu); U(leaky_relu); U(elu);
  U(gelu); U(gelu_tanh); U(silu); U(softplus); U(erf); U(square); U(clamp);
  U(logical_not); U(floor); U(ceil); U(round); U(trunc);
#undef U
#define B(name) binary_ops[#name] = static_cast<int>(BinaryOp::name)
  B(add); B(sub); B(mul); B(div); B(pow); B(maximum); B(minimum); B(floordiv); B(mod);
  B(eq); B(ne); B(lt); B(le); B(gt); B(ge); B(logical_and); B(logical_or);
  B(logical_xor); B(atan2); B(relu_grad); B(gelu_grad);
#undef B
  reduce_ops["sum"] = static_cast<int>(ReduceOp::sum);
  reduce_ops["prod"] = static_cast<int>(ReduceOp::prod);
  reduce_ops["max"] = static_cast<int>(ReduceOp::max);
  reduce_ops["min"] = static_cast<int>(ReduceOp::min);
  m.attr("UNARY_OPS") = unary_ops;
  m.attr("BINARY_OPS") = binary_ops;
  m.attr("REDUCE_OPS") = reduce_ops;

  // ------------------------------------------------------------ elementwise
  m.def("unary", [](int op, const py::array& x, const py::array& out, double p0, double p1) {
    auto vx = view_of(x), vo = out_of(out);
    auto e = op_from_int<UnaryOp>(op, "unary");
    MaybeRelease r(numel(vo));
    DISPATCH(unary, e, vx, vo, p0, p1);
  }, py::arg("op"), py::arg("x"), py::arg("out"), py::arg("p0") = 0.0, py::arg("p1") = 0.0);
  m.def("binary", [](int op, const py::array& a, const py::array& b, const py::array& out) {
    const View vo = out_of(out);
    const View va = broadcast_as(view_of(a), vo, "binary"), vb = broadcast_as(view_of(b), vo, "binary");
    auto e = op_from_int<BinaryOp>(op, "binary");
    MaybeRelease r(numel(vo));
    DISPATCH(binary, e, va, vb, vo);
  });
  m.def("where", [](const py::array& c, const py::array& a, const py::array& b, const py::array& out) {
    const View vo = out_of(out);
    const View vc = broadcast_as(view_of(c), vo, "where"), va = broadcast_as(view_of(a), vo, "where"),
               vb = broadcast_as(view_of(b), vo, "where");
    MaybeRelease r(numel(vo));
    DISPATCH(where, vc, va, vb, vo);
  });
  m.def(
      "copy",
      [](const py::array& src, const py::array& out, int64_t whole_bytes) {
        auto vs = view_of(src), vo = out_of(out);
        MaybeRelease r(numel(vo));
        DISPATCH(copy, vs, vo, whole_bytes);
      },
      py::arg("src"), py::arg("out"), py::arg("whole_bytes") = 0);
  m.def("fill", [](const py::array& out, double value) {
    auto vo = out_of(out);
    MaybeRelease r(numel(vo));
    DISPATCH(fill, vo, value);
  });

  // ------------------------------------------------------------ reductions
  m.def("reduce", [](int op, const py::array& x, const py::array& out) {
    auto vx = view_of(x), vo = out_of(out);
    auto e = op_from_int<ReduceOp>(op, "reduce");
    MaybeRelease r(numel(vx));
    DISPATCH(reduce, e, vx, vo);
  });
  m.def("reduce_arg", [](bool is_max, const py::array& x, int dim, const py::array& values,
                         const py::array& indices) {
    auto vx = view_of(x), vv = out_of(values), vi = out_of(indices);
    dim = normalize_dim(dim, vx.ndim, is_max ? "max" : "min");
    MaybeRelease r(numel(vx));
    DISPATCH(reduce_arg, is_max, vx, dim, vv, vi);
  });
  m.def("cumsum", [](const py::array& x, int dim, const py::array& out) {
    auto vx = view_of(x), vo = out_of(out);
    dim = normalize_dim(dim, vx.ndim, "cumsum");
    MaybeRelease r(numel(vx));
    DISPATCH(cumsum, vx, dim, vo);
  });
  m.def("softmax", [](const py::array& x, int dim, bool log, const py::array& out) {
    auto vx = view_of(x), vo = out_of(out);
    dim = normalize_dim(dim, vx.ndim, log ? "log_softmax" : "softmax");
    MaybeRelease r(numel(vx));
    DISPATCH(softmax, vx, dim, log, vo);
  });
  m.def("softmax_backward", [](const py::array& y, const py::array& g, int dim, bool log,
                               const py::array& out) {
    auto vy = view_of(y), vg = view_of(g), vo = out_of(out);
    dim = normalize_dim(dim, vy.ndim, log ? "log_softmax_backward" : "softmax_backward");
    MaybeRelease r(numel(vy));
    DISPATCH(softmax_backward, vy, vg, dim, log, vo);
  });

  // ------------------------------------------------------------ gemm
  m.def("matmul", [](const py::array& a, const py::array& b, const py::array& out, bool accumulate) {
    auto va = view_of(a), vb = view_of(b), vo = out_of(out);
    MaybeRelease r(numel(vo) * (va.ndim ? va.shape[va.ndim - 1] : 1));
    DISPATCH(matmul, va, vb, vo, accumulate);
  }, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("accumulate") = false);

  // ------------------------------------------------------------ indexing
  m.def("gather", [](const py::array& x, int dim, const py::array& index, const py::array& out) {
    auto vx = view_of(x), vi = view_of(index), vo = out_of(out);
    dim = normalize_dim(dim, vx.ndim, "gather");
    MaybeRelease r(numel(vo));
    gather(vx, dim, vi, vo);
  });
  m.def("scatter_add", [](const py::array& out, int dim, const py::array& index, const py::array& src) {
    auto vo = out_of(out), vi = view_of(index), vs = view_of(src);
    dim = normalize_dim(dim, vo.ndim, "scatter_add");
    MaybeRelease r(numel(vs));
    scatter_add(vo, dim, vi, vs);
  });
  m.def("index_gather", [](const py::array& x, const std::vector<py::array>& indices, const py::array& out) {
    auto vx = view_of(x), vo = out_of(out);
    auto vi = views_of(indices);
    MaybeRelease r(numel(vo));
    index_gather(vx, vi, vo);
  });
  m.def("index_put", [](const py::array& dst, const std::vector<py::array>& indices, const py::array& src,
                        bool accumulate) {
    auto vd = out_of(dst), vs = view_of(src);
    auto vi = views_of(indices);
    MaybeRelease r(numel(vs));
    index_put(vd, vi, vs, accumulate);
  });
  m.def("count_nonzero", [](const py::array& mask) { return count_nonzero(view_of(mask)); });
  m.def("nonzero", [](const py::array& mask, const py::array& out) {
    auto vm = view_of(mask), vo = out_of(out);
    nonzero(vm, vo);
  });
  m.def("sort", [](const py::array& x, int dim, bool descending, const py::array& values,
                   const py::array& indices) {
    auto vx = view_of(x), vv = out_of(values), vi = out_of(indices);
    dim = normalize_dim(dim, vx.ndim, "sort");
    MaybeRelease r(numel(vx));
    sort(vx, dim, descending, vv, vi);
  });
  m.def("topk", [](const py::array& x, int64_t k, int dim, bool largest, const py::array& values,
                   const py::array& indices) {
    auto vx = view_of(x), vv = out_of(values), vi = out_of(indices);
    dim = normalize_dim(dim, vx.ndim, "topk");
    MaybeRelease r(numel(vx));
    topk(vx, k, dim, largest, vv, vi);
  });
  m.def("one_hot", [](const py::array& index, const py::array& out) {
    auto vi = view_of(index), vo = out_of(out);
    MaybeRelease r(numel(vo));
    one_hot(vi, vo);
  });

  // ---- norm and dropout
  // An optional array argument (None on the Python side) as a nullable View.
  struct OptView {
    View v;
    bool present = false;
    OptView(const std::optional<py::array>& a, bool writable) {
      if (a) {
        v = view_of(*a, writable);
        present = true;
      }
    }
    const View* get() const { return present ? &v : nullptr; }
  };
  using OptArray = std::optional<py::array>;
  m.def("batch_norm", [](const py::array& x, const OptArray& weight, const OptArray& bias,
                         const OptArray& running_mean, const OptArray& running_var, bool training,
                         double momentum, double eps, const py::array& out,
                         const py::array& save_mean, const py::array& save_invstd) {
    auto vx = view_of(x), vo = out_of(out), vm = out_of(save_mean), vi = out_of(save_invstd);
    OptView w(weight, false), b(bias, false), rm(running_mean, true), rv(running_var, true);
    MaybeRelease r(numel(vx));
    DISPATCH(batch_norm_forward, vx, w.get(), b.get(), rm.get(), rv.get(), training, momentum,
             eps, vo, vm, vi);
  });
  m.def("batch_norm_backward", [](const py::array& grad, const py::array& x, const OptArray& weight,
                                  const py::array& save_mean, const py::array& save_invstd,
                                  bool training, const OptArray& grad_input,
                                  const OptArray& grad_weight, const OptArray& grad_bias) {
    auto vg = view_of(grad), vx = view_of(x), vm = view_of(save_mean), vi = view_of(save_invstd);
    OptView w(weight, false), gi(grad_input, true), gw(grad_weight, true), gb(grad_bias, true);
    MaybeRelease r(numel(vx));
    DISPATCH(batch_norm_backward, vg, vx, w.get(), vm, vi, training, gi.get(), gw.get(), gb.get());
  });
  m.def("layer_norm", [](const py::array& x, int norm_ndim, const OptArray& weight,
                         const OptArray& bias, double eps, const py::array& out,
                         const py::array& mean, const py::array& rstd) {
    auto vx = view_of(x), vo = out_of(out), vm = out_of(mean), vr = out_of(rstd);
    OptView w(weight, false), b(bias, false);
    MaybeRelease r(numel(vx));
    DISPATCH(layer_norm_forward, vx, norm_ndim, w.get(), b.get(), eps, vo, vm, vr);
  });
  m.def("layer_norm_backward", [](const py::array& grad, const py::array& x, int norm_ndim,
                                  const py::array& mean, const py::array& rstd,
                                  const OptArray& weight, const OptArray& grad_input,
                                  const OptArray& grad_weight, const OptArray& grad_bias) {
    auto vg = view_of(grad), vx = view_of(x), vm = view_of(mean), vr = view_of(rstd);
    OptView w(weight, false), gi(grad_input, true), gw(grad_weight, true), gb(grad_bias, true);
    MaybeRelease r(numel(vx));
    DISPATCH(layer_norm_backward, vg, vx, norm_ndim, vm, vr, w.get(), gi.get(), gw.get(), gb.get());
  });
  m.def("group_norm", [](const py::array& x, int64_t num_groups, const OptArray& weight,
                         const OptArray& bias, double eps, const py::array& out,
                         const py::array& mean, const py::array& rstd) {
    auto vx = view_of(x), vo = out_of(out), vm = out_of(mean), vr = out_of(rstd);
    OptView w(weight, false), b(bias, false);
    MaybeRelease r(numel(vx));
    DISPATCH(group_norm_forward, vx, num_groups, w.get(), b.get(), eps, vo, vm, vr);
  });
  m.def("group_norm_backward", [](const py::array& grad, const py::array& x, int64_t num_groups,
                                  const py::array& mean, const py::array& rstd,
                                  const OptArray& weight, const OptArray& grad_input,
                                  const OptArray& grad_weight, const OptArray& grad_bias) {
    auto vg = view_of(grad), vx = view_of(x), vm = view_of(mean), vr = view_of(rstd);
    OptView w(weight, false), gi(grad_input, true), gw(grad_weight, true), gb(grad_bias, true);
    MaybeRelease r(numel(vx));
    DISPATCH(group_norm_backward, vg, vx, num_groups, vm, vr, w.get(), gi.get(), gw.get(),
             gb.get());
  });
  m.def("dropout", [](const py::array& x, const py::array& u, double p, const py::array& out,
                      const py::array& mask) {
    auto vx = view_of(x), vu = view_of(u), vo = out_of(out), vm = out_of(mask);
    MaybeRelease r(numel(vx));
    DISPATCH(dropout, vx, vu, p, vo, vm);
  });
  // ---- conv and pool
  {
    using Pair = std::array<int64_t, 2>;
    auto conv_params = [](const Pair& stride, const std::array<int64_t, 4>& padding,
                          const Pair& dilation, int64_t groups) {
      ConvParams p;
      for (int i = 0; i < 2; ++i) {
        p.stride[i] = stride[i];
        p.dilation[i] = dilation[i];
      }
      for (int i = 0; i < 4; ++i) p.pad[i] = padding[i];
      p.groups = groups;
      return p;
    };
    auto pool_params = [](const Pair& kernel, const Pair& stride, const Pair& padding,
                          const Pair& dilation) {
      PoolParams p;
      for (int i = 0; i < 2; ++i) {
        p.kernel[i] = kernel[i];
        p.stride[i] = stride[i];
        p.pad[i] = padding[i];
        p.dilation[i] = dilation[i];
      }
      return p;
    };
    m.def("conv2d", [conv_params](const py::array& x, const py::array& w, const py::object& bias,
                                  const py::array& out, const Pair& stride,
                                  const std::array<int64_t, 4>& padding, const Pair& dilation,
                                  int64_t groups) {
      auto vx = view_of(x), vw = view_of(w), vo = out_of(out);
      py::array ba;  // keeps a converted bias alive while the kernel reads it
      View vb;
      if (!bias.is_none()) vb = view_of(ba = bias.cast<py::array>());
      const auto p = conv_params(stride, padding, dilation, groups);
      MaybeRelease r(numel(vo) * numel(vw));
      DISPATCH(conv2d, vx, vw, bias.is_none() ? nullptr : &vb, vo, p);
    }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("stride"),
       py::arg("padding"), py::arg("dilation"), py::arg("groups"),
       "out = conv2d(x, weight) + bias; padding is (top, bottom, left, right).");
    m.def("conv2d_input_grad", [conv_params](const py::array& gy, const py::array& w,
                                             const py::object& bias, const py::array& gx,
                                             const Pair& stride,
                                             const std::array<int64_t, 4>& padding,
                                             const Pair& dilation, int64_t groups) {
      auto vg = view_of(gy), vw = view_of(w), vo = out_of(gx);
      py::array ba;  // keeps a converted bias alive while the kernel reads it
      View vb;
      if (!bias.is_none()) vb = view_of(ba = bias.cast<py::array>());
      const auto p = conv_params(stride, padding, dilation, groups);
      MaybeRelease r(numel(vg) * numel(vw));
      DISPATCH(conv2d_input_grad, vg, vw, bias.is_none() ? nullptr : &vb, vo, p);
    }, py::arg("grad"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("stride"),
       py::arg("padding"), py::arg("dilation"), py::arg("groups"),
       "out = conv2d's input gradient for grad (+ bias): conv_transpose2d.");
    m.def("conv2d_weight_grad", [conv_params](const py::array& x, const py::array& gy,
                                              const py::array& gw, const Pair& stride,
                                              const std::array<int64_t, 4>& padding,
                                              const Pair& dilation, int64_t groups) {
      auto vx = view_of(x), vg = view_of(gy), vo = out_of(gw);
      const auto p = conv_params(stride, padding, dilation, groups);
      MaybeRelease r(numel(vg) * numel(vo));
      DISPATCH(conv2d_weight_grad, vx, vg, vo, p);
    }, py::arg("x"), py::arg("grad"), py::arg("out"), py::arg("stride"), py::arg("padding"),
       py::arg("dilation"), py::arg("groups"), "out = conv2d's weight gradient.");
    m.def("max_pool2d", [pool_params](const py::array& x, const py::array& out,
                                      const py::array& indices, const Pair& kernel,
                                      const Pair& stride, const Pair& padding,
                                      const Pair& dilation) {
      auto vx = view_of(x), vo = out_of(out), vi = out_of(indices);
      const auto p = pool_params(kernel, stride, padding, dilation);
      MaybeRelease r(numel(vo) * p.kernel[0] * p.kernel[1]);
      max_pool2d(vx, vo, vi, p);
    });
    m.def("max_pool2d_backward", [](const py::array& gy, const py::array& indices,
                                    const py::array& gx) {
      auto vg = view_of(gy), vi = view_of(indices), vo = out_of(gx);
      MaybeRelease r(numel(vo) + numel(vg));
      max_pool2d_backward(vg, vi, vo);
    });
    m.def("avg_pool2d", [pool_params](const py::array& x, const py::array& out, const Pair& kernel,
                                      const Pair& stride, const Pair& padding,
                                      bool count_include_pad, int64_t divisor_override) {
      auto vx = view_of(x), vo = out_of(out);
      const auto p = pool_params(kernel, stride, padding, {1, 1});
      MaybeRelease r(numel(vo) * p.kernel[0] * p.kernel[1]);
      avg_pool2d(vx, vo, p, count_include_pad, divisor_override);
    });
    m.def("avg_pool2d_backward", [pool_params](const py::array& gy, const py::array& gx,
                                               const Pair& kernel, const Pair& stride,
                                               const Pair& padding, bool count_include_pad,
                                               int64_t divisor_override) {
      auto vg = view_of(gy), vo = out_of(gx);
      const auto p = pool_params(kernel, stride, padding, {1, 1});
      MaybeRelease r(numel(vg) * p.kernel[0] * p.kernel[1]);
      avg_pool2d_backward(vg, vo, p, count_include_pad, divisor_override);
    });
    m.def("adaptive_avg_pool2d", [](const py::array& x, const py::array& out) {
      auto vx = view_of(x), vo = out_of(out);
      MaybeRelease r(numel(vx) + numel(vo));
      adaptive_avg_pool2d(vx, vo);
    });
    m.def("adaptive_avg_pool2d_backward", [](const py::array& gy, const py::array& gx) {
      auto vg = view_of(gy), vo = out_of(gx);
      MaybeRelease r(numel(vg) + numel(vo));
      adaptive_avg_pool2d_backward(vg, vo);
    });
  }
  // ------------------------------------------------------------ optimizer updates
  // In place on contiguous arrays; None for a buffer the variant does not use.
  using OptArray = std::optional<py::array>;
  auto opt_view = [](const OptArray& a, View& storage) -> const View* {
    if (!a) return nullptr;
    storage = out_of(*a);
    return &storage;
  };
  m.def("sgd_update", [opt_view](const py::array& param, const py::array& grad,
                                 const OptArray& momentum_buffer, double lr, double momentum,
                                 double dampening, double weight_decay, bool nesterov,
                                 bool maximize, bool init_buffer) {
    auto vp = out_of(param), vg = view_of(grad);
    View vb;
    const View* b = opt_view(momentum_buffer, vb);
    SgdArgs args{lr, momentum, dampening, weight_decay, nesterov, maximize, init_buffer};
    MaybeRelease r(numel(vp));
    DISPATCH(sgd_update, vp, vg, b, args);
  }, py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("lr"),
     py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
     py::arg("maximize"), py::arg("init_buffer"));
  m.def("adam_update", [opt_view](const py::array& param, const py::array& grad,
                                  const py::array& exp_avg, const py::array& exp_avg_sq,
                                  const OptArray& max_exp_avg_sq, const py::array& step,
                                  double lr, double beta1, double beta2, double eps,
                                  double weight_decay, bool decoupled_weight_decay,
                                  bool maximize) {
    auto vp = out_of(param), vg = view_of(grad), vm = out_of(exp_avg), vv = out_of(exp_avg_sq),
         vs = out_of(step);
    View vx;
    const View* x = opt_view(max_exp_avg_sq, vx);
    AdamArgs args{lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, maximize};
    MaybeRelease r(numel(vp));
    DISPATCH(adam_update, vp, vg, vm, vv, x, vs, args);
  }, py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
     py::arg("max_exp_avg_sq"), py::arg("step"), py::arg("lr"), py::arg("beta1"),
     py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
     py::arg("decoupled_weight_decay"), py::arg("maximize"));
  m.def("rmsprop_update", [opt_view](const py::array& param, const py::array& grad,
                                     const py::array& square_avg, const OptArray& grad_avg,
                                     const OptArray& momentum_buffer, const py::array& step,
                                     double lr, double alpha, double eps, double weight_decay,
                                     double momentum, bool maximize) {
    auto vp = out_of(param), vg = view_of(grad), vq = out_of(square_avg), vs = out_of(step);
    View va, vb;
    const View* a = opt_view(grad_avg, va);
    const View* b = opt_view(momentum_buffer, vb);
    RmspropArgs args{lr, alpha, eps, weight_decay, momentum, maximize};
    MaybeRelease r(numel(vp));
    DISPATCH(rmsprop_update, vp, vg, vq, a, b, vs, args);
  }, py::arg("param"), py::arg("grad"), py::arg("square_avg"), py::arg("grad_avg"),
     py::arg("momentum_buffer"), py::arg("step"), py::arg("lr"), py::arg("alpha"),
     py::arg("eps"), py::arg("weight_decay"), py::arg("momentum"), py::arg("maximize"));
  m.def("adagrad_update", [](const py::array& param, const py::array& grad,
                             const py::array& state_sum, const py::array& step, double lr,
                             double lr_decay, double weight_decay, double eps, bool maximize) {
    auto vp = out_of(param), vg = view_of(grad), vq = out_of(state_sum), vs = out_of(step);
    AdagradArgs args{lr, lr_decay, weight_decay, eps, maximize};
    MaybeRelease r(numel(vp));
    DISPATCH(adagrad_update, vp, vg, vq, vs, args);
  }, py::arg("param"), py::arg("grad"), py::arg("state_sum"), py::arg("step"), py::arg("lr"),
     py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"), py::arg("maximize"));

  // ---- losses
  m.def("check_labels", [](const py::array& labels, int64_t n, std::optional<int64_t> ignore,
                           const std::string& what, const std::string& bound) {
    auto vl = view_of(labels);
    DISPATCH(check_labels, vl, n, ignore.has_value(), ignore.value_or(0), what, bound);
  });
  m.def("squared_error_sum", [](const py::array& a, const py::array& b, double scale,
                                const py::array& out) {
    auto va = view_of(a), vb = view_of(b), vo = out_of(out);
    MaybeRelease r(numel(va));
    DISPATCH(squared_error_sum, va, vb, scale, vo);
  });
  m.def("cross_entropy", [](const py::array& x, const py::array& target, const OptArray& weight,
                            int64_t ignore_index, double label_smoothing, int reduction,
                            const py::array& out, const py::array& lse, const py::array& total) {
    auto vx = view_of(x), vt = view_of(target), vo = out_of(out), vl = out_of(lse),
         vtw = out_of(total);
    OptView w(weight, false);
    MaybeRelease r(numel(vx));
    DISPATCH(cross_entropy, vx, vt, w.get(), ignore_index, label_smoothing, reduction, vo, vl,
             vtw);
  });
  m.def("cross_entropy_backward", [](const py::array& x, const py::array& target,
                                     const OptArray& weight, int64_t ignore_index,
                                     double label_smoothing, int reduction, const py::array& lse,
                                     const py::array& total, const py::array& grad,
                                     const py::array& grad_input) {
    auto vx = view_of(x), vt = view_of(target), vl = view_of(lse), vtw = view_of(total),
         vg = view_of(grad), vgi = out_of(grad_input);
    OptView w(weight, false);
    MaybeRelease r(numel(vx));
    DISPATCH(cross_entropy_backward, vx, vt, w.get(), ignore_index, label_smoothing, reduction, vl,
             vtw, vg, vgi);
  });
  m.def("cross_entropy_prob", [](const py::array& x, const py::array& target,
                                 const OptArray& weight, double label_smoothing, int reduction,
                                 const py::array& out, const py::array& lse,
                                 const py::array& total) {
    auto vx = view_of(x), vt = view_of(target), vo = out_of(out), vl = out_of(lse),
         vtw = out_of(total);
    OptView w(weight, false);
    MaybeRelease r(numel(vx));
    DISPATCH(cross_entropy_prob, vx, vt, w.get(), label_smoothing, reduction, vo, vl, vtw);
  });
  m.def("cross_entropy_prob_backward", [](const py::array& x, const py::array& target,
                                          const OptArray& weight, double label_smoothing,
                                          int reduction, const py::array& lse,
                                          const py::array& total, const py::array& grad,
                                          const py::array& grad_input,
                                          const OptArray& grad_target) {
    auto vx = view_of(x), vt = view_of(target), vl = view_of(lse), vtw = view_of(total),
         vg = view_of(grad), vgi = out_of(grad_input);
    OptView w(weight, false), gt(grad_target, true);
    MaybeRelease r(numel(vx));
    DISPATCH(cross_entropy_prob_backward, vx, vt, w.get(), label_smoothing, reduction, vl, vtw, vg,
             vgi, gt.get());
  });
  // ---- recurrent cells
  // One time step of an LSTM, GRU or Elman RNN given its gate pre-activations
  // (rnn.h); absent biases and gradients are None.
  m.def("lstm_cell", [](const py::array& input_gates, const py::array& hidden_gates,
                        const py::array& cx, const OptArray& input_bias,
                        const OptArray& hidden_bias, const py::array& hy, const py::array& cy,
                        const py::array& workspace) {
    auto vi = view_of(input_gates), vh = view_of(hidden_gates), vc = view_of(cx);
    auto vhy = out_of(hy), vcy = out_of(cy), vw = out_of(workspace);
    OptView bi(input_bias, false), bh(hidden_bias, false);
    MaybeRelease r(numel(vi));
    DISPATCH(lstm_cell_forward, vi, vh, vc, bi.get(), bh.get(), vhy, vcy, vw);
  });
  m.def("lstm_cell_backward", [](const OptArray& grad_hy, const OptArray& grad_cy,
                                 const py::array& cx, const py::array& cy,
                                 const py::array& workspace, const py::array& grad_gates,
                                 const py::array& grad_cx) {
    OptView ghy(grad_hy, false), gcy(grad_cy, false);
    auto vc = view_of(cx), vcy = view_of(cy), vw = view_of(workspace);
    auto vg = out_of(grad_gates), vgc = out_of(grad_cx);
    MaybeRelease r(numel(vw));
    DISPATCH(lstm_cell_backward, ghy.get(), gcy.get(), vc, vcy, vw, vg, vgc);
  });
  m.def("gru_cell", [](const py::array& input_gates, const py::array& hidden_gates,
                       const py::array& hx, const OptArray& input_bias,
                       const OptArray& hidden_bias, const py::array& hy,
                       const py::array& workspace) {
    auto vi = view_of(input_gates), vh = view_of(hidden_gates), vx = view_of(hx);
    auto vhy = out_of(hy), vw = out_of(workspace);
    OptView bi(input_bias, false), bh(hidden_bias, false);
    MaybeRelease r(numel(vi));
    DISPATCH(gru_cell_forward, vi, vh, vx, bi.get(), bh.get(), vhy, vw);
  });
  m.def("gru_cell_backward", [](const py::array& grad_hy, const py::array& hx,
                                const py::array& workspace, const py::array& grad_input_gates,
                                const py::array& grad_hidden_gates, const py::array& grad_hx) {
    auto vg = view_of(grad_hy), vx = view_of(hx), vw = view_of(workspace);
    auto vgi = out_of(grad_input_gates), vgh = out_of(grad_hidden_gates), vgx = out_of(grad_hx);
    MaybeRelease r(numel(vw));
    DISPATCH(gru_cell_backward, vg, vx, vw, vgi, vgh, vgx);
  });
  m.def("rnn_cell", [](const py::array& input_gates, const py::array& hidden_gates,
                       const OptArray& input_bias, const OptArray& hidden_bias, bool relu,
                       const py::array& hy) {
    auto vi = view_of(input_gates), vh = view_of(hidden_gates), vhy = out_of(hy);
    OptView bi(input_bias, false), bh(hidden_bias, false);
    MaybeRelease r(numel(vi));
    DISPATCH(rnn_cell_forward, vi, vh, bi.get(), bh.get(), relu, vhy);
  });
  m.def("rnn_cell_backward", [](const py::array& grad_hy, const py::array& hy, bool relu,
                                const py::array& grad_gates) {
    auto vg = view_of(grad_hy), vhy = view_of(hy), vgg = out_of(grad_gates);
    MaybeRelease r(numel(vhy));
    DISPATCH(rnn_cell_backward, vg, vhy, relu, vgg);
  });
  // One direction of one layer over a packed sequence (rnn.h); the saved per-row
  // arrays the mode does not use, absent biases and initial states are None.
  py::dict rnn_modes;
  rnn_modes["LSTM"] = static_cast<int>(RnnMode::lstm);
  rnn_modes["GRU"] = static_cast<int>(RnnMode::gru);
  rnn_modes["RNN_TANH"] = static_cast<int>(RnnMode::rnn_tanh);
  rnn_modes["RNN_RELU"] = static_cast<int>(RnnMode::rnn_relu);
  m.attr("RNN_MODES") = rnn_modes;
  struct SavedViews {
    OptView h_prev, c_prev, cell, workspace;
    SavedViews(const py::array& h, const OptArray& c, const OptArray& cy, const OptArray& ws,
               bool writable)
        : h_prev(h, writable), c_prev(c, writable), cell(cy, writable), workspace(ws, writable) {}
    RnnSaved get() const { return {h_prev.get(), c_prev.get(), cell.get(), workspace.get()}; }
  };
  m.def("rnn_sequence_forward", [](int mode, const py::array& input_gates, const py::array& w_hh,
                                   const OptArray& input_bias, const OptArray& hidden_bias,
                                   const OptArray& h0, const OptArray& c0,
                                   const std::vector<int64_t>& batch_sizes, bool reverse,
                                   const py::array& out, const py::array& h_n,
                                   const OptArray& c_n, const py::array& h_prev,
                                   const OptArray& c_prev, const OptArray& cell,
                                   const OptArray& workspace) {
    auto vi = view_of(input_gates), vw = view_of(w_hh), vo = out_of(out), vh = out_of(h_n);
    OptView bi(input_bias, false), bh(hidden_bias, false), vh0(h0, false), vc0(c0, false),
        vc(c_n, true);
    const SavedViews saved(h_prev, c_prev, cell, workspace, true);
    const auto e = op_from_int<RnnMode>(mode, "rnn_sequence");
    MaybeRelease r(numel(vi) + numel(vw));
    DISPATCH(rnn_sequence_forward, e, vi, vw, bi.get(), bh.get(), vh0.get(), vc0.get(),
             batch_sizes.data(), static_cast<int64_t>(batch_sizes.size()), reverse, vo, vh,
             vc.get(), saved.get());
  });
  m.def("rnn_sequence_backward", [](int mode, const py::array& w_hh,
                                    const std::vector<int64_t>& batch_sizes, bool reverse,
                                    const py::array& grad_out, const py::array& grad_h_n,
                                    const OptArray& grad_c_n, const OptArray& out,
                                    const py::array& h_prev, const OptArray& c_prev,
                                    const OptArray& cell, const OptArray& workspace,
                                    const py::array& grad_gates,
                                    const OptArray& grad_hidden_gates, const py::array& grad_h0,
                                    const OptArray& grad_c0, const OptArray& grad_w_hh,
                                    const OptArray& grad_input_bias,
                                    const OptArray& grad_hidden_bias) {
    auto vw = view_of(w_hh), vg = view_of(grad_out), vgh = view_of(grad_h_n);
    OptView vo(out, false), vgc(grad_c_n, false), vghg(grad_hidden_gates, true),
        vgc0(grad_c0, true), vgw(grad_w_hh, true), vgbi(grad_input_bias, true),
        vgbh(grad_hidden_bias, true);
    const SavedViews saved(h_prev, c_prev, cell, workspace, false);
    const RnnGrads grads{out_of(grad_gates), vghg.get(), out_of(grad_h0), vgc0.get(),
                         vgw.get(), vgbi.get(), vgbh.get()};
    const auto e = op_from_int<RnnMode>(mode, "rnn_sequence");
    MaybeRelease r(numel(grads.gates) + numel(vw));
    DISPATCH(rnn_sequence_backward, e, vw, batch_sizes.data(),
             static_cast<int64_t>(batch_sizes.size()), reverse, vg, vgh, vgc.get(), vo.get(),
             saved.get(), grads);
  });
  // ---- upsampling
  // NCHW; mode 0 nearest, 1 nearest-exact, 2 bilinear; a scale <= 0 means the output
  // size was given instead of a scale factor.
  {
    auto upsample_params = [](int mode, bool align_corners, const std::array<double, 2>& scale) {
      UpsampleParams p;
      p.mode = static_cast<UpsampleMode>(mode);
      p.align_corners = align_corners;
      p.scale[0] = scale[0];
      p.scale[1] = scale[1];
      return p;
    };
    m.def("upsample2d", [upsample_params](const py::array& x, const py::array& out, int mode,
                                          bool align_corners, const std::array<double, 2>& scale) {
      auto vx = view_of(x), vo = out_of(out);
      const auto p = upsample_params(mode, align_corners, scale);
      MaybeRelease r(numel(vo));
      upsample2d(vx, vo, p);
    }, py::arg("x"), py::arg("out"), py::arg("mode"), py::arg("align_corners"), py::arg("scale"),
       "out = x resized to out's (H, W) by nearest, nearest-exact or bilinear interpolation.");
    m.def("upsample2d_backward", [upsample_params](const py::array& gy, const py::array& gx,
                                                   int mode, bool align_corners,
                                                   const std::array<double, 2>& scale) {
      auto vg = view_of(gy), vo = out_of(gx);
      const auto p = upsample_params(mode, align_corners, scale);
      MaybeRelease r(numel(vg));
      upsample2d_backward(vg, vo, p);
    }, py::arg("grad"), py::arg("out"), py::arg("mode"), py::arg("align_corners"),
       py::arg("scale"), "out = the input gradient of upsample2d for grad.");
  }
}
