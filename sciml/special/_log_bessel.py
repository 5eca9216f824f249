"""log I_v(x), log K_v(x), their exponentially scaled forms and the ratio I_{v+1}/I_v.

Every value is computed on the log scale, so nothing overflows or underflows at any order or
argument; the region of each element is chosen with `jnp.where` (never a Python branch on a
traced value), and each branch receives harmless inputs where it is not selected, so gradients
never pick up NaN from a branch that is not taken.

Regions (s = √(v² + x²), S0 = 20):

- s ≥ S0, both functions: Olver's uniform (Debye) expansion DLMF 10.41.3–4, written in powers
  of 1/s. With p = v/s and q = p², U_k(p)/v^k = P_k(q)/s^k, so the same formula covers large
  orders (p → 1), large arguments (p → 0, where it reduces to the Hankel expansion 10.40) and
  everything between, including v = 0. The leading factor uses
  vη = s − v·asinh(v/x), and e.g. log I_v(x) − x = v²/(s + x) − v·asinh(v/x) − ½log(2πs)
  + log Σ P_k(q)/s^k, which has no cancellation. For log I_v and log K_v themselves the
  exponent vη is a difference of terms of size s that cancel near x ≈ 0.6627·v (where f ≈ 1);
  `_v_eta` computes it there from the addition theorem of asinh around the zero of η, with an
  exact x − z0·v (otherwise the error would be ≈ eps·s, 1e-10 at v = 1e5). 18 terms in
  float64 (7 in float32) leave a truncation below 1e-16 (1e-10) of max(1, |log f|) on the
  whole boundary s = S0 (measured on the exact polynomials; see `_tables.py`).
- s < S0, log I: the power series 10.25.2 with terms built by their ratio
  t_k/t_{k−1} = (x²/4)/(k(k + v)) (36 terms in float64, 28 in float32), summed as
  log1p(Σ_{k≥1} t_k) so that log I_0(x) ≈ x²/4 keeps full relative accuracy as x → 0. log Γ(v+1)
  is formed as Γ(1 + μ)·Π(μ + j) with μ = v − round(v) and the Taylor series of 1/Γ(1 + μ),
  which is more accurate than XLA's lgamma (2e-14 absolute on this range).
- s < S0, log K: K_μ and K_{μ+1} with |μ| ≤ ½ — Temme's series (Temme 1975) for x ≤ 2, and for
  x > 2 the trapezoid rule on the even, entire integrand e^{−x cosh t} cosh(μt) over [0, T(x)]
  (18 nodes in float64, 8 in float32; one exp per node; spectrally accurate, 7e-16 measured) —
  then forward recurrence in the order up to v (stable for K), carried as
  ρ_j = x·K_{μ+j+1}/K_{μ+j}, which stays between x and 2s, so the logs never overflow even in
  float32. The paper integrates K_v itself (~64 nodes, three transcendental functions each);
  restricting the quadrature to |μ| ≤ ½ and x > 2, where the integrand is a narrow bump at t = 0,
  is what makes a handful of nodes enough. (Temme's continued fraction CF2 would need ~80 Steed
  iterations at x = 2.)

Derivatives (custom JVP):

- d/dx: d/dx log I_v = v/x + I_{v+1}/I_v and d/dx log K_v = v/x − K_{v+1}/K_v, with the ratios
  computed directly — from the two series sums (I), from the recurrence (K), and in the Debye
  region from the derivative expansion V_k (DLMF 10.41.5) written as
  I_{v+1}/I_v = x/(s + v) − (x/s)·ΣQ_k/s^k / ΣP_k/s^k (and the like for K), which has no
  cancellation (subtracting two log-Bessel values loses up to 1e-8).
- d/dv: there is no closed form; the v-tangent is forward-mode autodiff through the selected
  branch (series, Temme + recurrence, or the Debye expansion, all smooth in v). Measured
  against 50-digit quadrature references, see `tests/special/`.
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, ArrayLike, Float

from .._core import check_dtype
from ._tables import debye_tables, eta_zero, rgamma_taylor

__all__ = ["iv_ratio", "kv_ratio", "log_iv", "log_ive", "log_kv", "log_kve"]

# Debye region: s = √(v² + x²) ≥ DEBYE_THRESHOLD.
DEBYE_THRESHOLD = 20.0
# Temme's series below this argument, the continued fraction above.
TEMME_SERIES_MAX_X = 2.0
# The largest integer part of v that the K recurrence must walk (v < DEBYE_THRESHOLD there).
_RECURRENCE_STEPS = int(DEBYE_THRESHOLD)


class _Terms(NamedTuple):
    series: int  # terms of the I power series after the first
    debye: int  # Debye terms, k = 0 … debye − 1
    temme_series: int  # Temme series terms after the first
    trapezoid: tuple[int, float]  # K_μ for x > 2: nodes after t = 0, decay L of the last weight
    rgamma: int  # Taylor terms of 1/Γ(1 + μ)


# Term counts per dtype: each one is the smallest that keeps its truncation well below the
# dtype's resolution over the region where it is used (checked against the references).
_TERMS = {
    np.dtype(np.float64): _Terms(
        series=36, debye=18, temme_series=16, trapezoid=(18, 40.0), rgamma=20
    ),
    np.dtype(np.float32): _Terms(
        series=27, debye=7, temme_series=9, trapezoid=(8, 20.0), rgamma=12
    ),
}


def _terms(dtype) -> _Terms:
    try:
        return _TERMS[np.dtype(dtype)]
    except KeyError:
        raise ValueError(
            f"log-Bessel functions are implemented for float32 and float64, got {dtype}; cast "
            f"the inputs, e.g. `x.astype(jnp.float32)`."
        ) from None


# --------------------------------------------------------------------------------------------
# Input handling


def _float_dtype(v: Array, x: Array) -> np.dtype:
    strong, weak = [], []
    for a, name in ((v, "v"), (x, "x")):
        if jnp.issubdtype(a.dtype, jnp.complexfloating):
            raise ValueError(
                f"`{name}` is complex ({a.dtype}); the log-Bessel functions take real orders "
                f"and arguments. Pass the real part, e.g. `{name}.real`."
            )
        if jnp.issubdtype(a.dtype, jnp.floating):
            (weak if getattr(a, "weak_type", False) else strong).append(np.dtype(a.dtype))
        elif not (jnp.issubdtype(a.dtype, jnp.integer) or a.dtype == jnp.bool_):
            raise ValueError(f"`{name}` must be a real number array, got dtype {a.dtype}.")
    if strong:
        dtype = functools.reduce(jnp.promote_types, strong)
    else:
        # Integers and Python floats compute in JAX's default float (float64 only with x64).
        dtype = jnp.asarray(0.0).dtype
    return np.dtype(dtype)


def _check_x64(v: ArrayLike, x: ArrayLike) -> None:
    """Refuse float64 input while x64 is off (it would silently become float32 under jit)."""
    for raw, name in ((v, "v"), (x, "x")):
        if hasattr(raw, "dtype") and np.dtype(raw.dtype) == np.float64:
            check_dtype(raw.dtype, name=name)


def _prepare(v: ArrayLike, x: ArrayLike) -> tuple[Array, Array]:
    v, x = jnp.asarray(v), jnp.asarray(x)
    dtype = _float_dtype(v, x)
    _terms(dtype)
    v, x = jnp.broadcast_arrays(v.astype(dtype), x.astype(dtype))
    return v, x


# --------------------------------------------------------------------------------------------
# Small numerical helpers


def _horner(coefs, z):
    """Σ coefs[i] z^i for Python-float coefficients (lowest power first)."""
    acc = jnp.full_like(z, coefs[-1])
    for c in coefs[-2::-1]:
        acc = acc * z + c
    return acc


def _hypot(a, b):
    big, small = jnp.maximum(a, b), jnp.minimum(a, b)
    ratio = small / jnp.where(big > 0, big, 1)
    return big * jnp.sqrt(1 + ratio * ratio)


def _rgamma_parts(mu, n_terms):
    """Γ1(μ), Γ2(μ) of Temme's method: 1/Γ(1 ± μ) = Γ2(μ) ∓ μΓ1(μ), |μ| ≤ ½."""
    coefs = rgamma_taylor(n_terms)
    mu2 = mu * mu
    gamma2 = _horner(coefs[0::2], mu2)
    gamma1 = -_horner(coefs[1::2], mu2)
    return gamma1, gamma2


def _log_gamma1p(v, n_terms):
    """log Γ(1 + v) for 0 ≤ v ≤ DEBYE_THRESHOLD (the series region)."""
    n = jnp.round(v)
    mu = v - n
    gamma1, gamma2 = _rgamma_parts(mu, n_terms)
    product = jnp.ones_like(v)
    for j in range(1, _RECURRENCE_STEPS + 1):
        product = product * jnp.where(j <= n, mu + j, 1)
    return jnp.log(product / (gamma2 - mu * gamma1))


def _sinhc(z):
    """sinh(z)/z, accurate (and smoothly differentiable) at z = 0."""
    small = jnp.abs(z) < 0.1
    zs = jnp.where(small, 1.0, z)
    z2 = z * z
    series = 1 + z2 / 6 * (1 + z2 / 20 * (1 + z2 / 42 * (1 + z2 / 72)))
    return jnp.where(small, series, jnp.sinh(zs) / zs)


def _x_over_sin(z):
    """z/sin(z) for |z| ≤ π/2, accurate at z = 0."""
    small = jnp.abs(z) < 0.01
    zs = jnp.where(small, 1.0, z)
    z2 = z * z
    series = 1 + z2 * (1 / 6 + z2 * (7 / 360 + z2 * (31 / 15120)))
    return jnp.where(small, series, zs / jnp.sin(zs))


# --------------------------------------------------------------------------------------------
# The branches. Each takes v ≥ 0 and x > 0 inside its own region and returns
# (log of the exponentially scaled function, ratio or None).


def _series_tail(v, y, n_terms: int, renormalise: int):
    """T = Σ_{k≥1} t_k, t_k = Π_{j≤k} y/(j(j + v)), nested as 1 + c_k(1 + c_{k+1}(…)).

    The nested sum is carried as a fraction num/den, so a term costs no division (a chain of
    divisions made the series the slowest part of log I); the fraction is renormalised every
    `renormalise` terms, often enough that neither part overflows (float32 included).
    """
    num, den = jnp.ones_like(y), jnp.ones_like(y)
    for i, k in enumerate(range(n_terms, 1, -1)):
        weight = k * (k + v)
        num, den = den * weight + y * num, den * weight
        if i % renormalise == renormalise - 1:
            num, den = num / den, jnp.ones_like(y)
    return y * num / ((1 + v) * den)


def _series_i(v, x, terms: _Terms, need_ratio: bool):
    y = x * x / 4
    renormalise = 12 if x.dtype == np.float64 else 4
    tail = _series_tail(v, y, terms.series, renormalise)
    log_i = v * jnp.log(x / 2) - _log_gamma1p(v, terms.rgamma) + jnp.log1p(tail)
    ratio = None
    if need_ratio:
        # I_{v+1}/I_v = (x/2)/(v + 1) · S(v + 1)/S(v), S(v) = 1 + T(v): both sums positive.
        tail_next = _series_tail(v + 1, y, terms.series, renormalise)
        ratio = x / (2 * (v + 1)) * (1 + tail_next) / (1 + tail)
    return log_i, ratio


def _debye_sums(q, t, coef_table, n_terms):
    """Σ_{k=1}^{n−1} C_k(q) t^k by nested Horner in t."""
    acc = jnp.zeros_like(q)
    for k in range(n_terms - 1, 0, -1):
        acc = (acc + _horner(coef_table[k], q)) * t
    return acc


def _split_high(v):
    """v with the low half of its mantissa cleared (27 of 52 bits, 12 of 23), no derivative.

    Bit masking, not Veltkamp's splitting, which FMA contraction by the compiler would break.
    """
    v = jax.lax.stop_gradient(v)
    int_type, low_bits = (jnp.int64, 27) if v.dtype == np.float64 else (jnp.int32, 12)
    bits = jax.lax.bitcast_convert_type(v, int_type)
    return jax.lax.bitcast_convert_type(bits & ~((1 << low_bits) - 1), v.dtype)


def _v_eta(v, x, s, p):
    """v·η(x/v) = s − v·asinh(v/x) (Debye's exponent) as big + rest, cancellation-free.

    `big` is x where x > 2v (added last by the caller, so that log f ≈ ±x rounds well) and 0
    elsewhere.

    Near z0 = 0.6627… (η(z0) = 0; there I_v(x) and K_v(x) are close to 1 and s·eps, the
    rounding of the two terms of size s, would be the whole error), the addition theorem
    asinh(a) − asinh(b) = asinh(a√(1 + b²) − b√(1 + a²)) with b = 1/z0 gives, with A = √(1 + z0²),

        v·η = v·η(z0) + g + v·asinh(g/(z0·x)),   g = s − A·v = (x − z0·v)(x + z0·v)/(s + A·v),

    where g and the asinh term have the same sign (nothing cancels) and x − z0·v is computed
    exactly: z0 and v are split into halves whose products are exact (`_split_high`). z0 is the
    dtype's number nearest the zero and η(z0) (≲ one ulp) is a 50-digit constant, so the
    identity is exact. It is used for v/4 ≤ x ≤ 2v; outside, where the two terms differ by at
    least a factor 2, the plain forms x + (v²/(s + x) − v·asinh(v/x)) (x > 2v) and
    s − v·log((v + s)/x) (x < v/4) are as accurate and round x ≫ v more often correctly.
    """
    zero = eta_zero(np.dtype(x.dtype).name)
    above = x > 2 * v
    use_zero_form = (x >= 0.25 * v) & ~above
    x_z = jnp.where(use_zero_form, x, s)  # any positive value where the form is not used
    v_high = _split_high(v)
    v_low = v - v_high
    gap = x_z - zero.z0_high * v_high  # exact near z0 (Sterbenz)
    gap = gap - zero.z0_high * v_low
    gap = gap - zero.z0_low * v_high
    gap = gap - zero.z0_low * v_low  # x − z0·v
    # y = g/(z0·x) and, for x > 2v, v/x: one division for both
    z0_x = zero.z0 * x_z
    numerator = gap * (x_z * (1 / s) + zero.z0 * p)
    denominator = (1 + zero.sqrt1p * p) * z0_x
    y = jnp.where(above, v, numerator) / jnp.where(above, x, denominator)
    asinh = jnp.arcsinh(y)
    near_zero_form = v * zero.eta_at_z0 + y * z0_x + v * asinh
    above_form = v * v / (s + x) - v * asinh
    x_o = jnp.where(use_zero_form | above, 1.0, x)
    below_form = s - v * (jnp.log(v + s) - jnp.log(x_o))
    rest = jnp.where(above, above_form, jnp.where(use_zero_form, near_zero_form, below_form))
    return jnp.where(above, x, 0.0), rest


def _debye(v, x, kind: str, scaled: bool, terms: _Terms, need_ratio: bool):
    s = _hypot(v, x)
    p = v / s
    q = p * p
    t = 1 / s if kind == "i" else -1 / s
    p_table, q_table = debye_tables(terms.debye)
    correction = _debye_sums(q, t, p_table, terms.debye)
    if scaled:
        # v·η − x = v²/(s + x) − v·asinh(v/x): the two terms differ by at least a factor 2.
        # v·asinh(v/x) = v·log((v + s)/x); the two forms are accurate for v ≤ x and v > x.
        below = v <= x
        asinh_small = jnp.arcsinh(jnp.where(below, v / x, 1.0))
        asinh_large = jnp.log(jnp.where(below, 2.0, v + s)) - jnp.log(jnp.where(below, 1.0, x))
        v_asinh = v * jnp.where(below, asinh_small, asinh_large)
        big, exponent = 0.0, v * v / (s + x) - v_asinh
    else:
        big, exponent = _v_eta(v, x, s, p)
    if kind == "i":
        log_f = big + (exponent - 0.5 * jnp.log(2 * math.pi * s) + jnp.log1p(correction))
    else:
        log_f = -big + (-exponent + 0.5 * jnp.log(math.pi / (2 * s)) + jnp.log1p(correction))
    ratio = None
    if need_ratio:
        derivative_sum = _debye_sums(q, t, q_table, terms.debye)
        tail = x / s * derivative_sum / (1 + correction)
        ratio = x / (s + v) - tail if kind == "i" else (v + s) / x - tail
    return log_f, ratio


def _temme_k(v, x, terms: _Terms, need_ratio: bool):
    """log(K_v(x)e^x) and K_{v+1}/K_v for 0 ≤ v < DEBYE_THRESHOLD by Temme's method."""
    n = jnp.round(v)
    mu = v - n
    mu2 = mu * mu
    gamma1, gamma2 = _rgamma_parts(mu, terms.rgamma)
    use_series = x <= TEMME_SERIES_MAX_X

    # Series (x ≤ 2): K_μ = Σ c_k f_k, x·K_{μ+1}/K_μ = 2 Σ c_k (p_k − k f_k) / Σ c_k f_k.
    xs = jnp.where(use_series, x, 1.0)
    log_2_over_x = jnp.log(2 / xs)
    sigma = mu * log_2_over_x
    f = _x_over_sin(math.pi * mu) * (
        jnp.cosh(sigma) * gamma1 + _sinhc(sigma) * log_2_over_x * gamma2
    )
    p = 0.5 * jnp.exp(sigma) / (gamma2 - mu * gamma1)
    q = 0.5 * jnp.exp(-sigma) / (gamma2 + mu * gamma1)
    c = jnp.ones_like(x)
    y = xs * xs / 4
    sum_k = f
    sum_k1 = p
    for k in range(1, terms.temme_series + 1):
        # one division per term: 1/(k ∓ μ) = (k ± μ)/(k² − μ²)
        inv = 1 / (k * k - mu2)
        f = (k * f + p + q) * inv
        p = p * (k + mu) * inv
        q = q * (k - mu) * inv
        c = c * y * (1 / k)
        sum_k = sum_k + c * f
        sum_k1 = sum_k1 + c * (p - k * f)
    log_kve_series = jnp.log(sum_k) + xs
    rho_series = 2 * sum_k1 / sum_k

    # Trapezoid rule (x > 2): K_μ(x)e^x = ∫_0^∞ e^{−x(cosh t − 1)} cosh(μt) dt. The integrand is
    # even in t and entire, so the rule with nodes jh is spectrally accurate; the nodes span
    # [0, T] with x(cosh T − 1) = L, where the weight has dropped below e^{−L}. All node values
    # come from powers of e^{h/2} and e^{μh}: one exp per node, nothing to cancel
    # (cosh t − 1 = (e^{t/2} − e^{−t/2})²/2).
    xc = jnp.where(use_series, 3.0, x)
    n_nodes, decay = terms.trapezoid
    h = jnp.arccosh(1 + decay / xc) / n_nodes
    half_step, half_step_inv = jnp.exp(h / 2), jnp.exp(-h / 2)
    order_step, order_step_inv = jnp.exp(mu * h), jnp.exp(-mu * h)
    q, q_inv = jnp.ones_like(x), jnp.ones_like(x)
    r, r_inv = jnp.ones_like(x), jnp.ones_like(x)
    sum_k = jnp.full_like(x, 0.5)
    sum_k1 = jnp.full_like(x, 0.5)
    for _ in range(n_nodes):
        q, q_inv = q * half_step, q_inv * half_step_inv
        r, r_inv = r * order_step, r_inv * order_step_inv
        weight = jnp.exp(-xc * 0.5 * (q - q_inv) ** 2)
        sum_k = sum_k + weight * 0.5 * (r + r_inv)
        sum_k1 = sum_k1 + weight * 0.5 * (r * q * q + r_inv * q_inv * q_inv)
    log_kve_cf = jnp.log(h * sum_k)
    rho_cf = xc * sum_k1 / sum_k

    log_kve = jnp.where(use_series, log_kve_series, log_kve_cf)
    rho0 = jnp.where(use_series, rho_series, rho_cf)

    # Forward recurrence ρ_j = x²/ρ_{j−1} + 2(μ + j) with log K_v = log K_μ + Σ_{j<n} log(ρ_j/x).
    # Writing ρ_j = P_j/P_{j−1} makes the product telescope, Π_{j=1}^{m} ρ_j = P_m/P_0, with
    # P_j = x²P_{j−2} + 2(μ + j)P_{j−1}, P_{−1} = 1/ρ_0, P_0 = 1: no division per step, and
    # P_j ≤ (2s)^j stays far from overflow (float32 included) for j ≤ 20.
    tiny = jnp.finfo(x.dtype).tiny
    rho0 = jnp.maximum(rho0, tiny)
    x2 = x * x
    p_prev, p_cur = 1 / rho0, jnp.ones_like(x)
    p_last = jnp.ones_like(x)  # P_{n−1} for n ≥ 1
    p_next = rho0  # P_n/P_{n−1} = ρ_n
    for j in range(1, _RECURRENCE_STEPS + 1):
        p_prev, p_cur = p_cur, x2 * p_prev + 2 * (mu + j) * p_cur
        p_last = jnp.where(j == n - 1, p_cur, p_last)
        if need_ratio:
            p_next = jnp.where(j == n, p_cur / p_prev, p_next)
    log_kve = log_kve + jnp.where(n >= 1, jnp.log(rho0) + jnp.log(p_last), 0) - n * jnp.log(x)
    ratio = p_next / x if need_ratio else None
    return log_kve, ratio


def _parts(kind: str, scaled: bool, v, x, need_ratio: bool):
    """(log I_v(x) or log K_v(x), scaled or not, I_{v+1}/I_v or K_{v+1}/K_v) for v ≥ 0, x > 0."""
    terms = _terms(x.dtype)
    use_debye = _hypot(v, x) >= DEBYE_THRESHOLD
    # Each branch gets inputs inside its own region where it is not selected.
    safe = 0.5 * DEBYE_THRESHOLD
    v_near, x_near = jnp.where(use_debye, safe, v), jnp.where(use_debye, safe, x)
    v_far = jnp.where(use_debye, v, DEBYE_THRESHOLD)
    x_far = jnp.where(use_debye, x, DEBYE_THRESHOLD)
    near = _series_i if kind == "i" else _temme_k
    value_near, ratio_near = near(v_near, x_near, terms, need_ratio)
    # The series gives log I_v, Temme's method log(K_v e^x); s < 20 here, so converting costs
    # at most 20·eps absolute.
    if kind == "i" and scaled:
        value_near = value_near - x_near
    elif kind == "k" and not scaled:
        value_near = value_near - x_near
    value_far, ratio_far = _debye(v_far, x_far, kind, scaled, terms, need_ratio)
    value = jnp.where(use_debye, value_far, value_near)
    ratio = jnp.where(use_debye, ratio_far, ratio_near) if need_ratio else None
    return value, ratio


def _evaluate(kind: str, scaled: bool, v, x, need_ratio: bool):
    """Value and ratio for v ≥ 0 and any x, with the documented special values."""
    valid = (x > 0) & jnp.isfinite(x) & jnp.isfinite(v)
    v_safe, x_safe = jnp.where(valid, v, 1.0), jnp.where(valid, x, 1.0)
    value, ratio = _parts(kind, scaled, v_safe, x_safe, need_ratio)
    inf = jnp.asarray(jnp.inf, x.dtype)
    nan = jnp.asarray(jnp.nan, x.dtype)
    if kind == "i":
        at_zero = jnp.where(v == 0, 0.0, -inf)
        at_inf_x = -inf if scaled else inf
        at_inf_v = -inf
    else:
        at_zero = inf
        at_inf_x = -inf
        at_inf_v = inf
    bad = jnp.isnan(v) | jnp.isnan(x) | (x < 0) | (jnp.isinf(v) & jnp.isinf(x))
    value = jnp.where(x == 0, at_zero, value)
    value = jnp.where(jnp.isinf(x), at_inf_x, value)
    value = jnp.where(jnp.isinf(v) & jnp.isfinite(x) & (x > 0), at_inf_v, value)
    value = jnp.where(bad, nan, value)
    if need_ratio:
        if kind == "i":
            ratio = jnp.where(x == 0, 0.0, ratio)
            ratio = jnp.where(jnp.isinf(x), 1.0, ratio)
            ratio = jnp.where(jnp.isinf(v) & (x > 0), 0.0, ratio)
        else:
            ratio = jnp.where(x == 0, inf, ratio)
            ratio = jnp.where(jnp.isinf(x), 1.0, ratio)
            ratio = jnp.where(jnp.isinf(v), inf, ratio)
        ratio = jnp.where(bad, nan, ratio)
    return value, ratio


# --------------------------------------------------------------------------------------------
# Differentiable cores (v ≥ 0)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _core(kind: str, scaled: bool, v, x):
    return _evaluate(kind, scaled, v, x, need_ratio=False)[0]


def _core_jvp(kind, scaled, primals, tangents):
    v, x = primals
    v_dot, x_dot = tangents
    value, ratio = _evaluate(kind, scaled, v, x, need_ratio=True)
    tangent = jnp.zeros_like(value)
    if not isinstance(x_dot, SymbolicZero):
        d_dx = v / x + ratio if kind == "i" else v / x - ratio
        if scaled:
            d_dx = d_dx - 1 if kind == "i" else d_dx + 1
        tangent = tangent + d_dx * x_dot
    if not isinstance(v_dot, SymbolicZero):
        _, d_dv = jax.jvp(
            lambda order: _evaluate(kind, scaled, order, x, need_ratio=False)[0],
            (v,),
            (v_dot,),
        )
        tangent = tangent + d_dv
    return value, tangent


_core.defjvp(_core_jvp, symbolic_zeros=True)


_ratio_core = jax.custom_jvp(
    lambda kind, v, x: _evaluate(kind, True, v, x, need_ratio=True)[1], nondiff_argnums=(0,)
)


def _ratio_jvp(kind, primals, tangents):
    v, x = primals
    v_dot, x_dot = tangents
    ratio = _ratio_core(kind, v, x)
    tangent = jnp.zeros_like(ratio)
    if not isinstance(x_dot, SymbolicZero):
        # d/dx (I_{v+1}/I_v) = 1 − A² − (2v + 1)A/x; d/dx (K_{v+1}/K_v) = R² − 1 − (2v + 1)R/x.
        if kind == "i":
            d_dx = 1 - ratio * ratio - (2 * v + 1) * ratio / x
        else:
            d_dx = ratio * ratio - 1 - (2 * v + 1) * ratio / x
        tangent = tangent + d_dx * x_dot
    if not isinstance(v_dot, SymbolicZero):
        _, d_dv = jax.jvp(
            lambda order: _evaluate(kind, True, order, x, need_ratio=True)[1], (v,), (v_dot,)
        )
        tangent = tangent + d_dv
    return ratio, tangent


_ratio_core.defjvp(_ratio_jvp, symbolic_zeros=True)


# --------------------------------------------------------------------------------------------
# Negative orders


def _reflect_i(scaled: bool, log_i, nu, x):
    """log I_{−ν}(x) (or its scaled form) from I_{−ν} = I_ν + (2/π) sin(νπ) K_ν, ν ≥ 0.

    `log_i` is log I_ν (scaled alike). NaN where I_{−ν}(x) < 0 (its logarithm is not real).
    """
    log_k = _core("k", True, nu, x) - (2 * x if scaled else x)
    n = jnp.round(nu)
    parity = 1 - 2 * jnp.mod(n, 2)
    coef = (2 / math.pi) * parity * jnp.sin(math.pi * (nu - n))
    d = log_k - log_i
    limit = 0.5 * np.log(jnp.finfo(x.dtype).max)
    small_d = d < limit
    d_small = jnp.where(small_d, d, 0.0)
    d_large = jnp.where(small_d, limit, d)
    via_i = log_i + jnp.log1p(coef * jnp.exp(d_small))
    via_k = log_k + jnp.log(coef + jnp.exp(-d_large))
    return jnp.where(small_d, via_i, via_k)


@jax.custom_jvp
def _undefined_order_tangent(v):
    """Zero, with a NaN tangent where v < 0 (∂/∂v there needs the reflection's K_ν term)."""
    return jnp.zeros_like(v)


@_undefined_order_tangent.defjvp
def _undefined_order_tangent_jvp(primals, tangents):
    (v,), (v_dot,) = primals, tangents
    return jnp.zeros_like(v), jnp.where(v < 0, jnp.nan, 0.0).astype(v.dtype) * v_dot


def _log_i_any_order(scaled: bool, v, x, negative_orders: bool):
    # |v| through where: the one-sided derivative at v = 0 (−K_0/I_0) must survive.
    log_i = _core("i", scaled, jnp.where(v < 0, -v, v), x)
    integer = v == jnp.round(v)
    if not negative_orders:
        # I_{−n} = I_n for integers; other negative orders need K_ν as well (see the flag).
        # ∂/∂v at v = −n is −∂_ν log I_ν − 2(−1)^n K_n/I_n, which needs K_n too: NaN, not the
        # mirrored (wrong) −∂_ν log I_ν.
        log_i = log_i + _undefined_order_tangent(v)
        return jnp.where((v < 0) & ~integer, jnp.nan, log_i)
    # The reflection needs K_ν, so it is evaluated only when some order is negative.
    return jax.lax.cond(
        jnp.any(v < 0),
        lambda log_i, v, x: jnp.where(
            v < 0, _reflect_i(scaled, log_i, jnp.where(v < 0, -v, 0.0), x), log_i
        ),
        lambda log_i, v, x: log_i,
        log_i,
        v,
        x,
    )


# --------------------------------------------------------------------------------------------
# Public functions


def log_iv(v: ArrayLike, x: ArrayLike, *, negative_orders: bool = False) -> Float[Array, "..."]:
    """log I_v(x), the logarithm of the modified Bessel function of the first kind.

    Accurate to a few units of the dtype's resolution in the mixed error
    |Δ log I| / max(1, |log I|) for every order and argument (no overflow or underflow: e.g.
    log I_{1e4}(1e-6) = −227195.5…), differentiable in both `v` and `x`.

    Args:
        v: the order, any real. For v ≥ 0 and for negative integers (I_{−n} = I_n) the value is
            always defined. Other negative orders give NaN unless `negative_orders=True`. With
            the flag off, ∂/∂v at a negative integer is NaN too (it involves K_n, see below);
            ∂/∂x is defined there.
        x: the argument, x ≥ 0. log I_v(0) is 0 for v = 0 and −inf for v > 0; x < 0 gives NaN
            (the logarithm is not real for odd orders). Derivatives in x are for x > 0: at
            x = 0 exactly they are NaN. Arguments below the dtype's smallest normal number
            may be treated as 0 by the backend's elementary functions (XLA:CPU's `log` is),
            giving the x = 0 value.
        negative_orders: evaluate negative orders −ν by the reflection
            I_{−ν} = I_ν + (2/π) sin(νπ) K_ν (DLMF 10.27.2), with ∂/∂v by autodiff through
            it. I_{−ν}(x) > 0 for all x where sin(νπ) ≥ 0; where sin(νπ) < 0 (ν in (1, 2),
            (3, 4), …) it is negative for x below a root, where the logarithm is not real and
            the result is NaN. It
            adds a K_ν evaluation (only run when some order is negative, through `lax.cond`)
            and makes compilation several times slower (about 3× for the value, 10× under
            `jax.grad`, measured on CPU), so it is off by default.

    Returns:
        log I_v(x) with `v` and `x` broadcast, in their float dtype (integers compute in JAX's
        default float).

    Raises:
        ValueError: for complex or non-numeric input, or a dtype other than float32/float64.

    References:
        A. Plesner, H. H. B. Sørensen, S. Hauberg, "Accurate computation of the logarithm of
        modified Bessel functions on GPUs", ICS '24 (arXiv:2409.08729); DLMF §10.25, §10.41;
        N. M. Temme, J. Comput. Phys. 19 (1975) 324–337.
    """
    _check_x64(v, x)
    return _log_iv_jit(v, x, negative_orders=negative_orders)


def log_ive(v: ArrayLike, x: ArrayLike, *, negative_orders: bool = False) -> Float[Array, "..."]:
    """log(I_v(x)·e^{−x}), computed directly (no cancellation against x for large x).

    Args:
        v: the order (as in `log_iv`).
        x: the argument, x ≥ 0.
        negative_orders: as in `log_iv`.

    Returns:
        log I_v(x) − x, with `v` and `x` broadcast.

    Raises:
        ValueError: as `log_iv`.
    """
    _check_x64(v, x)
    return _log_ive_jit(v, x, negative_orders=negative_orders)


def log_kv(v: ArrayLike, x: ArrayLike) -> Float[Array, "..."]:
    """log K_v(x), the logarithm of the modified Bessel function of the second kind.

    Args:
        v: the order; any real (K_{−v} = K_v).
        x: the argument, x ≥ 0. log K_v(0) = +inf; x < 0 gives NaN. As for `log_iv`,
            derivatives in x are for x > 0, and subnormal x may be treated as 0.

    Returns:
        log K_v(x), with `v` and `x` broadcast, in their float dtype.

    Raises:
        ValueError: as `log_iv`.
    """
    _check_x64(v, x)
    return _log_kv_jit(v, x)


def log_kve(v: ArrayLike, x: ArrayLike) -> Float[Array, "..."]:
    """log(K_v(x)·e^{x}), computed directly.

    Args:
        v: the order; any real.
        x: the argument, x ≥ 0.

    Returns:
        log K_v(x) + x, with `v` and `x` broadcast.

    Raises:
        ValueError: as `log_iv`.
    """
    _check_x64(v, x)
    return _log_kve_jit(v, x)


def iv_ratio(v: ArrayLike, x: ArrayLike) -> Float[Array, "..."]:
    """I_{v+1}(x)/I_v(x), computed directly (not as a difference of logarithms).

    This is the mean resultant length A_d(κ) = I_{d/2}(κ)/I_{d/2−1}(κ) of the von Mises–Fisher
    distribution. Relative accuracy is a few units of the dtype's resolution.

    Args:
        v: the order, v ≥ 0 (NaN for v < 0).
        x: the argument, x ≥ 0 (0 at x = 0, NaN for x < 0).

    Returns:
        The ratio, in (0, 1) for x > 0.

    Raises:
        ValueError: as `log_iv`.
    """
    _check_x64(v, x)
    return _iv_ratio_jit(v, x)


def kv_ratio(v: ArrayLike, x: ArrayLike) -> Float[Array, "..."]:
    """K_{v+1}(x)/K_v(x) for v ≥ 0, computed directly.

    Args:
        v: the order, v ≥ 0 (NaN for v < 0).
        x: the argument, x ≥ 0.

    Returns:
        The ratio (> 1 for x > 0 and v ≥ 0).

    Raises:
        ValueError: as `log_iv`.
    """
    _check_x64(v, x)
    return _kv_ratio_jit(v, x)


# --------------------------------------------------------------------------------------------
# Jitted implementations (compiled once per shape and dtype; the public functions above check
# the x64 policy on the raw arguments first, which jit would otherwise hide)


@functools.partial(jax.jit, static_argnames="negative_orders")
def _log_iv_jit(v, x, *, negative_orders):
    v, x = _prepare(v, x)
    return _log_i_any_order(False, v, x, negative_orders)


@functools.partial(jax.jit, static_argnames="negative_orders")
def _log_ive_jit(v, x, *, negative_orders):
    v, x = _prepare(v, x)
    return _log_i_any_order(True, v, x, negative_orders)


@jax.jit
def _log_kv_jit(v, x):
    v, x = _prepare(v, x)
    return _core("k", False, jnp.abs(v), x)


@jax.jit
def _log_kve_jit(v, x):
    v, x = _prepare(v, x)
    return _core("k", True, jnp.abs(v), x)


@jax.jit
def _iv_ratio_jit(v, x):
    v, x = _prepare(v, x)
    # where, not maximum: maximum's gradient at the tie v = 0 would be halved.
    ratio = _ratio_core("i", jnp.where(v < 0, 0.0, v), x)
    return jnp.where(v < 0, jnp.nan, ratio)


@jax.jit
def _kv_ratio_jit(v, x):
    v, x = _prepare(v, x)
    ratio = _ratio_core("k", jnp.where(v < 0, 0.0, v), x)
    return jnp.where(v < 0, jnp.nan, ratio)
