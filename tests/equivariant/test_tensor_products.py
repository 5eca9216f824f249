import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sciml.equivariant as se

from ._helpers import e3nn_context, even_path_cg_reference, rel_err


def _pair(getkey, lx, ly, batch=(3,), dtype=jnp.float64):
    x = jax.random.normal(getkey(), batch + ((lx + 1) ** 2,), dtype)
    y = jax.random.normal(getkey(), batch + ((ly + 1) ** 2,), dtype)
    return x, y


# ---------------------------------------------------------------- CG tensor product


@pytest.mark.parametrize(
    "irreps_x, irreps_y, filt",
    [
        ("0e+1o+2e", "0e+1o+2e", None),
        ("2x1e+0e+3x1o", "0o+2x2o", None),
        ("2x0e+1o", "1o+1e", ["1e", "0e"]),
    ],
)
def test_cg_matches_e3nn_tensor_product(getkey, irreps_x, irreps_y, filt):
    with e3nn_context():
        x = e3nn.normal(irreps_x, getkey(), (3,))
        y = e3nn.normal(irreps_y, getkey(), (3,))
        ref = e3nn.tensor_product(x, y, filter_ir_out=filt)
    for sparse in (False, True):
        out, irreps_out = se.cg_tensor_product(
            x.array, y.array, irreps_x, irreps_y, filter_out=filt, sparse=sparse
        )
        assert str(irreps_out) == str(ref.irreps)
        assert np.abs(out - ref.array).max() < 1e-13


def test_cg_cross_product_fact():
    a, b = jnp.array([1.0, 2.0, -0.5]), jnp.array([0.3, -1.0, 2.0])
    out, irreps = se.cg_tensor_product(a, b, "1o", "1o", filter_out=["1e"])
    assert irreps == se.Irreps("1e")
    assert np.abs(out - jnp.cross(a, b) / np.sqrt(2)).max() < 1e-15


def test_fully_connected_matches_e3nn_legacy(getkey):
    from e3nn_jax.legacy import FunctionalFullyConnectedTensorProduct

    ix, iy, io = "2x0e+3x1o", "0e+1o+2e", "4x0e+2x1o+1x2e+1x1e"
    with e3nn_context():
        tp = FunctionalFullyConnectedTensorProduct(
            e3nn.Irreps(ix), e3nn.Irreps(iy), e3nn.Irreps(io)
        )
        ws = [jax.random.normal(getkey(), ins.path_shape) for ins in tp.instructions]
        x = e3nn.normal(ix, getkey(), ())
        y = e3nn.normal(iy, getkey(), ())
        ref = tp.left_right(ws, x, y)
    _, paths, num_weights = se.cg_paths(ix, iy, mode="uvw", irreps_out=io)
    assert [(p.i_x, p.i_y, p.i_out) for p in paths] == [
        (i.i_in1, i.i_in2, i.i_out) for i in tp.instructions
    ]
    w = jnp.concatenate([a.reshape(-1) for a in ws])
    assert w.shape == (num_weights,)
    for sparse in (False, True):
        out, _ = se.cg_tensor_product(
            x.array, y.array, ix, iy, mode="uvw", weights=w, irreps_out=io, sparse=sparse
        )
        assert np.abs(out - ref.array).max() < 1e-13


def test_channelwise_matches_elementwise(getkey):
    # one entry per input: "uuu" pairs every entry pair with equal multiplicity, which here is
    # e3nn's elementwise product
    ix = "4x1o"
    with e3nn_context():
        x = e3nn.normal(ix, getkey(), (2,))
        y = e3nn.normal(ix, getkey(), (2,))
        ref = e3nn.elementwise_tensor_product(x, y).regroup()
    out, irreps = se.cg_tensor_product(x.array, y.array, ix, ix, mode="uuu")
    assert str(irreps) == str(ref.irreps)
    assert np.abs(out - ref.array).max() < 1e-13
    # weights scale each path and channel
    _, paths, n = se.cg_paths(ix, ix, mode="uuu")
    out2, _ = se.cg_tensor_product(
        x.array, y.array, ix, ix, mode="uuu", weights=jnp.full((n,), 2.0)
    )
    assert np.abs(out2 - 2 * out).max() < 1e-13


# ---------------------------------------------------------------- Gaunt tensor product


# (2, 1, 4): lmax_out above lmax_x + lmax_y (the extra degrees are zero)
@pytest.mark.parametrize(
    "lx, ly, lo", [(1, 1, 2), (2, 3, 5), (3, 3, 2), (4, 4, 8), (4, 2, 3), (2, 1, 4)]
)
def test_gaunt_equals_weighted_even_path_cg(getkey, lx, ly, lo):
    x, y = _pair(getkey, lx, ly)
    ref = even_path_cg_reference(x, y, lx, ly, lo)
    for kwargs in (
        {},
        {"fft": True},
        {"method": "fourier"},
        {"method": "fourier", "conv": "fft"},
        {"method": "fourier", "conv": "direct"},
    ):
        out = se.gaunt_tensor_product(x, y, lmax_x=lx, lmax_y=ly, lmax_out=lo, **kwargs)
        assert rel_err(out, ref) < 1e-12, kwargs


@pytest.mark.slow
@pytest.mark.parametrize("lmax", [6, 8])
def test_gaunt_equals_weighted_even_path_cg_large(getkey, lmax):
    x, y = _pair(getkey, lmax, lmax)
    ref = even_path_cg_reference(x, y, lmax, lmax, 2 * lmax)
    for method in ("grid", "fourier"):
        out = se.gaunt_tensor_product(x, y, lmax_x=lmax, lmax_y=lmax, method=method)
        assert rel_err(out, ref) < 1e-8


@pytest.mark.parametrize("lmax", [5, pytest.param(8, marks=pytest.mark.slow)])
def test_fourier_equals_grid_up_to_8(getkey, lmax):
    x, y = _pair(getkey, lmax, lmax, batch=(2,))
    grid = se.gaunt_tensor_product(x, y, lmax_x=lmax, lmax_y=lmax)
    grid_fft = se.gaunt_tensor_product(x, y, lmax_x=lmax, lmax_y=lmax, fft=True)
    assert rel_err(grid_fft, grid) < 1e-12
    for conv in ("dft", "fft"):
        fourier = se.gaunt_tensor_product(
            x, y, lmax_x=lmax, lmax_y=lmax, method="fourier", conv=conv
        )
        assert rel_err(fourier, grid) < 1e-10, conv


def test_matches_e3nn_grid_product(getkey):
    lmax = 3
    x, y = _pair(getkey, lmax, lmax)
    rb, ra = se.s2grid_resolution(lmax, lmax)
    irreps = e3nn.s2_irreps(lmax)
    with e3nn_context():
        fx = e3nn.to_s2grid(e3nn.IrrepsArray(irreps, x), rb, ra, quadrature="gausslegendre")
        fy = e3nn.to_s2grid(e3nn.IrrepsArray(irreps, y), rb, ra, quadrature="gausslegendre")
        ref = e3nn.from_s2grid(fx * fy, e3nn.s2_irreps(2 * lmax)).array
    out = se.gaunt_tensor_product(x, y, lmax_x=lmax, lmax_y=lmax)
    assert rel_err(out, ref) < 1e-13


def test_one_point_fewer_is_clearly_wrong(getkey):
    lmax = 3
    x, y = _pair(getkey, lmax, lmax)
    exact = se.gaunt_tensor_product(x, y, lmax_x=lmax, lmax_y=lmax)
    rb, ra = se.s2grid_resolution(lmax, lmax)
    fewer_beta = se.gaunt_tensor_product(x, y, lmax_x=lmax, lmax_y=lmax, res_beta=rb - 1)
    assert rel_err(fewer_beta, exact) > 1e-2
    # in alpha, the full output (res_alpha = 13) cannot lose a point without losing degree 6
    # itself (refused); a truncated output shows the aliasing: minimal res_alpha 9 for lout 2
    lo = 2
    exact = se.gaunt_tensor_product(x, y, lmax_x=lmax, lmax_y=lmax, lmax_out=lo)
    rb, ra = se.s2grid_resolution(lmax, lmax, lo)
    assert ra == 9
    fewer_alpha = se.gaunt_tensor_product(
        x, y, lmax_x=lmax, lmax_y=lmax, lmax_out=lo, res_alpha=ra - 1
    )
    assert rel_err(fewer_alpha, exact) > 1e-2
    with pytest.raises(ValueError, match="res_alpha"):
        se.gaunt_tensor_product(x, y, lmax_x=lmax, lmax_y=lmax, res_alpha=12)


def test_symmetric(getkey):
    x, y = _pair(getkey, 3, 3)
    for method in ("grid", "fourier"):
        a = se.gaunt_tensor_product(x, y, lmax_x=3, lmax_y=3, method=method)
        b = se.gaunt_tensor_product(y, x, lmax_x=3, lmax_y=3, method=method)
        assert np.abs(a - b).max() < 1e-14


def _path_counts(lmax, even_only):
    irreps = se.s2_irreps(lmax)
    _, paths, _ = se.cg_paths(irreps, irreps)
    if even_only:
        paths = [p for p in paths if (p.ir_x.l + p.ir_y.l + p.ir_out.l) % 2 == 0]
    return len(paths)


def test_path_counts_from_the_note():
    assert [_path_counts(L, False) for L in range(1, 7)] == [6, 19, 44, 85, 146, 231]
    assert [_path_counts(L, True) for L in range(1, 7)] == [5, 14, 30, 55, 91, 140]
    # the even paths are exactly those with natural-parity output: the Gaunt product's paths
    for L in range(1, 5):
        irreps = se.s2_irreps(L)
        _, paths, _ = se.cg_paths(irreps, irreps, filter_out=se.s2_irreps(2 * L))
        assert len(paths) == _path_counts(L, True)


# ---------------------------------------------------------------- equivariance


def _rotate(irreps, R, x):
    return x @ se.irreps_D(irreps, R).T


@pytest.mark.parametrize(
    "improper, L",
    [
        (False, 3),
        (True, 3),
        pytest.param(False, 6, marks=pytest.mark.slow),
        pytest.param(True, 6, marks=pytest.mark.slow),
    ],
)
def test_equivariance_of_every_product_float64(getkey, improper, L):
    R = se.random_rotation(getkey(), improper=improper, dtype=jnp.float64)
    s2 = se.s2_irreps(L)
    x, y = _pair(getkey, L, L, batch=(2,))
    xr, yr = _rotate(s2, R, x), _rotate(s2, R, y)
    for method in ("grid", "fourier"):
        out = se.gaunt_tensor_product(x, y, lmax_x=L, lmax_y=L, method=method)
        out_r = se.gaunt_tensor_product(xr, yr, lmax_x=L, lmax_y=L, method=method)
        assert np.abs(out_r - _rotate(se.s2_irreps(2 * L), R, out)).max() < 1e-12
        pw = se.gaunt_powers(x, 3, lmax=L, method=method)
        pw_r = se.gaunt_powers(xr, 3, lmax=L, method=method)
        assert np.abs(pw_r - _rotate(s2, R, pw)).max() < 1e-11
    ix, iy = "2x0e+1o+2x2e", "1o+1e+0o"
    a = jax.random.normal(getkey(), (2, se.Irreps(ix).dim))
    b = jax.random.normal(getkey(), (2, se.Irreps(iy).dim))
    for sparse in (False, True):
        out, irreps_out = se.cg_tensor_product(a, b, ix, iy, sparse=sparse)
        out_r, _ = se.cg_tensor_product(_rotate(ix, R, a), _rotate(iy, R, b), ix, iy, sparse=sparse)
        assert np.abs(out_r - _rotate(irreps_out, R, out)).max() < 1e-12
    io = "3x0e+2x1o+2x1e+0o"
    _, _, n = se.cg_paths(ix, iy, mode="uvw", irreps_out=io)
    w = jax.random.normal(getkey(), (n,))
    out, _ = se.cg_tensor_product(a, b, ix, iy, mode="uvw", weights=w, irreps_out=io)
    out_r, _ = se.cg_tensor_product(
        _rotate(ix, R, a), _rotate(iy, R, b), ix, iy, mode="uvw", weights=w, irreps_out=io
    )
    assert np.abs(out_r - _rotate(io, R, out)).max() < 1e-12
    # all parities: input signal 0 has irreps s2_irreps(L), signal 1 has p_val = -1
    odd = se.s2_irreps(L, p_val=-1)
    x2, y2 = _pair(getkey, L, L, batch=(2,))
    xs, ys = jnp.stack([x, x2], -2), jnp.stack([y, y2], -2)
    rot_in = lambda z: jnp.stack([_rotate(s2, R, z[..., 0, :]), _rotate(odd, R, z[..., 1, :])], -2)  # noqa: E731
    out = se.gaunt_tensor_product_all_parities(xs, ys, lmax_x=L, lmax_y=L)
    out_r = se.gaunt_tensor_product_all_parities(rot_in(xs), rot_in(ys), lmax_x=L, lmax_y=L)
    s2o, oddo = se.s2_irreps(2 * L), se.s2_irreps(2 * L, p_val=-1)
    expected = jnp.stack(
        [
            _rotate(s2o, R, out[..., 0, :]),
            _rotate(oddo, R, out[..., 1, :]),
            _rotate(oddo, R, out[..., 2, :]),
        ],
        -2,
    )
    assert np.abs(out_r - expected).max() < 1e-12


def test_equivariance_float32(getkey):
    R = se.random_rotation(getkey(), improper=True, dtype=jnp.float32)
    L = 3
    s2 = se.s2_irreps(L)
    x, y = _pair(getkey, L, L, batch=(4,), dtype=jnp.float32)
    D_in = se.irreps_D(s2, R)
    D_out = se.irreps_D(se.s2_irreps(2 * L), R)
    for method in ("grid", "fourier"):
        out = se.gaunt_tensor_product(x, y, lmax_x=L, lmax_y=L, method=method)
        assert out.dtype == jnp.float32
        out_r = se.gaunt_tensor_product(x @ D_in.T, y @ D_in.T, lmax_x=L, lmax_y=L, method=method)
        assert np.abs(out_r - out @ D_out.T).max() < 1e-4
    out, irreps_out = se.cg_tensor_product(x, y, s2, s2)
    out_r, _ = se.cg_tensor_product(x @ D_in.T, y @ D_in.T, s2, s2)
    assert out.dtype == jnp.float32
    assert np.abs(out_r - out @ se.irreps_D(irreps_out, R).T).max() < 1e-4


# ---------------------------------------------------------------- many-body powers


def test_powers_equal_repeated_products(getkey):
    L, nu = 2, 3
    x = jax.random.normal(getkey(), (2, (L + 1) ** 2))
    x2 = se.gaunt_tensor_product(x, x, lmax_x=L, lmax_y=L)
    x3 = se.gaunt_tensor_product(x2, x, lmax_x=2 * L, lmax_y=L, lmax_out=L)
    # lmax_out above a power's degree: its higher coefficients are zero
    lo = 5
    x2_full = se.gaunt_tensor_product(x, x, lmax_x=L, lmax_y=L, lmax_out=lo)
    for method, conv in (
        ("grid", "dft"),
        ("fourier", "dft"),
        ("fourier", "fft"),
        ("fourier", "direct"),
    ):
        p = se.gaunt_powers(x, nu, lmax=L, method=method, conv=conv)
        assert p.shape == (2, nu, (L + 1) ** 2)
        assert np.abs(p[:, 0] - x).max() < 1e-13
        assert rel_err(p[:, 1], x2[:, : (L + 1) ** 2]) < 1e-12
        assert rel_err(p[:, 2], x3) < 1e-12
        p = se.gaunt_powers(x, 2, lmax=L, lmax_out=lo, method=method, conv=conv)
        assert np.abs(p[:, 0, (L + 1) ** 2 :]).max() < 1e-13
        assert rel_err(p[:, 1], x2_full) < 1e-12, (method, conv)
    assert rel_err(se.gaunt_power(x, 3, lmax=L), x3) < 1e-12


# ---------------------------------------------------------------- transforms and errors


def test_transform_battery(getkey):
    L = 2
    x, y = _pair(getkey, L, L, batch=(3,))
    for method in ("grid", "fourier"):
        f = lambda a, b: se.gaunt_tensor_product(a, b, lmax_x=L, lmax_y=L, method=method)  # noqa: E731, B023
        assert np.allclose(jax.vmap(f)(x, y), f(x, y), rtol=1e-13, atol=1e-13)
        g = jax.grad(lambda a: jnp.sum(f(a, y) ** 2))(x)  # noqa: B023
        e = jnp.zeros_like(x).at[1, 3].set(1e-6)
        fd = (jnp.sum(f(x + e, y) ** 2) - jnp.sum(f(x - e, y) ** 2)) / 2e-6
        assert abs(float(g[1, 3] - fd)) < 1e-6 * max(1.0, abs(float(fd)))
    # channels before the last axis broadcast against a batch
    xc = jax.random.normal(getkey(), (3, 4, (L + 1) ** 2))
    out = se.gaunt_tensor_product(xc, y[:, None, :], lmax_x=L, lmax_y=L)
    assert out.shape == (3, 4, (2 * L + 1) ** 2)
    h = jax.jit(lambda a, b: se.cg_tensor_product(a, b, "0e+1o", "1o")[0])
    a = jax.random.normal(getkey(), (5, 4))
    b = jax.random.normal(getkey(), (5, 3))
    assert np.allclose(h(a, b), se.cg_tensor_product(a, b, "0e+1o", "1o")[0], atol=1e-14)
    assert np.allclose(jax.vmap(h)(a, b), h(a, b), atol=1e-14)


def test_bad_input():
    x = jnp.ones((9,))
    with pytest.raises(ValueError, match="components"):
        se.gaunt_tensor_product(x, x, lmax_x=3, lmax_y=2)
    with pytest.raises(ValueError, match="method"):
        se.gaunt_tensor_product(x, x, lmax_x=2, lmax_y=2, method="lebedev")
    with pytest.raises(ValueError, match="odd"):
        se.gaunt_tensor_product(x, x, lmax_x=2, lmax_y=2, res_alpha=14, fft=True)
    with pytest.raises(ValueError, match="supported range"):
        se.gaunt_tensor_product(x, x, lmax_x=2, lmax_y=2, lmax_out=999)
    with pytest.raises(ValueError, match="dtype"):
        se.gaunt_tensor_product(x, x.astype(jnp.float32), lmax_x=2, lmax_y=2)
    with pytest.raises(ValueError, match="irreps_x"):
        se.cg_tensor_product(jnp.ones((5,)), jnp.ones((3,)), "0e+1o", "1o")
    with pytest.raises(ValueError, match="weights"):
        se.cg_tensor_product(
            jnp.ones((4,)), jnp.ones((3,)), "0e+1o", "1o", mode="uvw", irreps_out="1e"
        )
    with pytest.raises(ValueError, match="irreps_out"):
        se.cg_tensor_product(jnp.ones((4,)), jnp.ones((3,)), "0e+1o", "1o", mode="uvw")
    with pytest.raises(ValueError, match="conv"):
        se.gaunt_tensor_product(x, x, lmax_x=2, lmax_y=2, method="fourier", conv="fast")
    with pytest.raises(ValueError, match="conv"):
        se.gaunt_tensor_product(x, x, lmax_x=2, lmax_y=2, conv="fft")  # grid has no conv
    with pytest.raises(ValueError, match="nu"):
        se.gaunt_powers(x, 0, lmax=2)


def test_output_degrees_beyond_the_product_are_zero_on_both_routes(getkey):
    # lmax_out above lmax_x + lmax_y: the default grid must hold the extra (zero) degrees,
    # as the Fourier route does, instead of asking for a res_alpha the user never set.
    x, y = _pair(getkey, 4, 3)
    grid = se.gaunt_tensor_product(x, y, lmax_x=4, lmax_y=3, lmax_out=9)
    fourier = se.gaunt_tensor_product(x, y, lmax_x=4, lmax_y=3, lmax_out=9, method="fourier")
    assert rel_err(grid, fourier) < 1e-12
    grid = np.asarray(grid)
    assert np.abs(grid[..., 64:]).max() <= 1e-12 * np.abs(grid).max()  # degrees 8 and 9
