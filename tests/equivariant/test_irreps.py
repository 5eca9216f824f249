import pytest

from sciml.equivariant import Irrep, Irreps, s2_irreps


def test_parse_and_properties():
    irreps = Irreps("16x0e+8x1o+2e")
    assert irreps.dim == 16 + 24 + 5
    assert irreps.num_irreps == 25
    assert irreps.lmax == 2
    assert [tuple(e) for e in irreps] == [(16, (0, 1)), (8, (1, -1)), (1, (2, 1))]
    assert irreps.slices == [slice(0, 16), slice(16, 40), slice(40, 45)]
    assert str(irreps) == "16x0e+8x1o+1x2e"
    assert irreps == "16x0e+8x1o+1x2e"
    assert Irreps(irreps) == irreps and hash(Irreps("1o")) == hash(Irreps([(1, (1, -1))]))
    assert Irreps("0e + 1o") == Irreps(["0e", "1o"])
    assert Irreps("1y+2y") == Irreps("1o+2e")


def test_simplify_sort_regroup():
    assert Irreps("1e+1e+0e").simplify() == Irreps("2x1e+0e")
    assert Irreps("1e+0x0e+1e").simplify() == Irreps("2x1e")
    # e3nn's order: natural parity first
    assert Irreps("1e+0o+1o+0e").regroup() == Irreps("0e+0o+1o+1e")
    sorted_irreps, inv = Irreps("2o+1e+0e+1e").sort()
    assert sorted_irreps == Irreps("0e+1e+1e+2o") and inv == (2, 1, 3, 0)


def test_products_and_s2_irreps():
    assert Irrep(1, -1) * Irrep(1, -1) == [Irrep(0, 1), Irrep(1, 1), Irrep(2, 1)]
    assert s2_irreps(3) == Irreps("0e+1o+2e+3o")
    assert s2_irreps(2, p_val=-1) == Irreps("0o+1e+2o")


@pytest.mark.parametrize("bad", ["1x", "3q", "1o+", "ax1e"])
def test_parse_errors(bad):
    with pytest.raises(ValueError, match="Cannot parse"):
        Irreps(bad)


def test_lmax_of_empty():
    with pytest.raises(ValueError):
        _ = Irreps("").lmax
