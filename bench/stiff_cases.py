"""Workload (d) of the solver benchmark: stiff problems at equal accuracy (work-precision).

Problems: ROBER and HIRES from the stiff test set (accuracy: correct significant digits at t_end against the test
set's reference values, `StiffProblem.scd`), and NGS's thresholded all-to-all Kuramoto at θ_th = π/3 with a few
trajectories (accuracy: −log10 of the largest absolute phase error at t_end against scipy Radau at rtol = atol =
1e-12). Every solver runs a ladder of tolerances with the same (rtol, atol) pairs and the analytic Jacobian:

- fastsim: `solve_stiff_ensemble` (fused Rodas5(4), compiled; all trajectories in one call);
- scipy `solve_ivp` Radau and LSODA, looped per trajectory, with the same right-hand side and Jacobian in numpy.

"Equal accuracy" compares, for each target number of digits, the fastest run of each solver that reaches it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.integrate import solve_ivp

from fastsim.dynamics.stiff import TEST_SET, ThresholdedKuramoto
from fastsim.solvers import solve_stiff_ensemble

SOLVERS = ("fastsim fused Rodas5", "scipy Radau (loop)", "scipy LSODA (loop)")


@dataclasses.dataclass
class StiffWorkload:
    """A stiff problem: what fastsim integrates, its numpy twin for scipy, and how accuracy is scored."""

    name: str
    problem: object  # a StiffProblem or a ThresholdedKuramoto
    y0: torch.Tensor  # (B, n)
    t_end: float
    f: Callable  # numpy f(t, y)
    jac: Callable  # numpy jac(t, y)
    digits: Callable[[np.ndarray], float]  # (B, n) states at t_end -> accuracy in digits
    tolerances: list[tuple[float, float]]  # the (rtol, atol) ladder
    targets: tuple[float, ...]  # digits at which solvers are compared


def _numpy(problem) -> tuple[Callable, Callable]:
    def f(t, y):
        return problem.rhs(t, torch.from_numpy(y)).numpy()

    def jac(t, y):
        return problem.jac(t, torch.from_numpy(y)).numpy()

    return f, jac


def test_set_workload(name: str) -> StiffWorkload:
    """ROBER or HIRES, one trajectory, rtol from 1e-4 to 1e-12 with the test set's atol for each."""
    p = TEST_SET[name]
    f, jac = _numpy(p)
    tolerances = [(10.0**-k, p.atol(10.0**-k)) for k in range(4, 13)]
    return StiffWorkload(
        name, p, p.initial_state()[None], p.t_end, f, jac, lambda ys: p.scd(torch.from_numpy(ys[0])),
        tolerances, (4.0, 6.0, 8.0),
    )  # fmt: skip


def kuramoto_workload(num_trajectories: int = 4, n: int = 10, t_end: float = 2.0, seed: int = 0) -> StiffWorkload:
    """NGS's thresholded Kuramoto (θ_th = π/3, K = 0.5, ω ~ N(0, 1) clipped to ±3), `num_trajectories` initial
    phase sets ~ U[−π, π]; reference: scipy Radau at rtol = atol = 1e-12."""
    g = torch.Generator().manual_seed(seed)
    omega = torch.randn(n, generator=g, dtype=torch.float64).clamp(-3, 3)
    y0 = (torch.rand(num_trajectories, n, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    system = ThresholdedKuramoto(omega, 0.5, math.pi / 3)

    def f(t, y):
        return system(t, torch.from_numpy(y)).numpy()

    def jac(t, y):
        return system.jacobian(t, torch.from_numpy(y)).numpy()

    ref = np.stack([solve_ivp(f, (0, t_end), y, "Radau", rtol=1e-12, atol=1e-12, jac=jac).y[:, -1] for y in y0.numpy()])

    def digits(ys: np.ndarray) -> float:
        err = np.abs(ys - ref).max()
        return math.inf if err == 0 else -math.log10(err)

    tolerances = [(10.0**-k, 10.0**-k) for k in range(4, 13)]
    return StiffWorkload(
        f"thresholded Kuramoto π/3 ({num_trajectories}×N={n}, T={t_end:g})", system, y0, t_end, f, jac, digits,
        tolerances, (2.0, 3.0, 4.0, 5.0),
    )  # fmt: skip


class OverBudget(Exception):
    """A scipy run passed its wall-time cap (see `run`)."""


def run(w: StiffWorkload, solver: str, rtol: float, atol: float, cap: float = math.inf) -> np.ndarray:
    """`(B, n)` states at t_end. A scipy run raises `OverBudget` once it has taken more than `cap` seconds (on a
    discontinuous right-hand side LSODA can shrink its steps for an hour at rtol = 1e-12); fastsim's one call
    cannot be interrupted, and needs no cap on these problems."""
    if solver == SOLVERS[0]:
        t = torch.tensor([0.0, w.t_end], dtype=torch.float64)
        sol = solve_stiff_ensemble(w.problem, w.y0, t, rtol=rtol, atol=atol, max_steps=10**7)
        if not sol.success:
            raise RuntimeError(sol.message)
        return sol.ys[-1].numpy()
    method = solver.split()[1]
    deadline = time.perf_counter() + cap

    def f(t, y):
        if time.perf_counter() > deadline:
            raise OverBudget
        return w.f(t, y)

    out = []
    for y0 in w.y0.numpy():
        res = solve_ivp(f, (0.0, w.t_end), y0, method=method, rtol=rtol, atol=atol, jac=w.jac)
        if not res.success:
            raise RuntimeError(res.message)
        out.append(res.y[:, -1])
    return np.stack(out)


def work_precision(w: StiffWorkload, reps: int = 3, budget: float = 20.0) -> dict[str, list[dict]]:
    """Per solver, one row per tolerance: rtol, atol, digits, median wall time of `reps` runs. A solver's ladder
    stops after a run that took more than `budget` seconds (tighter tolerances would only take longer); a scipy
    run stopped at 3 × `budget` is recorded with digits NaN, time None and `stopped` its cap (it reaches no target)."""
    rows: dict[str, list[dict]] = {s: [] for s in SOLVERS}
    cap = 3 * budget
    for solver in SOLVERS:
        for rtol, atol in w.tolerances:
            times, ys = [], None
            try:
                for _ in range(reps):
                    start = time.perf_counter()
                    ys = run(w, solver, rtol, atol, cap=cap)
                    times.append(time.perf_counter() - start)
                    if times[-1] > budget:
                        break
            except OverBudget:
                rows[solver].append({"rtol": rtol, "atol": atol, "digits": math.nan, "time": None, "stopped": cap})
                break
            rows[solver].append({"rtol": rtol, "atol": atol, "digits": w.digits(ys), "time": float(np.median(times))})
            if times[-1] > budget:
                break
    return rows


def at_equal_accuracy(rows: dict[str, list[dict]], target: float) -> dict[str, dict | None]:
    """Per solver, its fastest run reaching `target` digits (None if none did)."""
    best = {}
    for solver, runs in rows.items():
        ok = [r for r in runs if r["digits"] >= target]
        best[solver] = min(ok, key=lambda r: r["time"]) if ok else None
    return best
