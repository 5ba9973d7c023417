"""Outputs too large for the cache are written with streaming (non-temporal) stores.

The threshold is the last-level cache's size, so ordinary tests never reach those paths;
here it is lowered to 0, and every op must give the same bits as with cached stores.
Shapes are odd so that rows start and end inside cache lines (the streamed paths store
partial lines before and after the aligned ones), and pieces of a cat are strided.
"""
import numpy as np
import pytest

import genesis as G
from genesis import _C

F = G.nn.functional

CASES = {
    "clone": lambda a, b: a.clone(),
    "transpose copy": lambda a, b: a.t().contiguous(),
    "cast to float64": lambda a, b: a.double(),
    "cat dim 0": lambda a, b: G.cat([a, b], 0),
    "cat dim 1": lambda a, b: G.cat([a, b, a], 1),
    "stack": lambda a, b: G.stack([a, b], 1),
    "exp": lambda a, b: G.exp(a),
    "gelu": lambda a, b: F.gelu(a),
    "sigmoid": lambda a, b: G.sigmoid(a),
    "add": lambda a, b: a + b,
    "mul by a row": lambda a, b: a * b[0],
    "where": lambda a, b: G.where(a > 0, a, b),
    "softmax": lambda a, b: F.softmax(a, dim=1),
    "log_softmax": lambda a, b: F.log_softmax(a, dim=1),
}


@pytest.fixture
def stream_everything():
    before = _C.stream_min_bytes()
    _C.set_stream_min_bytes(0)
    yield
    _C.set_stream_min_bytes(before)


def _inputs(shape):
    rng = np.random.default_rng(sum(shape))
    return (G.tensor(rng.standard_normal(shape).astype(np.float32)),
            G.tensor(rng.standard_normal(shape).astype(np.float32)))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (37, 53), (130, 260)])
@pytest.mark.parametrize("name", sorted(CASES))
def test_streamed_outputs_match_cached_ones(name, shape, threads, stream_everything):
    a, b = _inputs(shape)
    before = G.get_num_threads()
    G.set_num_threads(threads)
    try:
        streamed = CASES[name](a, b).numpy()
        _C.set_stream_min_bytes(1 << 62)
        cached = CASES[name](a, b).numpy()
    finally:
        G.set_num_threads(before)
    assert streamed.shape == cached.shape
    np.testing.assert_array_equal(streamed.view(np.uint8), cached.view(np.uint8))


def test_cat_pieces_stream_when_the_whole_output_is_large():
    """Each piece of a cat is smaller than the threshold, the whole output is not: the
    pieces are still placed right (the streamed copy of a strided piece)."""
    a, b = _inputs((64, 100))
    before = _C.stream_min_bytes()
    _C.set_stream_min_bytes(a.numel() * 4 + 1)  # above one piece, below the whole
    try:
        out = G.cat([a, b], 1).numpy()
    finally:
        _C.set_stream_min_bytes(before)
    np.testing.assert_array_equal(out, np.concatenate([a.numpy(), b.numpy()], 1))
