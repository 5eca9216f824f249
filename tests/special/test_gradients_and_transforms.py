"""Gradients against 50-digit references, and the transform battery (jit, vmap, grad, dtypes)."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml.special import iv_ratio, kv_ratio, log_iv, log_ive, log_kv, log_kve

from . import _reference as R

DER = R.derivatives()
FUNCTIONS = {
    "log_iv": log_iv,
    "log_kv": log_kv,
    "log_ive": log_ive,
    "log_kve": log_kve,
    "iv_ratio": iv_ratio,
    "kv_ratio": kv_ratio,
}


def _grads(fn, v, x):
    return R.gradients(fn, v, x)


@pytest.mark.parametrize("fn, kind", [(log_iv, "i"), (log_kv, "k")], ids=["log_iv", "log_kv"])
def test_gradients_against_references(fn, kind):
    dv, dx = _grads(fn, DER["v"], DER["x"])
    assert np.all(np.isfinite(dv)) and np.all(np.isfinite(dx))
    for name, ours in (("dv", dv), ("dx", dx)):
        ref = DER[f"dlog{kind}_{name}"]
        err = np.abs(ours - ref) / np.maximum(1, np.abs(ref))
        worst = int(np.argmax(err))
        assert err.max() <= 1e-10, (name, err.max(), DER["v"][worst], DER["x"][worst])


def test_x_derivatives_have_relative_accuracy():
    # d/dx comes from the ratio identities, so it is accurate relative to its own size even
    # where it is tiny (log I_0(x) ≈ x²/4) or huge (−v/x as x → 0).
    for fn, kind in ((log_iv, "i"), (log_kv, "k")):
        _, dx = _grads(fn, DER["v"], DER["x"])
        ref = DER[f"dlog{kind}_dx"]
        assert np.max(np.abs(dx / ref - 1)) <= 1e-13


def test_order_derivative_is_not_silently_zero():
    # TFP returns 0 for ∂/∂v; here it must match the reference wherever that is non-zero.
    for fn, kind in ((log_iv, "i"), (log_kv, "k")):
        dv, _ = _grads(fn, DER["v"], DER["x"])
        ref = DER[f"dlog{kind}_dv"]
        big = np.abs(ref) > 1e-3
        assert big.sum() > 50
        assert np.all(np.sign(dv[big]) == np.sign(ref[big]))
    # ∂/∂v log I_v at v = 0 is −K_0(x)/I_0(x). In the series region it is a sum of O(1) terms
    # (log(x/2) − ψ(1) + …), so its accuracy is absolute: ~1e-15, as the mixed bound says.
    x = np.array([1e-3, 0.5, 5.0, 15.0])
    dv, _ = _grads(log_iv, 0.0, x)
    expected = -np.exp(R.evaluate(log_kv, 0.0, x) - R.evaluate(log_iv, 0.0, x))
    np.testing.assert_allclose(dv, expected, rtol=1e-12, atol=4e-15)


@pytest.mark.slow
def test_ratio_gradients_match_finite_differences():
    v = np.array([0.0, 0.7, 5.0, 19.0, 40.0, 800.0])
    x = np.array([0.01, 1.5, 3.0, 17.0, 60.0, 500.0])
    for fn in (iv_ratio, kv_ratio):
        dv, dx = _grads(fn, v, x)
        h = 1e-6
        f = functools.partial(R.evaluate, fn)
        fd_x = (f(v, x * (1 + h)) - f(v, x * (1 - h))) / (2 * h * x)
        fd_v = (f(v + h, x) - f(v - h * (v > 0), x)) / (h + h * (v > 0))
        np.testing.assert_allclose(dx, fd_x, rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(dv, fd_v, rtol=1e-5, atol=1e-9)


@pytest.mark.slow
def test_second_derivative_in_x_is_finite_and_matches_the_bessel_equation():
    # (log I)'' = 1 + v²/x² − (log I)'/x − ((log I)')²: the ODE written for L = log I.
    v = jnp.array([0.0, 0.5, 3.0, 12.0, 25.0, 300.0])
    x = jnp.array([0.3, 2.5, 8.0, 15.0, 30.0, 200.0])
    _, d1 = R.gradients(log_iv, v, x)
    d2 = jax.vmap(jax.grad(jax.grad(log_iv, 1), 1))(v, x)
    expected = 1 + v**2 / x**2 - d1 / x - d1**2
    np.testing.assert_allclose(d2, expected, rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Transform battery


V = jnp.array([0.0, 0.3, 2.5, 12.0, 19.99, 20.01, 150.0, 3e4])
X = jnp.array([1e-5, 0.7, 1.99, 2.01, 15.0, 60.0, 140.0, 2e4])


# Every extra transformation of a function is a fresh XLA compile (seconds each on 2 cores):
# the default run covers the two functions, the rest run with `-m slow`.
DEFAULT_AND_SLOW = [
    "log_iv",
    "log_kv",
    pytest.param("log_ive", marks=pytest.mark.slow),
    pytest.param("log_kve", marks=pytest.mark.slow),
    pytest.param("iv_ratio", marks=pytest.mark.slow),
    pytest.param("kv_ratio", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name", DEFAULT_AND_SLOW)
def test_jit_equals_eager(name):
    fn = FUNCTIONS[name]
    np.testing.assert_allclose(jax.jit(fn)(V, X), fn(V, X), rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", DEFAULT_AND_SLOW)
def test_vmap_equals_loop(name):
    fn = FUNCTIONS[name]
    batched = jax.vmap(fn)(V, X)
    looped = jnp.stack([fn(v, x) for v, x in zip(V, X, strict=True)])
    # Scalar and vectorised XLA code round differently (vector exp/log, FMA contraction): a few
    # eps of the value.
    scale = 1 + jnp.abs(looped)
    assert float(jnp.max(jnp.abs(batched - looped) / scale)) <= 4e-16


@pytest.mark.parametrize("name", DEFAULT_AND_SLOW)
def test_dtype_is_kept(name):
    fn = FUNCTIONS[name]
    assert fn(V, X).dtype == jnp.float64
    out = fn(V.astype(jnp.float32), X.astype(jnp.float32))
    assert out.dtype == jnp.float32
    # Python scalars adopt the array's dtype; integers compute in the default float.
    assert fn(2, X.astype(jnp.float32)).dtype == jnp.float32
    assert fn(2, 3).dtype == jnp.float64


@pytest.mark.parametrize("fn", [log_iv, log_kv], ids=["log_iv", "log_kv"])
def test_float32_gradients_keep_dtype(fn):
    dv, dx = R.gradients(fn, V, X, np.float32)
    assert dv.dtype == dx.dtype == np.float32
    assert np.all(np.isfinite(dv)) and np.all(np.isfinite(dx))
    dv64, dx64 = R.gradients(fn, V, X)
    np.testing.assert_allclose(dx, dx64, rtol=1e-4)
    np.testing.assert_allclose(dv, dv64, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    "name",
    [
        "log_iv",
        "log_kv",
        "iv_ratio",
        pytest.param("kv_ratio", marks=pytest.mark.slow),
        pytest.param("log_ive", marks=pytest.mark.slow),
        pytest.param("log_kve", marks=pytest.mark.slow),
    ],
)
def test_grad_matches_finite_differences(name):
    fn = FUNCTIONS[name]
    dv, dx = _grads(fn, V, X)
    f = lambda v, x: R.evaluate(fn, v, x)  # noqa: E731
    V_, X_ = np.asarray(V), np.asarray(X)
    # Relative steps: the values reach ~1e4, whose rounding would swamp an absolute step.
    h = 1e-6
    fd_x = (f(V_, X_ * (1 + h)) - f(V_, X_ * (1 - h))) / (2 * h * X_)
    hv = h * np.maximum(1, V_)
    central = (f(V_ + hv, X_) - f(V_ - hv, X_)) / (2 * hv)
    # At the boundary v = 0, the second-order one-sided difference.
    one_sided = (-3 * f(V_, X_) + 4 * f(V_ + hv, X_) - f(V_ + 2 * hv, X_)) / (2 * hv)
    fd_v = np.where(V_ - hv < 0, one_sided, central)
    scale = 1 + np.abs(f(V_, X_))
    np.testing.assert_allclose(dx, fd_x, rtol=1e-6, atol=1e-8 * float(scale.max()))
    np.testing.assert_allclose(dv, fd_v, rtol=1e-5, atol=1e-7 * float(scale.max()))


def test_broadcasting():
    v = jnp.arange(4.0)[:, None]
    x = jnp.linspace(0.5, 40.0, 5)
    out = log_iv(v, x)
    assert out.shape == (4, 5)
    np.testing.assert_allclose(out[2], log_iv(2.0, x), rtol=1e-15)
    assert log_kv(1.5, 3.0).shape == ()


def test_no_retrace_for_new_values():
    traced = eqx.debug.assert_max_traces(max_traces=1)(lambda v, x: log_iv(v, x) + log_kv(v, x))
    fn = jax.jit(traced)
    for scale in (1.0, 10.0, 1000.0):
        fn(V * scale, X * scale).block_until_ready()


def test_grad_with_respect_to_x_only_skips_the_order_derivative():
    # The order tangent is a symbolic zero here: the traced program must not contain it.
    jaxpr_x = jax.make_jaxpr(jax.grad(lambda x: log_kv(3.3, x)))(2.5)
    jaxpr_both = jax.make_jaxpr(jax.grad(lambda v, x: log_kv(v, x), argnums=(0, 1)))(3.3, 2.5)
    assert len(str(jaxpr_x)) < len(str(jaxpr_both))
