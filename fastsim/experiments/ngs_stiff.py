"""NGS's stiff-Kuramoto speed-up (paper Fig. 4): solvers on the thresholded Kuramoto system vs an NGS rollout.

The thresholded Kuramoto model (`fastsim.dynamics.stiff.ThresholdedKuramoto`) keeps the coupling of a pair only
while its phase difference is within θ_th of π/2 or 3π/2; its right-hand side jumps whenever a pair crosses that
band, which makes it stiff for small θ_th. The paper integrates it with scipy LSODA and compares against one NGS
rollout whose message-passing graph is the same thresholded graph (`phase_threshold_graph`); every method is scored
against the exact all-to-all trajectories, which the thresholded system only approximates (ngs_gnrk.md §1.6).

Per all-to-all trajectory (`StiffCase`, from a `fastsim simulate kuramoto_mean_field` file) and threshold,
`compare_at_threshold` runs
- scipy LSODA with the analytic Jacobian, stepped by hand so a wall-time cap can stop it (`lsoda`);
- fastsim's fused Rodas5(4) (`solve_stiff_ensemble`), one trajectory per call, bounded by `max_steps`;
- the NGS rollout over the trajectory's own 20 steps (one forward pass each), batch 1,
and reports NFEV, wall time, the time reached and the MAE over the output times after t = 0 (NaN for a run that
stopped early). `summarize` averages them per threshold and method and forms the speed-up ratios.
"""

import dataclasses
import math
import os
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.integrate import LSODA
from torch import Tensor

from fastsim.datasets import load_dataset
from fastsim.dynamics.stiff import ThresholdedKuramoto
from fastsim.graph import Graph
from fastsim.models.ngs import NeuralGraphSimulator
from fastsim.solvers import solve_stiff_ensemble

__all__ = [
    "METHODS",
    "PAPER_FIG4",
    "THRESHOLDS",
    "SolverRun",
    "StiffCase",
    "compare_at_threshold",
    "load_cases",
    "lsoda",
    "ngs_rollout",
    "rodas5",
    "summarize",
    "with_threshold",
]

THRESHOLDS = {"π/2": math.pi / 2, "π/3": math.pi / 3, "π/4": math.pi / 4, "π/6": math.pi / 6}
METHODS = ("scipy LSODA", "fastsim Rodas5", "NGS")
# Fig. 4 of the paper read off its log-scale bars (ngs_gnrk.md §1.6): LSODA NFEV, LSODA s, NGS s, LSODA MAE, NGS MAE.
PAPER_FIG4 = {
    "π/2": (5e2, 1.6e-2, 4.3e-2, math.nan, 6e-4),
    "π/3": (5e7, 5e3, 4e-2, 6e-3, 7e-4),
    "π/4": (5e7, 7e3, 3.8e-2, 1.4e-2, 9.5e-4),
    "π/6": (2e8, 1.4e4, 3.6e-2, 2.4e-2, 1.35e-3),
}


@dataclasses.dataclass(frozen=True)
class StiffCase:
    """One all-to-all Kuramoto trajectory: `omega (N,)`, coupling `K`, output `times (T,)` and the exact
    trajectory `truth (T, N)` (float64; `truth[0]` is the initial phase)."""

    index: int
    omega: Tensor
    coupling: float
    times: Tensor
    truth: Tensor

    @property
    def num_nodes(self) -> int:
        return self.omega.numel()


@dataclasses.dataclass(frozen=True)
class SolverRun:
    """One integration: `states (T, N)` (NaN at output times not reached), NFEV, wall time in seconds, the time
    reached and whether the run reached the last output time."""

    states: np.ndarray
    nfev: int
    wall_s: float
    t_reached: float
    finished: bool


def load_cases(path: str | os.PathLike, indices: list[int]) -> list[StiffCase]:
    """The trajectories `indices` of a `kuramoto_mean_field` dataset file."""
    dataset = load_dataset(path)
    if dataset.system_name != "kuramoto_mean_field":
        raise ValueError(f"{path} holds {dataset.system_name!r} data; need 'kuramoto_mean_field'")
    cases = []
    for i in indices:
        s = dataset[i]
        c = s.coefficients
        cases.append(StiffCase(i, c["omega"], float(c["coupling"][0]), s.times, s.trajectory.to(torch.float64)))
    return cases


def _numpy_system(system: ThresholdedKuramoto) -> tuple[Callable, Callable]:
    """`f(t, y)` and `jac(t, y)` on numpy arrays for scipy, through the module's own right-hand side and Jacobian."""
    return (
        lambda t, y: system(t, torch.from_numpy(y)).numpy(),
        lambda t, y: system.jacobian(t, torch.from_numpy(y)).numpy(),
    )


def lsoda(
    system: ThresholdedKuramoto, y0: Tensor, times: Tensor, rtol: float, atol: float, time_limit: float
) -> SolverRun:
    """scipy LSODA from `y0` over `times` with the analytic Jacobian, stopped once it has run `time_limit` seconds.

    The solver is stepped by hand (what `solve_ivp` does, plus the clock check between steps); outputs come from
    its dense output. A capped run is not finished and its wall time is a lower bound of the full run's."""
    f, jac = _numpy_system(system)
    t = times.numpy()
    states = np.full((len(t), y0.numel()), np.nan)
    states[0] = y0.numpy()
    solver = LSODA(f, t[0], states[0], t[-1], rtol=rtol, atol=atol, jac=jac)
    k, start = 1, time.perf_counter()
    while solver.status == "running" and time.perf_counter() - start < time_limit:
        solver.step()
        if k < len(t) and t[k] <= solver.t:
            dense = solver.dense_output()
            while k < len(t) and t[k] <= solver.t:
                states[k] = dense(t[k])
                k += 1
    wall = time.perf_counter() - start
    return SolverRun(states, solver.nfev, wall, float(solver.t), solver.status == "finished" and k == len(t))


def rodas5(
    system: ThresholdedKuramoto, y0: Tensor, times: Tensor, rtol: float, atol: float, max_steps: int
) -> SolverRun:
    """fastsim's fused Rodas5(4) (`solve_stiff_ensemble`) on one trajectory, at most `max_steps` attempted steps."""
    start = time.perf_counter()
    sol = solve_stiff_ensemble(system, y0[None], times, rtol=rtol, atol=atol, max_steps=max_steps)
    wall = time.perf_counter() - start
    return SolverRun(sol.ys[:, 0].numpy(), int(sol.stats.nfev[0]), wall, float(sol.stats.t_final[0]), sol.success)


def with_threshold(model: NeuralGraphSimulator, threshold: float) -> NeuralGraphSimulator:
    """A copy of a Kuramoto NGS whose message-passing graph uses θ_th = `threshold` (same weights)."""
    args = model.model_args() | {"threshold": threshold}
    copy = NeuralGraphSimulator(args["system"], args["emb_dim"], args["depth"], args["threshold"])
    copy.load_state_dict(model.state_dict())
    return copy.to(next(model.parameters()).device).eval()


def ngs_rollout(model: NeuralGraphSimulator, case: StiffCase, repeats: int = 3) -> SolverRun:
    """The NGS rollout over the case's own steps, one trajectory (batch 1): the best wall time of `repeats` runs
    after one warm-up run, each including the coefficient encoding. NFEV = the number of forward passes."""
    # Kuramoto NGS builds its own edges every step; the input graph only fixes the N nodes of one population.
    n = case.num_nodes
    graph = Graph.from_csr(torch.zeros(n + 1, dtype=torch.long), torch.zeros(0, dtype=torch.long), n)
    inputs = {
        "state": case.truth[0].float(),
        "dts": case.times.diff().float(),
        "node": case.omega.float()[:, None],
        "glob": torch.tensor([[case.coupling / case.num_nodes]]),
    }
    model.rollout(graph, **inputs)
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        states = model.rollout(graph, **inputs)
        walls.append(time.perf_counter() - start)
    t = float(case.times[-1])
    return SolverRun(states.double().numpy(), len(case.times) - 1, min(walls), t, True)


def _mae(run: SolverRun, case: StiffCase) -> float:
    """MAE against the exact trajectory over the output times after t = 0; NaN for a run that did not finish."""
    return float(np.abs(run.states[1:] - case.truth[1:].numpy()).mean()) if run.finished else math.nan


def compare_at_threshold(
    model: NeuralGraphSimulator | None,
    cases: list[StiffCase],
    label: str,
    threshold: float,
    *,
    rtol: float = 1e-11,
    atol: float = 1e-11,
    time_limit: float = 60.0,
    max_steps: int = 10**6,
    repeats: int = 3,
    methods: tuple[str, ...] = METHODS,
) -> list[dict]:
    """LSODA, fused Rodas5 and NGS (those of `methods`) on the thresholded system of every case; one row per
    (case, method).

    `model` may be None when `methods` leaves out NGS. Rows: threshold label and value, sample index, N,
    method, rtol, atol (NaN for NGS), finished, nfev, wall_s, t_reached, t_end, mae (against the exact
    all-to-all trajectory; NaN when not finished)."""
    if not set(methods) <= set(METHODS):
        raise ValueError(f"methods must be among {METHODS}; got {methods}")
    if model is None and "NGS" in methods:
        raise ValueError("model is None; NGS rows need a trained Kuramoto NGS")
    net = None if model is None else with_threshold(model, threshold)

    def integrate(method: str, case: StiffCase) -> SolverRun:
        system = ThresholdedKuramoto(case.omega, case.coupling, threshold)
        if method == METHODS[0]:
            return lsoda(system, case.truth[0], case.times, rtol, atol, time_limit)
        if method == METHODS[1]:
            return rodas5(system, case.truth[0], case.times, rtol, atol, max_steps)
        return ngs_rollout(net, case, repeats)

    rows = []
    for case in cases:
        for method in methods:
            run = integrate(method, case)
            tolerances = (rtol, atol) if method != "NGS" else (math.nan, math.nan)
            rows.append({
                "threshold": label, "theta_th": threshold, "sample": case.index, "N": case.num_nodes,
                "method": method, "rtol": tolerances[0], "atol": tolerances[1], "finished": run.finished,
                "nfev": run.nfev, "wall_s": run.wall_s, "t_reached": run.t_reached, "t_end": float(case.times[-1]),
                "mae": _mae(run, case),
            })  # fmt: skip
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Per (threshold, method): trajectories, finished count, mean NFEV, mean wall time (a lower bound when a run
    was stopped), mean t reached, mean MAE over the finished runs, the ratio of its mean wall time to NGS's (NaN
    without NGS rows), and the same two with each stopped run's time extrapolated linearly to the end,
    `wall · t_end / t_reached` (an estimate: it assumes the solver keeps its average pace)."""
    out = []
    for label in dict.fromkeys(r["threshold"] for r in rows):
        at = [r for r in rows if r["threshold"] == label]
        ngs = [r["wall_s"] for r in at if r["method"] == "NGS"]
        ngs_wall = float(np.mean(ngs)) if ngs else math.nan
        for method in METHODS:
            mine = [r for r in at if r["method"] == method]
            if not mine:
                continue
            done = [r["mae"] for r in mine if r["finished"]]
            wall = float(np.mean([r["wall_s"] for r in mine]))
            extrapolated = float(np.mean([r["wall_s"] * r["t_end"] / max(r["t_reached"], 1e-300) for r in mine]))
            out.append({
                "threshold": label, "method": method, "runs": len(mine), "finished": len(done),
                "nfev": float(np.mean([r["nfev"] for r in mine])), "wall_s": wall,
                "t_reached": float(np.mean([r["t_reached"] for r in mine])),
                "mae": float(np.mean(done)) if done else math.nan, "speedup_vs_ngs": wall / ngs_wall,
                "wall_extrapolated_s": extrapolated, "speedup_extrapolated": extrapolated / ngs_wall,
            })  # fmt: skip
    return out
