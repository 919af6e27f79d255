"""GNRK: parameter counts, the RK module against the solver, order of accuracy per tableau, rollouts, hostile input."""

import math

import pytest
import torch
from torch import nn

from fastsim.dynamics.burgers2d import Burgers2D
from fastsim.graph import Graph
from fastsim.graphs.grid import periodic_grid
from fastsim.models import GNRK, FNO2d
from fastsim.models.gnrk import resolve_tableau
from fastsim.solvers import odeint
from fastsim.solvers.tableaux import heun


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_burgers_parameter_counts_match_paper_and_released_code():
    assert count(GNRK.for_system("burgers")) == 10_882  # the paper: ν encoded once
    assert count(GNRK.for_system("burgers", nu_copies=2)) == 11_138  # the released code repeats ν


def test_fno_counts_and_shapes():
    fno = FNO2d(3, 2, width=16, modes=8, layers=4)
    assert count(fno) == 264_514
    assert fno(torch.randn(2, 3, 32, 24)).shape == (2, 2, 32, 24)


class TrueBurgers(nn.Module):
    """The exact right-hand side in place of f_θ."""

    def prepare(self, graph, nu):
        return {"system": Burgers2D(graph, nu)}

    def forward(self, graph, x, context):
        return context["system"](0.0, x)


class LinearRHS(nn.Module):
    """f(x) = λ x: a linear `f_θ` for the order test."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = nn.Parameter(torch.tensor(rate, dtype=torch.float64))

    def prepare(self, graph, node, edge, glob):
        return {}

    def forward(self, graph, x, context):
        return self.rate * x


def burgers_setup(nx=12, ny=10, delta=0.1):
    grid = periodic_grid(nx, ny, spacing_delta=delta, generator=3)
    graph = grid.graph()
    y0 = Burgers2D.initial_state(graph, 4, positions=grid.positions(), lengths=grid.lengths)
    return graph, y0, torch.tensor([0.01], dtype=torch.float64)


@pytest.mark.parametrize("name, method", [("rk1", "euler"), ("rk2", "heun"), ("rk4", "rk4")])
def test_true_rhs_reproduces_the_solver_step(name, method):
    graph, y0, nu = burgers_setup()
    model = GNRK("burgers", TrueBurgers(), tableau=name)
    dt = 2e-3
    ours = model.step(y0, dt, graph, nu=nu)
    theirs = odeint(Burgers2D(graph, nu), y0, torch.tensor([0.0, dt], dtype=torch.float64), method=method)[1]
    torch.testing.assert_close(ours, theirs, rtol=1e-13, atol=1e-14)
    slope = model(y0, dt, graph, nu=nu)  # the averaged slope: x_new = x + dt · slope
    torch.testing.assert_close(y0 + dt * slope, theirs, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("tableau, order", [("rk1", 1), ("euler", 1), ("rk2", 2), (heun, 2), ("rk4", 4)])
def test_tableau_sets_the_measured_order(tableau, order):
    graph = Graph.from_edge_index(torch.tensor([[0, 1], [1, 0]]), 2)
    model = GNRK("heat", LinearRHS(-1.3), tableau=tableau)
    x0 = torch.tensor([[1.0], [0.5]], dtype=torch.float64)
    diffusivity = torch.ones(2, dtype=torch.float64)

    def error(steps: int) -> float:
        dts = torch.full((1, steps), 1.0 / steps, dtype=torch.float64)
        end = model.rollout(x0, dts, graph, diffusivity=diffusivity)[-1]
        return float((end - x0 * math.exp(-1.3)).abs().max())

    slope = math.log2(error(40) / error(80))
    assert abs(slope - order) < 0.1, slope


def test_rollout_shapes_and_non_uniform_steps():
    torch.manual_seed(0)
    graphs = [periodic_grid(6, 5, spacing_delta=0.1, generator=k).graph() for k in range(2)]
    graph = Graph.batch_graphs(graphs)
    model = GNRK.for_system("burgers", tableau="rk2").double()
    nu = torch.tensor([0.01, 0.02], dtype=torch.float64)
    x0 = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    dts = torch.tensor([[1e-3, 2e-3, 1.5e-3], [3e-3, 1e-3, 0.5e-3]], dtype=torch.float64)
    traj = model.rollout(x0, dts, graph, nu=nu)
    assert traj.shape == (4, graph.num_nodes, 2)
    x = x0
    for s in range(3):  # the same as stepping by hand with each graph's own step broadcast to its nodes
        x = model.step(x, dts[:, s][graph.batch], graph, nu=nu)
        torch.testing.assert_close(traj[s + 1], x)


@pytest.mark.parametrize("system, state", [("heat", 1), ("kuramoto", 1), ("rossler", 3)])
def test_graph_systems_forward(system, state):
    graph = Graph.from_edge_index(torch.tensor([[0, 1, 2, 1], [1, 0, 1, 2]]), 3)
    coefficients = {
        "heat": {"diffusivity": torch.rand(4)},
        "kuramoto": {"omega": torch.randn(3), "coupling": torch.rand(4)},
        "rossler": {"a": torch.rand(1), "b": torch.rand(1), "c": torch.rand(1), "coupling": torch.rand(4)},
    }[system]
    model = GNRK.for_system(system, tableau="rk4")
    assert model(torch.randn(3, state), 0.02, graph, **coefficients).shape == (3, state)


def test_tableau_switch_at_test_time():
    model = GNRK.for_system("heat", tableau="rk1")
    assert model.tableau.name == "euler"
    model.tableau = "rk4"
    assert model.tableau.num_stages == 4
    assert resolve_tableau("RK2").name == "heun"


def test_hostile_input():
    graph, y0, nu = burgers_setup(6, 5)
    model = GNRK.for_system("burgers").double()
    with pytest.raises(ValueError, match="unknown tableau 'rk9'.*valid names: .*rk1"):
        GNRK.for_system("burgers", tableau="rk9")
    with pytest.raises(ValueError, match="unknown tableau"):
        model.tableau = "nope"
    with pytest.raises(ValueError, match="system must be one of"):
        GNRK.for_system("navier_stokes")
    with pytest.raises(ValueError, match="x must have shape"):
        model(y0[:-1], 1e-3, graph, nu=nu)
    with pytest.raises(ValueError, match="x must have shape"):
        model(y0[:, :1], 1e-3, graph, nu=nu)
    for dt in (0.0, -1e-3, float("nan")):
        with pytest.raises(ValueError, match="dt must be finite and > 0"):
            model(y0, dt, graph, nu=nu)
    with pytest.raises(ValueError, match=r"dt must be a number or a \(30,\)"):
        model(y0, torch.full((7,), 1e-3, dtype=torch.float64), graph, nu=nu)
    with pytest.raises(ValueError, match="dts must be finite and > 0"):
        model.rollout(y0, torch.tensor([[1e-3, -1e-3]], dtype=torch.float64), graph, nu=nu)
    with pytest.raises(ValueError, match="dts must be a"):
        model.rollout(y0, torch.full((3,), 1e-3), graph, nu=nu)
    bad = graph.edge_attr.clone()
    bad[0] = -bad[0]
    with pytest.raises(ValueError, match="spacings must be finite and > 0"):
        model(y0, 1e-3, Graph.from_csr(graph.indptr, graph.src, edge_attr=bad), nu=nu)
    with pytest.raises(ValueError, match="grid graph"):
        model(y0, 1e-3, Graph.from_csr(graph.indptr, graph.src), nu=nu)
    # node 1's second incoming edge moved to start at node 7: node 7 has 3 outgoing edges, its old source 1
    src = graph.src.clone()
    src[graph.indptr[1] + 1] = 7
    moved = Graph.from_csr(graph.indptr, src, edge_attr=graph.edge_attr)
    with pytest.raises(ValueError, match="2 incoming and 2 outgoing"):
        model(y0, 1e-3, moved, nu=nu)
    with pytest.raises(ValueError, match="takes coefficients"):
        model(y0, 1e-3, graph, viscosity=nu)
    with pytest.raises(ValueError, match=r"'nu' must be a \(1,\)"):
        model(y0, 1e-3, graph, nu=torch.tensor([0.01, 0.02], dtype=torch.float64))
    with pytest.raises(ValueError, match="nu must be > 0"):
        model(y0, 1e-3, graph, nu=torch.tensor([0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="nu_copies"):
        GNRK.for_system("burgers", nu_copies=3)
