"""The Fourier Neural Operator: shapes, resolution independence, fitting, transforms, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml.operators._fno import FNO, SpectralConv2d, mean_relative_l2, relative_l2, train_fno
from sciml.testing import fd_grad, tree_allclose


def small_fno(key, dtype=jnp.float64, **kwargs):
    options = dict(modes=4, width=8, n_layers=2, projection_width=16)
    options.update(kwargs)
    return FNO(1, 1, key=key, dtype=dtype, **options)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_shapes_and_dtype(getkey, dtype):
    model = FNO(2, 3, modes=(3, 5), width=6, n_layers=3, key=getkey(), dtype=dtype)
    x = jax.random.normal(getkey(), (2, 12, 14), dtype)
    y = eqx.filter_jit(model)(x)
    assert y.shape == (3, 12, 14) and y.dtype == dtype
    assert model.in_channels == 2 and model.out_channels == 3
    # Every parameter is a real array of the model's dtype (complex weights as real pairs).
    for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_array)):
        assert leaf.dtype == dtype
    assert model.spectral[0].weights.shape == (2, 6, 6, 3, 5, 2)


def test_spectral_conv_is_resolution_independent(getkey):
    # A band-limited periodic field sampled on a 16² and a 32² grid (the coarse points are every
    # other fine point): the truncated spectral convolution gives the same function on both.
    conv = SpectralConv2d(2, 3, (4, 4), key=getkey(), dtype=jnp.float64)
    coeffs = np.asarray(jax.random.normal(getkey(), (2, 3, 3, 2), jnp.float64))

    def field(n):
        t = np.arange(n) / n
        x, y = np.meshgrid(t, t, indexing="ij")
        out = np.zeros((2, n, n))
        for p in range(3):
            for q in range(3):
                phase = 2 * np.pi * (p * x + q * y)
                out += coeffs[:, p, q, 0, None, None] * np.cos(phase)
                out += coeffs[:, p, q, 1, None, None] * np.sin(phase)
        return jnp.asarray(out)

    conv = eqx.filter_jit(conv)
    coarse, fine = conv(field(16)), conv(field(32))
    np.testing.assert_allclose(fine[:, ::2, ::2], coarse, rtol=0, atol=1e-12)
    # The modes really are truncated: a mode above the cut-off is dropped entirely.
    t = jnp.arange(16, dtype=jnp.float64) / 16
    high = jnp.broadcast_to(jnp.cos(2 * jnp.pi * 6 * t)[None, :, None], (2, 16, 16))
    np.testing.assert_allclose(conv(high), 0.0, atol=1e-12)


def test_full_model_runs_at_any_resolution(getkey):
    model = small_fno(getkey())
    for n in (8, 33):
        x = jax.random.normal(getkey(), (1, n, n), jnp.float64)
        assert eqx.filter_jit(model)(x).shape == (1, n, n)
    with pytest.raises(ValueError, match="too coarse"):
        model(jnp.zeros((1, 6, 6), jnp.float64))


def test_relative_l2():
    target = jnp.array([[3.0, 4.0]], jnp.float64)
    assert float(relative_l2(target, target)) == 0.0
    assert float(relative_l2(jnp.zeros_like(target), target)) == pytest.approx(1.0)
    assert float(relative_l2(target + jnp.array([[0.0, 0.5]]), target)) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="shapes differ"):
        relative_l2(target, target[0])


def _smoothing_data(key, n_samples, size):
    # Targets: a fixed, smooth, nonlocal operator of the input (periodic Gaussian blur plus a
    # pointwise square), which an FNO can fit well at low resolution.
    x = np.asarray(jax.random.normal(key, (n_samples, 1, size, size), jnp.float64))
    freq = np.fft.fftfreq(size) * size
    kernel = np.exp(-0.1 * (freq[:, None] ** 2 + freq[None, :] ** 2))
    blurred = np.real(np.fft.ifft2(np.fft.fft2(x) * kernel))
    return jnp.asarray(x), jnp.asarray(blurred + 0.5 * blurred**2)


def test_tiny_fit_decreases_loss(getkey):
    inputs, targets = _smoothing_data(getkey(), 32, 16)
    model = small_fno(getkey())
    before = float(mean_relative_l2(model, inputs, targets))
    trained, history = train_fno(
        model, inputs, targets, steps=100, key=getkey(), batch_size=8, lr=1e-2, chunk_size=100
    )
    after = float(mean_relative_l2(trained, inputs, targets))
    assert history.shape == (100,) and bool(jnp.all(jnp.isfinite(history)))
    # An untrained FNO is near 100 % error; the fit must at least halve it.
    assert after < 0.5 * before, (before, after)
    assert float(jnp.mean(history[-20:])) < 0.5 * float(jnp.mean(history[:5]))


@pytest.mark.slow
def test_training_is_independent_of_chunking(getkey):
    inputs, targets = _smoothing_data(getkey(), 8, 8)
    model, key = small_fno(getkey(), modes=2), getkey()
    a, history_a = train_fno(model, inputs, targets, steps=4, key=key, batch_size=4, chunk_size=4)
    b, history_b = train_fno(model, inputs, targets, steps=4, key=key, batch_size=4, chunk_size=2)
    assert tree_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(history_a, history_b, rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_transform_battery(getkey, dtype):
    model = small_fno(getkey(), dtype=dtype, modes=3)
    xs = jax.random.normal(getkey(), (3, 1, 8, 8), dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == jnp.float32 else dict(rtol=1e-12, atol=1e-13)
    jitted = eqx.filter_jit(model)
    batched = eqx.filter_jit(lambda m, x: jax.vmap(m)(x))(model, xs)
    assert batched.dtype == dtype
    looped = jnp.stack([jitted(x) for x in xs])
    np.testing.assert_allclose(batched, looped, **tol)
    if dtype == jnp.float64:  # eager dispatch is slow; once is enough
        np.testing.assert_allclose(model(xs[0]), looped[0], **tol)


def test_gradients_match_finite_differences(getkey):
    model = small_fno(getkey(), modes=2, width=4, projection_width=4)
    x = jax.random.normal(getkey(), (1, 8, 8), jnp.float64)
    target = jax.random.normal(getkey(), (1, 8, 8), jnp.float64)

    # With respect to the input field.
    def loss_x(v):
        return relative_l2(model(v.reshape(1, 8, 8)), target)

    v = x.ravel()[:10]

    @jax.jit
    def loss_part(part):
        return loss_x(x.ravel().at[:10].set(part))

    np.testing.assert_allclose(
        jax.jit(jax.grad(loss_part))(v), fd_grad(loss_part, v), rtol=1e-6, atol=1e-9
    )

    # With respect to the spectral weights (real and imaginary parts).
    weights = model.spectral[0].weights

    def loss_w(w):
        net = eqx.tree_at(lambda m: m.spectral[0].weights, model, w.reshape(weights.shape))
        return relative_l2(net(x), target)

    w = weights.ravel()
    grad = jax.jit(jax.grad(loss_w))(w)
    idx = np.arange(0, w.size, max(1, w.size // 12))

    @jax.jit
    def loss_subset(part):
        return loss_w(w.at[idx].set(part))

    np.testing.assert_allclose(grad[idx], fd_grad(loss_subset, w[idx]), rtol=1e-6, atol=1e-9)


def test_bad_input(getkey):
    model = small_fno(getkey())
    with pytest.raises(ValueError, match="one sample of shape"):
        model(jnp.zeros((2, 16, 16), jnp.float64))
    with pytest.raises(ValueError, match="jax.vmap"):
        model(jnp.zeros((4, 1, 16, 16), jnp.float64))
    with pytest.raises(ValueError, match="dtype"):
        model(jnp.zeros((1, 16, 16), jnp.float32))
    with pytest.raises(ValueError, match="width"):
        FNO(1, 1, width=0, key=getkey())
    with pytest.raises(ValueError, match="modes"):
        FNO(1, 1, modes=(2, 2, 2), key=getkey())
    with pytest.raises(ValueError, match="float32 or float64"):
        FNO(1, 1, key=getkey(), dtype=jnp.int32)
    x = jnp.zeros((4, 1, 16, 16), jnp.float64)
    with pytest.raises(ValueError, match="exceeds"):
        train_fno(model, x, x, steps=1, key=getkey(), batch_size=5)
    with pytest.raises(ValueError, match="one target per input"):
        train_fno(model, x, x[:3], steps=1, key=getkey(), batch_size=2)
    with pytest.raises(ValueError, match="steps"):
        train_fno(model, x, x, steps=0, key=getkey(), batch_size=2)
    with pytest.raises(ValueError, match="inputs"):
        train_fno(model, x.astype(jnp.int32), x, steps=1, key=getkey(), batch_size=2)
