# ruff: noqa: E741  (l is the standard name of the degree)
"""Irreducible representations of O(3) and direct sums of them, in e3nn's notation.

An irrep is a pair (l, p): the degree l >= 0 (dimension 2l + 1) and the parity p = ±1, written
"0e", "1o", "2e", ... ("y", as in e3nn, is the natural parity (−1)^l of a spherical
harmonic: "1y" is "1o"). A direct sum with multiplicities is written "16x0e+8x1o". An array that
carries irreps has them on its last axis in e3nn's "mul_ir" layout: for each entry (mul, (l, p))
in order, `mul` consecutive blocks of 2l + 1 components: the layout of `e3nn_jax.IrrepsArray.array`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

__all__ = ["Irrep", "Irreps", "s2_irreps"]

_IRREP_RE = re.compile(r"^\s*(?:(\d+)\s*x\s*)?(\d+)\s*([eoy])\s*$")


class Irrep(NamedTuple):
    """One irrep (l, p) of O(3).

    Attributes:
        l: the degree, >= 0.
        p: the parity, +1 ("e", even) or -1 ("o", odd).
    """

    l: int  # noqa: E741 (the standard name of the degree)
    p: int

    @property
    def dim(self) -> int:
        """2l + 1."""
        return 2 * self.l + 1

    def __str__(self) -> str:
        return f"{self.l}{'e' if self.p == 1 else 'o'}"

    def sort_key(self) -> tuple[int, int]:
        """e3nn's order: by degree, natural parity ((-1)^l) first."""
        return (self.l, -self.p * (-1) ** self.l)

    def __mul__(self, other: Any):  # type: ignore[override]
        """The irreps in the product of two irreps: |l1 - l2| .. l1 + l2 with parity p1 p2."""
        other = _as_irrep(other)
        p = self.p * other.p
        return [Irrep(l, p) for l in range(abs(self.l - other.l), self.l + other.l + 1)]


def _as_irrep(ir: Any) -> Irrep:
    if isinstance(ir, Irrep):
        return ir
    if isinstance(ir, str):
        match = _IRREP_RE.match(ir)
        if match is None or match.group(1) is not None:
            raise ValueError(f"Cannot parse irrep {ir!r}; write it like '1o' or '2e'.")
        l, p = int(match.group(2)), match.group(3)
        return Irrep(l, {"e": 1, "o": -1, "y": (-1) ** l}[p])
    if isinstance(ir, tuple) and len(ir) == 2:
        l, p = ir
        if int(l) != l or l < 0 or p not in (1, -1):
            raise ValueError(f"An irrep is (l, p) with l >= 0 and p = ±1, got {ir!r}.")
        return Irrep(int(l), int(p))
    raise ValueError(f"Cannot interpret {ir!r} as an irrep; use '1o' or (1, -1).")


class _MulIrrep(NamedTuple):
    mul: int
    ir: Irrep

    def __str__(self) -> str:
        return f"{self.mul}x{self.ir}"


class Irreps:
    """A direct sum of irreps with multiplicities, e.g. ``Irreps("16x0e+8x1o+2e")``.

    Iterating yields ``(mul, Irrep(l, p))`` pairs (the tuple ``(mul, (l, p))``). Irreps are
    immutable and hashable, so they can be static arguments of jitted functions.

    Args:
        irreps: a string "16x0e+8x1o", another `Irreps`, an `Irrep`, or a sequence of
            ``(mul, (l, p))`` / ``(mul, "1o")`` / ``"1o"`` entries.

    Raises:
        ValueError: for a string or entry that cannot be parsed.
    """

    __slots__ = ("_entries",)

    def __init__(self, irreps: Any = ()):
        if isinstance(irreps, Irreps):
            entries = irreps._entries
        elif isinstance(irreps, Irrep):
            entries = (_MulIrrep(1, irreps),)
        elif isinstance(irreps, str):
            entries = []
            text = irreps.strip()
            if text:
                for part in text.split("+"):
                    match = _IRREP_RE.match(part)
                    if match is None:
                        raise ValueError(
                            f"Cannot parse {part!r} in irreps {irreps!r}; write entries like "
                            f"'16x0e' or '1o' joined by '+'."
                        )
                    mul = int(match.group(1)) if match.group(1) is not None else 1
                    l = int(match.group(2))
                    p = {"e": 1, "o": -1, "y": (-1) ** l}[match.group(3)]
                    entries.append(_MulIrrep(mul, Irrep(l, p)))
            entries = tuple(entries)
        else:
            entries = []
            for item in irreps:
                if isinstance(item, (str, Irrep)):
                    entries.append(_MulIrrep(1, _as_irrep(item)))
                    continue
                try:
                    mul, ir = item
                except (TypeError, ValueError):
                    raise ValueError(
                        f"Cannot interpret {item!r} as an irreps entry; use (mul, (l, p)) or '1o'."
                    ) from None
                if isinstance(ir, int):  # a bare Irrep given as (l, p)
                    entries.append(_MulIrrep(1, _as_irrep((mul, ir))))
                    continue
                if int(mul) != mul or mul < 0:
                    raise ValueError(f"Multiplicities must be integers >= 0, got {mul!r}.")
                entries.append(_MulIrrep(int(mul), _as_irrep(ir)))
            entries = tuple(entries)
        object.__setattr__(self, "_entries", entries)

    def __setattr__(self, name, value):
        raise AttributeError("Irreps are immutable")

    # -- container protocol ------------------------------------------------------------------
    def __iter__(self) -> Iterator[_MulIrrep]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Irreps(self._entries[i])
        return self._entries[i]

    def __eq__(self, other: object) -> bool:
        try:
            other = Irreps(other)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            return NotImplemented
        return self._entries == other._entries

    def __hash__(self) -> int:
        return hash(self._entries)

    def __add__(self, other: Any) -> Irreps:
        return Irreps(self._entries + Irreps(other)._entries)

    def __radd__(self, other: Any) -> Irreps:
        return Irreps(Irreps(other)._entries + self._entries)

    def __mul__(self, factor: int) -> Irreps:
        return Irreps([(mul * int(factor), ir) for mul, ir in self])

    __rmul__ = __mul__

    def __str__(self) -> str:
        return "+".join(str(e) for e in self._entries)

    def __repr__(self) -> str:
        return f"Irreps({str(self)!r})"

    # -- properties --------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Total dimension sum(mul * (2l + 1))."""
        return sum(mul * ir.dim for mul, ir in self)

    @property
    def num_irreps(self) -> int:
        """Total number of irreps sum(mul)."""
        return sum(mul for mul, _ in self)

    @property
    def ls(self) -> list[int]:
        """The degree of every irrep, repeated by multiplicity."""
        return [ir.l for mul, ir in self for _ in range(mul)]

    @property
    def lmax(self) -> int:
        """The largest degree.

        Raises:
            ValueError: for empty irreps.
        """
        if not self._entries:
            raise ValueError("Empty irreps have no lmax.")
        return max(ir.l for _, ir in self)

    @property
    def slices(self) -> list[slice]:
        """The slice of the last axis that holds each entry (mul, ir)."""
        out, start = [], 0
        for mul, ir in self:
            out.append(slice(start, start + mul * ir.dim))
            start += mul * ir.dim
        return out

    def simplify(self) -> Irreps:
        """Merge neighbouring entries with the same irrep and drop zero multiplicities."""
        out: list[list[Any]] = []
        for mul, ir in self:
            if mul == 0:
                continue
            if out and out[-1][1] == ir:
                out[-1][0] += mul
            else:
                out.append([mul, ir])
        return Irreps([(m, i) for m, i in out])

    def sort(self) -> tuple[Irreps, tuple[int, ...]]:
        """Sort entries in e3nn's order (stable). Returns (sorted irreps, inv) where inv[k] is
        the index in `self` of the k-th sorted entry."""
        order = sorted(range(len(self)), key=lambda i: self._entries[i].ir.sort_key())
        return Irreps([self._entries[i] for i in order]), tuple(order)

    def regroup(self) -> Irreps:
        """`sort` followed by `simplify`."""
        return self.sort()[0].simplify()

    def filter(self, keep: Iterable[Any]) -> Irreps:
        """Keep only the entries whose irrep is in `keep`."""
        keep_set = {_as_irrep(k) for k in Irreps(keep).irreps_set()} if keep else set()
        return Irreps([(mul, ir) for mul, ir in self if ir in keep_set])

    def irreps_set(self) -> set[Irrep]:
        """The distinct irreps that occur."""
        return {ir for _, ir in self}

    def count(self, ir: Any) -> int:
        """Total multiplicity of one irrep."""
        ir = _as_irrep(ir)
        return sum(mul for mul, i in self if i == ir)


def s2_irreps(lmax: int, *, p_val: int = 1, p_arg: int = -1) -> Irreps:
    """The irreps of a signal on the sphere: one copy of each l = 0..lmax with parity
    p_val * p_arg^l. The default (p_val=1, p_arg=-1) is "0e+1o+2e+...", the natural parity of
    spherical harmonics.

    Raises:
        ValueError: for lmax < 0 or parities other than ±1.
    """
    if int(lmax) != lmax or lmax < 0:
        raise ValueError(f"`lmax` must be an int >= 0, got {lmax!r}.")
    if p_val not in (1, -1) or p_arg not in (1, -1):
        raise ValueError(f"`p_val` and `p_arg` must be ±1, got {p_val!r}, {p_arg!r}.")
    return Irreps([(1, (l, p_val * p_arg**l)) for l in range(int(lmax) + 1)])
