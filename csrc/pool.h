// 2-D pooling over NCHW: max (with argmax indices), average and adaptive
// average, each with its backward.  Inputs and output gradients may have any
// strides; outputs are C-contiguous.  Float dtypes are f32 or f64, indices
// int64.  Work is split over the N*C planes.
#pragma once
#include <cstdint>

#include "view.h"

namespace genesis {

// Window geometry of max/avg pooling (avg ignores dilation).  The output size
// is the one of the output View: the floor or the ceil_mode size of PyTorch.
struct PoolParams {
  int64_t kernel[2];
  int64_t stride[2];
  int64_t pad[2];
  int64_t dilation[2];
};

// out[n, c, oh, ow] = max of the window; indices = h * W + w of the first
// maximum within the plane (NaN counts as the maximum).  A window that covers
// no input element (possible with dilation) gives -inf and index -1.
void max_pool2d(const View& x, const View& out, const View& indices, const PoolParams& p);

// gx[n, c].flat[indices[n, c, oh, ow]] += gy[n, c, oh, ow]; gx overwritten.
// Indices are bounds-checked (-1, "no element", is skipped).
void max_pool2d_backward(const View& gy, const View& indices, const View& gx);

// Mean of each window.  The divisor is divisor_override when nonzero, else the
// window size clipped to the padded input (count_include_pad) or to the input;
// a window that covers no input element gives 0.
void avg_pool2d(const View& x, const View& out, const PoolParams& p, bool count_include_pad,
                int64_t divisor_override);
void avg_pool2d_backward(const View& gy, const View& gx, const PoolParams& p,
                         bool count_include_pad, int64_t divisor_override);

// Output cell (i, j) averages rows [floor(i*H/OH), ceil((i+1)*H/OH)) and the
// same columns of W/OW.
void adaptive_avg_pool2d(const View& x, const View& out);
void adaptive_avg_pool2d_backward(const View& gy, const View& gx);

}  // namespace genesis
