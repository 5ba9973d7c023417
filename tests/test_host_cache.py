"""The host block cache behind large CPU arrays (csrc/host_cache.h, genesis.cpu)."""
import gc

import numpy as np
import pytest

import genesis
from genesis import _C
from genesis.backend import cpu

BIG = (256, 257)  # above the size from which cpu.empty uses the cache


@pytest.fixture
def fresh_cache():
    """An empty cache with the default limit, restored afterwards."""
    limit = genesis.cpu.memory_stats()["limit"]
    genesis.cpu.empty_cache()
    yield
    genesis.cpu.set_cache_limit(limit)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
def test_cached_array_is_a_writable_c_contiguous_array(dtype):
    a = _C.empty(BIG, dtype)
    assert a.shape == BIG and a.dtype == np.dtype(dtype)
    assert a.flags.c_contiguous and a.flags.writeable
    assert a.ctypes.data % 4096 == 0  # page-aligned (see csrc/host_cache.cpp)
    a[...] = 1
    assert a.sum() == BIG[0] * BIG[1]


def test_backend_empty_takes_large_arrays_from_the_cache(fresh_cache):
    before = genesis.cpu.memory_stats()
    small, large = cpu.empty((4, 4), np.float32), cpu.empty(BIG, np.float32)
    after = genesis.cpu.memory_stats()
    assert small.base is None  # numpy's own memory
    assert large.base is not None and not isinstance(large.base, np.ndarray)
    assert after["misses"] + after["hits"] == before["misses"] + before["hits"] + 1
    assert after["live_bytes"] >= before["live_bytes"] + large.nbytes
    assert cpu.empty(5 * 4096, np.float32).shape == (5 * 4096,)  # an int shape


def test_a_released_block_is_handed_out_again(fresh_cache):
    a = _C.empty(BIG, np.float32)
    address = a.ctypes.data
    del a
    gc.collect()
    hits = genesis.cpu.memory_stats()["hits"]
    b = _C.empty((BIG[0] * BIG[1],), np.float32)  # same size class, other shape
    assert b.ctypes.data == address
    assert genesis.cpu.memory_stats()["hits"] == hits + 1


def test_a_view_keeps_its_block_in_use(fresh_cache):
    a = _C.empty(BIG, np.float64)
    a[...] = 7.0
    view = a[1:, ::2]
    address = a.ctypes.data
    del a
    gc.collect()
    others = [_C.empty(BIG, np.float64) for _ in range(3)]
    for o in others:
        o[...] = -1.0
        assert o.ctypes.data != address
    assert (view == 7.0).all()


def test_sizes_round_up_to_a_quarter_octave(fresh_cache):
    a = _C.empty((100_000,), np.uint8)
    live = genesis.cpu.memory_stats()["live_bytes"]
    assert 100_000 <= live < 100_000 * 1.25
    del a


def test_limit_bounds_the_free_memory_kept(fresh_cache):
    genesis.cpu.set_cache_limit(3 * 2 ** 20)
    arrays = [_C.empty((2 ** 20,), np.uint8) for _ in range(5)]
    del arrays
    gc.collect()
    stats = genesis.cpu.memory_stats()
    assert stats["cached_bytes"] == 3 * 2 ** 20 and stats["limit"] == 3 * 2 ** 20
    genesis.cpu.set_cache_limit(2 ** 20)
    assert genesis.cpu.memory_stats()["cached_bytes"] == 2 ** 20
    genesis.cpu.empty_cache()
    assert genesis.cpu.memory_stats()["cached_bytes"] == 0
    genesis.cpu.set_cache_limit(0)
    a = _C.empty((2 ** 20,), np.uint8)
    del a
    gc.collect()
    assert genesis.cpu.memory_stats()["cached_bytes"] == 0


def test_bad_requests_raise_clear_errors():
    with pytest.raises(ValueError, match="negative dimensions"):
        _C.empty((3, -1), np.float32)
    with pytest.raises(ValueError, match="too big"):
        _C.empty((2 ** 40, 2 ** 40), np.float32)
    with pytest.raises(TypeError):
        _C.empty((3,), "not a dtype")
    with pytest.raises(ValueError, match="nbytes must be >= 0"):
        genesis.cpu.set_cache_limit(-1)
    with pytest.raises(TypeError, match="must be an int"):
        genesis.cpu.set_cache_limit(1.5)


def test_tensors_on_cached_memory_own_it():
    t = genesis.randn(*BIG)
    assert t._owns_memory()
    assert not t[1:]._owns_memory()
    assert not t.reshape(-1)._owns_memory()


def test_gradients_on_cached_memory_are_distinct_arrays():
    w = genesis.randn(*BIG, requires_grad=True)
    (w * 2.0).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full(BIG, 2.0, np.float32))
    v = genesis.randn(*BIG, requires_grad=True)
    (v * 3.0).sum().backward()
    assert not np.shares_memory(w.grad.numpy(), v.grad.numpy())
