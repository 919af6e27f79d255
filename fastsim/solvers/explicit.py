"""One engine for every explicit Runge–Kutta tableau: fixed or adaptive steps, batched, with dense output.

The state is `(B, N)`: `B` independent trajectories of `N` components. Each trajectory has its own time, step
size, accept/reject decision, output pointer, statistics and status; they advance together through
`torch.where` masks (torchode's design), and a trajectory that has finished (or failed) stops changing.

Outputs at arbitrary, non-uniform times come from each step's dense output (the tableau's continuous
extension, or cubic Hermite interpolation on `y, y_new, f, f_new`); steps are not forced onto output times. A
step may cross at most `max_outputs_per_step` output times (default 8): only when the output grid is finer
than that is the step shortened to end on the last output time it may cross.

Host synchronisation: none inside a step. Every `sync_every` steps (default 8, at most `MAX_SYNC_EVERY`) the loop
reads one boolean ("is any trajectory still running?") back to decide whether to stop, so up to `sync_every − 1`
trailing iterations run with every trajectory masked off; the loop also ends after `max_num_steps` iterations,
when no trajectory can still be running. One more read happens before the loop (do any output times lie strictly
inside the interval, i.e. is dense output needed at all).

The arithmetic of a step lives in `fastsim.solvers.stages` (`stage_combination`, `error_norm`,
`dense_combination`): pure torch there, and the functions that compiled kernels (`fastsim.ops.rk`) replace.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import torch
from torch import Tensor

from fastsim.solvers.control import ERR_PREV_FLOOR, FixedStep, PIController, initial_step
from fastsim.solvers.stages import dense_combination, error_norm, interpolation_weights, stage_combination
from fastsim.solvers.tableaux import Tableau

__all__ = ["MAX_SYNC_EVERY", "Status", "STATUS_MESSAGES", "SolverStats", "integrate"]

# The termination check reads a flag back from the device (a host synchronisation on CUDA), so it runs every
# `sync_every` iterations only, and the iterations after the last trajectory finishes run fully masked. A few
# dozen steps amortise a synchronisation already; the bound keeps that masked tail below MAX_SYNC_EVERY
# iterations, where a huge `sync_every` would run on until `max_num_steps` (1e5 adaptive steps: minutes).
MAX_SYNC_EVERY = 256


class Status(IntEnum):
    """Per-trajectory status codes (names as in `fastsim.solvers.implicit`)."""

    running = 0
    success = 1
    max_num_steps = 2
    non_finite = 3
    step_size_underflow = 4
    singular_matrix = 5  # implicit and Rosenbrock methods only


STATUS_MESSAGES = {
    "running": "The trajectory has not finished.",
    "success": "The solver reached the last output time.",
    "max_num_steps": "The number of attempted steps exceeded max_num_steps.",
    "non_finite": "The state or the right-hand side became NaN or infinite.",
    "step_size_underflow": "The step size fell below the floating-point resolution of t.",
    "singular_matrix": "The iteration matrix was singular five times in a row.",
}


@dataclass
class SolverStats:
    """Per-trajectory statistics, each a `(B,)` tensor.

    Attributes:
        nfev: right-hand-side evaluations (one batched call counts once for every running trajectory).
        accepted, rejected: accepted and rejected steps.
        status: `Status` codes.
        t_final: the time each trajectory reached.
    """

    nfev: Tensor
    accepted: Tensor
    rejected: Tensor
    status: Tensor
    t_final: Tensor

    @property
    def success(self) -> Tensor:
        """`(B,)` bool: the trajectory reached its last output time."""
        return self.status == Status.success

    def status_names(self) -> list[str]:
        """The status of every trajectory as a name (a key of `STATUS_MESSAGES`)."""
        return [Status(int(s)).name for s in self.status.tolist()]


def integrate(
    func: Callable[[Tensor, Tensor], Tensor],
    y0: Tensor,
    t_start: Tensor,
    t_end: Tensor,
    t_out: Tensor,
    tableau: Tableau,
    controller: FixedStep | PIController,
    *,
    max_num_steps: int = 1_000_000,
    max_outputs_per_step: int = 8,
    sync_every: int = 8,
) -> tuple[Tensor, SolverStats]:
    """Integrate `dy/dt = func(t, y)` for a batch of trajectories and return `y` at the output times.

    Args:
        func: `func(t (B,), y (B, N)) -> (B, N)`, `t` in the dtype of `t_out`.
        y0: `(B, N)` initial states at `t_start`.
        t_start, t_end: `(B,)` start and end times (`t_end ≠ t_start`; either direction).
        t_out: `(B, T)` output times per trajectory, strictly monotone in the direction of integration and
            inside `[t_start, t_end]`.
        tableau: the method; controller: `FixedStep` or `PIController` (the latter needs `tableau.b_err`).
        max_num_steps: attempted steps after which a running trajectory stops with status "max_num_steps".
        max_outputs_per_step: output times one step may cross; sync_every: steps between termination checks
            (1 to `MAX_SYNC_EVERY`).

    Returns:
        `ys (B, T, N)` (NaN at output times a failed trajectory did not reach) and per-trajectory
        `SolverStats`.
    """
    if isinstance(controller, PIController) and not tableau.adaptive:
        raise ValueError(f"tableau {tableau.name!r} has no error estimate; use FixedStep")
    if isinstance(sync_every, bool) or not isinstance(sync_every, int) or not 1 <= sync_every <= MAX_SYNC_EVERY:
        raise ValueError(f"sync_every must be an int in [1, {MAX_SYNC_EVERY}]; got {sync_every!r}")
    B, N = y0.shape
    T = t_out.shape[1]
    tdt, dev, ydt = t_out.dtype, y0.device, y0.dtype
    if B == 0 or N == 0:  # nothing to integrate: every trajectory "reaches" its end at once
        zeros = torch.zeros(B, dtype=torch.int64, device=dev)
        status = torch.full((B,), int(Status.success), dtype=torch.int8, device=dev)
        return y0[:, None, :].expand(B, T, N).clone(), SolverStats(zeros, zeros, zeros, status, t_end.clone())
    direction = torch.sign(t_end - t_start)
    grid = isinstance(controller, FixedStep) and controller.step_size is None
    K = 1 if grid else max(1, min(T, max_outputs_per_step))
    arange_k = torch.arange(K, device=dev)
    rows = torch.arange(B, device=dev)[:, None].expand(B, K)
    nan = torch.tensor(math.nan, dtype=ydt, device=dev)

    at_start = t_out == t_start[:, None]
    p = at_start.sum(dim=1)
    buf = torch.cat([torch.where(at_start[..., None], y0[:, None, :], nan), nan.expand(B, K, N)], dim=1)
    t_pad = torch.cat([t_out, (direction * math.inf)[:, None].expand(B, K)], dim=1)
    t_limits = torch.cat([t_out, t_end[:, None]], dim=1)
    interior = (t_out != t_start[:, None]) & (t_out != t_end[:, None])
    needs_dense = not grid and bool(interior.any())  # the one read-back before the loop
    if needs_dense:
        W = interpolation_weights(tableau, tdt, dev)
        powers = torch.arange(1, W.shape[1] + 1, device=dev, dtype=tdt)

    s, fsal = tableau.num_stages, tableau.fsal
    t, y = t_start.clone(), y0
    f0 = func(t, y)
    nfev = torch.ones(B, dtype=torch.int64, device=dev)
    accepted = torch.zeros(B, dtype=torch.int64, device=dev)
    rejected = torch.zeros_like(accepted)
    status = torch.zeros(B, dtype=torch.int8, device=dev)
    interval = (t_end - t_start).abs()
    if isinstance(controller, PIController):
        if controller.first_step is not None:
            h = torch.full((B,), min(controller.first_step, controller.max_step), dtype=tdt, device=dev)
        else:
            h = initial_step(func, t, y, f0, direction, interval, tableau.error_order, controller.rtol,
                             controller.atol, controller.max_step)  # fmt: skip
            nfev += 1
        err_prev = torch.full((B,), ERR_PREV_FLOOR, dtype=tdt, device=dev)
        rejected_before = torch.zeros(B, dtype=torch.bool, device=dev)
    else:
        h = torch.full((B,), controller.step_size or math.inf, dtype=tdt, device=dev)
    finfo = torch.finfo(tdt)
    land_slack = 1.0 + math.sqrt(finfo.eps)

    # Every running trajectory spends one attempted step per iteration (or stops as non-finite), so none is
    # running after max_num_steps iterations: the loop ends there even between termination checks.
    for it in range(max_num_steps):
        if it % sync_every == 0 and it > 0 and not bool((status == Status.running).any()):
            break
        running = status == Status.running
        idx = p.clamp(max=T) if grid else torch.where(p + K < T, p + K - 1, T)
        t_lim = t_limits.gather(1, idx[:, None]).squeeze(1)
        dist = (t_lim - t) * direction
        land = dist <= h * land_slack
        h_step = torch.where(running, torch.where(land, dist, h), 0.0)
        dt = h_step * direction
        t_new = torch.where(land, t_lim, t + dt)
        dt_y = dt.to(ydt)

        ks = [f0]
        y_stage = y
        for i in range(1, s):
            y_stage = stage_combination(y, dt_y, ks, tableau.a[i])
            ks.append(func(t_new if tableau.c[i] == 1.0 else t + tableau.c[i] * dt, y_stage))
        y_new = y_stage if fsal else stage_combination(y, dt_y, ks, tableau.b)
        f_new = ks[-1] if fsal else func(t_new, y_new)
        nfev += running * (s - 1 if fsal else s)

        with torch.no_grad():
            finite = torch.isfinite(y_new).all(dim=1) & torch.isfinite(f_new).all(dim=1)
            if isinstance(controller, PIController):
                err = error_norm(y, y_new, dt_y, ks, tableau.b_err, controller.rtol, controller.atol,
                                 tableau.b_err_aux).to(tdt)  # fmt: skip
                finite &= torch.isfinite(err)
                ok, h_next, err_prev_next = controller.adapt(
                    h_step, torch.where(finite, err, 0.0), err_prev, rejected_before, tableau.error_order, h
                )
                accept = running & finite & ok
            else:
                accept = running & finite
        status = torch.where(running & ~finite, Status.non_finite, status)

        cand = p[:, None] + arange_k
        tq = t_pad.gather(1, cand)
        if needs_dense:
            in_step = accept[:, None] & ((tq - t_new[:, None]) * direction[:, None] <= 0)
            stages = ks
            if tableau.dense is None:
                stages = [*ks, f_new]
            elif tableau.c_extra:
                stages = list(ks)
                for c, a_row in zip(tableau.c_extra, tableau.a_extra, strict=True):
                    stages.append(func(t + c * dt, stage_combination(y, dt_y, stages, a_row)))
                nfev += running * len(tableau.c_extra)
            safe_dt = torch.where(h_step > 0, dt, 1.0)
            theta = torch.where(in_step, (tq - t[:, None]) / safe_dt[:, None], 0.0)
            # y(t + θ dt) = y + dt Σ_i b_i(θ) k_i, with b_i(θ) = Σ_d W[i, d] θ^(d+1)
            weights = ((theta[..., None] ** powers) @ W.T * dt[:, None, None]).to(ydt)  # (B, K, S_interp)
            # slots not in this step go to the K scratch rows at the end: the written indices are unique
            widx = torch.where(in_step, cand, T + arange_k)
            buf.index_put_((rows, widx), dense_combination(y, weights, stages))
        # An output time the step lands on exactly (at most one) gets y_new itself, not its interpolant.
        exact = accept[:, None] & (tq == t_new[:, None])
        slot = torch.where(exact.any(dim=1), p + exact.to(torch.int8).argmax(dim=1), T)
        buf.index_put_((rows[:, 0], slot), y_new)
        p = p + (in_step if needs_dense else exact).sum(dim=1)

        acc = accept[:, None]
        y = torch.where(acc, y_new, y)
        f0 = torch.where(acc, f_new, f0)
        stalled = accept & (t_new == t) & (h_step > 0)
        t = torch.where(accept, t_new, t)
        accepted += accept
        rejected += running & finite & ~accept
        done = accept & (t_new == t_end)
        status = torch.where(done, Status.success, status)
        if isinstance(controller, PIController):
            live = running & finite
            h = torch.where(live, h_next, h)
            err_prev = torch.where(live, err_prev_next, err_prev)
            rejected_before = torch.where(live, ~accept, rejected_before)
            min_h = torch.clamp(64 * finfo.eps * t.abs(), min=finfo.tiny)
            underflow = live & ~accept & (h < min_h)
            stalled |= underflow
        status = torch.where(stalled & ~done, Status.step_size_underflow, status)
        status = torch.where(
            (status == Status.running) & (accepted + rejected >= max_num_steps), Status.max_num_steps, status
        )
    stats = SolverStats(nfev, accepted, rejected, status, t)
    return buf[:, :T], stats
