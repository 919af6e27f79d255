"""Coupled Rössler: dense formula, Jacobian, batching, sampling ranges."""

import numpy as np
import pytest
import torch

import fastsim
from fastsim.dynamics import GNRK_ROSSLER, CoupledRossler
from fastsim.graphs import erdos_renyi
from tests.dynamics.dense_reference import (
    batch_of_three,
    dense_weights,
    small_graphs,
    split_edges,
    split_nodes,
)


def dense_rossler(state: np.ndarray, a: float, b: float, c: float, w: np.ndarray) -> np.ndarray:
    """NGS `get_velocity`: `A @ y - A.sum(axis) * y` with in-edge weights `W`."""
    x, y, z = state.T
    return np.stack([-y - z, x + a * y + w @ y - w.sum(1) * y, b + z * (x - c)], axis=1)


@pytest.mark.parametrize("graph", small_graphs(), ids=["er", "multigraph"])
def test_rhs_matches_dense_formula(graph):
    coeffs = CoupledRossler.sample_coefficients(graph, generator=0)
    state = CoupledRossler.initial_state(graph, generator=1)
    out = CoupledRossler(graph, **coeffs)(0.0, state)
    a, b, c = (coeffs[k].item() for k in "abc")
    expected = dense_rossler(state.numpy(), a, b, c, dense_weights(graph, coeffs["coupling"]))
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("graph", small_graphs(), ids=["er", "multigraph"])
def test_jacobian_matches_autograd_and_jacrev(graph):
    coeffs = CoupledRossler.sample_coefficients(graph, generator=2)
    model = CoupledRossler(graph, **coeffs)
    state = CoupledRossler.initial_state(graph, generator=3)
    jac = model.jacobian(0.0, state)
    assert jac.layout == torch.sparse_csr and jac.shape == (3 * graph.num_nodes,) * 2
    flat = lambda y: model(0.0, y.view(-1, 3)).reshape(-1)  # noqa: E731
    expected = torch.autograd.functional.jacobian(flat, state.reshape(-1))
    torch.testing.assert_close(jac.to_dense(), expected, rtol=0, atol=1e-12)
    w = torch.from_numpy(dense_weights(graph, coeffs["coupling"]))
    a, b, c = (coeffs[k] for k in "abc")

    def dense(flat_state):
        x, y, z = flat_state.view(-1, 3).unbind(1)
        return torch.stack([-y - z, x + a * y + w @ y - w.sum(1) * y, b + z * (x - c)], 1).reshape(-1)

    torch.testing.assert_close(jac.to_dense(), torch.func.jacrev(dense)(state.reshape(-1)), rtol=0, atol=1e-12)


def test_batched_graph_equals_each_graph_alone():
    batched, graphs = batch_of_three()
    coeffs = CoupledRossler.sample_coefficients(batched, generator=4)
    state = CoupledRossler.initial_state(batched, generator=5)
    out = CoupledRossler(batched, **coeffs)(0.0, state)
    alone = [
        CoupledRossler(g, coeffs["a"][k : k + 1], coeffs["b"][k : k + 1], coeffs["c"][k : k + 1], cp)(0.0, s)
        for k, (g, cp, s) in enumerate(
            zip(graphs, split_edges(coeffs["coupling"], graphs), split_nodes(state, batched), strict=True)
        )
    ]
    torch.testing.assert_close(out, torch.cat(alone), rtol=0, atol=0)


def test_sampling_follows_the_paper_ranges():
    graph = erdos_renyi(300, 3.0, generator=0)
    batch = fastsim.Graph.batch_graphs([graph] * 200)
    coeffs = CoupledRossler.sample_coefficients(batch, generator=1)
    for key, (lo, hi) in (
        ("a", (0.1, 0.3)),
        ("b", (0.1, 0.3)),
        ("c", (5.0, 7.0)),
        ("coupling", (0.01, 0.05)),
    ):
        assert lo <= coeffs[key].min() and coeffs[key].max() <= hi
        assert coeffs[key].max() - coeffs[key].min() > 0.8 * (hi - lo)
    gnrk = CoupledRossler.sample_coefficients(graph, generator=1, ranges=GNRK_ROSSLER)["coupling"]
    assert 0.02 <= gnrk.min() and gnrk.max() <= 0.04
    state = CoupledRossler.initial_state(graph, generator=2)
    assert state[:, :2].abs().max() <= 4.0 and 0.0 <= state[:, 2].min() and state[:, 2].max() <= 6.0


def test_hostile_inputs_name_the_argument():
    graph = erdos_renyi(10, 3.0, generator=0)
    one = torch.ones(1, dtype=torch.float64)
    coupling = torch.ones(graph.num_edges, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"c must have shape \(1,\)"):
        CoupledRossler(graph, one, one, torch.ones(2, dtype=torch.float64), coupling)
    with pytest.raises(ValueError, match="coupling must have shape"):
        CoupledRossler(graph, one, one, one, coupling[:-1])
    with pytest.raises(ValueError, match=r"y must have shape \(10, 3\)"):
        CoupledRossler(graph, one, one, one, coupling)(0.0, torch.ones(10, 2, dtype=torch.float64))
