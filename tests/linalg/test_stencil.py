"""Grid operators against matrices assembled cell by cell, independently of the stencil code."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from sciml.linalg import (
    EMPTY,
    FLUID,
    SOLID,
    as_operator,
    convection_diffusion,
    diffusion,
    helmholtz,
    poisson,
)
from sciml.problems import fluid_pressure as _fluid_pressure


def assemble_laplacian(shape, spacing, bc, mask, shift):
    """The cell-centred −Δ + shift, one cell and one face at a time."""
    ndim = len(shape)
    mask = np.full(shape, FLUID) if mask is None else np.asarray(mask)
    index = np.arange(np.prod(shape)).reshape(shape)
    A = np.zeros((index.size, index.size))
    for cell in itertools.product(*[range(s) for s in shape]):
        if mask[cell] != FLUID:
            continue
        i = index[cell]
        A[i, i] += shift
        for axis in range(ndim):
            w = 1.0 / spacing[axis] ** 2
            for side in (-1, 1):
                nb = list(cell)
                nb[axis] += side
                if not 0 <= nb[axis] < shape[axis]:
                    if bc[axis][0 if side < 0 else 1] == "dirichlet":
                        A[i, i] += w
                    continue
                kind = mask[tuple(nb)]
                if kind == FLUID:
                    A[i, i] += w
                    A[i, index[tuple(nb)]] -= w
                elif kind == EMPTY:
                    A[i, i] += w
    return A


CASES = [
    ((6,), "dirichlet", None),
    ((5, 7), "dirichlet", None),
    ((5, 7), "neumann", None),
    ((6, 5), (("dirichlet", "neumann"), "neumann"), None),
    ((4, 5, 3), "dirichlet", None),
    ((4, 5, 3), ("neumann", "dirichlet", ("neumann", "dirichlet")), None),
    ((7, 6), "neumann", "random"),
    ((7, 6), "dirichlet", "random"),
    ((4, 4, 5), "neumann", "random"),
]


@pytest.mark.parametrize("shape,bc,mask", CASES)
def test_laplacian_matches_cellwise_assembly(shape, bc, mask):
    rng = np.random.default_rng(len(shape) + len(str(bc)))
    if mask == "random":
        mask = rng.choice([FLUID, FLUID, SOLID, EMPTY], size=shape)
    spacing = tuple(0.5 + 0.25 * d for d in range(len(shape)))
    op = poisson(shape, spacing=spacing, bc=bc, mask=mask, shift=0.3)
    A = assemble_laplacian(shape, spacing, op.bc, mask, 0.3)
    x = rng.standard_normal(op.n)
    np.testing.assert_allclose(op.mv(jnp.asarray(x)), A @ x, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(op.to_scipy().toarray(), A, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(op.diagonal(), np.diag(A), rtol=1e-14)
    np.testing.assert_allclose(op.to_scipy().toarray(), op.to_scipy().toarray().T)


def test_boolean_mask_means_fluid_or_solid():
    mask = np.ones((5, 5), bool)
    mask[2, 2] = False
    op = poisson((5, 5), mask=mask)
    assert int(op.mask[2, 2]) == SOLID and int(op.mask[0, 0]) == FLUID


def test_integer_stencil_and_helmholtz_shift():
    op = poisson((10, 10))
    A = op.to_scipy().toarray()
    assert A[0, 0] == 4 and A[0, 1] == -1 and A[0, 10] == -1
    h = helmholtz((8, 8), 10.0)
    np.testing.assert_allclose(
        h.to_scipy().toarray(),
        poisson((8, 8), spacing=1 / 8).to_scipy().toarray() - 100 * np.eye(64),
        atol=1e-12,
    )
    # Indefinite: eigenvalues of both signs.
    eig = np.linalg.eigvalsh(h.to_scipy().toarray())
    assert eig[0] < 0 < eig[-1]


def assemble_diffusion(a, spacing):
    s = a.shape
    inner = tuple(k - 2 for k in s)
    index = np.arange(np.prod(inner)).reshape(inner)
    A = np.zeros((index.size, index.size))
    for cell in itertools.product(*[range(k) for k in inner]):
        node = tuple(c + 1 for c in cell)
        i = index[cell]
        for axis in range(a.ndim):
            for side in (-1, 1):
                nb = list(node)
                nb[axis] += side
                face = 0.5 * (a[node] + a[tuple(nb)]) / spacing[axis] ** 2
                A[i, i] += face
                inner_nb = tuple(c - 1 for c in nb)
                if all(0 <= c < k for c, k in zip(inner_nb, inner, strict=True)):
                    A[i, index[inner_nb]] -= face
    return A


@pytest.mark.parametrize("s", [(6, 6), (5, 7), (4, 5, 4)])
def test_diffusion_matches_cellwise_assembly(s):
    rng = np.random.default_rng(1)
    a = np.exp(rng.standard_normal(s))
    op = diffusion(a)
    A = assemble_diffusion(a, [1 / (k - 1) for k in s])
    x = rng.standard_normal(op.n)
    np.testing.assert_allclose(op.mv(jnp.asarray(x)), A @ x, rtol=1e-12)
    np.testing.assert_allclose(op.to_scipy().toarray(), A, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(A, A.T)
    assert np.linalg.eigvalsh(A)[0] > 0


@pytest.mark.parametrize("scheme", ["central", "upwind"])
def test_convection_diffusion_matches_cellwise_assembly(scheme):
    shape, nu, w = (5, 6), 0.3, (2.0, -1.5)
    op = convection_diffusion(shape, velocity=w, viscosity=nu, scheme=scheme)
    h = [1 / (k + 1) for k in shape]
    index = np.arange(30).reshape(shape)
    A = np.zeros((30, 30))
    for cell in itertools.product(range(5), range(6)):
        i = index[cell]
        for axis in range(2):
            d = nu / h[axis] ** 2
            if scheme == "central":
                coeffs = {-1: -d - w[axis] / (2 * h[axis]), 1: -d + w[axis] / (2 * h[axis])}
                A[i, i] += 2 * d
            else:
                up = w[axis] > 0
                coeffs = {
                    -1: -d - (w[axis] / h[axis] if up else 0),
                    1: -d + (0 if up else w[axis] / h[axis]),
                }
                A[i, i] += 2 * d + abs(w[axis]) / h[axis]
            for side in (-1, 1):
                nb = list(cell)
                nb[axis] += side
                if 0 <= nb[axis] < shape[axis]:
                    A[i, index[tuple(nb)]] += coeffs[side]
    x = np.random.default_rng(2).standard_normal(30)
    np.testing.assert_allclose(op.mv(jnp.asarray(x)), A @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.to_scipy().toarray(), A, atol=1e-12)
    assert not np.allclose(A, A.T)


OPERATORS = {
    "poisson-mask": lambda dt: poisson((6, 5), bc="neumann", mask=np.eye(6, 5) * 0 + 1, dtype=dt),
    "diffusion": lambda dt: diffusion(jnp.exp(jnp.linspace(0, 1, 36, dtype=dt).reshape(6, 6))),
    "convection": lambda dt: convection_diffusion((5, 5), velocity=(1.0, 2.0), dtype=dt),
}


@pytest.mark.parametrize("name", OPERATORS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_transform_battery(name, dtype):
    op = OPERATORS[name](dtype)
    x = jax.random.normal(jax.random.key(0), (3, op.n), dtype)
    eager = jnp.stack([op.mv(xi) for xi in x])
    assert eager.dtype == dtype and op.diagonal().dtype == dtype
    np.testing.assert_allclose(jax.jit(lambda o, v: o.mv(v))(op, x[0]), eager[0], rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(op.mv)(x), eager, rtol=1e-6)
    # grad of the quadratic form xᵀAx is (A + Aᵀ)x.
    A = op.as_matrix()
    g = jax.grad(lambda v: v @ op.mv(v))(x[0])
    np.testing.assert_allclose(g, (A + A.T) @ x[0], rtol=1e-5 if dtype == jnp.float32 else 1e-12)


def test_no_retrace_when_shift_changes():
    traces = []

    @jax.jit
    def apply(op, x):
        traces.append(1)
        return op.mv(x)

    x = jnp.ones(16)
    apply(poisson((4, 4), shift=0.1), x)
    apply(poisson((4, 4), shift=0.7), x)
    assert len(traces) == 1


def test_as_operator_accepts_every_representation():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((7, 7))
    x = rng.standard_normal(7)
    Aj = jnp.asarray(A)
    from jax.experimental import sparse as jsparse

    for rep in (Aj, A, jsparse.BCOO.fromdense(Aj), sp.csr_array(A), lambda v: Aj @ v):
        op = as_operator(rep, like=jnp.asarray(x))
        np.testing.assert_allclose(op.mv(jnp.asarray(x)), A @ x, rtol=1e-12)
        assert op.n == 7
    np.testing.assert_allclose(as_operator(sp.csr_array(A)).diagonal(), np.diag(A))
    np.testing.assert_allclose(as_operator(sp.csr_array(A)).to_scipy().toarray(), A)


def test_as_operator_accepts_lineax():
    lx = pytest.importorskip("lineax")
    A = jnp.asarray(np.random.default_rng(4).standard_normal((5, 5)))
    op = as_operator(lx.MatrixLinearOperator(A))
    np.testing.assert_allclose(op.mv(jnp.ones(5)), A @ jnp.ones(5))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: as_operator(jnp.ones((3, 4))), "square"),
        (lambda: as_operator("matrix"), "linear operator"),
        (lambda: as_operator(lambda v: v), "size"),
        (lambda: poisson((4, -1)), "at least"),
        (lambda: poisson((4, 4), bc="periodic"), "dirichlet"),
        (lambda: poisson((4, 4), mask=np.ones((3, 4))), "mask shape"),
        (lambda: poisson((4, 4), spacing=-1.0), "spacing"),
        (lambda: diffusion(np.ones((2, 5))), "at least"),
        (lambda: convection_diffusion((4, 4), velocity=(1.0,)), "velocity"),
        (lambda: poisson((300, 300)).as_matrix(), "matrix-free"),  # 8.1e9 entries
        (lambda: poisson((4, 4), mask=np.full((4, 4), 7)), "SOLID"),
        (lambda: diffusion(-np.ones((5, 5))), "positive"),
        (lambda: _fluid_pressure(jax.random.key(0), (16,)), "2-D or 3-D"),
        (lambda: _fluid_pressure(jax.random.key(0), (16, 16), n_obstacles=-1), "n_obstacles"),
    ],
)
def test_bad_input_names_the_fix(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_float64_without_x64_is_an_error():
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="x64"):
            poisson((4, 4), dtype=jnp.float64)


def test_bound_mv_and_closures_are_operators():
    op = poisson((4, 4))
    assert as_operator(op.mv) is op
    x = jnp.arange(16.0)
    closure = as_operator(lambda v: op.mv(v) * 2.0, like=x)
    np.testing.assert_allclose(jax.jit(lambda o, v: o.mv(v))(closure, x), 2 * op.mv(x))
