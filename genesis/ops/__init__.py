"""The functional API: one public function per op (re-exported as `genesis.<op>`)."""
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, manual_seed, ones, ones_like, rand, rand_like, randint,
                       randint_like, randn, randn_like, randperm, tensor, zeros, zeros_like)
from .elementwise import (abs, add, ceil, clamp, clip, cos, div, elu, eq, erf, exp, expm1,
                          floor, floor_divide, ge, gelu, greater, greater_equal, gt, le,
                          leaky_relu, less, less_equal, log, log1p, logical_and, logical_not,
                          logical_or, logical_xor, lt, maximum, minimum, mul, ne, neg,
                          not_equal, pow, reciprocal, relu, remainder, round, rsqrt, sigmoid,
                          sign, silu, sin, softplus, sqrt, square, sub, tanh, true_divide,
                          trunc, where)
from .indexing import (argsort, gather, index_select, masked_fill, nonzero, one_hot,
                       scatter_add, sort, topk)
from .linalg import bmm, dot, matmul, mm, outer
from .reduction import (all, any, amax, amin, argmax, argmin, cumsum, log_softmax, logsumexp, max, mean,
                        min, norm, prod, softmax, std, sum, var)
from .shape import (broadcast_to, cat, chunk, clone, concat, contiguous, expand, flatten, flip,
                    movedim, pad, permute, repeat, reshape, split, squeeze, stack, swapaxes, t,
                    transpose, unbind, unflatten, unsqueeze, view)
from . import _methods  # noqa: F401  (installs Tensor methods and operators)

import types as _types

__all__ = [_n for _n, _v in list(globals().items())
           if not _n.startswith("_") and not isinstance(_v, _types.ModuleType)]
