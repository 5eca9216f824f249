import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sciml.equivariant as se

from ._helpers import e3nn_context


def test_resolution_rule():
    assert se.s2grid_resolution(3, 3, 6) == (7, 13)
    assert se.s2grid_resolution(6, 6) == (13, 25)
    assert se.s2grid_resolution(1, 1, 1) == (2, 5)  # res_alpha rounded up to odd


@pytest.mark.parametrize("normalization", ["integral", "component"])
@pytest.mark.parametrize("fft", [False, True])
def test_matches_e3nn(getkey, normalization, fft):
    lmax, rb, ra = 3, 6, 11
    c = jax.random.normal(getkey(), (4, (lmax + 1) ** 2))
    ours = se.to_s2grid(c, res_beta=rb, res_alpha=ra, normalization=normalization, fft=fft)
    with e3nn_context():
        ref = e3nn.to_s2grid(
            e3nn.IrrepsArray(e3nn.s2_irreps(lmax), c),
            rb,
            ra,
            quadrature="gausslegendre",
            normalization=normalization,
            fft=True,
        )
        back_ref = e3nn.from_s2grid(ref, e3nn.s2_irreps(lmax), normalization=normalization)
        ref_vectors, ref_weights = ref.grid_vectors, ref.quadrature_weights
    assert np.abs(ours - ref.grid_values).max() < 1e-13
    back = se.from_s2grid(ours, lmax=lmax, normalization=normalization, fft=fft)
    assert np.abs(back - back_ref.array).max() < 1e-13
    assert np.abs(back - c).max() < 1e-13
    vectors, w = se.s2grid(rb, ra)
    assert np.abs(vectors - ref_vectors).max() < 1e-15
    assert np.abs(w - ref_weights).max() < 1e-15


def test_soft_quadrature_round_trip(getkey):
    c = jax.random.normal(getkey(), (2, 16))
    f = se.to_s2grid(c, res_beta=8, res_alpha=9, quadrature="soft")
    assert np.abs(se.from_s2grid(f, lmax=3, quadrature="soft") - c).max() < 1e-13


def test_errors():
    c = jnp.ones((16,))
    with pytest.raises(ValueError, match="odd"):
        se.to_s2grid(c, res_beta=5, res_alpha=10, fft=True)
    with pytest.raises(ValueError, match="odd"):
        se.from_s2grid(jnp.ones((5, 10)), lmax=3, fft=True)
    with pytest.raises(ValueError, match="res_alpha"):
        se.to_s2grid(c, res_beta=5, res_alpha=5)
    with pytest.raises(ValueError, match="lmax"):
        se.to_s2grid(jnp.ones((15,)), res_beta=5, res_alpha=9)
    with pytest.raises(ValueError, match="supported range"):
        se.s2grid_resolution(100, 1)
