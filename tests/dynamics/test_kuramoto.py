"""Kuramoto: per-edge (GNRK) and all-to-all mean-field (NGS) forms against O(N²) pairwise formulas."""

import math

import numpy as np
import pytest
import torch

import fastsim
from fastsim.dynamics import GNRK_KURAMOTO, NGS_KURAMOTO, Kuramoto, KuramotoMeanField
from fastsim.graphs import erdos_renyi
from tests.dynamics.dense_reference import (
    batch_of_three,
    dense_weights,
    small_graphs,
    split_edges,
    split_nodes,
)


def pairwise(theta: np.ndarray, omega: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`ω_i + Σ_j W_ij sin(θ_j - θ_i)`, O(N²)."""
    return omega + (w * np.sin(theta[None, :] - theta[:, None])).sum(1)


def complete_graph(n: int) -> fastsim.Graph:
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = i != j
    return fastsim.Graph.from_edge_index(torch.stack([j[keep], i[keep]]), n)


@pytest.mark.parametrize("graph", small_graphs(), ids=["er", "multigraph"])
def test_per_edge_rhs_matches_pairwise_formula(graph):
    coeffs = Kuramoto.sample_coefficients(graph, generator=0)
    theta = 10 * torch.randn(graph.num_nodes, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = Kuramoto(graph, **coeffs)(0.0, theta)
    w = dense_weights(graph, coeffs["coupling"])
    expected = pairwise(theta.numpy(), coeffs["omega"].numpy(), w)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-12)


def test_mean_field_matches_pairwise_all_to_all():
    n = 150
    graph = fastsim.Graph.from_edge_index(torch.empty(2, 0, dtype=torch.int64), n)  # edges are not used
    coeffs = KuramotoMeanField.sample_coefficients(graph, generator=2)
    theta = KuramotoMeanField.initial_state(graph, generator=3)
    out = KuramotoMeanField(graph, **coeffs)(0.0, theta)
    k_over_n = coeffs["coupling"].item() / n
    w = np.full((n, n), k_over_n) - np.diag(np.full(n, k_over_n))
    expected = pairwise(theta.numpy(), coeffs["omega"].numpy(), w)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-12)
    # The same model through the per-edge form on the complete graph (N(N-1) edges).
    full = complete_graph(n)
    per_edge = Kuramoto(full, coeffs["omega"], torch.full((full.num_edges,), k_over_n, dtype=torch.float64))
    torch.testing.assert_close(per_edge(0.0, theta), out, rtol=0, atol=1e-12)


@pytest.mark.parametrize("graph", small_graphs(), ids=["er", "multigraph"])
def test_jacobians_match_autograd_and_jacrev(graph):
    model = Kuramoto(graph, **Kuramoto.sample_coefficients(graph, generator=4))
    theta = Kuramoto.initial_state(graph, generator=5)
    jac = model.jacobian(0.0, theta)
    assert jac.layout == torch.sparse_csr
    torch.testing.assert_close(
        jac.to_dense(),
        torch.autograd.functional.jacobian(lambda y: model(0.0, y), theta),
        rtol=0,
        atol=1e-12,
    )
    w = torch.from_numpy(dense_weights(graph, model.coupling))
    dense = lambda y: model.omega + (w * torch.sin(y[None, :] - y[:, None])).sum(1)  # noqa: E731
    torch.testing.assert_close(jac.to_dense(), torch.func.jacrev(dense)(theta), rtol=0, atol=1e-12)


def test_mean_field_jacobian_matches_autograd():
    batched, _ = batch_of_three()
    mean_field = KuramotoMeanField(batched, **KuramotoMeanField.sample_coefficients(batched, generator=6))
    theta = KuramotoMeanField.initial_state(batched, generator=7)
    expected = torch.autograd.functional.jacobian(lambda y: mean_field(0.0, y), theta)
    torch.testing.assert_close(mean_field.jacobian(0.0, theta).to_dense(), expected, rtol=0, atol=1e-12)


def test_batched_graph_equals_each_graph_alone():
    batched, graphs = batch_of_three()
    theta = Kuramoto.initial_state(batched, generator=8)
    coeffs = Kuramoto.sample_coefficients(batched, generator=9)
    out = Kuramoto(batched, **coeffs)(0.0, theta)
    omegas, thetas = split_nodes(coeffs["omega"], batched), split_nodes(theta, batched)
    couplings = split_edges(coeffs["coupling"], graphs)
    alone = [Kuramoto(g, w, k)(0.0, t) for g, w, k, t in zip(graphs, omegas, couplings, thetas, strict=True)]
    torch.testing.assert_close(out, torch.cat(alone), rtol=0, atol=0)
    coeffs = KuramotoMeanField.sample_coefficients(batched, generator=10)
    out = KuramotoMeanField(batched, **coeffs)(0.0, theta)
    omegas = split_nodes(coeffs["omega"], batched)
    alone = [
        KuramotoMeanField(g, w, coeffs["coupling"][b : b + 1])(0.0, t)
        for b, (g, w, t) in enumerate(zip(graphs, omegas, thetas, strict=True))
    ]
    torch.testing.assert_close(out, torch.cat(alone), rtol=0, atol=1e-14)


def test_sampling_follows_the_paper_ranges():
    graph = erdos_renyi(2000, 5.0, generator=0)
    ngs = KuramotoMeanField.sample_coefficients(graph, generator=1)
    assert ngs["omega"].abs().max() <= 3.0 and abs(ngs["omega"].std().item() - 1.0) < 0.05
    assert NGS_KURAMOTO.coupling[0] <= ngs["coupling"].item() <= NGS_KURAMOTO.coupling[1]
    gnrk = Kuramoto.sample_coefficients(graph, generator=1)
    assert 0.1 <= gnrk["coupling"].min() and gnrk["coupling"].max() <= 0.5 and GNRK_KURAMOTO.omega_clip is None
    w = dense_weights(graph, gnrk["coupling"])
    np.testing.assert_array_equal(w, w.T)
    theta = Kuramoto.initial_state(graph, generator=2)
    assert -math.pi <= theta.min() and theta.max() <= math.pi


def test_hostile_inputs_name_the_argument():
    graph = erdos_renyi(10, 3.0, generator=0)
    omega = torch.zeros(10, dtype=torch.float64)
    with pytest.raises(ValueError, match="coupling must have shape"):
        Kuramoto(graph, omega, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="omega must have shape"):
        Kuramoto(graph, omega[:9], torch.ones(graph.num_edges, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"coupling must have shape \(1,\)"):
        KuramotoMeanField(graph, omega, torch.ones(10, dtype=torch.float64))
    with pytest.raises(ValueError, match="y must have shape"):
        KuramotoMeanField(graph, omega, torch.ones(1, dtype=torch.float64))(0.0, omega[:, None])
