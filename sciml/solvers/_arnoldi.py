"""An Arnoldi basis stored in row blocks, so a step reads only the blocks it has filled."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Inexact, Int

from ._common import HIGHEST, set_entry_unless


class BlockedBasis(eqx.Module):
    """The `rows × n` Krylov basis of a restart cycle, split into row blocks.

    Each Arnoldi step reads the basis twice (CGS2: the projections, then the update), and a
    masked product reads every row, filled or not. Once `n` is in the thousands those reads
    are most of a step's time on a CPU (a GPU step is bandwidth-bound too, but that was not
    measured), while a cycle fills the rows in order. So a cycle runs one loop per block:
    "phase" `p` makes the steps whose new vector lands in block `p` and reads blocks `0..p`
    only. Which blocks a phase reads is static, so this needs no `lax.cond` (which, per step,
    was slower on XLA:CPU). Each block adds a copy of the step to compile.

    Attributes:
        blocks: the row blocks, shapes `(b_i, n)`.
        bounds: `(start, stop)` of each block's rows (static).
    """

    blocks: tuple[Inexact[Array, "_ n"], ...]
    bounds: tuple[tuple[int, int], ...] = eqx.field(static=True)

    @classmethod
    def zeros(cls, rows: int, n: int, dtype, cuts=None) -> "BlockedBasis":
        """A zero basis of `rows` rows, cut into blocks before each row index in `cuts`.

        By default two halves: more blocks ran no faster for GMRES(40) at n = 4096 (XLA:CPU),
        and each one adds a copy of the loop body to compile (0.5–0.9 s).
        """
        cuts = (rows // 2,) if cuts is None else cuts
        edges = sorted({0, rows, *(c for c in cuts if 0 < c < rows)})
        bounds = tuple(zip(edges[:-1], edges[1:], strict=True))
        return cls(tuple(jnp.zeros((stop - start, n), dtype) for start, stop in bounds), bounds)

    @property
    def rows(self) -> int:
        return self.bounds[-1][1]

    @property
    def phases(self) -> int:
        return len(self.bounds)

    def phase_end(self, phase: int) -> int:
        """One past the last step `j` of `phase` (its new vectors `j + 1` end there)."""
        return self.bounds[phase][1] - 1

    def row(self, j: Int[Array, ""], phase: int) -> Inexact[Array, " n"]:
        """Row `j` for a step of `phase`: in block `phase`, or the last row of the one before."""
        start = self.bounds[phase][0]
        current = self.blocks[phase][jnp.maximum(j - start, 0)]
        if phase == 0:
            return current
        return jnp.where(j >= start, current, self.blocks[phase - 1][-1])

    def project(self, w: Inexact[Array, " n"], j: Int[Array, ""], phase: int):
        """One classical Gram–Schmidt pass of `w` against rows `0..j`: `(w − Vᵀh, h)`.

        `h` has all `rows` entries (zero beyond `j`); the blocks after `phase` are not read.
        """
        parts, used = [], self.blocks[: phase + 1]
        for block, (start, stop) in zip(used, self.bounds, strict=False):
            valid = jnp.arange(start, stop, dtype=jnp.int32) <= j
            parts.append(jnp.where(valid, jnp.matmul(jnp.conj(block), w, precision=HIGHEST), 0))
        for block, part in zip(used, parts, strict=True):
            w = w - jnp.matmul(part, block, precision=HIGHEST)
        tail = jnp.zeros(self.rows - self.bounds[phase][1], w.dtype)
        return w, jnp.concatenate([*parts, tail])

    def set_row(
        self,
        j: Int[Array, ""],
        value: Inexact[Array, " n"],
        phase: int,
        keep: Bool[Array, ""] | None = None,
    ):
        """The basis with row `j` (in block `phase`) set to `value`, or kept where `keep`."""
        blocks = list(self.blocks)
        index = j - self.bounds[phase][0]
        # `keep`: a finished member of a lock-step batch (see `gmres`).
        blocks[phase] = set_entry_unless(blocks[phase], index, value, keep)
        return BlockedBasis(tuple(blocks), self.bounds)

    def combine(self, y: Inexact[Array, " k"]) -> Inexact[Array, " n"]:
        """`Σ_i y_i v_i` over the first `len(y) <= rows` rows."""
        y = jnp.concatenate([y, jnp.zeros(self.rows - y.shape[0], y.dtype)])
        terms = [
            jnp.matmul(y[start:stop], block, precision=HIGHEST)
            for block, (start, stop) in zip(self.blocks, self.bounds, strict=True)
        ]
        return sum(terms[1:], terms[0])

    def dense(self) -> Inexact[Array, "rows n"]:
        return jnp.concatenate(self.blocks)
