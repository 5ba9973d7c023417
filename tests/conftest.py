"""Hypothesis profiles: `ci` (derandomized, reproducible), `dev` (quick), `thorough`.
Pick one with GENESIS_HYPOTHESIS_PROFILE; CI=true selects `ci` by default."""
import os

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=20, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=10, **_common)
settings.register_profile("thorough", max_examples=200, **_common)
settings.load_profile(os.environ.get("GENESIS_HYPOTHESIS_PROFILE",
                                     "ci" if os.environ.get("CI") else "dev"))
