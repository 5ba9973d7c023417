"""Kernel tests run every case on 1 and 2 threads; modules that mark themselves with
`pytestmark = pytest.mark.usefixtures("isa")` also run on every instruction-set copy of
the kernels that this processor supports."""
import pytest

from genesis import _C


@pytest.fixture(params=[1, 2], autouse=True, ids=lambda n: f"{n}thr")
def threads(request):
    before = _C.get_num_threads()
    _C.set_num_threads(request.param)
    yield request.param
    _C.set_num_threads(before)


_ALL_ISAS = ["generic", "avx2", "avx512"]


@pytest.fixture(params=_ALL_ISAS[:_ALL_ISAS.index(_C.best_isa()) + 1])
def isa(request):
    _C.set_isa(request.param)
    yield request.param
    _C.set_isa("best")
