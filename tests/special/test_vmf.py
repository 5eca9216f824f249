"""von Mises–Fisher: normaliser, sampler, entropy, KL, Newton MLE, gradients in high dimension."""

import functools

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.integrate as si

from sciml._core import RESULTS
from sciml.special import iv_ratio, log_iv, vmf
from sciml.special._vmf import _sample_cosines


def _unit(d, axis=0, dtype=jnp.float64):
    return jnp.zeros(d, dtype).at[axis].set(1.0)


def test_normaliser_closed_form_in_three_dimensions():
    # C_3(κ) = κ / (4π sinh κ).
    kappa = jnp.array([1e-8, 0.3, 2.0, 40.0, 600.0])
    log_sinh = kappa + np.log(-np.expm1(-2 * kappa)) - np.log(2)
    expected = np.log(kappa) - np.log(4 * np.pi) - log_sinh
    np.testing.assert_allclose(vmf.log_normalizer(kappa, 3), expected, rtol=1e-14)


def test_normaliser_at_zero_is_the_uniform_density():
    for d in (2, 3, 10, 1000):
        area = np.log(2) + d / 2 * np.log(np.pi) - float(jax.lax.lgamma(d / 2.0))
        assert abs(float(vmf.log_normalizer(0.0, d)) + area) <= 1e-12 * max(1, area)
        # and the κ → 0 limit of the general formula meets it
        assert abs(float(vmf.log_normalizer(1e-12, d)) - float(vmf.log_normalizer(0.0, d))) < 1e-9


def test_normaliser_gradient_is_minus_the_mean_resultant_length():
    for d in (3, 512, 32768):
        kappa = jnp.array([0.0, 1e-3, 10.0, 1e3, 1e5])
        grad = jax.vmap(jax.grad(functools.partial(vmf.log_normalizer, d=d)))(kappa)
        np.testing.assert_allclose(grad, -vmf.mean_resultant_length(kappa, d), rtol=1e-15)


def test_density_integrates_to_one_on_the_circle_and_sphere():
    kappa = 7.0

    def on_circle(t):
        return np.exp(float(vmf.log_prob(jnp.array([np.cos(t), np.sin(t)]), _unit(2), kappa)))

    circle = si.quad(on_circle, 0, 2 * np.pi)[0]
    assert abs(circle - 1) < 1e-10
    # On S², the density depends on w = μᵀx only, with surface element 2π dw.
    sphere = si.quad(
        lambda w: 2 * np.pi * np.exp(float(vmf.log_normalizer(kappa, 3)) + kappa * w), -1, 1
    )[0]
    assert abs(sphere - 1) < 1e-12


def test_log_prob_broadcasting_and_gradients_in_high_dimension(getkey):
    d = 32768
    mu = _unit(d)
    x = vmf.sample(getkey(), mu, 5000.0, (3,))
    lp = vmf.log_prob(x, mu, 5000.0)
    assert lp.shape == (3,) and bool(jnp.all(jnp.isfinite(lp)))
    grad_kappa, grad_mu = jax.grad(lambda k, m: vmf.log_prob(x, m, k).sum(), argnums=(0, 1))(
        5000.0, mu
    )
    expected = -3 * vmf.mean_resultant_length(5000.0, d) + jnp.sum(x @ mu)
    np.testing.assert_allclose(grad_kappa, expected, rtol=1e-10)
    expected_mu = 5000.0 * x.sum(0)
    atol = 1e-14 * float(jnp.abs(expected_mu).max())
    np.testing.assert_allclose(grad_mu, expected_mu, rtol=0, atol=atol)


@pytest.mark.parametrize(
    "d, kappa",
    [
        (5, 10.0),
        pytest.param(1000, 3000.0, marks=pytest.mark.slow),
        pytest.param(3, 1.0, marks=pytest.mark.slow),
        pytest.param(50, 20.0, marks=pytest.mark.slow),
    ],
)
def test_sample_moments_match_the_mean_resultant_length(getkey, d, kappa):
    n = 40000
    x = vmf.sample(getkey(), _unit(d, 1), kappa, (n,))
    assert x.shape == (n, d)
    np.testing.assert_allclose(jnp.linalg.norm(x, axis=1), 1.0, rtol=1e-13)
    w = np.asarray(x[:, 1])
    a = float(vmf.mean_resultant_length(kappa, d))
    # Var(w) = 1 − A² − (d − 1)A/κ; 5 standard errors.
    var = 1 - a * a - (d - 1) * a / kappa
    assert abs(w.mean() - a) <= 5 * np.sqrt(var / n)
    assert abs(w.var() - var) <= 0.05 * var
    # the orthogonal part is isotropic: its mean vanishes
    other = np.asarray(jnp.delete(x, 1, axis=1)).mean(0)
    assert np.abs(other).max() <= 5 * np.sqrt((1 - a * a) / (d - 1) / n) + 1e-12


@pytest.mark.parametrize(
    "d, kappa",
    [
        (100000, 25000.0),
        pytest.param(32768, 1e-3, marks=pytest.mark.slow),
        pytest.param(32768, 1e8, marks=pytest.mark.slow),
        pytest.param(3, 1e12, marks=pytest.mark.slow),
    ],
)
def test_sampler_in_high_dimension_and_extreme_concentration(getkey, d, kappa):
    w, _ = _sample_cosines(getkey(), kappa, d, (4000,), jnp.float64, 100)
    assert bool(jnp.all(jnp.isfinite(w))) and bool(jnp.all(jnp.abs(w) <= 1))
    a = float(vmf.mean_resultant_length(kappa, d))
    var = max(1 - a * a - (d - 1) * a / kappa, 1e-300)
    assert abs(float(w.mean()) - a) <= 6 * np.sqrt(var / 4000) + 1e-12, (d, kappa)


def test_entropy_matches_monte_carlo(getkey):
    for d, kappa in ((5, 4.0),):
        x = vmf.sample(getkey(), _unit(d), kappa, (40000,))
        lp = vmf.log_prob(x, _unit(d), kappa)
        mc = -float(lp.mean())
        assert abs(float(vmf.entropy(kappa, d)) - mc) <= 5 * float(lp.std()) / 200
    area = np.log(4 * np.pi)
    assert abs(float(vmf.entropy(0.0, 3)) - area) < 1e-14


def test_kl_closed_form_properties():
    d = 10
    mu_p = _unit(d)
    mu_q = jnp.ones(d) / np.sqrt(d)
    assert abs(float(vmf.kl(mu_p, 5.0, mu_p, 5.0))) < 1e-14
    assert float(vmf.kl(mu_p, 5.0, mu_q, 2.0)) > 0
    assert float(vmf.kl(mu_p, 5.0, mu_p, 0.0)) > 0


@pytest.mark.slow
def test_kl_matches_monte_carlo(getkey):
    d = 10
    mu_p = _unit(d)
    mu_q = jnp.ones(d) / np.sqrt(d)
    value = float(vmf.kl(mu_p, 5.0, mu_q, 2.0))
    x = vmf.sample(getkey(), mu_p, 5.0, (40000,))
    diff = vmf.log_prob(x, mu_p, 5.0) - vmf.log_prob(x, mu_q, 2.0)
    assert value > 0
    assert abs(value - float(diff.mean())) <= 5 * float(diff.std()) / 200


@pytest.mark.parametrize("d", [2048, 8192, 32768])
@pytest.mark.parametrize("factor", [0.25, 1.0, 4.0])
def test_newton_from_banerjee_converges_fast(d, factor):
    kappa_true = factor * d
    rbar = iv_ratio(d / 2 - 1, kappa_true)
    sol = vmf.kappa_mle(rbar, d)
    assert sol.result == RESULTS.successful
    assert int(sol.stats["num_steps"]) <= 6
    assert float(sol.stats["residual_norm"]) <= 1e-12
    assert abs(float(sol.value) / kappa_true - 1) <= 1e-11


@pytest.mark.parametrize("d", [3, 100, 100000, 1000000])
@pytest.mark.parametrize("rbar", [1e-9, 1e-4, 0.3, 0.9, 1 - 1e-6, 1 - 1e-12])
def test_newton_is_stable_near_zero_and_one(d, rbar):
    sol = vmf.kappa_mle(jnp.asarray(rbar), d, throw=False)
    assert sol.result == RESULTS.successful
    kappa = float(sol.value)
    assert np.isfinite(kappa) and kappa > 0
    assert abs(float(iv_ratio(d / 2 - 1, kappa)) - rbar) <= 1e-13 * max(rbar, 1e-3)
    assert int(sol.stats["num_steps"]) <= 8


def test_kappa_mle_edges_and_batches():
    sol = vmf.kappa_mle(jnp.array([0.0, 0.5, 1.0]), 16, throw=False)
    assert float(sol.value[0]) == 0.0 and float(sol.value[2]) == np.inf
    assert sol.stats["residual_history"].shape == (3, 21)
    bad = vmf.kappa_mle(jnp.array([np.nan, 1.5]), 16, throw=False)
    assert np.isnan(np.asarray(bad.value)).all()


@pytest.mark.parametrize("d, kappa", [(10, 50.0), pytest.param(3, 2.0, marks=pytest.mark.slow)])
def test_fit_recovers_parameters_from_samples(getkey, d, kappa):
    n = 100000
    mu = jnp.ones(d) / np.sqrt(d)
    x = vmf.sample(getkey(), mu, kappa, (n,))
    sol = vmf.fit(x)
    assert sol.result == RESULTS.successful
    a = float(vmf.mean_resultant_length(kappa, d))
    slope = 1 - a * a - (d - 1) * a / kappa
    # R̄ has standard error ≈ √(Var(w)/n) = √(slope/n); κ̂ ≈ κ + ΔR̄/A′(κ).
    se_kappa = np.sqrt(slope / n) / slope
    assert abs(float(sol.value.kappa) - kappa) <= 5 * se_kappa, (d, kappa)
    assert float(sol.value.mu @ mu) > 1 - 1e-3


def test_fit_normalises_rows_and_reports_stats():
    X = jnp.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [4.0, 4.0, 0.0]])
    sol = vmf.fit(X)
    unit = X / jnp.linalg.norm(X, axis=1, keepdims=True)
    rbar = float(jnp.linalg.norm(unit.mean(0)))
    assert abs(float(sol.stats["mean_resultant_length"]) - rbar) < 1e-15
    assert sol.stats["n"] == 3
    assert abs(float(iv_ratio(0.5, sol.value.kappa)) - rbar) < 1e-14


def test_float32_vmf():
    d = 2048
    kappa = jnp.asarray(2048.0, jnp.float32)
    rbar = iv_ratio(jnp.float32(d / 2 - 1), kappa)
    sol = vmf.kappa_mle(rbar, d)
    assert sol.value.dtype == jnp.float32
    assert abs(float(sol.value) / 2048 - 1) < 1e-4
    assert vmf.log_normalizer(kappa, d).dtype == jnp.float32


def test_bad_input():
    with pytest.raises(ValueError, match="d"):
        vmf.log_normalizer(1.0, 1)
    with pytest.raises(ValueError, match="int"):
        vmf.log_normalizer(1.0, 3.0)
    with pytest.raises(ValueError, match="last axis"):
        vmf.log_prob(jnp.ones((4, 3)), jnp.ones(5), 1.0)
    with pytest.raises(ValueError, match="shape"):
        vmf.fit(jnp.ones(5))
    assert np.isnan(float(vmf.log_normalizer(-1.0, 3)))
    assert np.isnan(float(vmf.log_normalizer(np.nan, 3)))
    mu = jnp.asarray([1.0, 0.0, 0.0])
    # One κ per draw would be mixed up by the rejection sampler: refused, not wrong.
    with pytest.raises(ValueError, match="scalar"):
        vmf.sample(jax.random.key(0), mu, jnp.asarray([0.01, 1000.0]), (2,))
    with pytest.raises(ValueError, match=">= 0"):
        vmf.sample(jax.random.key(0), mu, -5.0, (4,))
    with pytest.raises(ValueError, match="tuple of ints"):
        vmf.sample(jax.random.key(0), mu, 1.0, 5)
    assert vmf.sample(jax.random.key(0), mu, 1.0, [5]).shape == (5, 3)  # a list is a shape too
    # R̄ outside [0, 1] (or NaN, from all-zero data) is invalid input, not a slow solve.
    for rbar in (1.5, jnp.nan):
        sol = vmf.kappa_mle(rbar, 3, throw=False)
        assert sol.result == RESULTS.invalid_input and np.isnan(float(sol.value))
    with pytest.raises(Exception, match="domain"):
        jax.block_until_ready(vmf.fit(jnp.zeros((3, 3))).value)
    # A traced κ (e.g. under vmap, one κ per batch member) still works.
    kappas = jnp.asarray([0.01, 1000.0])
    keys = jax.random.split(jax.random.key(1), 2)
    draws = jax.vmap(lambda k, c: vmf.sample(k, mu, c, (2000,)))(keys, kappas)
    cosines = np.asarray(draws @ mu).mean(axis=1)
    assert abs(cosines[0]) < 0.1 and cosines[1] > 0.99


def test_log_normalizer_matches_log_iv_definition():
    for d in (2, 7, 2048):
        kappa = jnp.array([0.5, 30.0, 4000.0])
        v = d / 2 - 1
        direct = v * jnp.log(kappa) - d / 2 * jnp.log(2 * jnp.pi) - log_iv(v, kappa)
        np.testing.assert_allclose(vmf.log_normalizer(kappa, d), direct, rtol=1e-14)


def test_kl_of_nearby_concentrations_is_accurate_and_non_negative():
    # log C_d(κ_p) − log C_d(κ_q) cancels terms of size κ: written directly, a KL of 5e-17 at
    # κ = 1e8 came out as −2e-8. The O(κ) parts now cancel analytically.
    mpmath.mp.dps = 60

    def reference(kp, kq, d=3):
        v = mpmath.mpf(d) / 2 - 1
        kp, kq = mpmath.mpf(kp), mpmath.mpf(kq)

        def log_c(k):
            return v * mpmath.log(k) - mpmath.log(mpmath.besseli(v, k))

        ratio = mpmath.besseli(v + 1, kp) / mpmath.besseli(v, kp)
        return float(log_c(kp) - log_c(kq) + ratio * (kp - kq))

    mu = jnp.asarray([1.0, 0.0, 0.0])
    for kp, kq in ((1e4, 1e4 * (1 + 1e-6)), (1e6, 1e6 * (1 + 1e-6)), (3.0, 5.0)):
        np.testing.assert_allclose(float(vmf.kl(mu, kp, mu, kq)), reference(kp, kq), rtol=1e-2)
    # True value 5e-17, below the ~eps·(1 + v|log κ|) rounding: only its size (it is clipped
    # at 0, so its sign says nothing).
    assert float(vmf.kl(mu, 1e8, mu, 1e8 + 1)) <= 1e-14
