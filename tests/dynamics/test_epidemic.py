"""SIS and SIR individual-based mean-field epidemics: dense formulas, conservation, Jacobians, batching."""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from fastsim.dynamics import SIR, SIS, EpidemicRanges
from fastsim.graphs import erdos_renyi
from tests.dynamics.dense_reference import (
    batch_of_three,
    dense_weights,
    small_graphs,
    split_edges,
    split_nodes,
)


@pytest.mark.parametrize("graph", small_graphs(), ids=["er", "multigraph"])
def test_rhs_match_dense_formulas(graph):
    coeffs = SIS.sample_coefficients(graph, generator=0)
    beta = dense_weights(graph, coeffs["infection_rate"])
    gamma = coeffs["recovery_rate"].numpy()
    rho = torch.rand(graph.num_nodes, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = rho.numpy()
    np.testing.assert_allclose(SIS(graph, **coeffs)(0.0, rho).numpy(), -gamma * r + (1 - r) * (beta @ r), atol=1e-12)
    state = torch.rand(graph.num_nodes, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    state = state / state.sum(1, keepdim=True)
    s, i, _ = state.numpy().T
    expected = np.stack([-s * (beta @ i), s * (beta @ i) - gamma * i, gamma * i], axis=1)
    np.testing.assert_allclose(SIR(graph, **coeffs)(0.0, state).numpy(), expected, rtol=0, atol=1e-12)


def test_sir_conserves_each_node_and_sis_stays_in_the_unit_interval():
    graph = erdos_renyi(60, 4.0, generator=2)
    coeffs = SIR.sample_coefficients(graph, generator=3)
    sir, sis = SIR(graph, **coeffs), SIS(graph, **coeffs)
    y0 = SIR.initial_state(graph, generator=4)
    assert torch.all(y0.sum(1) == 1) and 0 < y0[:, 1].sum() < 60
    fun = lambda t, y: sir(t, torch.from_numpy(y).view(-1, 3)).reshape(-1).numpy()  # noqa: E731
    sol = solve_ivp(fun, (0.0, 20.0), y0.reshape(-1).numpy(), method="DOP853", rtol=1e-10, atol=1e-12)
    states = sol.y.reshape(60, 3, -1)
    np.testing.assert_allclose(states.sum(1), 1.0, rtol=0, atol=1e-10)  # S + I + R = 1 at every node
    assert np.all(np.diff(states[:, 2], axis=1) >= -1e-12)  # R never decreases
    assert sir(0.0, y0).sum(1).abs().max() < 1e-15
    rho0 = SIS.initial_state(graph, generator=4)
    fun = lambda t, y: sis(t, torch.from_numpy(y)).numpy()  # noqa: E731
    sol = solve_ivp(fun, (0.0, 50.0), rho0.numpy(), method="DOP853", rtol=1e-10, atol=1e-12)
    assert sol.y.min() >= -1e-12 and sol.y.max() <= 1 + 1e-12


@pytest.mark.parametrize("graph", small_graphs(), ids=["er", "multigraph"])
def test_jacobians_match_autograd_and_jacrev(graph):
    coeffs = SIS.sample_coefficients(graph, generator=5)
    beta = torch.from_numpy(dense_weights(graph, coeffs["infection_rate"]))
    gamma = coeffs["recovery_rate"]
    sis, sir = SIS(graph, **coeffs), SIR(graph, **coeffs)
    rho = torch.rand(graph.num_nodes, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    jac = sis.jacobian(0.0, rho).to_dense()
    torch.testing.assert_close(jac, torch.autograd.functional.jacobian(lambda y: sis(0.0, y), rho), atol=1e-12, rtol=0)
    dense_sis = lambda r: -gamma * r + (1 - r) * (beta @ r)  # noqa: E731
    torch.testing.assert_close(jac, torch.func.jacrev(dense_sis)(rho), rtol=0, atol=1e-12)
    state = torch.rand(graph.num_nodes, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)

    def dense_sir(flat):
        s, i, _ = flat.view(-1, 3).unbind(1)
        new = s * (beta @ i)
        return torch.stack([-new, new - gamma * i, gamma * i], 1).reshape(-1)

    jac = sir.jacobian(0.0, state)
    assert jac.layout == torch.sparse_csr
    torch.testing.assert_close(jac.to_dense(), torch.func.jacrev(dense_sir)(state.reshape(-1)), rtol=0, atol=1e-12)


def test_batched_graph_equals_each_graph_alone():
    batched, graphs = batch_of_three()
    coeffs = SIR.sample_coefficients(batched, generator=8)
    betas = split_edges(coeffs["infection_rate"], graphs)
    gammas = split_nodes(coeffs["recovery_rate"], batched)
    for cls in (SIS, SIR):
        y = cls.initial_state(batched, generator=9)
        out = cls(batched, **coeffs)(0.0, y)
        parts = zip(graphs, betas, gammas, split_nodes(y, batched), strict=True)
        torch.testing.assert_close(out, torch.cat([cls(g, b, c)(0.0, p) for g, b, c, p in parts]), rtol=0, atol=0)


def test_sampling_ranges_and_hostile_inputs():
    graph = erdos_renyi(500, 3.0, generator=0)
    coeffs = SIS.sample_coefficients(graph, generator=1, ranges=EpidemicRanges(infection=(0.2, 0.3)))
    assert 0.2 <= coeffs["infection_rate"].min() and coeffs["infection_rate"].max() <= 0.3
    seeds = SIS.initial_state(graph, generator=2)
    assert 0.05 * 500 - 1 <= seeds.sum() <= 0.2 * 500
    with pytest.raises(ValueError, match="recovery_rate must have shape"):
        SIS(graph, coeffs["infection_rate"], torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="infection_rate must have shape"):
        SIR(graph, coeffs["recovery_rate"], coeffs["recovery_rate"])
    with pytest.raises(ValueError, match="infected_fraction must lie in"):
        EpidemicRanges(infected_fraction=(0.1, 2.0))
    with pytest.raises(ValueError, match="infection must lie in"):
        EpidemicRanges(infection=(-0.1, 0.2))
    inf_gamma = coeffs["recovery_rate"].clone().fill_(float("inf"))
    with pytest.raises(ValueError, match="recovery_rate must be finite"):
        SIS(graph, coeffs["infection_rate"], inf_gamma)
    with pytest.raises(ValueError, match="infection_rate must be finite"):
        SIR(graph, coeffs["infection_rate"] * float("nan"), coeffs["recovery_rate"])
    with pytest.raises(ValueError, match="recovery must be a pair of finite numbers"):
        EpidemicRanges(recovery=(0.1, float("nan")))
