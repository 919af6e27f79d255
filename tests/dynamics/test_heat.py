"""Heat diffusion: dense formula, exact eigendecomposition solution, conservation, Jacobian, batching."""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from fastsim.dynamics import GNRK_HEAT, NGS_HEAT, HeatDiffusion, HeatRanges
from fastsim.graphs import erdos_renyi, time_grid
from tests.dynamics.dense_reference import (
    batch_of_three,
    dense_weights,
    small_graphs,
    split_edges,
    split_nodes,
)


@pytest.mark.parametrize("graph", small_graphs(), ids=["er", "multigraph"])
def test_rhs_matches_dense_laplacian(graph):
    gen = torch.Generator().manual_seed(0)
    d = torch.rand(graph.num_edges, generator=gen, dtype=torch.float64) + 0.1
    temp = torch.randn(graph.num_nodes, 3, generator=gen, dtype=torch.float64)
    w = dense_weights(graph, d)
    laplacian = np.diag(w.sum(1)) - w
    heat = HeatDiffusion(graph, d)
    np.testing.assert_allclose(heat(0.0, temp).numpy(), -laplacian @ temp.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(heat(0.0, temp[:, 0]).numpy(), -laplacian @ temp[:, 0].numpy(), atol=1e-12)


def test_dop853_matches_exact_eigendecomposition_and_conserves_heat():
    graph = erdos_renyi(40, 3.0, generator=5)
    coeffs = HeatDiffusion.sample_coefficients(graph, generator=6)
    heat = HeatDiffusion(graph, **coeffs)
    t0 = HeatDiffusion.initial_state(graph, generator=7)
    times = time_grid((1.0, 2.0), (20, 20), 0.8, generator=8).numpy()  # NGS's test grid
    result = solve_ivp(
        lambda t, y: heat(t, torch.from_numpy(y)).numpy(),
        (0.0, 2.0),
        t0.numpy(),
        method="DOP853",
        t_eval=times,
        rtol=1e-12,
        atol=1e-12,
    )
    w = dense_weights(graph, coeffs["diffusivity"])
    np.testing.assert_array_equal(w, w.T)  # one draw per undirected edge
    eigval, eigvec = np.linalg.eigh(np.diag(w.sum(1)) - w)
    exact = eigvec @ (np.exp(-eigval[:, None] * times[None]) * (eigvec.T @ t0.numpy())[:, None])
    assert np.abs(result.y - exact).max() <= 1e-8
    np.testing.assert_allclose(result.y.sum(0), t0.sum().item(), rtol=0, atol=1e-10)  # total heat
    assert abs(heat(0.0, torch.from_numpy(result.y[:, -1])).sum().item()) < 1e-12


@pytest.mark.parametrize("graph", small_graphs(), ids=["er", "multigraph"])
def test_jacobian_is_minus_laplacian(graph):
    d = torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    heat = HeatDiffusion(graph, d)
    temp = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    jac = heat.jacobian(0.0, temp)
    assert jac.layout == torch.sparse_csr
    flat = lambda y: heat(0.0, y.view_as(temp)).reshape(-1)  # noqa: E731
    expected = torch.autograd.functional.jacobian(flat, temp.reshape(-1))
    torch.testing.assert_close(jac.to_dense(), expected, rtol=0, atol=1e-12)
    w = torch.from_numpy(dense_weights(graph, d))
    dense = lambda y: w @ y - w.sum(1) * y  # noqa: E731
    expected = torch.func.jacrev(dense)(temp[:, 0])
    torch.testing.assert_close(heat.jacobian(0.0, temp[:, 0]).to_dense(), expected, rtol=0, atol=1e-12)


def test_batched_graph_equals_each_graph_alone():
    batched, graphs = batch_of_three()
    coeffs = HeatDiffusion.sample_coefficients(batched, generator=2)
    temp = HeatDiffusion.initial_state(batched, generator=3)
    out = HeatDiffusion(batched, **coeffs)(0.0, temp)
    pieces = zip(graphs, split_edges(coeffs["diffusivity"], graphs), split_nodes(temp, batched), strict=True)
    alone = [HeatDiffusion(g, d)(0.0, t) for g, d, t in pieces]
    torch.testing.assert_close(out, torch.cat(alone), rtol=0, atol=0)


def test_sampling_follows_the_paper_ranges_and_seeds():
    graph = erdos_renyi(150, 3.0, generator=0)
    d = HeatDiffusion.sample_coefficients(graph, generator=4)["diffusivity"]
    assert 0.1 <= d.min() and d.max() <= 2.0 and d.max() > 1.5  # NGS: U[0.1, 2.0]
    d2 = HeatDiffusion.sample_coefficients(graph, generator=4, ranges=GNRK_HEAT)["diffusivity"]
    assert 0.1 <= d2.min() and d2.max() <= 1.0
    torch.testing.assert_close(d, HeatDiffusion.sample_coefficients(graph, generator=4)["diffusivity"])
    t0 = HeatDiffusion.initial_state(graph, generator=torch.Generator().manual_seed(9))
    assert set(t0.unique().tolist()) <= {0.0, 1.0}
    assert 0.2 * 150 - 1 <= t0.sum() <= 0.8 * 150
    fixed = HeatDiffusion.initial_state(graph, generator=1, ranges=HeatRanges(hot_fraction=(0.3, 0.3)))
    assert fixed.sum() == 45  # floor(150 * 0.3)
    assert NGS_HEAT.diffusivity == (0.1, 2.0)


def test_hostile_inputs_name_the_argument():
    graph = erdos_renyi(10, 3.0, generator=0)
    with pytest.raises(ValueError, match="diffusivity must have shape"):
        HeatDiffusion(graph, torch.ones(graph.num_edges + 1, dtype=torch.float64))
    with pytest.raises(TypeError, match="diffusivity must be a floating"):
        HeatDiffusion(graph, torch.ones(graph.num_edges, dtype=torch.int64))
    heat = HeatDiffusion(graph, torch.ones(graph.num_edges, dtype=torch.float64))
    with pytest.raises(ValueError, match="y must be a floating tensor of shape"):
        heat(0.0, torch.ones(9, dtype=torch.float64))
    with pytest.raises(ValueError, match="hot_fraction must lie in"):
        HeatRanges(hot_fraction=(0.5, 1.5))
    with pytest.raises(ValueError, match="diffusivity must satisfy low <= high"):
        HeatRanges(diffusivity=(2.0, 1.0))
    nan_d = torch.ones(graph.num_edges, dtype=torch.float64).index_fill(0, torch.tensor([0]), float("nan"))
    with pytest.raises(ValueError, match="diffusivity must be finite"):
        HeatDiffusion(graph, nan_d)
    with pytest.raises(ValueError, match="diffusivity must be a pair of finite numbers"):
        HeatRanges(diffusivity=(0.1, float("inf")))
