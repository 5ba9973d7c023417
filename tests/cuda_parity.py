"""Shared by the CUDA test files: a device "cuda" result compared with the cpu one."""
import numpy as np
import pytest

import genesis as G

DTYPES = {"float32": G.float32, "float64": G.float64}


def assert_close(got, expected, tol):
    """`got` (on cuda) equals `expected` (on the cpu): same shape and dtype, values
    within `tol` (relative and absolute)."""
    assert got.device == G.device("cuda")
    assert tuple(got.shape) == tuple(expected.shape) and got.dtype == expected.dtype
    np.testing.assert_allclose(got.detach().cpu().numpy(), expected.detach().numpy(), rtol=tol,
                               atol=tol)


def assert_same_error(call):
    """call(backend, to_array) raises the same exception type and message with the cpu
    backend (numpy arrays) and with the cuda one (device arrays)."""
    from genesis.backend import cpu
    from genesis.backend.cuda import backend as cuda
    with pytest.raises(Exception) as expected:
        call(cpu, np.asarray)
    kind = TypeError if isinstance(expected.value, TypeError) else type(expected.value)
    with pytest.raises(kind) as got:
        call(cuda, cuda.from_numpy)
    assert str(got.value) == str(expected.value)
