"""Stiff ODE solvers: `solve_implicit`, the entry point the odeint/solve_ivp API dispatches to.

Two L-stable one-step methods integrate `dy/dt = f(t, y)` in float64, with dense output at arbitrary times:

- ``"radau"``: Radau IIA of order 5 (3 stages) with Hairer & Wanner's RADAU5 strategy: simplified Newton in the
  eigenbasis of `A⁻¹` (one real and one complex LU per step size), the `(I − hγ₀J)⁻¹`-filtered error estimate,
  Gustafsson's predictive step-size controller and Jacobian/LU reuse (`fastsim.solvers.radau`);
- ``"rodas5"``: the Rosenbrock method Rodas5(4) (Di Marzo 1993) with its embedded order-4 estimate and order-4 dense
  output; one Jacobian and one LU per step, no Newton iteration (`fastsim.solvers.rosenbrock`).

Jacobians come from a user callable ``options["jac"](t, y)`` (a dense tensor, or a torch sparse CSR/COO tensor for
graph systems, factorised by SuperLU on the CPU when `n > 64`) or, by default, from forward-mode autograd
(`torch.func.jacfwd`, dense). See `fastsim.solvers.stiff_linalg`.

Batching: `y0` may have any shape; it is flattened into one system, so a batch of independent trajectories is one
coupled system with one step size and a block-diagonal (but, from autograd, dense) Jacobian. For per-trajectory
step sizes call the solver once per trajectory. With ``options["vectorized"]`` the three Radau stages are evaluated
in one call of `func` on a `(3, *S)` batch.

The step loop runs in Python: implicit methods decide Newton convergence and step acceptance on the host, so
each Newton iteration reads one scalar back. On the CPU the solver's own arithmetic runs on numpy views of the
state (several times cheaper than torch for the small vectors of typical stiff systems); `func` and `jac` always
see torch tensors.

Tolerances follow scipy and torchdiffeq: a step is accepted when the RMS norm of `err_i / (atol_i + rtol·|y_i|)` is
below 1. Hairer's RADAU5 first maps `rtol → 0.1·rtol^(2/3)` (and `atol` alike), aiming at a global error near
`rtol` with fewer steps; ``options["radau5_tolerances"] = True`` does the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastsim.solvers.stiff_linalg import Backend, IntegrationStop, System

__all__ = ["solve_implicit", "METHODS", "STATUS_MESSAGES"]

METHODS = ("radau", "rodas5")
EPS = float(np.finfo(np.float64).eps)

# Statuses reported in stats["status"]; the integration stops at the first non-"success" one, and the outputs
# at times it did not reach are NaN.
STATUS_MESSAGES = {
    "success": "The solver reached the last output time.",
    "max_num_steps": "The number of attempted steps exceeded options['max_num_steps'].",
    "step_size_underflow": "The step size fell below the floating-point resolution of t.",
    "non_finite": "The right-hand side or the state became NaN or infinite.",
    "singular_matrix": "The iteration matrix c·I − J was singular five times in a row.",
    "newton_failure": "Newton's iteration did not converge at the fixed step size options['step_size'].",
}
_KNOWN_OPTIONS = {
    "jac",
    "first_step",
    "max_num_steps",
    "max_step",
    "step_size",
    "radau5_tolerances",
    "vectorized",
}


def initial_step(
    sys: System,
    t0: float,
    y0: Any,
    f0: Any,
    t_end: float,
    order: int,
    rtol: float,
    atol: Any,
    max_step: float,
) -> float:
    """Hairer–Nørsett–Wanner's starting step (Solving ODEs I, §II.4) for an error estimate of `order`.

    `h0 = 0.01·‖y0‖/‖f0‖`, `d2 = ‖f(t0+h0, y0+h0 f0) − f0‖/h0`, `h1 = (0.01/max(‖f0‖, d2))^(1/(order+1))`,
    step `min(100·h0, h1)`, with RMS norms weighted by `1/(atol + rtol·|y0|)`.
    """
    be = sys.be
    inv_scale = 1.0 / (atol + rtol * abs(y0))
    rms = 1.0 / math.sqrt(sys.n)
    d0, d1 = be.norm(y0 * inv_scale) * rms, be.norm(f0 * inv_scale) * rms
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, t_end - t0)
    f1 = sys.f(t0 + h0, y0 + h0 * f0)
    d2 = be.norm((f1 - f0) * inv_scale) * rms / h0
    if not math.isfinite(d2):
        return min(1e-3 * h0, max_step)
    h1 = max(1e-6, 1e-3 * h0) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100 * h0, h1, t_end - t0, max_step)


class DenseOutput:
    """Collects the solution at the output times as the steps go by: `ys[k] = y(t_eval[k])` (backend arrays)."""

    def __init__(self, t_eval: list[float], y0: Any, be: Backend) -> None:
        self.t_eval, self.be = t_eval, be
        self.ys = be.zeros(len(t_eval), y0.shape[0]) + float("nan")
        self.ys[0] = y0
        self.next = 1  # index of the first output time not yet filled

    def due(self, t_new: float) -> bool:
        """Whether an output time not yet filled lies at or before `t_new`."""
        return self.next < len(self.t_eval) and self.t_eval[self.next] <= t_new

    def fill(self, t_new: float, interpolate: Callable[[Any], Any]) -> None:
        """Fill the outputs with `t_eval[k] ≤ t_new` from `interpolate(times (m,)) -> (m, n)`."""
        stop = self.next
        while stop < len(self.t_eval) and self.t_eval[stop] <= t_new:
            stop += 1
        if stop > self.next:
            self.ys[self.next : stop] = interpolate(self.be.asarray(self.t_eval[self.next : stop]))
            self.next = stop


def _validate(
    func: object, y0: object, t: object, method: object, rtol: object, atol: object, options: dict | None
) -> tuple[Tensor, list[float], float, Tensor, dict]:
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y); got {type(func).__name__}")
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if not isinstance(y0, Tensor) or not (y0.is_floating_point() and not y0.is_complex()):
        got = f"{y0.dtype}" if isinstance(y0, Tensor) else type(y0).__name__
        raise TypeError(f"y0 must be a real floating torch.Tensor; got {got}")
    if y0.numel() == 0:
        raise ValueError(f"y0 must have at least one element; got shape {tuple(y0.shape)}")
    y = y0.detach().reshape(-1).to(torch.float64)
    if not bool(torch.isfinite(y).all()):
        raise ValueError("y0 must be finite; got NaN or infinite values")
    if not isinstance(t, Tensor):
        t = torch.as_tensor(t, dtype=torch.float64)
    if t.dim() != 1 or t.numel() < 1 or not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"t must be a 1-D tensor of output times; got {t.dtype} {tuple(t.shape)}")
    times = t.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(times).all()):
        raise ValueError("t must be finite; got NaN or infinite times")
    if times.numel() > 1 and not bool((times[1:] > times[:-1]).all()):
        raise ValueError("t must be strictly increasing (t[0] is the initial time)")
    if isinstance(rtol, Tensor):
        if rtol.numel() != 1:
            raise ValueError(f"rtol must be a positive scalar; got shape {tuple(rtol.shape)}")
        rtol = float(rtol)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not rtol > 0 or not math.isfinite(rtol):
        raise ValueError(f"rtol must be a positive finite number; got {rtol!r}")
    rtol = max(float(rtol), 100 * EPS)
    try:
        atol_t = torch.as_tensor(atol, dtype=torch.float64, device=y0.device)
        atol_t = torch.broadcast_to(atol_t, y0.shape).reshape(-1)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"atol must be a number or a tensor broadcastable to y0 {tuple(y0.shape)}") from exc
    if not bool(torch.isfinite(atol_t).all()) or bool((atol_t < 0).any()):
        raise ValueError("atol must be finite and non-negative")
    options = dict(options or {})
    unknown = set(options) - _KNOWN_OPTIONS
    if unknown:
        raise ValueError(f"options has unknown keys {sorted(unknown)}; allowed: {sorted(_KNOWN_OPTIONS)}")
    if options.get("radau5_tolerances") and method.lower() != "radau":
        raise ValueError(f"options['radau5_tolerances'] is RADAU5's mapping, for method 'radau'; got {method!r}")
    if options.get("jac") is not None and not callable(options["jac"]):
        raise TypeError(f"options['jac'] must be callable as jac(t, y); got {type(options['jac']).__name__}")
    for key in ("first_step", "max_step", "step_size"):
        v = options.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
            raise ValueError(f"options['{key}'] must be a positive number; got {v!r}")
    m = options.get("max_num_steps", 100_000)
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"options['max_num_steps'] must be a positive int; got {m!r}")
    options["max_num_steps"] = m
    return y, times.tolist(), rtol, atol_t, options


def solve_implicit(
    func: Callable[[Tensor, Tensor], Tensor],
    y0: Tensor,
    t: Tensor,
    method: str = "radau",
    rtol: float = 1e-7,
    atol: float | Tensor = 1e-9,
    options: dict[str, Any] | None = None,
) -> tuple[Tensor, dict[str, Any]]:
    """Integrate the stiff system `dy/dt = func(t, y)` from `t[0]` and return `y` at every time in `t`.

    Args:
        func: right-hand side `func(t, y) -> dy/dt` with `t` a 0-d float64 tensor and `y` of the shape of `y0`
            (float64; it must not be modified in place).
        y0: `(*S)` real initial state at `t[0]`; flattened internally into one system of `n = prod(S)` unknowns.
        t: `(T,)` strictly increasing output times, `t[0]` the initial time.
        method: ``"radau"`` (Radau IIA order 5, RADAU5-style) or ``"rodas5"`` (Rosenbrock Rodas5(4)).
        rtol: relative tolerance (> 0; values below 100·eps are raised to it).
        atol: absolute tolerance, a number or a tensor broadcastable to `y0` (≥ 0).
        options: optional keys ``jac`` (callable `jac(t, y) -> (n, n)` dense or sparse CSR/COO tensor, the
            Jacobian of the flattened system; default: forward-mode autograd), ``first_step``, ``max_step``,
            ``max_num_steps`` (attempted steps, default 100000), ``step_size`` (fixed step size: no error
            control, used for convergence studies), ``vectorized`` (bool: `func` accepts `t (k, 1, …, 1)` and
            `y (k, *S)`), ``radau5_tolerances`` (bool, RADAU5's tolerance mapping).

    Returns:
        `ys (T, *S)` in the dtype of `y0` (NaN at times not reached when the solver stops early), and `stats`:
        ``nfev`` (right-hand-side evaluations), ``njev``, ``nlu`` (LU factorisations, a complex one counting
        once), ``accepted``, ``rejected`` (steps rejected by the error test), ``status`` (a key of
        `STATUS_MESSAGES`) and ``message``.

    Raises:
        ValueError/TypeError: a bad argument, named in the message (NaN `y0`, non-increasing `t`, `rtol ≤ 0`,
            unknown `method` or option).
    """
    y, t_eval, rtol, atol_flat, options = _validate(func, y0, t, method, rtol, atol, options)
    stats: dict[str, Any] = {"nfev": 0, "njev": 0, "nlu": 0, "accepted": 0, "rejected": 0}
    sys = System(func, y0.detach(), options.get("jac"), bool(options.get("vectorized", False)))
    y, atol_b = sys.be.asarray(y), sys.be.asarray(atol_flat)
    out = DenseOutput(t_eval, y, sys.be)
    status, detail = "success", ""
    if len(t_eval) > 1:
        if method.lower() == "radau":
            from fastsim.solvers.radau import integrate as stepper  # local: the steppers import this module
        else:
            from fastsim.solvers.rosenbrock import integrate as stepper
        try:
            with torch.no_grad():
                stepper(sys, y, t_eval, rtol, atol_b, options, out, stats)
        except IntegrationStop as stop:
            status, detail = stop.status, stop.detail
    stats.update(nfev=sys.nfev, njev=sys.njev, nlu=sys.nlu, status=status)
    stats["message"] = STATUS_MESSAGES[status] + (f" {detail}" if detail else "")
    ys = sys.be.to_torch(out.ys).reshape(len(t_eval), *y0.shape).to(device=y0.device, dtype=y0.dtype)
    return ys, stats
