"""Equivariant layers: equivariance under proper and improper rotations, known values, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml.equivariant import (
    FullyConnectedTensorProduct,
    Gate,
    GauntTensorProduct,
    Irreps,
    Linear,
    MessagePassingNetwork,
    SphericalHarmonicEdgeEmbedding,
    irreps_D,
    random_rotation,
)

F64 = jnp.float64
TOL64 = 1e-12  # the bound for float64, L <= 6


def _rotation(improper: bool, dtype=F64, seed: int = 7):
    return random_rotation(jax.random.key(seed), improper=improper, dtype=dtype)


def _random(key, irreps, batch=(5,), dtype=F64):
    return jax.random.normal(key, (*batch, Irreps(irreps).dim), dtype)


_irreps_D = jax.jit(irreps_D, static_argnums=0)


def _rotate(x, irreps, R):
    # The representation is built in float64 (the reference), then cast to x's dtype.
    return x @ _irreps_D(str(Irreps(irreps)), R.astype(F64)).astype(x.dtype).T


def _err(a, b):
    """Largest error relative to the output's scale (outputs here are O(1)..O(10))."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


IMPROPER = pytest.mark.parametrize("improper", [False, True], ids=["proper", "improper"])


@IMPROPER
def test_linear_is_equivariant(getkey, improper):
    irreps_in, irreps_out = "3x0e+2x1o+2x1e+2x2e+0o", "2x0e+3x1o+1e+2x2e+2o+3o"
    layer = eqx.filter_jit(Linear(irreps_in, irreps_out, use_bias=True, dtype=F64, key=getkey()))
    x = _random(getkey(), irreps_in)
    R = _rotation(improper)
    err = _err(layer(_rotate(x, irreps_in, R)), _rotate(layer(x), irreps_out, R))
    assert err < TOL64


def test_linear_mixes_only_equal_irreps_and_biases_only_scalars(getkey):
    layer = Linear("2x0e+1x1o", "3x0e+2x1o+1x1e+0o", use_bias=True, dtype=F64, key=getkey())
    x = jnp.zeros((Irreps("2x0e+1x1o").dim,), F64)
    y = layer(x)
    # A zero input gives the bias on 0e and exactly zero elsewhere (no path to 1e and 0o).
    assert np.all(np.asarray(y[3:]) == 0)
    x = _random(getkey(), "2x0e+1x1o", batch=())
    y = layer(x)
    assert np.all(np.asarray(y[3 + 6 : 3 + 6 + 3]) == 0)  # 1e has no input
    assert float(y[-1]) == 0.0  # 0o has no input
    # The map is the documented one: W^T x / sqrt(fan_in) on the 1o block.
    w = np.asarray(layer.weights[1])  # (1, 2) for 1o
    expected = (w.T @ np.asarray(x[2:5])[None, :]) / 1.0
    np.testing.assert_allclose(np.asarray(y[3:9]).reshape(2, 3), expected, rtol=1e-14)


@IMPROPER
def test_fully_connected_tensor_product_is_equivariant(getkey, improper):
    irreps1, irreps2 = "2x0e+2x1o+1e+2x2e+0o", "0e+1o+2e"
    irreps_out = "2x0e+2x0o+3x1o+2x1e+2x2e+2x2o+3e+4e"
    tp = eqx.filter_jit(
        FullyConnectedTensorProduct(irreps1, irreps2, irreps_out, dtype=F64, key=getkey())
    )
    x1, x2 = _random(getkey(), irreps1), _random(getkey(), irreps2)
    R = _rotation(improper)
    out = tp(_rotate(x1, irreps1, R), _rotate(x2, irreps2, R))
    assert _err(out, _rotate(tp(x1, x2), irreps_out, R)) < TOL64


def test_fully_connected_tensor_product_cross_product_and_paths(getkey):
    # One path 1o x 1o -> 1e with weight 1 is e3nn's "component" product: cross(a, b) / sqrt 2.
    tp = FullyConnectedTensorProduct("1o", "1o", "1e", dtype=F64, key=getkey())
    tp = eqx.tree_at(lambda t: t.weights, tp, (jnp.ones((1, 1, 1), F64),))
    a, b = _random(getkey(), "1o", batch=()), _random(getkey(), "1o", batch=())
    np.testing.assert_allclose(tp(a, b), jnp.cross(a, b) / np.sqrt(2), rtol=1e-14, atol=1e-15)
    # Paths: every (entry, entry, output entry) allowed by the triangle and parity rules.
    tp = FullyConnectedTensorProduct("0e+1o+2e", "0e+1o+2e", "0e+0o+1o+1e+2e+2o", key=getkey())
    # 0e: 0x0, 1x1, 2x2; 0o: none; 1o: 0x1, 1x0, 1x2, 2x1; 1e: 1x1, 2x2; 2e: 0x2, 2x0, 1x1,
    # 2x2; 2o: 1x2, 2x1.
    assert tp.num_paths == 3 + 0 + 4 + 2 + 4 + 2


def test_fully_connected_tensor_product_external_weights(getkey):
    irreps1, irreps2, irreps_out = "2x0e+1o", "0e+1o", "0e+2x1o+1e"
    tp = FullyConnectedTensorProduct(irreps1, irreps2, irreps_out, dtype=F64, key=getkey())
    ext = FullyConnectedTensorProduct(irreps1, irreps2, irreps_out, internal_weights=False)
    flat = jnp.concatenate([w.reshape(-1) for w in tp.weights])
    assert flat.shape == (ext.weight_numel,)
    x1, x2 = _random(getkey(), irreps1), _random(getkey(), irreps2)
    np.testing.assert_allclose(ext(x1, x2, flat), tp(x1, x2), rtol=1e-14)
    # Per-sample weights broadcast against the batch.
    per = jnp.stack([flat, 2 * flat, flat, flat, flat])
    np.testing.assert_allclose(ext(x1, x2, per)[1], 2 * tp(x1, x2)[1], rtol=1e-14)
    with pytest.raises(ValueError, match="internal_weights=False"):
        tp(x1, x2, flat)
    with pytest.raises(ValueError, match="weights="):
        ext(x1, x2)


@IMPROPER
@pytest.mark.parametrize("method", ["grid", "fourier"])
def test_gaunt_tensor_product_layer_is_equivariant(getkey, improper, method):
    irreps1, irreps2, irreps_out = "3x0e+2x1o+2x2e", "0e+1o+2e", "2x0e+3x1o+2x2e+3o+4e"
    layer = eqx.filter_jit(
        GauntTensorProduct(
            irreps1, irreps2, irreps_out, channels=3, method=method, dtype=F64, key=getkey()
        )
    )
    x1, x2 = _random(getkey(), irreps1), _random(getkey(), irreps2)
    R = _rotation(improper)
    out = layer(_rotate(x1, irreps1, R), _rotate(x2, irreps2, R))
    assert _err(out, _rotate(layer(x1, x2), irreps_out, R)) < TOL64


def test_gaunt_tensor_product_layer_is_symmetric_and_methods_agree(getkey):
    irreps, irreps_out = "2x0e+1o+2x2e", "0e+1o+2e+3o+4e"
    key = getkey()
    layers = {}
    for method in ("grid", "fourier"):
        layer = GauntTensorProduct(
            irreps, irreps, irreps_out, channels=2, method=method, dtype=F64, key=key
        )
        # The same weights on both sides make the layer a symmetric function of (x, y).
        layers[method] = eqx.filter_jit(eqx.tree_at(lambda t: t.linear2, layer, layer.linear1))
    x, y = _random(getkey(), irreps), _random(getkey(), irreps)
    grid = layers["grid"](x, y)
    np.testing.assert_allclose(layers["grid"](y, x), grid, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layers["fourier"](x, y), grid, rtol=1e-10, atol=1e-11)


def test_gaunt_tensor_product_layer_refuses_unnatural_parity(getkey):
    with pytest.raises(ValueError, match="FullyConnectedTensorProduct"):
        GauntTensorProduct("0e+1e", "0e+1o", "0e", channels=1, key=getkey())
    with pytest.raises(ValueError, match="FullyConnectedTensorProduct"):
        GauntTensorProduct("0e+1o", "0e+1o", "0o", channels=1, key=getkey())
    with pytest.raises(ValueError, match="channels"):
        GauntTensorProduct("0e+1o", "0e+1o", "0e", channels=0, key=getkey())


@IMPROPER
def test_gate_is_equivariant_and_odd_scalars_flip(getkey, improper):
    gate = Gate("2x0e+2x0o", "2x1o+1e+2e")
    jitted = jax.jit(gate)
    assert gate.irreps_in == "2x0e+2x0o+4x0e+2x1o+1x1e+1x2e"
    assert gate.irreps_out == "2x0e+2x0o+2x1o+1x1e+1x2e"
    x = _random(getkey(), gate.irreps_in)
    R = _rotation(improper)
    out = jitted(_rotate(x, gate.irreps_in, R))
    assert _err(out, _rotate(jitted(x), gate.irreps_out, R)) < TOL64
    np.testing.assert_allclose(jitted(x)[:, 2:4], jnp.tanh(x[:, 2:4]), rtol=1e-15)
    with pytest.raises(ValueError, match="scalars"):
        Gate("1o", "1o")


@IMPROPER
def test_edge_embedding_is_equivariant(getkey, improper):
    emb = SphericalHarmonicEdgeEmbedding(4, num_basis=3, cutoff=3.0)
    assert emb.irreps_out == "3x0e+3x1o+3x2e+3x3o+3x4e"
    embed = jax.jit(emb)
    v = jax.random.normal(getkey(), (7, 3), F64)
    R = _rotation(improper)
    assert _err(embed(v @ R.T), _rotate(embed(v), emb.irreps_out, R)) < TOL64


def test_edge_embedding_cutoff_and_zero_vectors(getkey):
    emb = SphericalHarmonicEdgeEmbedding(2, num_basis=4, cutoff=1.5)
    v = jnp.asarray([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.3, 0.4, 0.0]], F64)
    out = jax.jit(emb)(v)
    assert np.all(np.asarray(out[0]) == 0) and np.all(np.asarray(out[1]) == 0)
    assert np.all(np.isfinite(np.asarray(out[2]))) and float(jnp.abs(out[2]).max()) > 0
    # The envelope goes to zero smoothly at the cutoff (value and slope).
    r = jnp.asarray([1.5 - 1e-4], F64)
    assert float(emb.envelope(r)[0]) < 1e-9
    grad = jax.jit(jax.grad(lambda x: jnp.sum(emb(x))))(v)
    assert np.all(np.isfinite(np.asarray(grad)))


@IMPROPER
@pytest.mark.parametrize("product", ["cg", "gaunt"])
def test_message_passing_network_is_equivariant(getkey, improper, product):
    net = MessagePassingNetwork(
        "2x0e+1o",
        "0o+2x0e+1o+1e+2e",
        product=product,
        mul=2,
        lmax=2,
        num_layers=2,
        cutoff=1.6,
        dtype=F64,
        key=getkey(),
    )
    irreps_out = net.irreps_out
    net = eqx.filter_jit(net)
    positions = jax.random.normal(getkey(), (6, 3), F64)
    features = _random(getkey(), "2x0e+1o", batch=(6,))
    R = _rotation(improper)
    shift = jnp.asarray([0.3, -1.0, 2.0], F64)
    out = net(positions, features)
    moved = net(positions @ R.T + shift[None, :], _rotate(features, "2x0e+1o", R))
    assert _err(moved, _rotate(out, irreps_out, R)) < TOL64
    # Node order does not matter.
    perm = jnp.asarray([3, 1, 5, 0, 2, 4])
    assert _err(net(positions[perm], features[perm]), out) < TOL64
    if product == "gaunt":
        # Natural-parity features cannot make pseudo-scalars or pseudo-vectors.
        assert float(jnp.abs(out[0])) == 0.0 and float(jnp.abs(out[6:9]).max()) == 0.0
    else:
        assert float(jnp.abs(out[0])) > 0.0


def test_message_passing_network_padding_mask(getkey):
    net = MessagePassingNetwork(
        "0e", "2x0e+1o", mul=2, lmax=1, num_layers=1, cutoff=2.0, dtype=F64, key=getkey()
    )
    positions = jax.random.normal(getkey(), (4, 3), F64)
    features = jnp.ones((4, 1), F64)
    padded = jnp.concatenate([positions, jnp.zeros((2, 3), F64)])
    mask = jnp.asarray([True] * 4 + [False] * 2)
    full = eqx.filter_jit(net)(positions, features)
    np.testing.assert_allclose(
        eqx.filter_jit(net)(padded, jnp.ones((6, 1), F64), node_mask=mask),
        full,
        rtol=1e-12,
        atol=1e-13,
    )


def test_float32_equivariance_and_dtypes(getkey):
    irreps1, irreps2, irreps_out = "4x0e+2x1o+2x2e", "0e+1o+2e", "2x0e+2x1o+2x2e+0o+1e"
    tp = FullyConnectedTensorProduct(irreps1, irreps2, irreps_out, key=getkey())
    gtp = GauntTensorProduct(irreps1, irreps2, "2x0e+2x1o+2x2e", channels=2, key=getkey())
    R = _rotation(False, jnp.float32)
    x1 = _random(getkey(), irreps1, dtype=jnp.float32)
    x2 = _random(getkey(), irreps2, dtype=jnp.float32)
    for layer, out_irreps in ((tp, irreps_out), (gtp, "2x0e+2x1o+2x2e")):
        layer = eqx.filter_jit(layer)
        out = layer(x1, x2)
        assert out.dtype == jnp.float32
        rotated = layer(_rotate(x1, irreps1, R), _rotate(x2, irreps2, R))
        assert _err(rotated, _rotate(out, out_irreps, R)) < 1e-4
        # float32 weights follow a float64 input.
        assert jax.eval_shape(layer, x1.astype(F64), x2.astype(F64)).dtype == F64


def test_transforms_jit_vmap_grad(getkey):
    irreps1, irreps2, irreps_out = "2x0e+1o", "0e+1o+2e", "0e+1o+0o"
    tp = FullyConnectedTensorProduct(irreps1, irreps2, irreps_out, dtype=F64, key=getkey())
    x1 = _random(getkey(), irreps1, batch=(3,))
    x2 = _random(getkey(), irreps2, batch=(3,))
    eager = tp(x1, x2)
    np.testing.assert_allclose(eqx.filter_jit(tp)(x1, x2), eager, rtol=1e-13, atol=1e-14)
    looped = jnp.stack([tp(x1[i], x2[i]) for i in range(3)])
    np.testing.assert_allclose(jax.jit(jax.vmap(tp))(x1, x2), looped, rtol=1e-13, atol=1e-14)

    from sciml.testing import fd_grad

    def loss(x):
        return jnp.sum(jnp.sin(tp(x, x2[0])))

    loss = jax.jit(loss)
    np.testing.assert_allclose(jax.grad(loss)(x1[0]), fd_grad(loss, x1[0]), rtol=1e-7, atol=1e-9)


def test_bad_input_errors(getkey):
    layer = Linear("2x0e+1o", "0e", key=getkey())
    with pytest.raises(ValueError, match="last axis"):
        layer(jnp.zeros((4,)))
    with pytest.raises(ValueError, match="Cannot parse"):
        Linear("2x0q", "0e", key=getkey())
    with pytest.raises(ValueError, match="no path"):
        FullyConnectedTensorProduct("0e", "0e", "1o", key=getkey())  # always zero
    tp = FullyConnectedTensorProduct("0e", "0e", "0e", key=getkey())
    with pytest.raises(ValueError, match="dtype"):
        tp(jnp.zeros((1,), jnp.float32), jnp.zeros((1,), F64))
    with pytest.raises(ValueError, match="last axis of 3"):
        SphericalHarmonicEdgeEmbedding(2)(jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="product"):
        MessagePassingNetwork("0e", "0e", product="matrix", key=getkey())
