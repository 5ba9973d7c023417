"""Kernel tests run every case on 1 and 2 threads."""
import pytest

from genesis import _C


@pytest.fixture(params=[1, 2], autouse=True, ids=lambda n: f"{n}thr")
def threads(request):
    before = _C.get_num_threads()
    _C.set_num_threads(request.param)
    yield request.param
    _C.set_num_threads(before)
