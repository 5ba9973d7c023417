// Reductions, scans and softmax (contract in reduce.h).
//
// reduce() turns x and the keepdim-shaped output into a list of dims, each
// with x's stride and out's stride (0 on reduced dims), sorted by x's stride
// and merged where possible, so that most calls become either
//   * a row reduction: the innermost (contiguous) dim is reduced, each output
//     reduces whole rows with a vectorized loop, or
//   * a column reduction: the innermost dim is kept, each input row is added
//     element by element into a row of accumulators (vectorized across it).
// Work is split across threads over the flat iteration space, so a full
// reduction of one long vector uses every thread as well as many short rows do.
// Float sums accumulate blocks of a few thousand elements in the input type
// (vector lanes) and add the block sums in double: accurate for 16M elements.
//
// reduce_arg, cumsum, softmax and softmax_backward work "along one dim": they
// visit every line of x along that dim (a LineWalker steps through the other
// dims) and process the line with a contiguous fast path when its stride is 1.
#include "reduce.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "elementwise_math.h"

namespace genesis::GENESIS_ISA_NS {
namespace {

using u8 = uint8_t;  // storage of DType::b8

constexpr int64_t kGrain = 32768;  // elements below which work stays on one thread
constexpr int64_t kBlock = 1024;   // float sums: block length summed in the input type
constexpr int64_t kSumPrefetchBytes = 16384;  // how far ahead contiguous sums prefetch

std::string shape_str(const View& v) {
  std::string s = "(";
  for (int d = 0; d < v.ndim; ++d) {
    if (d) s += ", ";
    s += std::to_string(v.shape[d]);
  }
  if (v.ndim == 1) s += ",";
  return s + ")";
}

[[noreturn]] void fail_dtype(const char* op, DType x, DType out) {
  throw type_error(std::string(op) + ": unsupported dtypes: input " + dtype_name(x) +
                   ", output " + dtype_name(out));
}

int threads_for(int64_t work) {
  if (work < kGrain) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), work / (kGrain / 2)));
}

// ------------------------------------------------------------------ reduce ops
// Each op: Acc identity(); Acc combine(Acc, Acc) (branch-free where it vectorizes);
// Acc row(const T*, n, stride).  Columns go through combine_rows.

template <class T>
using SumAcc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// Float sums of R contiguous lines of n elements each, read side by side (one core
// reads memory faster from several streams at once than from one; Zen 3: 24-25 GB/s
// from four, 16-18 from one).  Each line is summed in the order it would be alone:
// kLanes partial sums in T per block of kBlock elements (one or a few vector
// registers, each adding only kBlock / kLanes elements), the block sums added in
// double, then the elements past the last whole group of kLanes.
constexpr int kLanes = 16;
constexpr int kStreams = 4;            // lines read side by side
constexpr int64_t kStreamMin = 8192;   // elements per part below which a line is one stream
template <class T, int R>
void contiguous_sums(const T* const* x, int64_t n, double* total) {
  for (int r = 0; r < R; ++r) total[r] = 0;
  const int64_t whole = n / kLanes * kLanes;
  for (int64_t b = 0; b < whole; b += kBlock) {
    const int64_t e = std::min(whole, b + kBlock);
    T lane[R][kLanes] = {};
    for (int64_t i = b; i < e; i += kLanes)
      for (int r = 0; r < R; ++r) {
        // One stream: with the hardware prefetcher alone one Zen 5 core read 35-37 GB/s
        // of the 45-50 it can; fetching 16 KiB ahead (a prefetch never faults) gives
        // 38-43.  Several streams read faster without it.
        if constexpr (R == 1)
          for (int l = 0; l < kLanes; l += 64 / int(sizeof(T)))
            __builtin_prefetch(x[0] + i + l + kSumPrefetchBytes / int64_t(sizeof(T)));
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) lane[r][l] += x[r][i + l];
      }
    for (int r = 0; r < R; ++r)
      for (int l = 0; l < kLanes; ++l) total[r] += lane[r][l];
  }
  for (int r = 0; r < R; ++r)
    for (int64_t i = whole; i < n; ++i) total[r] += x[r][i];
}

template <class T>
struct SumOp {
  using Acc = SumAcc<T>;
  static Acc identity() { return 0; }
  static Acc combine(Acc a, Acc b) {
    if constexpr (std::is_floating_point_v<T>) return a + b;
    else return static_cast<Acc>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  }
  static Acc row(const T* x, int64_t n, int64_t s) {
    if constexpr (std::is_floating_point_v<T>) {
      if (s != 1) {
        double total = 0;
        for (int64_t i = 0; i < n; ++i) total += x[i * s];
        return total;
      }
      double total[kStreams + 1];
      if (n < kStreams * kStreamMin) {
        rows<1>(&x, n, total);
        return total[0];
      }
      // kStreams equal parts side by side, then the rest as one line.
      const int64_t part = n / kStreams / kLanes * kLanes;
      const T* parts[kStreams];
      for (int k = 0; k < kStreams; ++k) parts[k] = x + k * part;
      contiguous_sums<T, kStreams>(parts, part, total);
      const T* rest = x + kStreams * part;
      contiguous_sums<T, 1>(&rest, n - kStreams * part, total + kStreams);
      double sum = 0;
      for (int k = 0; k <= kStreams; ++k) sum += total[k];
      return sum;
    } else {
      uint64_t total = 0;
      if (s == 1) {
#pragma omp simd reduction(+ : total)
        for (int64_t i = 0; i < n; ++i) total += static_cast<uint64_t>(static_cast<int64_t>(x[i]));
      } else {
        for (int64_t i = 0; i < n; ++i) total += static_cast<uint64_t>(static_cast<int64_t>(x[i * s]));
      }
      return static_cast<Acc>(total);
    }
  }
  // Float sums of R contiguous lines shorter than those row() splits, read side by side,
  // each with the bits row() gives it alone.
  template <int R>
  static void rows(const T* const* x, int64_t n, Acc* out) { contiguous_sums<T, R>(x, n, out); }
};

template <class T>
struct ProdOp {
  using Acc = SumAcc<T>;
  static Acc identity() { return 1; }
  static Acc combine(Acc a, Acc b) {
    if constexpr (std::is_floating_point_v<T>) return a * b;
    else return static_cast<Acc>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  }
  static Acc row(const T* x, int64_t n, int64_t s) {
    Acc r = 1;
    for (int64_t i = 0; i < n; ++i) r = combine(r, static_cast<Acc>(x[i * s]));
    return r;
  }
};

// Extremes of R contiguous lines of n elements each, read side by side (as
// contiguous_sums reads them): r[k] becomes the max (min) of r[k] and line k, NaNs
// skipped; for floats has_nan[k] says whether line k holds one.  Each line is reduced in
// the same lanes and order whatever R is.
template <class T, bool IsMax, int R>
void extremes_side_by_side(const T* const* x, int64_t n, T* r, bool* has_nan) {
  constexpr bool kFloat = std::is_floating_point_v<T>;
  using Flag = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;  // vectorizes beside T
  constexpr int kL = 64 / sizeof(T);  // two AVX2 registers per line
  const auto pick = [](T a, T b) { return IsMax ? (a > b ? a : b) : (a < b ? a : b); };
  const int64_t whole = n / kL * kL;
  T acc[R][kL];
  Flag nans[R][kL] = {};
  for (int k = 0; k < R; ++k)
    for (int j = 0; j < kL; ++j) acc[k][j] = r[k];
  for (int64_t i = 0; i < whole; i += kL)
    for (int k = 0; k < R; ++k) {
#pragma omp simd
      for (int j = 0; j < kL; ++j) {
        const T v = x[k][i + j];
        acc[k][j] = pick(v, acc[k][j]);
        if constexpr (kFloat) nans[k][j] |= v != v;
      }
    }
  for (int k = 0; k < R; ++k) {
    Flag nan = 0;
    for (int j = 0; j < kL; ++j) r[k] = pick(acc[k][j], r[k]), nan |= nans[k][j];
    bool rest_nan = false;
    r[k] = vm::ordered_extreme<T, IsMax, kFloat>(x[k] + whole, n - whole, r[k], &rest_nan);
    if constexpr (kFloat) has_nan[k] = nan != 0 || rest_nan;
  }
}

// max (min) of r and a contiguous float line of at least kStreams * kStreamMin elements,
// read as kStreams parts side by side (as SumOp::row reads long lines), the elements past
// them by ordered_extreme.  NaNs are skipped; *has_nan says whether there was one.
template <class T, bool IsMax>
T extreme_of_parts(const T* x, int64_t n, T r, bool* has_nan) {
  const auto pick = [](T a, T b) { return IsMax ? (a > b ? a : b) : (a < b ? a : b); };
  const int64_t part = n / kStreams / kLanes * kLanes;
  const T* parts[kStreams];
  T extremes[kStreams];
  bool nans[kStreams];
  for (int k = 0; k < kStreams; ++k) parts[k] = x + k * part, extremes[k] = r;
  extremes_side_by_side<T, IsMax, kStreams>(parts, part, extremes, nans);
  bool nan = false;
  for (int k = 0; k < kStreams; ++k) r = pick(extremes[k], r), nan = nan || nans[k];
  bool rest_nan;
  r = vm::ordered_extreme<T, IsMax, true>(x + kStreams * part, n - kStreams * part, r, &rest_nan);
  *has_nan = nan || rest_nan;
  return r;
}

// max/min; NaN wins.  bool: max = any, min = all.
template <class T, bool IsMax>
struct ExtremeOp {
  using Acc = T;
  static Acc identity() {
    if constexpr (std::is_floating_point_v<T>)
      return IsMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
    else if constexpr (std::is_same_v<T, u8>) return IsMax ? 0 : 1;  // any / all
    else return IsMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
  }
  static Acc combine(Acc a, Acc b) {  // a NaN wins
    const T m = IsMax ? (b > a ? b : a) : (b < a ? b : a);  // a when either is NaN
    return b != b ? b : m;
  }
  static Acc row(const T* x, int64_t n, int64_t s) {
    Acc r = identity();
    if (s == 1) {
      if constexpr (std::is_floating_point_v<T>) {
        if (n < kStreams * kStreamMin) {
          rows<1>(&x, n, &r);
          return r;
        }
        bool nan;  // a NaN anywhere wins
        r = extreme_of_parts<T, IsMax>(x, n, r, &nan);
        return nan ? std::numeric_limits<T>::quiet_NaN() : r;
      }
      return vm::ordered_extreme<T, IsMax>(x, n, r);
    }
    for (int64_t i = 0; i < n; ++i) r = combine(r, x[i * s]);
    return r;
  }
  // Float extremes of R contiguous lines shorter than those row() splits, read side by
  // side, each as row() finds it alone.
  template <int R>
  static void rows(const T* const* x, int64_t n, Acc* out) {
    bool nan[R];
    for (int k = 0; k < R; ++k) out[k] = identity();
    extremes_side_by_side<T, IsMax, R>(x, n, out, nan);
    for (int k = 0; k < R; ++k)
      if (nan[k]) out[k] = std::numeric_limits<T>::quiet_NaN();
  }
};

// Ops whose rows reduce_typed may hand over kStreams at a time, to Op::rows (float sums
// and extremes).
template <class Op>
struct reads_lines_side_by_side : std::false_type {};
template <class T>
struct reads_lines_side_by_side<SumOp<T>> : std::is_floating_point<T> {};
template <class T, bool IsMax>
struct reads_lines_side_by_side<ExtremeOp<T, IsMax>> : std::is_floating_point<T> {};

// acc[j] = combine(acc[j], x[k][j * s]) for j < n, over the R rows x[0..R) in order: each
// accumulator is loaded and stored once per R rows (read side by side: contiguous rows
// far apart each come from a stream of their own), combined as row by row.
template <class Op, int R, class T>
void combine_rows(typename Op::Acc* acc, const T* const* x, int64_t n, int64_t s) {
  using Acc = typename Op::Acc;
  if (s == 1) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      Acc a = acc[j];
      for (int k = 0; k < R; ++k) a = Op::combine(a, static_cast<Acc>(x[k][j]));
      acc[j] = a;
    }
  } else {
    for (int64_t j = 0; j < n; ++j)
      for (int k = 0; k < R; ++k) acc[j] = Op::combine(acc[j], static_cast<Acc>(x[k][j * s]));
  }
}

// ------------------------------------------------------------------ reduce plan

struct Dim {
  int64_t n, sx, so;  // size, x stride, out stride (0: reduced); in elements
};

struct Plan {
  std::vector<Dim> dims;  // outermost first; the last one is the innermost
  int64_t x_off = 0, o_off = 0;
};

Plan make_plan(const View& x, const View& out) {
  Plan p;
  for (int d = 0; d < x.ndim; ++d) {
    Dim dim{x.shape[d], x.stride[d], out.shape[d] == 1 ? 0 : out.stride[d]};
    if (dim.n == 1) continue;
    if (dim.sx < 0) {  // walk flipped dims forwards
      p.x_off += (dim.n - 1) * dim.sx;
      p.o_off += (dim.n - 1) * dim.so;
      dim.sx = -dim.sx;
      dim.so = -dim.so;
    }
    // Stable insertion by decreasing |x stride|, kept dims outside reduced
    // ones on ties (broadcast dims have stride 0).
    auto pos = p.dims.end();
    while (pos != p.dims.begin()) {
      const Dim& prev = *(pos - 1);
      if (prev.sx > dim.sx || (prev.sx == dim.sx && (prev.so != 0 || dim.so == 0))) break;
      --pos;
    }
    p.dims.insert(pos, dim);
  }
  std::vector<Dim> merged;
  for (const Dim& d : p.dims) {
    if (!merged.empty()) {
      Dim& m = merged.back();
      if (m.sx == d.sx * d.n && m.so == d.so * d.n && ((m.so == 0) == (d.so == 0))) {
        m.n *= d.n;
        m.sx = d.sx;
        m.so = d.so;
        continue;
      }
    }
    merged.push_back(d);
  }
  p.dims = merged;
  return p;
}

// Offsets of a flat index over a list of dims (row-major over that list).
struct Walker {
  std::vector<Dim> dims;
  std::vector<int64_t> idx;
  int64_t ox = 0, oo = 0;

  explicit Walker(std::vector<Dim> d) : dims(std::move(d)), idx(dims.size(), 0) {}
  int64_t size() const {
    int64_t n = 1;
    for (const Dim& d : dims) n *= d.n;
    return n;
  }
  void seek(int64_t flat) {
    ox = oo = 0;
    for (int k = static_cast<int>(dims.size()) - 1; k >= 0; --k) {
      idx[k] = flat % dims[k].n;
      flat /= dims[k].n;
      ox += idx[k] * dims[k].sx;
      oo += idx[k] * dims[k].so;
    }
  }
  void next() {
    for (int k = static_cast<int>(dims.size()) - 1; k >= 0; --k) {
      ox += dims[k].sx;
      oo += dims[k].so;
      if (++idx[k] < dims[k].n) return;
      ox -= dims[k].n * dims[k].sx;
      oo -= dims[k].n * dims[k].so;
      idx[k] = 0;
    }
  }
};

// Rows [b, e) of the reduced dims (walker rw, offsets from base) combined into acc[0..n),
// kStreams at a time.
template <class Op, class T>
void combine_reduced_rows(typename Op::Acc* acc, const T* base, Walker& rw, int64_t b, int64_t e,
                          int64_t n, int64_t s) {
  rw.seek(b);
  int64_t r = b;
  for (; r + kStreams <= e; r += kStreams) {
    const T* rows[kStreams];
    for (int k = 0; k < kStreams; ++k, rw.next()) rows[k] = base + rw.ox;
    combine_rows<Op, kStreams>(acc, rows, n, s);
  }
  for (; r < e; ++r, rw.next()) {
    const T* row = base + rw.ox;
    combine_rows<Op, 1>(acc, &row, n, s);
  }
}

template <class Out, class Acc>
Out finalize(Acc a) {
  return static_cast<Out>(a);
}

// out[kept] = op over reduced dims of x.  Out is T, or int64 for integer sums.
template <class T, class Out, class Op>
void reduce_typed(const View& x, const View& out) {
  using Acc = typename Op::Acc;
  const T* xd = static_cast<const T*>(x.data);
  Out* od = static_cast<Out*>(out.data);
  const int64_t n_out = numel(out), n_in = numel(x);
  if (n_out == 0) return;
  if (n_in == 0) {  // empty reduction: the identity
    const Plan q = make_plan(out, out);
    Walker w(q.dims);
    for (int64_t i = 0; i < n_out; ++i, w.next()) od[q.x_off + w.ox] = finalize<Out>(Op::identity());
    return;
  }
  Plan p = make_plan(x, out);
  xd += p.x_off;
  od += p.o_off;
  if (p.dims.empty()) {  // a single element
    od[0] = finalize<Out>(Op::combine(Op::identity(), static_cast<Acc>(xd[0])));
    return;
  }
  const Dim inner = p.dims.back();
  std::vector<Dim> kept, red;
  for (size_t k = 0; k + 1 < p.dims.size(); ++k)
    (p.dims[k].so ? kept : red).push_back(p.dims[k]);
  const int nt = threads_for(n_in);

  if (inner.so == 0) {
    // Rows: flat space (output o, reduced r, element j), j innermost.  Each
    // thread reduces a contiguous part of it; outputs split between threads
    // are combined from per-thread partial results afterwards.
    Walker ko(kept);
    const int64_t n_red = Walker(red).size(), row_len = inner.n;
    const int64_t per_out = n_red * row_len, total = n_out * per_out;
    struct Partial { int64_t o = -1; Acc v; };
    std::vector<Partial> partial(2 * nt);
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num(), nth = omp_get_num_threads();
      const int64_t b = total * t / nth, e = total * (t + 1) / nth;
      Walker kw(kept), rw(red);
      int64_t pos = b;
      if (b < e) kw.seek(b / per_out);
      while (pos < e) {
        if constexpr (reads_lines_side_by_side<Op>::value) {
          // Outputs of one contiguous line each, shorter than the lines Op::row splits
          // itself: kStreams whole ones at a time, read side by side, each reduced as
          // Op::row reduces it alone (the same bits however the rows are grouped).
          if (n_red == 1 && inner.sx == 1 && row_len < kStreams * kStreamMin) {
            rw.seek(0);
            while (pos % per_out == 0 && pos + kStreams * per_out <= e) {
              const T* lines[kStreams];
              int64_t at[kStreams];
              for (int k = 0; k < kStreams; ++k, kw.next()) {
                lines[k] = xd + kw.ox + rw.ox;
                at[k] = kw.oo;
              }
              Acc r[kStreams];
              Op::template rows<kStreams>(lines, row_len, r);
              for (int k = 0; k < kStreams; ++k) od[at[k]] = finalize<Out>(r[k]);
              pos += kStreams * per_out;
            }
            if (pos >= e) break;
          }
        }
        const int64_t o = pos / per_out, o_begin = o * per_out;
        const int64_t sub_b = pos - o_begin, sub_e = std::min(e - o_begin, per_out);
        Acc acc = Op::identity();
        rw.seek(sub_b / row_len);
        for (int64_t q = sub_b; q < sub_e;) {
          const int64_t j = q % row_len, len = std::min(row_len - j, sub_e - q);
          acc = Op::combine(acc, Op::row(xd + kw.ox + rw.ox + j * inner.sx, len, inner.sx));
          q += len;
          rw.next();
        }
        if (sub_b == 0 && sub_e == per_out) {
          od[kw.oo] = finalize<Out>(acc);
        } else {
          Partial& slot = partial[2 * t + (sub_b == 0 ? 1 : 0)];
          slot.o = o;
          slot.v = acc;
        }
        pos = o_begin + sub_e;
        kw.next();
      }
    }
    // Combine split outputs (in thread order, so the result is deterministic).
    for (size_t i = 0; i < partial.size(); ++i) {
      if (partial[i].o < 0) continue;
      const int64_t o = partial[i].o;
      bool first = true;
      for (size_t k = 0; k < i; ++k) first = first && partial[k].o != o;
      if (!first) continue;
      Acc acc = Op::identity();
      for (size_t k = i; k < partial.size(); ++k)
        if (partial[k].o == o) acc = Op::combine(acc, partial[k].v);
      ko.seek(o);
      od[ko.oo] = finalize<Out>(acc);
    }
    return;
  }

  // Columns: the innermost dim is kept.  Accumulate input rows into rows of
  // accumulators: per task (outer kept index, chunk of the row) over every
  // reduced index, or, when there are few outputs, per thread over a share of
  // the reduced indices into private accumulators combined afterwards.
  const int64_t row_len = inner.n, n_kept_outer = Walker(kept).size();
  const int64_t n_red = Walker(red).size();
  std::vector<Acc> acc(static_cast<size_t>(n_out), Op::identity());
  // Columns per task: 16 KiB of double accumulators.  Reading rows in longer runs keeps
  // the prefetchers streaming (4096 x 4096 floats along dim 0, one core: 5.6 ms in runs
  // of 512, 3.0-3.2 in runs of 2048).
  constexpr int64_t kChunk = 2048;
  const int64_t chunks = (row_len + kChunk - 1) / kChunk, tasks = n_kept_outer * chunks;
  if (nt == 1 || tasks >= 4 * nt) {
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num(), nth = omp_get_num_threads();
      const int64_t b = tasks * t / nth, e = tasks * (t + 1) / nth;
      Walker kw(kept), rw(red);
      int64_t current = -1;
      for (int64_t task = b; task < e; ++task) {
        const int64_t ko_i = task / chunks, j0 = (task % chunks) * kChunk;
        const int64_t len = std::min(kChunk, row_len - j0);
        if (ko_i != current) kw.seek(current = ko_i);
        combine_reduced_rows<Op>(acc.data() + ko_i * row_len + j0, xd + kw.ox + j0 * inner.sx,
                                 rw, 0, n_red, len, inner.sx);
      }
    }
  } else {
    std::vector<Acc> priv(static_cast<size_t>(n_out) * (nt - 1), Op::identity());
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num(), nth = omp_get_num_threads();
      Acc* mine = t == 0 ? acc.data() : priv.data() + (t - 1) * n_out;
      const int64_t b = n_red * t / nth, e = n_red * (t + 1) / nth;
      Walker kw(kept), rw(red);
      for (int64_t ko_i = 0; ko_i < n_kept_outer; ++ko_i, kw.next())
        combine_reduced_rows<Op>(mine + ko_i * row_len, xd + kw.ox, rw, b, e, row_len, inner.sx);
    }
    for (int t = 1; t < nt; ++t)
      for (int64_t i = 0; i < n_out; ++i) acc[i] = Op::combine(acc[i], priv[(t - 1) * n_out + i]);
  }
  Walker kw(kept);
  for (int64_t ko_i = 0; ko_i < n_kept_outer; ++ko_i, kw.next())
    for (int64_t j = 0; j < row_len; ++j)
      od[kw.oo + j * inner.so] = finalize<Out>(acc[ko_i * row_len + j]);
}

template <class F>
void by_dtype(DType t, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
    case DType::b8: return f(u8{});
  }
}

// ------------------------------------------------------------------ along one dim

// Visits every line of `shape` along `dim`: the offsets of the line's first
// element in each of N views.  Lines are numbered row-major over the other dims.
template <int N>
struct LineWalker {
  int nd = 0;
  int64_t n[kMaxDims];
  int64_t s[kMaxDims][N];
  int64_t idx[kMaxDims];
  int64_t off[N];

  LineWalker(const View* const (&v)[N], int dim) {
    for (int d = 0; d < v[0]->ndim; ++d) {
      if (d == dim || v[0]->shape[d] == 1) continue;
      n[nd] = v[0]->shape[d];
      for (int k = 0; k < N; ++k) s[nd][k] = v[k]->stride[d];
      ++nd;
    }
  }
  int64_t lines() const {
    int64_t c = 1;
    for (int d = 0; d < nd; ++d) c *= n[d];
    return c;
  }
  void seek(int64_t flat) {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = flat % n[d];
      flat /= n[d];
      for (int k = 0; k < N; ++k) off[k] += idx[d] * s[d][k];
    }
  }
  void next() {
    for (int d = nd - 1; d >= 0; --d) {
      for (int k = 0; k < N; ++k) off[k] += s[d][k];
      if (++idx[d] < n[d]) return;
      for (int k = 0; k < N; ++k) off[k] -= n[d] * s[d][k];
      idx[d] = 0;
    }
  }
};

// Runs body(offsets, count) for every line, G lines at a time: offsets[g] are line g's
// offsets, count is G but for a thread's last lines (threads split the lines).
template <int G, int N, class Body>
void for_line_groups(const View* const (&v)[N], int dim, const Body& body) {
  LineWalker<N> proto(v, dim);
  const int64_t lines = proto.lines(), len = v[0]->shape[dim];
  if (lines == 0 || len == 0) return;
  const int nt = static_cast<int>(std::min<int64_t>(threads_for(lines * len), lines));
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), nth = omp_get_num_threads();
    const int64_t b = lines * t / nth, e = lines * (t + 1) / nth;
    LineWalker<N> w = proto;
    if (b < e) w.seek(b);
    int64_t off[G][N];
    for (int64_t i = b; i < e;) {
      const int count = static_cast<int>(std::min<int64_t>(G, e - i));
      for (int g = 0; g < count; ++g, ++i, w.next())
        for (int k = 0; k < N; ++k) off[g][k] = w.off[k];
      body(off, count);
    }
  }
}

// Runs body(line offsets) for every line, threads splitting the lines.
template <int N, class Body>
void for_each_line(const View* const (&v)[N], int dim, const Body& body) {
  for_line_groups<1>(v, dim, [&](const int64_t (*off)[N], int) { body(off[0]); });
}

// Index of the first of x[0..n) for which pred holds (one does), tested 32 at a time.
template <class T, class Pred>
int64_t first_where(const T* x, int64_t n, Pred pred) {
  constexpr int64_t kChunk = 32;
  int64_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    uint32_t any = 0;
#pragma omp simd reduction(| : any)
    for (int64_t j = 0; j < kChunk; ++j) any |= pred(x[i + j]);
    if (any) break;
  }
  while (!pred(x[i])) ++i;
  return i;
}

// Lines of reduce_arg are read in blocks of 16 KiB.
template <class T>
constexpr int64_t kArgBlock = 16384 / sizeof(T);

// Index of the first max (min) of a contiguous line, or of its first NaN: what the loop
// of reduce_arg_typed finds, with the line read in blocks by the vectorized
// ordered_extreme.  Only one block is then searched: the first that holds a NaN, else the
// first whose extreme beats those of all blocks before it (the best value first appears
// there).
template <class T, bool IsMax>
int64_t arg_extreme_contiguous(const T* p, int64_t n) {
  constexpr bool kFloat = std::is_floating_point_v<T>;
  constexpr int64_t kBlock = kArgBlock<T>;
  T best = p[0];
  int64_t best_block = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t len = std::min(kBlock, n - b);
    bool nan = false;
    const T m = vm::ordered_extreme<T, IsMax, kFloat>(p + b, len, p[b], &nan);
    if (nan) return b + first_where(p + b, len, [](T v) { return v != v; });
    if (IsMax ? m > best : m < best) best = m, best_block = b;
  }
  const int64_t len = std::min(kBlock, n - best_block);
  return best_block + first_where(p + best_block, len, [best](T v) { return v == best; });
}

// One step of arg_extremes_side_by_side: R lines over [b, e), blocks of V registers
// (e - b a multiple of V registers), side by side.  Each lane keeps its best value and
// the first block in which it beat best[k], the line's best before b (a strict comparison
// keeps the first of equal values, -0 and +0 too); the first position of a better value
// lies in the smallest such block among the lanes holding the new best, and only that
// block is searched.  Selects, not branches: which lane holds the best is data, and a
// branch on it mispredicts about once a line.
template <class T, bool IsMax, int R, int V>
void arg_extremes_in_blocks(const T* const* x, int64_t b, int64_t e, T* best, int64_t* where,
                            bool* nan) {
  using Index = std::conditional_t<sizeof(T) == 8, int64_t, int32_t>;  // vectorizes beside T
  constexpr int kL = 32 / sizeof(T);  // one AVX2 register per line: with two, state spills
  constexpr Index kBlock = V * kL;
  const auto better = [](T u, T w) { return IsMax ? u > w : u < w; };
  if (b == e) return;
  T acc[R][kL];
  Index block[R][kL] = {};
  Index nans[R][kL] = {};
  for (int k = 0; k < R; ++k)
    for (int j = 0; j < kL; ++j) acc[k][j] = best[k];
  for (int64_t i = b; i < e; i += kBlock)
    for (int k = 0; k < R; ++k) {
      const T* p = x[k] + i;
#pragma omp simd
      for (int j = 0; j < kL; ++j) {
        // Blends written as such: as conditional stores GCC branches on them.
        T m = p[j];
        Index nan_here = m != m;
        for (int v = 1; v < V; ++v) {
          const T u = p[v * kL + j];
          m = better(u, m) ? u : m;
          nan_here |= u != u;
        }
        const T a = acc[k][j];
        const Index take = -static_cast<Index>(better(m, a));
        acc[k][j] = better(m, a) ? m : a;
        block[k][j] = (block[k][j] & ~take) | (static_cast<Index>(i) & take);
        nans[k][j] |= nan_here;
      }
    }
  for (int k = 0; k < R; ++k) {
    T top = best[k];
    Index any_nan = 0;
    for (int j = 0; j < kL; ++j) {
      any_nan |= nans[k][j];
      top = better(acc[k][j], top) ? acc[k][j] : top;
    }
    nan[k] = nan[k] || any_nan;
    if (!better(top, best[k]) || any_nan) continue;  // with a NaN the search may miss
    Index first = static_cast<Index>(e);
    for (int j = 0; j < kL; ++j)
      first = acc[k][j] == top && block[k][j] < first ? block[k][j] : first;
    const T* p = x[k] + first;
    Index pos = kBlock;
#pragma omp simd reduction(min : pos)
    for (Index j = 0; j < kBlock; ++j) pos = std::min(pos, p[j] == top ? j : kBlock);
    best[k] = top;
    where[k] = first + pos;
  }
}

// Index of the first max (min) of each of R contiguous lines of n < 2^31 elements, or of
// its first NaN, in one pass over the lines side by side: blocks of four registers, then
// single registers, then the elements past the last whole register.  Keeping the
// position of every element instead (a blend per register) took 1.35x as long on 32 rows
// of 4096 floats, in the cache.  A line with a NaN is searched again for it.
template <class T, bool IsMax, int R>
void arg_extremes_side_by_side(const T* const* x, int64_t n, int64_t* at) {
  constexpr int64_t kL = 32 / sizeof(T);
  const int64_t blocks = n / (4 * kL) * (4 * kL), whole = n / kL * kL;
  T best[R];
  bool nan[R] = {};
  for (int k = 0; k < R; ++k) best[k] = x[k][0], at[k] = 0;
  arg_extremes_in_blocks<T, IsMax, R, 4>(x, 0, blocks, best, at, nan);
  arg_extremes_in_blocks<T, IsMax, R, 1>(x, blocks, whole, best, at, nan);
  for (int k = 0; k < R; ++k) {
    bool line_nan = nan[k];
    for (int64_t i = whole; i < n; ++i) {
      const T v = x[k][i];
      const bool take = IsMax ? v > best[k] : v < best[k];
      line_nan = line_nan || v != v;
      at[k] = take ? i : at[k];
      best[k] = take ? v : best[k];
    }
    if (line_nan) at[k] = first_where(x[k], n, [](T y) { return y != y; });
  }
}

// Runs body(offset, w) for blocks of kColumns neighbouring lines of a contiguous (outer,
// n, inner) array taken along its middle dim: the block's first element and its width
// w <= kColumns (the last block of a slab is narrower).  Threads split the blocks.
template <int64_t kColumns, class Body>
void for_column_blocks(int64_t outer, int64_t n, int64_t inner, const Body& body) {
  const int64_t per_slab = (inner + kColumns - 1) / kColumns, blocks = outer * per_slab;
  const int nt = static_cast<int>(
      std::clamp<int64_t>(threads_for(outer * n * inner), 1, std::max<int64_t>(blocks, 1)));
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b % per_slab * kColumns;
    body(b / per_slab * n * inner + j0, std::min(kColumns, inner - j0));
  }
}

// argmax (argmin) of contiguous x along a dim with more after it, into contiguous values
// and indices: neighbouring lines advance together as in cumsum_columns, each lane keeping
// its line's best value and where it first saw it, or its first NaN, as the element loop
// of reduce_arg_typed does.  Line by line, 2048 x 2048 floats along dim 0 took 18.5 ms.
// Lines of fewer than 2^31 elements.
template <class T, bool IsMax>
void arg_columns(const T* x, T* values, int64_t* indices, int64_t outer, int64_t n,
                 int64_t inner) {
  using Index = std::conditional_t<sizeof(T) == 8, int64_t, int32_t>;  // vectorizes beside T
  constexpr int64_t kColumns = 256 / sizeof(T);
  for_column_blocks<kColumns>(outer, n, inner, [&](int64_t offset, int64_t w) {
    const T* xb = x + offset;
    const int64_t o = offset / (n * inner) * inner + offset % (n * inner);  // first output
    T best[kColumns];
    Index at[kColumns] = {};
    for (int64_t j = 0; j < w; ++j) best[j] = xb[j];
    for (Index i = 1; i < n; ++i) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        // Blends written as such: as conditional stores GCC branches on them.
        const T v = xb[i * inner + j], b = best[j];
        const bool take = (IsMax ? v > b : v < b) || (v != v && b == b);
        const Index m = -static_cast<Index>(take);
        best[j] = take ? v : b;
        at[j] = (at[j] & ~m) | (i & m);
      }
    }
    for (int64_t j = 0; j < w; ++j) values[o + j] = best[j], indices[o + j] = at[j];
  });
}

template <class T, bool IsMax>
void reduce_arg_typed(const View& x, int dim, const View& values, const View& indices) {
  const View* v[3] = {&x, &values, &indices};
  const T* xd = static_cast<const T*>(x.data);
  T* vd = static_cast<T*>(values.data);
  int64_t* id = static_cast<int64_t*>(indices.data);
  const int64_t n = x.shape[dim], s = x.stride[dim];
  if (n > 1 && n < (int64_t(1) << 31) && s > 1 && is_contiguous(x) && is_contiguous(values) &&
      is_contiguous(indices))
    return arg_columns<T, IsMax>(xd, vd, id, numel(x) / (n * s), n, s);
  if constexpr (sizeof(T) >= 4) {
    if (s == 1 && n <= kArgBlock<T>) {
      // Lines of one block: kStreams at a time, read side by side.
      for_line_groups<kStreams>(v, dim, [&](const int64_t (*off)[3], int count) {
        const T* lines[kStreams];
        int64_t at[kStreams];
        for (int g = 0; g < count; ++g) lines[g] = xd + off[g][0];
        if (count == kStreams)
          arg_extremes_side_by_side<T, IsMax, kStreams>(lines, n, at);
        else
          for (int g = 0; g < count; ++g)
            arg_extremes_side_by_side<T, IsMax, 1>(lines + g, n, at + g);
        for (int g = 0; g < count; ++g) {
          vd[off[g][1]] = lines[g][at[g]];
          id[off[g][2]] = at[g];
        }
      });
      return;
    }
  }
  for_each_line(v, dim, [&](const int64_t* off) {
    const T* p = xd + off[0];
    if (s == 1) {
      const int64_t at = arg_extreme_contiguous<T, IsMax>(p, n);
      vd[off[1]] = p[at];
      id[off[2]] = at;
      return;
    }
    T best = p[0];
    int64_t at = 0;
    for (int64_t i = 1; i < n; ++i) {
      if constexpr (std::is_floating_point_v<T>) {
        if (best != best) break;  // the first NaN wins
        const T y = p[i * s];
        if (y != y || (IsMax ? y > best : y < best)) best = y, at = i;
      } else {
        const T y = p[i * s];
        if (IsMax ? y > best : y < best) best = y, at = i;
      }
    }
    vd[off[1]] = best;
    id[off[2]] = at;
  });
}

// cumsum of contiguous x into contiguous out along a dim with more after it: lines
// `inner` apart, side by side.  Line by line (for_each_line) each element came from another
// cache line: 2048 x 2048 floats along dim 0 took 40 ms.  Here 256 bytes of neighbouring
// lines advance together, each with its own running sum in the same order as alone.
template <class T>
void cumsum_columns(const T* x, T* out, int64_t outer, int64_t n, int64_t inner) {
  constexpr int64_t kColumns = 256 / sizeof(T);
  for_column_blocks<kColumns>(outer, n, inner, [&](int64_t offset, int64_t w) {
    const T* xb = x + offset;
    T* ob = out + offset;
    SumAcc<T> acc[kColumns] = {};
    for (int64_t i = 0; i < n; ++i) {
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        acc[j] = SumOp<T>::combine(acc[j], static_cast<SumAcc<T>>(xb[i * inner + j]));
        ob[i * inner + j] = static_cast<T>(acc[j]);
      }
    }
  });
}

// Running sums of R lines of n elements (line g at x + off[g][0], out + off[g][1]), side
// by side, each in the order of the line alone.
template <class T, int R>
void running_sums(const T* x, int64_t sx, T* out, int64_t so, const int64_t (*off)[2],
                  int64_t n) {
  SumAcc<T> acc[R] = {};
  for (int64_t i = 0; i < n; ++i)
    for (int g = 0; g < R; ++g) {
      acc[g] = SumOp<T>::combine(acc[g], static_cast<SumAcc<T>>(x[off[g][0] + i * sx]));
      out[off[g][1] + i * so] = static_cast<T>(acc[g]);
    }
}

template <class T>
void cumsum_typed(const View& x, int dim, const View& out) {
  const View* v[2] = {&x, &out};
  const T* xd = static_cast<const T*>(x.data);
  T* od = static_cast<T*>(out.data);
  const int64_t n = x.shape[dim], sx = x.stride[dim], so = out.stride[dim];
  if (n > 1 && sx > 1 && is_contiguous(x) && is_contiguous(out))
    return cumsum_columns(xd, od, numel(x) / (n * sx), n, sx);
  // kStreams lines at a time: each running sum is a chain of dependent adds, which one
  // line alone waits on element by element.
  for_line_groups<kStreams>(v, dim, [&](const int64_t (*off)[2], int count) {
    if (count == kStreams) return running_sums<T, kStreams>(xd, sx, od, so, off, n);
    for (int g = 0; g < count; ++g) running_sums<T, 1>(xd, sx, od, so, off + g, n);
  });
}

// The maximum a softmax line is shifted by.  It skips NaNs: a NaN reaches the sum and
// makes the whole line NaN anyway.
template <class T>
T softmax_max(const T* x, int64_t n) {
  const T m = vm::ordered_extreme<T, true>(x, n, -std::numeric_limits<T>::infinity());
  return m == -std::numeric_limits<T>::infinity() ? T(0) : m;  // all -inf: 0/0 = NaN, as PyTorch
}

// Softmax of one line into out.  Contiguous lines take three passes (max, exp and sum,
// scale), each vectorized and over a line that stays in cache; strided lines are first
// gathered into `tmp`.  `next` is the line that follows in memory when lines are
// contiguous rows, else null (the exp pass prefetches it: see vm::exp_sum).  With
// `stream` (float outputs too large for the cache) a contiguous line is built in tmp
// and its last pass writes out with non-temporal stores.
template <class T>
void softmax_line(const T* x, int64_t sx, T* out, int64_t so, int64_t n, bool log, T* tmp,
                  const T* next, bool stream) {
  if (sx != 1) {
    for (int64_t i = 0; i < n; ++i) tmp[i] = x[i * sx];
    x = tmp;
  }
  stream = stream && so == 1;
  T* y = so == 1 && !stream ? out : tmp;  // where the contiguous result is built
  const T m = softmax_max(x, n);
  const T sum = vm::exp_sum(x, n, m, log ? nullptr : y, next);
  if constexpr (std::is_same_v<T, float>) {
    if (stream) {
      const float shift = m + std::log(sum), inv = 1.0f / sum;
      if (log) vm::map16_stream(x, out, n, [=](vm::f32x16 v) { return v - shift; });
      else vm::map16_stream(y, out, n, [=](vm::f32x16 v) { return v * inv; });
      return;
    }
  }
  if (log) {
    const T shift = m + std::log(sum);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] - shift;
  } else {
    const T inv = T(1) / sum;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  }
  if (so != 1)
    for (int64_t i = 0; i < n; ++i) out[i * so] = y[i];
}

// Softmax of contiguous float rows into a contiguous output too large for the cache,
// software-pipelined.  Done row by row, the exp pass is compute bound and the streamed
// output pass memory bound, one after the other.  Here the pass that computes row r's
// exps (into a buffer, as softmax_line does) also prefetches row r + 1 and streams out
// row r - 1, block by block, so the output's write traffic overlaps the arithmetic.
// Each row's operations and their order are softmax_line's: the results are the same.
void softmax_rows_streamed(const float* x, float* out, int64_t rows, int64_t n, bool log) {
  const int nt = static_cast<int>(std::min<int64_t>(threads_for(rows * n), rows));
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), nth = omp_get_num_threads();
    const int64_t b = rows * t / nth, e = rows * (t + 1) / nth;
    // Row r's exps go to a page-aligned region of its own parity (the row before streams
    // out of the other one; log_softmax stores no exps: it writes x - shift), at the
    // offset in its page of row r's output.  Stores a little ahead of later loads mod
    // 4 KiB make those loads wait (see host_cache.cpp); so placed, the exps stand to x
    // and to the output as the output stands to x.
    constexpr int64_t page = 4096 / sizeof(float);
    const int64_t region = (n + page - 1) / page * page + page;
    thread_local std::vector<float> buffers;
    if (static_cast<int64_t>(buffers.size()) < 2 * region + page)
      buffers.resize(2 * region + page);
    float* const regions =
        buffers.data() + (-reinterpret_cast<uintptr_t>(buffers.data()) & 4095) / 4;
    const auto exps_of = [&](int64_t r) {
      return regions + (r % 2) * region + (reinterpret_cast<uintptr_t>(out + r * n) & 4095) / 4;
    };
    const float* prev_src = nullptr;  // what row r - 1's output is computed from
    float* prev_out = nullptr;
    float prev_factor = 0;  // row r - 1's 1 / sum (softmax) or shift (log_softmax)
    const auto stream_out = [&](int64_t i0, int64_t len) {  // fenced once, at the end
      const float f = prev_factor;
      const float* src = prev_src + i0;
      float* dst = prev_out + i0;
      if (log) vm::map16_stream<false>(src, dst, len, [=](vm::f32x16 v) { return v - f; });
      else vm::map16_stream<false>(src, dst, len, [=](vm::f32x16 v) { return v * f; });
    };
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * n;
      float* y = log ? nullptr : exps_of(r);
      const float m = softmax_max(xr, n);
      // (past the last row the prefetches point outside x: they never fault)
      const float sum = vm::exp_sum_blocks(xr, n, m, y, xr + n, [&](int64_t i0, int64_t len) {
        if (prev_src) stream_out(i0, len);
      });
      prev_src = log ? xr : y;
      prev_out = out + r * n;
      prev_factor = log ? m + std::log(sum) : 1.0f / sum;
    }
    if (prev_src) stream_out(0, n);
    _mm_sfence();
  }
}

// Softmax of contiguous x into contiguous y along a dim that is not the last: lines are
// `inner` elements apart, neighbouring lines side by side in memory.  Line by line, each
// element came from another cache line, and lines a power of two apart share a few cache
// sets: 2048 x 2048 floats along dim 0 took 60 ms.  Here kColumns neighbouring lines go
// together, a row of them at a time, through softmax_line's three passes (max skipping
// NaNs, exps and their sum, scale or shift), so each cache line read serves kColumns
// elements.
template <class T>
void softmax_columns(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  constexpr int64_t kColumns = 256 / sizeof(T);
  for_column_blocks<kColumns>(outer, n, inner, [&](int64_t offset, int64_t w) {
    const T* xb = x + offset;
    T* yb = y + offset;
    T m[kColumns], sum[kColumns];
    for (int64_t j = 0; j < w; ++j) m[j] = -std::numeric_limits<T>::infinity(), sum[j] = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T* xr = xb + i * inner;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
    }
    for (int64_t j = 0; j < w; ++j)  // all -inf: 0, as softmax_max
      if (m[j] == -std::numeric_limits<T>::infinity()) m[j] = 0;
    // Sums of kSumRows exps at a time, then of those, as accurate as the lanes of a line.
    constexpr int64_t kSumRows = 128;
    for (int64_t i0 = 0; i0 < n; i0 += kSumRows) {
      T part[kColumns];
      for (int64_t j = 0; j < w; ++j) part[j] = 0;
      for (int64_t i = i0; i < std::min(n, i0 + kSumRows); ++i) {
        const T* xr = xb + i * inner;
        T* yr = yb + i * inner;
        if constexpr (std::is_same_v<T, float>) {
          if (w == kColumns) {  // whole blocks through the 16-lane exp (the same bits)
            for (int64_t j = 0; j < kColumns; j += 16) {
              const vm::f32x16 e = vm::exp16(vm::load16(xr + j) - vm::load16(m + j));
              if (!log) vm::store16(yr + j, e);
              vm::store16(part + j, vm::load16(part + j) + e);
            }
            continue;
          }
        }
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) {
          const T e = vm::exp(xr[j] - m[j]);
          if (!log) yr[j] = e;
          part[j] += e;
        }
      }
      for (int64_t j = 0; j < w; ++j) sum[j] += part[j];
    }
    for (int64_t j = 0; j < w; ++j) sum[j] = log ? m[j] + std::log(sum[j]) : T(1) / sum[j];
    for (int64_t i = 0; i < n; ++i) {
      const T* xr = xb + i * inner;
      T* yr = yb + i * inner;
      if (log) {
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) yr[j] = xr[j] - sum[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) yr[j] *= sum[j];
      }
    }
  });
}

template <class T>
void softmax_typed(const View& x, int dim, bool log, const View& out) {
  const View* v[2] = {&x, &out};
  const T* xd = static_cast<const T*>(x.data);
  T* od = static_cast<T*>(out.data);
  const int64_t n = x.shape[dim], sx = x.stride[dim], so = out.stride[dim];
  const bool rows = dim == x.ndim - 1 && is_contiguous(x);  // line after line in memory
  const bool stream =
      std::is_same_v<T, float> && vm::stream_output(numel(out) * int64_t(sizeof(T)));
  if constexpr (std::is_same_v<T, float>) {
    if (rows && stream && is_contiguous(out) && n > 0)
      return softmax_rows_streamed(xd, od, numel(x) / n, n, log);
  }
  // Contiguous, along a dim with more after it: lines sx elements apart, side by side.
  if (n > 1 && sx > 1 && is_contiguous(x) && is_contiguous(out))
    return softmax_columns(xd, od, numel(x) / (n * sx), n, sx, log);
  for_each_line(v, dim, [&](const int64_t* off) {
    thread_local std::vector<T> tmp;
    if (static_cast<int64_t>(tmp.size()) < n) tmp.resize(n);
    const T* line = xd + off[0];
    softmax_line(line, sx, od + off[1], so, n, log, tmp.data(), rows ? line + n : nullptr,
                 stream);
  });
}

template <class T>
void softmax_backward_typed(const View& y, const View& g, int dim, bool log, const View& out) {
  const View* v[3] = {&y, &g, &out};
  const T* yd = static_cast<const T*>(y.data);
  const T* gd = static_cast<const T*>(g.data);
  T* od = static_cast<T*>(out.data);
  const int64_t n = y.shape[dim], sy = y.stride[dim], sg = g.stride[dim], so = out.stride[dim];
  const bool contiguous = sy == 1 && sg == 1 && so == 1;
  for_each_line(v, dim, [&](const int64_t* off) {
    const T* yp = yd + off[0];
    const T* gp = gd + off[1];
    T* op = od + off[2];
    T dot = 0;
    if (log) {  // out = g - exp(y) * sum(g)
      if (contiguous) {
#pragma omp simd reduction(+ : dot)
        for (int64_t i = 0; i < n; ++i) dot += gp[i];
        if constexpr (std::is_same_v<T, float>) {  // the 16-lane exp: the scalar exp's bits
          int64_t i = 0;
          for (; i + 16 <= n; i += 16)
            vm::store16(op + i, vm::load16(gp + i) - vm::exp16(vm::load16(yp + i)) * dot);
          if (i < n)
            vm::store16_first(op + i, vm::load16_upto(gp + i, n - i) -
                                          vm::exp16(vm::load16_upto(yp + i, n - i)) * dot,
                              n - i);
        } else {
#pragma omp simd
          for (int64_t i = 0; i < n; ++i) op[i] = gp[i] - vm::exp(yp[i]) * dot;
        }
      } else {
        for (int64_t i = 0; i < n; ++i) dot += gp[i * sg];
        for (int64_t i = 0; i < n; ++i) op[i * so] = gp[i * sg] - vm::exp(yp[i * sy]) * dot;
      }
    } else {  // out = y * (g - sum(g * y))
      if (contiguous) {
#pragma omp simd reduction(+ : dot)
        for (int64_t i = 0; i < n; ++i) dot += gp[i] * yp[i];
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) op[i] = yp[i] * (gp[i] - dot);
      } else {
        for (int64_t i = 0; i < n; ++i) dot += gp[i * sg] * yp[i * sy];
        for (int64_t i = 0; i < n; ++i) op[i * so] = yp[i * sy] * (gp[i * sg] - dot);
      }
    }
  });
}

void check_same_shape(const char* op, const View& a, const char* what, const View& b) {
  if (!same_shape(a, b))
    throw std::invalid_argument(std::string(op) + ": " + what + " shape " + shape_str(b) +
                                " does not match input shape " + shape_str(a));
}

// out must have x's shape with size 1 on the reduced dims (dim >= 0: exactly
// that dim; dim < 0: any dims).
void check_kept(const char* op, const View& x, const View& out, int dim) {
  bool ok = x.ndim == out.ndim;
  for (int d = 0; ok && d < x.ndim; ++d) {
    if (dim >= 0) ok = out.shape[d] == (d == dim ? 1 : x.shape[d]);
    else ok = out.shape[d] == 1 || out.shape[d] == x.shape[d];
  }
  if (!ok)
    throw std::invalid_argument(std::string(op) + ": output shape " + shape_str(out) +
                                " is not the keepdim shape of input " + shape_str(x));
}

void check_float(const char* op, const View& x) {
  if (x.dtype != DType::f32 && x.dtype != DType::f64)
    throw type_error(std::string(op) + ": expected a float32 or float64 tensor, got " +
                     dtype_name(x.dtype));
}

}  // namespace

void reduce(ReduceOp op, const View& x, const View& out) {
  check_kept("reduce", x, out, -1);
  const bool is_sum = op == ReduceOp::sum || op == ReduceOp::prod;
  if (out.dtype != x.dtype && !(is_sum && out.dtype == DType::i64 &&
                                x.dtype != DType::f32 && x.dtype != DType::f64))
    fail_dtype("reduce", x.dtype, out.dtype);
  by_dtype(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
      case ReduceOp::sum:
      case ReduceOp::prod:
        if constexpr (std::is_floating_point_v<T>) {
          if (op == ReduceOp::sum) reduce_typed<T, T, SumOp<T>>(x, out);
          else reduce_typed<T, T, ProdOp<T>>(x, out);
        } else if constexpr (std::is_same_v<T, u8>) {
          if (op == ReduceOp::sum) reduce_typed<T, int64_t, SumOp<T>>(x, out);
          else reduce_typed<T, int64_t, ProdOp<T>>(x, out);
        } else {
          // integer sums write int64, or the input type when asked to
          if (out.dtype == DType::i64) {
            if (op == ReduceOp::sum) reduce_typed<T, int64_t, SumOp<T>>(x, out);
            else reduce_typed<T, int64_t, ProdOp<T>>(x, out);
          } else {
            if (op == ReduceOp::sum) reduce_typed<T, T, SumOp<T>>(x, out);
            else reduce_typed<T, T, ProdOp<T>>(x, out);
          }
        }
        break;
      case ReduceOp::max: reduce_typed<T, T, ExtremeOp<T, true>>(x, out); break;
      case ReduceOp::min: reduce_typed<T, T, ExtremeOp<T, false>>(x, out); break;
      default: throw std::invalid_argument("reduce: unknown op");
    }
  });
}

void reduce_arg(bool is_max, const View& x, int dim, const View& values, const View& indices) {
  const char* op = is_max ? "max" : "min";
  check_kept(op, x, values, dim);
  check_same_shape(op, values, "indices", indices);
  if (values.dtype != x.dtype) fail_dtype(op, x.dtype, values.dtype);
  if (indices.dtype != DType::i64)
    throw type_error(std::string(op) + ": indices must be int64, got " + dtype_name(indices.dtype));
  if (x.shape[dim] == 0)
    throw std::invalid_argument(std::string(op) + ": cannot reduce over an empty dimension");
  by_dtype(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (is_max) reduce_arg_typed<T, true>(x, dim, values, indices);
    else reduce_arg_typed<T, false>(x, dim, values, indices);
  });
}

void cumsum(const View& x, int dim, const View& out) {
  check_same_shape("cumsum", x, "output", out);
  if (out.dtype != x.dtype || x.dtype == DType::b8 || x.dtype == DType::i32)
    fail_dtype("cumsum", x.dtype, out.dtype);
  by_dtype(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, u8> && !std::is_same_v<T, int32_t>)
      cumsum_typed<T>(x, dim, out);
  });
}

void softmax(const View& x, int dim, bool log, const View& out) {
  const char* op = log ? "log_softmax" : "softmax";
  check_float(op, x);
  check_same_shape(op, x, "output", out);
  if (out.dtype != x.dtype) fail_dtype(op, x.dtype, out.dtype);
  if (x.dtype == DType::f32) softmax_typed<float>(x, dim, log, out);
  else softmax_typed<double>(x, dim, log, out);
}

void softmax_backward(const View& y, const View& g, int dim, bool log, const View& out) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  check_float(op, y);
  check_same_shape(op, y, "grad", g);
  check_same_shape(op, y, "output", out);
  if (g.dtype != y.dtype || out.dtype != y.dtype) fail_dtype(op, y.dtype, out.dtype);
  if (y.dtype == DType::f32) softmax_backward_typed<float>(y, g, dim, log, out);
  else softmax_backward_typed<double>(y, g, dim, log, out);
}

}  // namespace genesis::GENESIS_ISA_NS
