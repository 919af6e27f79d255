"""pytest-benchmark of the GNRK Burgers model: fastsim vs the same model in plain PyG/torch, and vs the solver.

Run `pytest bench/bench_gnrk.py` (a 100×100 periodic grid, the 10,882-parameter model, RK4) or with
`FASTSIM_BENCH_SMOKE=1` (16×16, one round: a check of the harness). Three groups: a training step (forward,
MSE on the slope, backward), a rollout of `STEPS` steps, and the rollout against the numerical Burgers solver
(finite differences + RK4 through `fastsim.odeint`) on the same grid and steps. The plain version
(`PlainGNRK`) uses the same weights with per-edge gathers and concatenations, `torch_geometric.utils.scatter`
and separate stage arithmetic, as the reference code does; its outputs are checked against fastsim's first.
`python -m bench.gnrk_report` writes the "gnrk" section of bench/RESULTS.md.
"""

from __future__ import annotations

import functools
import os

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from bench.plain import aten_ops
from fastsim.dynamics.burgers2d import Burgers2D
from fastsim.graph import Graph
from fastsim.graphs.grid import periodic_grid
from fastsim.models.gnrk import GNRK

SMOKE = os.environ.get("FASTSIM_BENCH_SMOKE", "") not in ("", "0")
GRID = 16 if SMOKE else 100
STEPS = 5 if SMOKE else 50
ROUNDS = 1 if SMOKE else 3
DT = 1e-3


def _scatter(values: Tensor, index: Tensor, size: int) -> Tensor:
    from torch_geometric.utils import scatter

    return scatter(values, index, dim=0, dim_size=size, reduce="sum")


def plain_inputs(graph: Graph) -> dict[str, Tensor | int]:
    """What the plain version reads: `row`, `col` (edges in CSR order), spacing `edge_attr`, `batch`, `N`."""
    return {
        "row": graph.src,
        "col": graph.dst,
        "edge_attr": graph.edge_attr,
        "batch": graph.batch,
        "N": graph.num_nodes,
    }


class PlainGNRK(nn.Module):
    """The GNRK Burgers model with `model`'s weights, written as the reference code is: gather, cat, MLP,
    scatter, the encoders run inside every evaluation of f (`cache_encodings=False`, as the reference does) or
    once per step, and the stage states `x + dt · Σ a_ij k_j` as separate tensor operations."""

    def __init__(self, model: GNRK, cache_encodings: bool = False) -> None:
        super().__init__()
        self.model, self.net, self.cache_encodings = model, model.approximator, cache_encodings

    @staticmethod
    def _mlp(mlp: nn.Module, x: Tensor) -> Tensor:
        return mlp.finish(mlp.first(x))

    def f(self, x: Tensor, inp: dict, nu: Tensor, ctx: dict | None) -> Tensor:
        net, row, col, n = self.net, inp["row"], inp["col"], inp["N"]
        ctx = ctx if ctx is not None else self.context(inp, nu)
        h = net.state_encoder(x)
        e1 = self._mlp(net.phi_e1, torch.cat([h[row], h[col], ctx["inv_spacing"]], 1))
        bar1_plus, bar1_minus = _scatter(e1, row, n), _scatter(e1, col, n)
        w1 = self._mlp(net.phi_v1, torch.cat([bar1_plus, bar1_minus, ctx["inv_double"]], 1))
        e2_plus = self._mlp(net.phi_e2, torch.cat([ctx["spacing"], bar1_plus[col]], 1))
        e2_minus = self._mlp(net.phi_e2, torch.cat([ctx["spacing"], bar1_minus[row]], 1))
        bar2_plus, bar2_minus = _scatter(e2_plus, col, n), _scatter(e2_minus, row, n)
        w2 = self._mlp(net.phi_v2, torch.cat([bar2_plus, bar2_minus, ctx["inv_double"]], 1))
        return net.decoder(self._mlp(net.phi_ext, torch.cat([h, w2, ctx["nu"], w1], 1)))

    def context(self, inp: dict, nu: Tensor) -> dict:
        net, spacing = self.net, inp["edge_attr"].to(nu.dtype)
        inv = torch.nan_to_num(1.0 / spacing, posinf=0.0)
        double = _scatter(spacing, inp["row"], inp["N"]) + _scatter(spacing, inp["col"], inp["N"])
        return {
            "spacing": net.spacing_encoder(spacing),
            "inv_spacing": net.inverse_encoder(inv),
            "inv_double": net.inverse_encoder(1.0 / double),
            "nu": net.nu_encoder(nu[:, None]).repeat(1, net.nu_copies)[inp["batch"]],
        }

    def forward(self, x: Tensor, dt: Tensor, inp: dict, nu: Tensor) -> Tensor:
        tableau = self.model.tableau
        ks: list[Tensor] = []
        with aten_ops():
            ctx = self.context(inp, nu) if self.cache_encodings else None
            for a_row in tableau.a:
                state = x
                for a, k in zip(a_row, ks):
                    if a:
                        state = state + dt[:, None] * (a * k)
                ks.append(self.f(state, inp, nu, ctx))
        total = sum(tableau.b)
        return sum((b / total) * k for b, k in zip(tableau.b, ks))

    @torch.no_grad()
    def rollout(self, x: Tensor, dt: Tensor, inp: dict, nu: Tensor, steps: int) -> Tensor:
        for _ in range(steps):
            x = x + dt[:, None] * self(x, dt, inp, nu)
        return x


def workload(grid: int = GRID, seed: int = 0):
    """`(model, plain, graph, inputs, x0, target slope, dt, nu)` on a `grid`×`grid` periodic grid, float32."""
    torch.manual_seed(seed)
    spacing = periodic_grid(grid, grid, dtype=torch.float32)
    graph = spacing.graph()
    x0 = Burgers2D.initial_state(graph, seed, positions=spacing.positions(), lengths=spacing.lengths).float()
    nu = torch.tensor([0.01])
    target = Burgers2D(graph, nu)(0.0, x0)
    model = GNRK.for_system("burgers", tableau="rk4")
    dt = torch.full((graph.num_nodes,), DT)
    plain = {"reference": PlainGNRK(model), "cached": PlainGNRK(model, cache_encodings=True)}
    return model, plain, graph, plain_inputs(graph), x0, target, dt, nu


def fastsim_train_step(w) -> None:
    model, _, graph, _, x0, target, dt, nu = w
    F.mse_loss(model(x0, dt, graph, nu=nu), target).backward()


def plain_train_step(w, variant: str = "reference") -> None:
    _, plain, _, inp, x0, target, dt, nu = w
    F.mse_loss(plain[variant](x0, dt, inp, nu), target).backward()


def fastsim_rollout(w) -> Tensor:
    model, _, graph, _, x0, _, _, nu = w
    return model.rollout(x0, torch.full((1, STEPS), DT), graph, nu=nu)[-1]


def plain_rollout(w, variant: str = "reference") -> Tensor:
    _, plain, _, inp, x0, _, dt, nu = w
    return plain[variant].rollout(x0, dt, inp, nu, STEPS)


def solver_rollout(w) -> Tensor:
    from fastsim.solvers import odeint

    _, _, graph, _, x0, _, _, nu = w
    times = torch.arange(STEPS + 1, dtype=torch.float64, device=x0.device) * DT
    return odeint(Burgers2D(graph, nu), x0, times, method="rk4")[-1]


PLAIN, PLAIN_CACHED = "plain PyG/torch (reference structure)", "plain PyG/torch, encodings cached per step"
IMPLS = {
    "train step": {
        "fastsim": fastsim_train_step,
        PLAIN: plain_train_step,
        PLAIN_CACHED: functools.partial(plain_train_step, variant="cached"),
    },
    "rollout": {
        "fastsim": fastsim_rollout,
        PLAIN: plain_rollout,
        PLAIN_CACHED: functools.partial(plain_rollout, variant="cached"),
        "numerical solver (FD + RK4)": solver_rollout,
    },
}
_medians: dict[tuple[str, str], float] = {}
_workload: list = []


def _get():
    if not _workload:
        _workload.append(workload())
    return _workload[0]


@pytest.mark.parametrize("group, impl", [(g, i) for g, impls in IMPLS.items() for i in impls])
def test_gnrk(benchmark, group: str, impl: str) -> None:
    pytest.importorskip("pytest_benchmark")
    w = _get()
    if group == "rollout" and impl == PLAIN:
        torch.testing.assert_close(plain_rollout(w), fastsim_rollout(w), rtol=1e-4, atol=1e-4)
    benchmark.group = f"GNRK Burgers {GRID}x{GRID}, {group}" + (f", {STEPS} steps" if group == "rollout" else "")
    benchmark.pedantic(IMPLS[group][impl], args=(w,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _medians[(group, impl)] = benchmark.stats.stats.median
    base = _medians.get((group, "fastsim"))
    if base:
        benchmark.extra_info["ratio"] = _medians[(group, impl)] / base
