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



@pytest.fixture(scope="session")
def mnist_root():
    """The directory holding (or now caching) the real MNIST; skips when it cannot be
    obtained, unless real data is required (see real_data.py)."""
    from genesis.data.datasets import MNIST
    from real_data import data_root, load_or_skip
    load_or_skip(lambda root: MNIST(root, train=True, download=True), "MNIST",
                 "GENESIS_REQUIRE_MNIST")
    return data_root()
