"""Small float64 test systems shared by the solver tests, built once per process."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from sciml import linalg, problems
from sciml.solvers import cg, gmres

# Jitted entry points with the operator as a (pytree) argument: one compilation per problem
# structure, reused across tolerances (traced), preconditioners of the same type and tests.
# The wrappers always pass every keyword, so that equal calls hit jit's cache whichever
# keywords a test spells out. Unlike the library, they default to throw=False.
_jit_cg = jax.jit(cg, static_argnames=("max_steps", "throw"))
_jit_gmres = jax.jit(gmres, static_argnames=("restart", "max_steps", "throw"))


def jit_cg(A, b, *, x0=None, rtol=1e-5, atol=0.0, max_steps=None, M=None, throw=False):
    return _jit_cg(A, b, x0=x0, rtol=rtol, atol=atol, max_steps=max_steps, M=M, throw=throw)


def jit_gmres(
    A, b, *, x0=None, rtol=1e-5, atol=0.0, restart=40, max_steps=None, M=None, throw=False
):
    return _jit_gmres(
        A,
        b,
        x0=x0,
        rtol=rtol,
        atol=atol,
        restart=restart,
        max_steps=max_steps,
        M=M,
        throw=throw,
    )


@functools.cache
def poisson2d():
    return problems.poisson_problem(jax.random.key(1), (24, 24), dtype=jnp.float64)


@functools.cache
def poisson3d():
    return problems.poisson_problem(jax.random.key(2), (9, 9, 9), dtype=jnp.float64)


@functools.cache
def _darcy_family(coefficient):
    return problems.darcy(jax.random.key(3), 1, 26, coefficient=coefficient, dtype=jnp.float64)


def darcy_lognormal():
    return _darcy_family("lognormal").problem(0)


def darcy_piecewise():
    return _darcy_family("piecewise").problem(0)


@functools.cache
def masked_neumann():
    """A pressure-like system: Neumann walls, a solid box obstacle (zero rows), singular.

    The right-hand side is `A @ v` for a random `v`, so it lies in the range (consistent).
    """
    mask = np.full((20, 20), linalg.FLUID, np.int8)
    mask[6:11, 8:14] = linalg.SOLID
    op = linalg.poisson((20, 20), bc="neumann", mask=jnp.asarray(mask), dtype=jnp.float64)
    v = jax.random.normal(jax.random.key(5), (op.n,), jnp.float64)
    return problems.LinearProblem(op, op.mv(v), name="masked-neumann")


@functools.cache
def convection_diffusion():
    return problems.convection_diffusion_problem(
        jax.random.key(6), (20, 20), speed=30.0, dtype=jnp.float64
    )


@functools.cache
def helmholtz():
    # κ = 12 on a 16×16 grid: a few negative eigenvalues, so the system is indefinite.
    return problems.helmholtz_problem(jax.random.key(7), (16, 16), kappa=12.0, dtype=jnp.float64)


@functools.cache
def csr(builder) -> sp.csr_array:
    """The SciPy matrix of a problem (cached: `to_scipy` of a stencil costs n products)."""
    return sp.csr_array(builder().operator.to_scipy())


def small_spd(n=30, seed=0, dtype=jnp.float64):
    # Built with NumPy: eager JAX ops would each compile once per shape.
    q = np.random.default_rng(seed).standard_normal((n, n))
    return jnp.asarray(q @ q.T / n + np.eye(n), dtype=dtype)


SPD_PROBLEMS = {
    "poisson2d": poisson2d,
    "poisson3d": poisson3d,
    "darcy-lognormal": darcy_lognormal,
    "darcy-piecewise": darcy_piecewise,
}
