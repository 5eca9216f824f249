"""Test configuration: strict dtype promotion, x64 on, 2 simulated CPU devices.

The device count must be set before JAX initialises its backends, so it is done here at import.
Tests that need float32 behaviour build float32 arrays explicitly; x64 being on only makes
float64 available.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, deterministic per test."""
    key = [jax.random.key(0)]

    def _getkey():
        key[0], sub = jax.random.split(key[0])
        return sub

    return _getkey
