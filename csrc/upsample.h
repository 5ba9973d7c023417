// 2-D upsampling (resizing) over NCHW: nearest, nearest-exact and bilinear,
// each with its backward.  Inputs and output gradients may have any strides;
// outputs are C-contiguous and overwritten.  Float dtypes are f32 or f64.
// Source coordinates follow PyTorch's CPU kernels exactly, so the same output
// element reads the same input elements with the same weights.
#pragma once
#include <cstdint>

#include "view.h"

namespace genesis {

enum class UpsampleMode : int { nearest = 0, nearest_exact = 1, bilinear = 2 };

// Per axis (height, width): the user's scale factor, or <= 0 when the output
// size was given instead.  Coordinates use 1 / scale when given, else in / out
// (align_corners: (in - 1) / (out - 1), bilinear only).
struct UpsampleParams {
  UpsampleMode mode;
  bool align_corners;
  double scale[2];
};

void upsample2d(const View& x, const View& out, const UpsampleParams& p);

// gx = the adjoint of upsample2d applied to gy (each output's gradient added to
// the input elements it read, with its weights).
void upsample2d_backward(const View& gy, const View& gx, const UpsampleParams& p);

}  // namespace genesis
