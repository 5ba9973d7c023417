// 2-D convolution over NCHW through im2col/col2im and our GEMM, compiled once
// per instruction set (like gemm, which it calls directly).
//
// The three kernels are the convolution y = conv(x, w) and its two adjoints;
// conv_transpose2d's forward is conv2d_input_grad, and each kernel's
// derivative is another of the three, so every gradient stays differentiable.
#pragma once
#include <cstdint>

#include "view.h"

namespace genesis {

// Geometry shared by the three kernels.  Padding is per side (top, bottom,
// left, right) so 'same' padding of even kernels is exact; top/left are >= 0,
// bottom/right may be negative (conv_transpose2d's output_padding crops the
// conv view).  The output size is the one of the output View and must equal
// (H + top + bottom - dilation * (KH - 1) - 1) / stride + 1 (same for W).
struct ConvParams {
  int64_t stride[2];
  int64_t pad[4];
  int64_t dilation[2];
  int64_t groups;
};

#define GENESIS_DECLARE_CONV(ns)                                                     \
  namespace ns {                                                                     \
  /* out[N, OC, OH, OW] = conv(x[N, C, H, W], w[OC, C/groups, KH, KW]) + bias[OC].  \
     bias may be null.  x, w, bias may have any strides; out is C-contiguous.      \
     dtype f32 or f64, the same for all. */                                         \
  void conv2d(const View& x, const View& w, const View* bias, const View& out,       \
              const ConvParams& p);                                                 \
  /* gx[N, C, H, W] = gradient of conv2d's input for output gradient gy[N, OC,     \
     OH, OW] (col2im of w^T gy), plus bias[C] when given (conv_transpose2d).       \
     gx is C-contiguous and overwritten. */                                         \
  void conv2d_input_grad(const View& gy, const View& w, const View* bias,            \
                         const View& gx, const ConvParams& p);                      \
  /* gw[OC, C/groups, KH, KW] = gradient of conv2d's weight: sum over the batch    \
     of gy[n] im2col(x[n])^T.  gw is C-contiguous and overwritten. */              \
  void conv2d_weight_grad(const View& x, const View& gy, const View& gw,             \
                          const ConvParams& p);                                     \
  }

GENESIS_DECLARE_CONV(generic)
GENESIS_DECLARE_CONV(avx2)
GENESIS_DECLARE_CONV(avx512)

}  // namespace genesis
