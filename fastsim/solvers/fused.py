"""Fused ensemble integration of the built-in graph dynamics: one compiled adaptive loop per trajectory.

`solve_ensemble(system, y0, t_eval)` takes a dynamics module built on a batched graph (`Graph.batch_graphs`)
and integrates every graph of the batch as an independent trajectory with adaptive Dormand–Prince 5(4),
entirely in compiled code (`fastsim.ops.ensemble.ensemble_dopri5`: OpenMP over trajectories on the CPU, one
thread block per trajectory on CUDA). It gives the numbers of
`fastsim.solvers.odeint(system_b, y0_b, t, method="dopri5")` run on each graph `b` alone (same tableau, error
norm, PI controller, first-step heuristic and dense output), without a Python step loop.

`solve_stiff_ensemble(problem, y0, t_eval)` does the same for the small stiff systems of `fastsim.dynamics.stiff`
(ROBER, HIRES, OREGO, VDPOL and NGS's all-to-all thresholded Kuramoto) with Rodas5(4)
(`fastsim.ops.ensemble.ensemble_rodas5`, CPU): the numbers of `odeint(problem, y0_b, t, method="rodas5",
options={"jac": problem.jac})` per trajectory, without the Python step loop.

Differences from `odeint`: a step may cross any number of output times (odeint shortens a step that would
cross more than `max_outputs_per_step`); a non-finite initial state or derivative stops the trajectory before
its first step (nfev = 1). Times must increase. Results carry no gradient.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fastsim.dynamics import SIR, SIS, CoupledRossler, HeatDiffusion, Kuramoto, KuramotoMeanField
from fastsim.dynamics.stiff import Hires, Orego, Rober, ThresholdedKuramoto, Vdpol
from fastsim.ops.ensemble import ensemble_dopri5, ensemble_rodas5
from fastsim.solvers._inputs import check_rtol
from fastsim.solvers.explicit import STATUS_MESSAGES, SolverStats, Status

__all__ = ["FUSED_SYSTEMS", "STIFF_FUSED_SYSTEMS", "EnsembleSolution", "solve_ensemble", "solve_stiff_ensemble"]

# Module type → the op's system name. Exact types only: a subclass may change forward(), which the kernels
# would not see.
FUSED_SYSTEMS: dict[type, str] = {
    HeatDiffusion: "heat",
    Kuramoto: "kuramoto",
    KuramotoMeanField: "kuramoto_mean_field",
    CoupledRossler: "rossler",
    SIS: "sis",
    SIR: "sir",
}

# Stiff problem type → (the op's system name, its parameter row).
STIFF_FUSED_SYSTEMS: dict[type, tuple[str, Callable[[Any], list[float]]]] = {
    Rober: ("rober", lambda p: [p.k1, p.k2, p.k3]),
    Hires: ("hires", lambda p: []),
    Orego: ("orego", lambda p: []),
    Vdpol: ("vdpol", lambda p: [p.eps]),
    ThresholdedKuramoto: (
        "thresholded_kuramoto",
        lambda p: [float(p.coupling), p.threshold, *p.omega.to(torch.float64).tolist()],
    ),
}


@dataclass(frozen=True)
class EnsembleSolution:
    """Result of `solve_ensemble`.

    Attributes:
        t: the output times, `(T,)` or `(B, T)` float64.
        ys: `(T, *y0.shape)` states at the output times (graph `b` in rows `ptr[b]:ptr[b+1]` of each), NaN
            at the times a trajectory that stopped early did not reach.
        stats: per-trajectory `SolverStats` (`(B,)` each: nfev, accepted, rejected, `Status` codes, t_final).
        success: every trajectory reached the last output time.
        message: a summary naming the statuses of the trajectories that stopped early.
    """

    t: Tensor
    ys: Tensor
    stats: SolverStats
    success: bool
    message: str


def _coefficients(system: nn.Module) -> tuple[str, dict[str, Tensor]]:
    kind = FUSED_SYSTEMS.get(type(system))
    if kind is None:
        names = ", ".join(t.__name__ for t in FUSED_SYSTEMS)
        raise TypeError(
            f"system must be one of the dynamics with a fused kernel ({names}); got {type(system).__name__}. "
            "Integrate other systems with fastsim.solvers.odeint."
        )
    if kind == "heat":
        return kind, {"edge_coeff": system.diffusivity}
    if kind in ("kuramoto", "kuramoto_mean_field"):
        key = "edge_coeff" if kind == "kuramoto" else "graph_coeff"
        return kind, {"node_coeff": system.omega, key: system.coupling}
    if kind == "rossler":
        return kind, {
            "edge_coeff": system.coupling,
            "graph_coeff": torch.stack([system.a, system.b, system.c], 1),
        }
    return kind, {"node_coeff": system.recovery_rate, "edge_coeff": system.infection_rate}


def _message(status: Tensor) -> str:
    codes = status.tolist()
    failed = [Status(c).name for c in codes if c != Status.success]
    if not failed:
        return f"The solver reached the last output time on all {len(codes)} trajectories."
    parts = [f"{name} ×{failed.count(name)} ({STATUS_MESSAGES[name]})" for name in sorted(set(failed))]
    return f"{len(failed)} of {len(codes)} trajectories stopped early: " + "; ".join(parts)


def _solution(t_eval: Tensor, ys: Tensor, stats: Tensor, t_final: Tensor) -> EnsembleSolution:
    """The result of an ensemble op: its status codes 0.. map to `Status.success`.. ."""
    status = (stats[:, 3] + 1).to(torch.int8)
    solver_stats = SolverStats(stats[:, 0], stats[:, 1], stats[:, 2], status, t_final)
    ok = bool((status == Status.success).all())
    return EnsembleSolution(t_eval.detach().to(torch.float64), ys, solver_stats, ok, _message(status))


def solve_ensemble(
    system: nn.Module,
    y0: Tensor,
    t_eval: Tensor,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    first_step: float | None = None,
    max_steps: int = 100_000,
) -> EnsembleSolution:
    """Integrate every graph of `system.graph` as an independent trajectory with fused adaptive dopri5.

    Trajectory `b` (nodes `ptr[b]:ptr[b+1]`) accepts a step when
    `|h| · RMS_i(err_i / (atol + rtol · max(|y_i|, |y_new_i|))) ≤ 1`, the RMS running over that trajectory's
    state only, and reports its output at `t_eval` through dopri5's quartic dense output.

    Args:
        system: `HeatDiffusion`, `Kuramoto`, `KuramotoMeanField`, `CoupledRossler`, `SIS` or `SIR` (exact
            types), built on a batched graph; its coefficients are read from the module.
        y0: initial state in the module's layout: `(N,)`, `(N, 3)` for Rössler/SIR, `(N,)` or `(N, F)` for
            heat; float32 or float64 (coefficients are cast to its dtype). A trajectory whose initial state is
            NaN/inf stops at once with status "non_finite"; the others are unaffected.
        t_eval: `(T,)` shared or `(B, T)` per-trajectory output times, strictly increasing, finite;
            `t_eval[..., 0]` is the initial time (its output is `y0`).
        rtol, atol: tolerances (> 0, `rtol` ≥ 2.2e-16 as in `odeint`).
        first_step: initial step size (> 0), or None for Hairer's heuristic (one extra evaluation).
        max_steps: attempted steps per trajectory after which it stops with status "max_num_steps".

    Returns:
        `EnsembleSolution` with `ys (T, *y0.shape)` and per-trajectory `SolverStats`.

    Raises:
        TypeError: a system without a fused kernel, or arguments of the wrong type.
        ValueError: wrong shapes or devices, non-finite or non-increasing `t_eval`, tolerances out of range.
    """
    kind, coeffs = _coefficients(system)
    rtol = check_rtol("rtol", rtol)  # the op takes any rtol > 0; a tiny one overflows its error norm ("non_finite")
    ys, stats, t_final = ensemble_dopri5(
        system.graph,
        kind,
        y0,
        t_eval,
        rtol=rtol,
        atol=atol,
        first_step=first_step,
        max_steps=max_steps,
        **coeffs,
    )
    return _solution(t_eval, ys, stats, t_final)


def solve_stiff_ensemble(
    problem: Any,
    y0: Tensor,
    t_eval: Tensor,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    first_step: float | None = None,
    max_steps: int = 100_000,
) -> EnsembleSolution:
    """Integrate a stiff system from each row of `y0` as an independent trajectory with fused adaptive Rodas5(4).

    Args:
        problem: `Rober()`, `Hires()`, `Orego()` or `Vdpol()` from `fastsim.dynamics.stiff` (exact types, their
            constants as set on the instance), or a `ThresholdedKuramoto` without a graph (all-to-all) and with
            a scalar coupling.
        y0: `(n,)` or `(B, n)` float64 initial states on the CPU.
        t_eval: `(T,)` shared or `(B, T)` per-trajectory output times, strictly increasing, finite.
        rtol, atol: tolerances (> 0, `rtol` ≥ 2.2e-16 as in `odeint`); the test set pairs `rtol` with
            `problem.atol(rtol)`.
        first_step: initial step size (> 0), or None for Hairer's heuristic.
        max_steps: attempted steps per trajectory after which it stops with status "max_num_steps".

    Returns:
        `EnsembleSolution` with `ys (T, *y0.shape)` and per-trajectory `SolverStats`.

    Raises:
        TypeError: an unsupported problem. ValueError: bad shapes, times or tolerances, or a CUDA tensor.
    """
    entry = STIFF_FUSED_SYSTEMS.get(type(problem))
    if entry is None:
        names = ", ".join(t.__name__ for t in STIFF_FUSED_SYSTEMS)
        raise TypeError(f"problem must be one of {names}; got {type(problem).__name__}")
    if isinstance(problem, ThresholdedKuramoto) and (
        problem.graph is not None or torch.as_tensor(problem.coupling).numel() != 1
    ):
        raise ValueError("the fused thresholded Kuramoto is all-to-all with one coupling K: graph=None, K a number")
    name, row = entry
    if not isinstance(y0, Tensor) or y0.dim() not in (1, 2):
        raise ValueError(f"y0 must be a (n,) or (B, n) tensor; got {getattr(y0, 'shape', type(y0).__name__)}")
    batch = y0 if y0.dim() == 2 else y0[None]
    params = torch.tensor(row(problem), dtype=torch.float64).expand(batch.shape[0], -1).contiguous()
    rtol = check_rtol("rtol", rtol)  # as odeint (the op itself checks rtol > 0 only)
    ys, stats, t_final = ensemble_rodas5(
        name, batch, params, t_eval, rtol=rtol, atol=atol, first_step=first_step, max_steps=max_steps
    )
    return _solution(t_eval, ys if y0.dim() == 2 else ys[:, 0], stats, t_final)
