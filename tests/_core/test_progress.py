"""The chunked scan runner: same result as one `lax.scan`, few compilations, lazy tqdm."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml._core._progress import progress_bar, progress_enabled, scan_with_progress


def _step(carry, x):
    value, count = carry
    value = 0.5 * value + jnp.sin(x) * count.astype(x.dtype)
    return (value, count + 1), value * x


@pytest.mark.parametrize("length, chunk_size", [(10, 3), (10, 10), (10, 25), (7, 1)])
def test_matches_unchunked_scan(length, chunk_size):
    xs = jnp.linspace(0.0, 2.0, length)
    init = (jnp.ones(3), jnp.zeros((), jnp.int32))
    expected_carry, expected_ys = jax.lax.scan(_step, init, xs)
    carry, ys = scan_with_progress(_step, init, xs, chunk_size=chunk_size, progress=False)
    np.testing.assert_array_equal(carry[0], expected_carry[0])
    assert int(carry[1]) == length
    np.testing.assert_array_equal(ys, expected_ys)
    assert ys.shape == (length, 3)


def test_length_without_xs_and_no_outputs():
    def body(c, _):
        return c * 1.5 + 1.0, None

    expected, _ = jax.lax.scan(body, jnp.float64(0.0), None, length=11)
    carry, ys = scan_with_progress(body, jnp.float64(0.0), length=11, chunk_size=4, progress=False)
    assert ys is None
    assert float(carry) == float(expected)


def test_progress_bar_path_gives_same_result(capsys):
    xs = jnp.arange(9.0)
    expected = jax.lax.scan(_step, (jnp.ones(2), jnp.int32(0)), xs)
    got = scan_with_progress(
        _step, (jnp.ones(2), jnp.int32(0)), xs, chunk_size=4, progress=True, desc="test"
    )
    np.testing.assert_array_equal(got[1], expected[1])


def test_chunks_compile_once_per_chunk_length(caplog):
    def body(c, x):
        return c + x, c

    def compilations():
        return sum("Compiling jit(_scan_chunk)" in r.getMessage() for r in caplog.records)

    xs = jnp.arange(10.0)
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        scan_with_progress(body, jnp.float64(0.0), xs, chunk_size=4, progress=False)
        assert compilations() == 2  # a full chunk of 4 steps and the remainder of 2
        scan_with_progress(body, jnp.float64(1.0), xs + 1.0, chunk_size=4, progress=False)
        assert compilations() == 2  # the same body and shapes reuse both


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 2.0}, "chunk_size"),
        ({"chunk_size": 2, "length": 5}, "disagrees"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scan_with_progress(_step, (jnp.ones(2), jnp.int32(0)), jnp.arange(4.0), **kwargs)


def test_needs_xs_or_length():
    with pytest.raises(ValueError, match="length"):
        scan_with_progress(lambda c, x: (c, None), jnp.float64(0.0), chunk_size=2)


def test_progress_off_when_not_a_tty_or_disabled(monkeypatch):
    # Under pytest stdout is captured (not a terminal), so the default is off.
    assert progress_enabled(None) is False
    assert progress_enabled(True) is True
    assert progress_enabled(False) is False
    monkeypatch.setenv("SCIML_PROGRESS", "0")
    assert progress_enabled(None) is False
    with progress_bar(3, progress=None) as bar:
        bar.update(1)  # the stand-in accepts the same calls
