"""2-D Burgers on grid graphs: GNRK's array formula, second-order convergence, batching, initial condition."""

import math

import numpy as np
import pytest
import torch

import fastsim
from fastsim.dynamics import Burgers2D
from fastsim.graphs import PeriodicGrid, periodic_grid

TWO_PI = 2 * math.pi


def gnrk_burgers(dx: np.ndarray, dy: np.ndarray, nu: float, field: np.ndarray) -> np.ndarray:
    """GNRK's `burgers_2d` on `[ny, nx, 2]` arrays: weighted central differences with `np.roll`."""
    hx, hy = np.meshgrid(dx, dy)  # [ny, nx]: spacing to the next point
    hx_m, hy_m = np.roll(hx, 1, axis=1), np.roll(hy, 1, axis=0)

    def derivs(f):
        fx_p = (np.roll(f, -1, axis=1) - f) / hx
        fx_m = np.roll(fx_p, 1, axis=1)
        fy_p = (np.roll(f, -1, axis=0) - f) / hy
        fy_m = np.roll(fy_p, 1, axis=0)
        fx = (hx_m * fx_p + hx * fx_m) / (hx + hx_m)
        fy = (hy_m * fy_p + hy * fy_m) / (hy + hy_m)
        lap = 2 * (fx_p - fx_m) / (hx + hx_m) + 2 * (fy_p - fy_m) / (hy + hy_m)
        return fx, fy, lap

    u, v = field[..., 0], field[..., 1]
    (ux, uy, ulap), (vx, vy, vlap) = derivs(u), derivs(v)
    return np.stack([-u * ux - v * uy + nu * ulap, -u * vx - v * vy + nu * vlap], axis=-1)


def smooth_grid(n: int, stretch: float = 0.5) -> PeriodicGrid:
    """Smoothly stretched spacings from `x(ξ) = ξ + stretch · sin(2πξ) / 2π`."""
    xi = torch.arange(n + 1, dtype=torch.float64) / n
    spacing = (xi + stretch * torch.sin(TWO_PI * xi) / TWO_PI).diff()
    return PeriodicGrid(spacing, spacing.flip(0).clone())


def analytic(pos: torch.Tensor, nu: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth periodic `(u, v)` and their exact Burgers right-hand side."""
    x, y = pos[:, 0] * TWO_PI, pos[:, 1] * TWO_PI
    u, ux, uy = (
        torch.sin(x) * torch.cos(y) + 0.5,
        TWO_PI * torch.cos(x) * torch.cos(y),
        -TWO_PI * torch.sin(x) * torch.sin(y),
    )
    v, vx, vy = (
        0.5 * torch.cos(x + 2 * y),
        -0.5 * TWO_PI * torch.sin(x + 2 * y),
        -TWO_PI * torch.sin(x + 2 * y),
    )
    ulap = -2 * TWO_PI**2 * (u - 0.5)
    vlap = -5 * TWO_PI**2 * v
    rhs = torch.stack([-u * ux - v * uy + nu * ulap, -u * vx - v * vy + nu * vlap], dim=1)
    return torch.stack([u, v], dim=1), rhs


def test_rhs_matches_gnrk_array_formula_on_a_random_non_uniform_grid():
    grid = periodic_grid(13, 9, spacing_delta=0.1, generator=0)
    graph = grid.graph()
    field = torch.randn(grid.num_nodes, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = Burgers2D(graph, torch.tensor([0.01], dtype=torch.float64))(0.0, field)
    expected = gnrk_burgers(grid.dx.numpy(), grid.dy.numpy(), 0.01, field.numpy().reshape(9, 13, 2))
    np.testing.assert_allclose(out.numpy(), expected.reshape(-1, 2), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["uniform", "smooth"])
def test_spatial_operator_converges_at_second_order(kind):
    errors = []
    for n in (24, 48, 96):
        grid = periodic_grid(n, n) if kind == "uniform" else smooth_grid(n)
        field, exact = analytic(grid.positions(), nu=0.05)
        out = Burgers2D(grid.graph(), torch.tensor([0.05], dtype=torch.float64))(0.0, field)
        errors.append((out - exact).abs().max().item())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 1.9), orders


def test_random_spacings_give_a_second_order_gradient_and_a_first_order_laplacian():
    grad_err, lap_err = [], []
    for n in (32, 64, 128):
        grid = periodic_grid(n, n, spacing_delta=0.1, generator=n)  # GNRK dataset III spacings
        pos = grid.positions() * TWO_PI
        f = torch.sin(pos[:, 0]) * torch.cos(pos[:, 1])
        gx, _, lap = Burgers2D(grid.graph(), torch.ones(1, dtype=torch.float64)).derivatives(f[:, None])
        grad_err.append((gx[:, 0] - TWO_PI * torch.cos(pos[:, 0]) * torch.cos(pos[:, 1])).abs().max().item())
        lap_err.append((lap[:, 0] + 2 * TWO_PI**2 * f).abs().max().item())
    grad_order = np.log2(grad_err[0] / grad_err[-1]) / 2
    lap_order = np.log2(lap_err[0] / lap_err[-1]) / 2
    assert grad_order > 1.8 and 0.8 < lap_order < 1.3, (grad_order, lap_order)


def test_batched_grids_equal_each_grid_alone():
    grids = [periodic_grid(6, 5, spacing_delta=0.1, generator=2), periodic_grid(4, 7)]
    graphs = [g.graph() for g in grids]
    batched = fastsim.Graph.batch_graphs(graphs)
    nu = Burgers2D.sample_coefficients(batched, generator=3)["nu"]
    positions = torch.cat([g.positions() for g in grids])
    field = Burgers2D.initial_state(batched, generator=4, positions=positions)
    out = Burgers2D(batched, nu)(0.0, field)
    parts = torch.split(field, [30, 28])
    alone = [Burgers2D(g, nu[k : k + 1])(0.0, p) for k, (g, p) in enumerate(zip(graphs, parts, strict=True))]
    torch.testing.assert_close(out, torch.cat(alone), rtol=0, atol=1e-13)


def test_initial_state_is_gnrk_normalised_and_seeded():
    grid = periodic_grid(20, 16)
    graph = grid.graph()
    field = Burgers2D.initial_state(graph, generator=5, positions=grid.positions())
    torch.testing.assert_close(field.abs().amax(0), torch.ones(2, dtype=torch.float64))
    again = Burgers2D.initial_state(graph, generator=5, positions=grid.positions())
    torch.testing.assert_close(field, again, rtol=0, atol=0)
    nu = Burgers2D.sample_coefficients(graph, generator=6)["nu"]
    assert 0.005 <= nu.item() <= 0.02


def test_hostile_inputs():
    grid = periodic_grid(5, 4)
    nu = torch.tensor([0.01], dtype=torch.float64)
    with pytest.raises(ValueError, match="nu must have shape"):
        Burgers2D(grid.graph(), torch.tensor([0.01, 0.02], dtype=torch.float64))
    plain = fastsim.Graph.from_edge_index(grid.graph().edge_index(), grid.num_nodes)
    with pytest.raises(ValueError, match="grid graph with spacing vectors"):
        Burgers2D(plain, nu)
    g = grid.graph()
    bad = fastsim.Graph.from_edge_index(g.edge_index(), g.num_nodes, edge_attr=g.to_caller_order(g.edge_attr).abs() + 1)
    with pytest.raises(ValueError, match=r"\[dx, 0\] or \[0, dy\]"):
        Burgers2D(bad, nu)
    with pytest.raises(ValueError, match=r"y must have shape \(20, 2\)"):
        Burgers2D(g, nu)(0.0, torch.zeros(20, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="nu must be finite"):
        Burgers2D(g, torch.tensor([float("inf")], dtype=torch.float64))
    for lengths in ((0.0, 1.0), (1.0, float("inf")), (1.0, -2.0), 1.0, (1.0, 2.0, 3.0)):  # (0, 1) gave NaN fields
        with pytest.raises(ValueError, match="lengths must be a pair of finite numbers > 0"):
            Burgers2D.initial_state(g, 0, positions=grid.positions(), lengths=lengths)
    positions = grid.positions().clone()
    positions[0, 0] = float("nan")
    with pytest.raises(ValueError, match="positions must be finite"):
        Burgers2D.initial_state(g, 0, positions=positions)
