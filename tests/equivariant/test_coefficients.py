# ruff: noqa: E741  (l is the standard name of the degree)
import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sympy.physics.wigner import real_gaunt

import sciml.equivariant as se

from ._helpers import e3nn_context


def test_clebsch_gordan_matches_e3nn():
    worst = 0.0
    for l1 in range(4):
        for l2 in range(4):
            for l3 in range(abs(l1 - l2), l1 + l2 + 1):
                ref = np.asarray(e3nn.clebsch_gordan(l1, l2, l3))
                worst = max(worst, np.abs(se.clebsch_gordan(l1, l2, l3) - ref).max())
    assert worst < 1e-12
    assert not se.clebsch_gordan(1, 1, 3).any()  # triangle rule


def test_clebsch_gordan_unit_norm_and_invariance(getkey):
    R = se.random_rotation(getkey(), dtype=jnp.float64)
    for l1, l2, l3 in [(1, 2, 3), (2, 2, 3), (3, 4, 2), (5, 5, 10)]:
        C = se.clebsch_gordan(l1, l2, l3)
        assert abs(np.linalg.norm(C) - 1) < 1e-14
        D1, D2, D3 = (np.asarray(se.wigner_D(l, R)) for l in (l1, l2, l3))
        rotated = np.einsum("ia,jb,kc,abc->ijk", D1, D2, D3, C)
        assert np.abs(rotated - C).max() < 1e-12


def test_gaunt_factor_values_from_the_note():
    expected = {
        (1, 1, 0): 0.488603,
        (1, 1, 2): 0.690988,
        (1, 2, 3): 0.846284,
        (2, 2, 2): 0.753930,
        (2, 2, 4): 1.011503,
        (3, 3, 6): 1.299233,
    }
    for key, value in expected.items():
        assert abs(se.gaunt_factor(*key) - value) < 1e-6
        assert abs(np.linalg.norm(se.gaunt_coefficients(*key)) - se.gaunt_factor(*key)) < 1e-14
    assert not se.gaunt_coefficients(1, 1, 1).any()  # odd sum
    assert not se.gaunt_coefficients(2, 2, 3).any()


def test_gaunt_is_the_integral_of_three_harmonics():
    # exact quadrature: degree <= 12 in cos(beta) and in alpha
    vectors, w = se.s2grid(8, 15)
    Y = np.asarray(se.spherical_harmonics(4, jnp.asarray(vectors), normalization="integral"))
    weights = 4 * np.pi * w[:, None] / 15
    for l1, l2, l3 in [(1, 1, 2), (2, 3, 3), (2, 2, 4), (4, 3, 1), (4, 4, 4)]:
        y1, y2, y3 = (Y[..., l * l : (l + 1) ** 2] for l in (l1, l2, l3))
        integral = np.einsum("ba,bai,baj,bak->ijk", weights, y1, y2, y3)
        assert np.abs(integral - se.gaunt_coefficients(l1, l2, l3)).max() < 1e-14


def test_gaunt_frobenius_norm_matches_sympy():
    # basis-independent check against sympy's exact real Gaunt coefficients (z-polar basis)
    for l1, l2, l3 in [(1, 2, 3), (2, 2, 2), (3, 3, 4)]:
        total = sum(
            float(real_gaunt(l1, l2, l3, m1, m2, m3)) ** 2
            for m1 in range(-l1, l1 + 1)
            for m2 in range(-l2, l2 + 1)
            for m3 in range(-l3, l3 + 1)
        )
        assert abs(np.sqrt(total) - se.gaunt_factor(l1, l2, l3)) < 1e-14


def test_coefficient_errors():
    with pytest.raises(ValueError, match="supported range"):
        se.clebsch_gordan(1, 1, 500)
    with pytest.raises(ValueError, match="int"):
        se.gaunt_coefficients(1.5, 1, 1)


def test_wigner_D_matches_e3nn(getkey):
    R = se.random_rotation(getkey(), (3,), dtype=jnp.float64)
    abc = jax.random.normal(getkey(), (3,), jnp.float64)
    with e3nn_context():
        # e3nn compiles every call eagerly: keep the combinations few (irreps_D covers more)
        Rm = jnp.concatenate([R, -R])
        for l, p in ((1, 1), (3, -1), (4, 1)):
            ref = e3nn.Irrep(l, p).D_from_matrix(Rm)
            assert np.abs(se.wigner_D(l, Rm, p=p) - ref).max() < 1e-12
        ref = e3nn.Irrep(3, -1).D_from_angles(*abc)
        assert np.abs(se.wigner_D_from_angles(3, *abc, p=-1) - ref).max() < 1e-12
        assert np.abs(se.angles_to_matrix(*abc) - e3nn.angles_to_matrix(*abc)).max() < 1e-14


def test_wigner_D_homomorphism_and_parity(getkey):
    R1 = se.random_rotation(getkey(), dtype=jnp.float64)
    R2 = se.random_rotation(getkey(), dtype=jnp.float64)
    D = lambda R: se.wigner_D(4, R)  # noqa: E731
    assert np.abs(D(R1 @ R2) - D(R1) @ D(R2)).max() < 1e-13
    assert np.abs(D(R1) @ D(R1).T - np.eye(9)).max() < 1e-13
    # the note's example: 0e+1o+2e+0o+1e at R = -I
    diag = np.diag(se.irreps_D("0e+1o+2e+0o+1e", -jnp.eye(3)))
    assert np.array_equal(np.round(diag), [1, -1, -1, -1, 1, 1, 1, 1, 1, -1, 1, 1, 1])


def test_wigner_errors():
    with pytest.raises(ValueError, match="shape"):
        se.wigner_D(1, jnp.eye(2))
    with pytest.raises(ValueError, match="p"):
        se.wigner_D(1, jnp.eye(3), p=2)
