# ruff: noqa: E741  (l is the standard name of the degree)
import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from sciml.equivariant import irreps_D, random_rotation, s2_irreps, spherical_harmonics

from ._helpers import e3nn_context


def _compare_e3nn(v, lmax, normalization, normalize):
    ours = spherical_harmonics(lmax, v, normalization=normalization, normalize=normalize)
    with e3nn_context():
        ref = e3nn.spherical_harmonics(
            str(s2_irreps(lmax)), v, normalize=normalize, normalization=normalization
        ).array
    # e3nn normalises the vector with its own rounding; measured max 4.4e-14 at L = 20.
    assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-12


@pytest.mark.parametrize("normalization", ["integral", "component", "norm"])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_e3nn(getkey, normalization, normalize):
    _compare_e3nn(jax.random.normal(getkey(), (64, 3)), 4, normalization, normalize)


@pytest.mark.parametrize("normalization", ["integral", "component", "norm"])
def test_zero_vector_is_direction_free(normalization):
    # The zero vector (a self-pair of relative positions) has no direction: every degree
    # l > 0 must vanish there, as in e3nn-jax, or equivariance breaks; gradients are finite.
    vectors = jnp.asarray([[0.0, 0.0, 0.0], [1e-200, 0.0, 0.0], [0.3, -0.2, 0.5]])
    _compare_e3nn(vectors, 3, normalization, True)
    ours = np.asarray(spherical_harmonics(3, vectors[:1], normalization=normalization))
    assert ours[0, 0] != 0 and not np.any(ours[0, 1:])
    grad = jax.grad(lambda v: spherical_harmonics(3, v, normalization=normalization).sum())
    assert np.all(np.isfinite(np.asarray(jax.vmap(grad)(vectors))))


@pytest.mark.slow
@pytest.mark.parametrize("normalization", ["integral", "component", "norm"])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_e3nn_high_degree(getkey, normalization, normalize):
    for lmax in (12, 20):
        _compare_e3nn(jax.random.normal(getkey(), (64, 3)), lmax, normalization, normalize)


def _mp_ylm_table(lmax, v):
    """Orthonormal real SH in e3nn's axes (y polar, no Condon–Shortley phase) in 40-digit
    mpmath: unnormalised P_l^m by the textbook recurrences, factorial normalisation."""
    mpmath.mp.dps = 40
    x, y, z = (mpmath.mpf(float(c)) for c in v)
    r = mpmath.sqrt(x * x + y * y + z * z)
    t = y / r
    s = mpmath.sqrt(1 - t * t)
    alpha = mpmath.atan2(x, z)
    P = {}
    for m in range(lmax + 1):
        P[m, m] = mpmath.fac2(2 * m - 1) * s**m
        if m < lmax:
            P[m + 1, m] = (2 * m + 1) * t * P[m, m]
        for l in range(m + 2, lmax + 1):
            P[l, m] = ((2 * l - 1) * t * P[l - 1, m] - (l + m - 1) * P[l - 2, m]) / (l - m)
    out = []
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            k = abs(m)
            norm = mpmath.sqrt(
                (2 * l + 1) / (4 * mpmath.pi) * mpmath.factorial(l - k) / mpmath.factorial(l + k)
            )
            if m == 0:
                out.append(norm * P[l, 0])
            else:
                ang = mpmath.cos(k * alpha) if m > 0 else mpmath.sin(k * alpha)
                out.append(mpmath.sqrt(2) * norm * P[l, k] * ang)
    return np.array([float(o) for o in out])


def test_high_degree_against_mpmath(getkey):
    v = np.asarray(jax.random.normal(getkey(), (4, 3)))
    lmax = 20
    ours = np.asarray(spherical_harmonics(lmax, v, normalization="integral"))
    ref = np.stack([_mp_ylm_table(lmax, vec) for vec in v])
    # measured 1.9e-15 (float64 rounding of the recurrence and of the inputs' normalisation)
    assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-13


@pytest.mark.slow
def test_degree_40_against_mpmath(getkey):
    v = np.asarray(jax.random.normal(getkey(), (2, 3)))
    lmax = 40
    ours = np.asarray(spherical_harmonics([lmax], v, normalization="integral"))
    ref = np.stack([_mp_ylm_table(lmax, vec)[lmax * lmax :] for vec in v])
    assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-12


@pytest.mark.parametrize("improper", [False, True])
def test_equivariance(getkey, improper):
    lmax = 6
    R = random_rotation(getkey(), improper=improper, dtype=jnp.float64)
    v = jax.random.normal(getkey(), (16, 3))
    lhs = spherical_harmonics(lmax, v @ R.T)
    rhs = spherical_harmonics(lmax, v) @ irreps_D(s2_irreps(lmax), R).T
    assert np.abs(lhs - rhs).max() < 1e-12


def test_irreps_and_list_inputs(getkey):
    v = jax.random.normal(getkey(), (5, 3))
    full = spherical_harmonics(3, v)
    assert np.allclose(
        spherical_harmonics("1o+3o", v), jnp.concatenate([full[:, 1:4], full[:, 9:16]], -1)
    )
    assert np.allclose(spherical_harmonics([2], v), full[:, 4:9])
    assert spherical_harmonics(2, v.astype(jnp.float32)).dtype == jnp.float32


def test_transforms(getkey):
    v = jax.random.normal(getkey(), (6, 3))
    f = lambda a: spherical_harmonics(4, a)  # noqa: E731
    assert np.allclose(jax.jit(f)(v), f(v), rtol=1e-13, atol=1e-13)
    assert np.allclose(jax.vmap(f)(v), f(v), rtol=1e-13, atol=1e-13)
    g = jax.grad(lambda a: jnp.sum(f(a) ** 3))(v)
    eps = 1e-6
    e = jnp.zeros_like(v).at[2, 1].set(eps)
    fd = (jnp.sum(f(v + e) ** 3) - jnp.sum(f(v - e) ** 3)) / (2 * eps)
    assert abs(float(g[2, 1] - fd)) < 1e-6 * max(1.0, abs(float(fd)))


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        spherical_harmonics(2, jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="normalization"):
        spherical_harmonics(2, jnp.ones((4, 3)), normalization="unit")
    with pytest.raises(ValueError, match="supported range"):
        spherical_harmonics(1000, jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="parity"):
        spherical_harmonics("1e", jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="floating"):
        spherical_harmonics(2, jnp.ones((4, 3), jnp.int32))
