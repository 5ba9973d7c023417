// Indexing kernels: gather/scatter, advanced indexing, nonzero, sort/topk,
// one_hot.  Every index is bounds-checked; an out-of-range index throws
// std::out_of_range (IndexError in Python) naming the index and the size.
#pragma once
#include <vector>
#include "view.h"

namespace genesis {

// torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] (dim = 1).  index is
// int64 with out's shape; x's other dims are at least out's.
void gather(const View& x, int dim, const View& index, const View& out);

// torch.scatter_add_: out[i][index[i][j][k]][k] += src[i][j][k] (dim = 1), in place.
void scatter_add(const View& out, int dim, const View& index, const View& src);

// Advanced indexing.  x's first k dims are the indexed ones; `indices` holds k
// int64 Views all of one shape B (already broadcast).  out has shape
// B + x.shape[k:].  out[b, ...] = x[idx0[b], ..., idxk-1[b], ...].
// Negative indices count from the end.
void index_gather(const View& x, const std::vector<View>& indices, const View& out);

// The inverse: dst[idx0[b], ..., ...] (+)= src[b, ...].  With accumulate,
// repeated indices add up (backward of index_gather); without, the last write wins
// (__setitem__).  src is broadcast to B + dst.shape[k:].
void index_put(const View& dst, const std::vector<View>& indices, const View& src,
               bool accumulate);

// Coordinates of the true elements of a bool mask, row-major order: an int64
// (count, ndim) array written into a buffer the caller sizes with count_nonzero.
int64_t count_nonzero(const View& mask);
void nonzero(const View& mask, const View& out);

// Sort along dim (stable); values same dtype as x, indices int64, both x's shape.
void sort(const View& x, int dim, bool descending, const View& values,
          const View& indices);

// The k largest (or smallest) along dim, sorted; values/indices have x's shape
// with k on dim.
void topk(const View& x, int64_t k, int dim, bool largest, const View& values,
          const View& indices);

// out[..., c] = (index[...] == c), out's last dim is num_classes; out float or int.
void one_hot(const View& index, const View& out);

}  // namespace genesis
