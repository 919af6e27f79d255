"""Butcher tableaux: consistency, the order conditions (rooted trees) of every method, its embedded estimate
and its dense output."""

import math

import numpy as np
import pytest

from fastsim.solvers.tableaux import TABLEAUX, get_tableau


def _grow(tree: tuple) -> set[tuple]:
    """Every tree obtained by attaching one leaf to a node of `tree` (canonical form: sorted child tuples)."""
    out = {tuple(sorted((*tree, ())))}
    for i, child in enumerate(tree):
        for g in _grow(child):
            out.add(tuple(sorted((*tree[:i], g, *tree[i + 1 :]))))
    return out


def rooted_trees(max_order: int) -> dict[int, list[tuple]]:
    trees = {1: [()]}
    for n in range(2, max_order + 1):
        trees[n] = sorted(set().union(*(_grow(t) for t in trees[n - 1])))
    return trees


TREES = rooted_trees(8)


def _order(tree: tuple) -> int:
    return 1 + sum(_order(c) for c in tree)


def _gamma(tree: tuple) -> int:
    return _order(tree) * math.prod(_gamma(c) for c in tree)


def _phi(A: np.ndarray, tree: tuple) -> np.ndarray:
    """Elementary weight vector Φ_i(τ) = Π_children (A Φ(child))_i."""
    out = np.ones(A.shape[0])
    for c in tree:
        out = out * (A @ _phi(A, c))
    return out


def _matrix(tab) -> np.ndarray:
    rows = [*tab.a, *tab.a_extra]
    A = np.zeros((len(rows), len(rows)))
    for i, r in enumerate(rows):
        A[i, : len(r)] = r
    return A


def test_number_of_rooted_trees():
    assert [len(TREES[n]) for n in range(1, 9)] == [1, 1, 2, 4, 9, 20, 48, 115]  # OEIS A000081


@pytest.mark.parametrize("name", list(TABLEAUX))
def test_consistency(name):
    tab = TABLEAUX[name]
    s = tab.num_stages
    assert len(tab.a) == len(tab.b) == s and tab.c[0] == 0.0
    for i, row in enumerate([*tab.a, *tab.a_extra]):
        assert len(row) == i
        assert sum(row) == pytest.approx(([*tab.c, *tab.c_extra])[i], abs=1e-14)  # row sums = c
    assert sum(tab.b) == pytest.approx(1.0, abs=1e-14)
    if tab.fsal:
        assert tab.c[-1] == 1.0 and tab.b[-1] == 0.0
        np.testing.assert_allclose(tab.a[-1], tab.b[:-1], atol=1e-15)
    if tab.b_err is not None:
        assert len(tab.b_err) == s and sum(tab.b_err) == pytest.approx(0.0, abs=1e-13)


@pytest.mark.parametrize("name", list(TABLEAUX))
def test_order_conditions(name):
    """Σ b_i Φ_i(τ) = 1/γ(τ) for every rooted tree up to the order; and fails for some tree of order p + 1."""
    tab = TABLEAUX[name]
    A, b = _matrix(tab)[: tab.num_stages, : tab.num_stages], np.array(tab.b)
    for n in range(1, tab.order + 1):
        for tree in TREES[n]:
            assert b @ _phi(A, tree) == pytest.approx(1 / _gamma(tree), abs=2e-13), (n, tree)
    if tab.order < 8:
        residuals = [abs(b @ _phi(A, t) - 1 / _gamma(t)) for t in TREES[tab.order + 1]]
        assert max(residuals) > 1e-6


@pytest.mark.parametrize("name", [n for n, t in TABLEAUX.items() if t.b_err is not None])
def test_embedded_estimate_order(name):
    """b̂ = b − b_err has order `error_order` exactly (DOP853: its 5th- and 3rd-order estimates)."""
    tab = TABLEAUX[name]
    A = _matrix(tab)[: tab.num_stages, : tab.num_stages]
    checks = [(np.array(tab.b_err), 5 if tab.b_err_aux is not None else tab.error_order)]
    if tab.b_err_aux is not None:
        checks.append((np.array(tab.b_err_aux), 3))
    for e, q in checks:
        for n in range(1, q + 1):
            for tree in TREES[n]:
                assert e @ _phi(A, tree) == pytest.approx(0.0, abs=1e-12), (n, tree)
        assert max(abs(e @ _phi(A, t)) for t in TREES[q + 1]) > 1e-6


@pytest.mark.parametrize("name", [n for n, t in TABLEAUX.items() if t.dense is not None])
def test_dense_output_conditions(name):
    """b_i(1) = b_i, and Σ b_i(θ) Φ_i(τ) = θ^|τ|/γ(τ) up to the dense order for θ in (0, 1)."""
    tab = TABLEAUX[name]
    A = _matrix(tab)
    W = np.array(tab.dense)
    assert W.shape[0] == A.shape[0]
    np.testing.assert_allclose(W.sum(axis=1)[: tab.num_stages], tab.b, atol=1e-13)
    np.testing.assert_allclose(W.sum(axis=1)[tab.num_stages :], 0.0, atol=1e-12)
    for theta in (0.2, 0.5, 0.77):
        bt = W @ theta ** np.arange(1, W.shape[1] + 1)
        for n in range(1, tab.dense_order + 1):
            for tree in TREES[n]:
                assert bt @ _phi(A, tree) == pytest.approx(theta**n / _gamma(tree), abs=1e-12), (theta, tree)


def test_get_tableau():
    assert get_tableau("dopri5") is TABLEAUX["dopri5"]
    with pytest.raises(ValueError, match="valid names: .*dop853.*tsit5"):
        get_tableau("rk45")
    with pytest.raises(ValueError, match="unknown tableau"):
        get_tableau(None)  # type: ignore[arg-type]
