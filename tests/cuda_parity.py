"""Shared by the CUDA test files: a device "cuda" result compared with the cpu one."""
import numpy as np

import genesis as G

DTYPES = {"float32": G.float32, "float64": G.float64}


def assert_close(got, expected, tol):
    """`got` (on cuda) equals `expected` (on the cpu): same shape and dtype, values
    within `tol` (relative and absolute)."""
    assert got.device == G.device("cuda")
    assert tuple(got.shape) == tuple(expected.shape) and got.dtype == expected.dtype
    np.testing.assert_allclose(got.detach().cpu().numpy(), expected.detach().numpy(), rtol=tol,
                               atol=tol)
