"""Hypothesis profiles: `ci` (derandomized, reproducible), `dev` (quick), `thorough`.
Pick one with GENESIS_HYPOTHESIS_PROFILE; CI=true selects `ci` by default."""
import os

import pytest
from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=20, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=10, **_common)
settings.register_profile("thorough", max_examples=200, **_common)
settings.load_profile(os.environ.get("GENESIS_HYPOTHESIS_PROFILE",
                                     "ci" if os.environ.get("CI") else "dev"))


def require_real_data():
    """True when tests that need real data sets from PyPI must fail instead of skipping
    (CI sets GENESIS_REQUIRE_DATA=1)."""
    return "1" in (os.environ.get("GENESIS_REQUIRE_DATA"), os.environ.get("GENESIS_REQUIRE_MNIST"))


def data_root():
    return os.environ.get("GENESIS_DATA", os.path.join(os.path.expanduser("~"), ".cache",
                                                       "genesis"))


@pytest.fixture(scope="session")
def mnist_root():
    """The directory holding (or now caching) the real MNIST; skips when it cannot be
    obtained, unless real data is required."""
    from genesis.data.datasets import MNIST
    from genesis.data.datasets.mnist import DownloadError
    root = data_root()
    try:
        MNIST(root, train=True, download=True)
    except DownloadError as e:
        if require_real_data():
            pytest.fail(f"real data required but MNIST could not be loaded: {e}")
        pytest.skip(f"MNIST is not cached and could not be downloaded: {e}")
    return root
