"""`odeint`: a drop-in for `torchdiffeq.odeint` on the batched explicit engine (and the stiff solvers)."""

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from fastsim.solvers._inputs import State, StateLayout, check_positive_option, check_rtol, check_times, check_tolerance
from fastsim.solvers.control import FixedStep, PIController
from fastsim.solvers.explicit import MAX_SYNC_EVERY, STATUS_MESSAGES, SolverStats, Status, integrate
from fastsim.solvers.tableaux import Tableau, get_tableau

__all__ = ["odeint", "METHODS", "IMPLICIT_METHODS", "resolve_method"]

# method name → (tableau, adaptive by default). torchdiffeq spellings; "dopri8" runs DOP853 (torchdiffeq's
# dopri8 is a different 8(7) pair), "rk4" is the classical method (torchdiffeq's is the 3/8 rule).
METHODS: dict[str, tuple[str, bool]] = {
    "euler": ("euler", False),
    "midpoint": ("midpoint", False),
    "heun": ("heun", False),
    "rk2": ("heun", False),
    "rk4": ("rk4", False),
    "adaptive_heun": ("heun", True),
    "bosh3": ("bosh3", True),
    "dopri5": ("dopri5", True),
    "tsit5": ("tsit5", True),
    "dop853": ("dop853", True),
    "dopri8": ("dop853", True),
}
IMPLICIT_METHODS = ("radau", "rodas5")
# Passed on to `solve_implicit`; the explicit engine has no use for them.
_IMPLICIT_OPTIONS = ("jac", "vectorized", "radau5_tolerances")
_OPTIONS = (
    "step_size", "first_step", "max_num_steps", "dtype", "batch_dim", "min_step", "max_step", "safety",
    "ifactor", "dfactor", "pcoeff", "icoeff", "max_outputs_per_step", "sync_every", *_IMPLICIT_OPTIONS,
)  # fmt: skip
DEFAULT_MAX_NUM_STEPS = 100_000  # adaptive methods; fixed steps default to the number they need, up to this many


def resolve_method(method: object) -> tuple[Tableau, bool] | None:
    """`(tableau, adaptive)` for an explicit method name, None for an implicit one; ValueError otherwise."""
    if isinstance(method, str) and method.lower() in IMPLICIT_METHODS:
        return None
    if not isinstance(method, str) or method not in METHODS:
        valid = ", ".join([*METHODS, *IMPLICIT_METHODS])
        raise ValueError(f"unknown method {method!r}; valid methods: {valid}")
    name, adaptive = METHODS[method]
    return get_tableau(name), adaptive


def build_controller(
    tableau: Tableau, adaptive: bool, rtol: float, atol: float, options: dict[str, Any]
) -> FixedStep | PIController:
    """The step-size controller the options ask for (`step_size` → fixed steps, even for an adaptive pair)."""
    if "step_size" in options and options["step_size"] is not None:
        return FixedStep(check_positive_option("step_size", options["step_size"]))
    if not adaptive:
        return FixedStep(None)
    pcoeff, icoeff = (0.0, 1.0) if tableau.name == "dop853" else (0.2, 0.65)  # Hairer's defaults
    kw: dict[str, Any] = {"pcoeff": pcoeff, "icoeff": icoeff}
    for ours, theirs in (("safety", "safety"), ("max_factor", "ifactor"), ("min_factor", "dfactor"),
                         ("icoeff", "icoeff"), ("first_step", "first_step")):  # fmt: skip
        if options.get(theirs) is not None:
            kw[ours] = check_positive_option(theirs, options[theirs])
    if options.get("max_step") is not None:
        kw["max_step"] = check_positive_option("max_step", options["max_step"], allow_inf=True)
    for name in ("pcoeff", "min_step"):  # may be 0
        if options.get(name) is not None:
            v = options[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v < math.inf):
                raise ValueError(f"options['{name}'] must be a finite number ≥ 0; got {v!r}")
            kw[name] = float(v)
    try:
        return PIController(rtol=rtol, atol=atol, **kw)
    except ValueError as e:  # a combination out of range (e.g. min_step > max_step): name it as an option
        raise ValueError(f"invalid options: {e}") from e


def check_options(options: object) -> dict[str, Any]:
    """A copy of `options` with every key known; ValueError listing the valid keys otherwise."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict or None; got {type(options).__name__}")
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"unknown options {unknown}; valid options: {', '.join(_OPTIONS)}")
    return dict(options)


def _int_option(options: dict[str, Any], name: str, default: int, maximum: int | None = None) -> int:
    v = options.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1 or (maximum is not None and v > maximum):
        bound = "" if maximum is None else f" ≤ {maximum}"
        raise ValueError(f"options['{name}'] must be a positive int{bound}; got {v!r}")
    return v


def solve_flat(
    f: Callable[[Tensor, Tensor], Tensor],
    y0: Tensor,
    t_start: Tensor,
    t_end: Tensor,
    t_out: Tensor,
    tableau: Tableau,
    adaptive: bool,
    rtol: float,
    atol: float,
    options: dict[str, Any],
) -> tuple[Tensor, SolverStats]:
    """Run the engine on a flattened problem (`(B, N)` state, `(B,)`/`(B, T)` times) with options applied."""
    implicit_only = [k for k in _IMPLICIT_OPTIONS if options.get(k) is not None]
    if implicit_only:
        raise ValueError(f"options {implicit_only} apply to the implicit methods {IMPLICIT_METHODS} only")
    controller = build_controller(tableau, adaptive, rtol, atol, options)
    tiny = torch.finfo(y0.dtype).tiny
    # Below it atol is subnormal or 0 in the state's dtype: err / (atol + rtol·|y|) on a zero component overflows or
    # is 0/0, and the trajectory would stop as "non_finite".
    if isinstance(controller, PIController) and atol < tiny:
        kind = str(y0.dtype).removeprefix("torch.")
        raise ValueError(
            f"atol must be at least {tiny:.3g}, the smallest normal {kind}, for a {kind} state; got {atol:g}"
        )
    default_steps = DEFAULT_MAX_NUM_STEPS
    if isinstance(controller, FixedStep) and "max_num_steps" not in options:
        default_steps = t_out.shape[1] + 8  # one step per output time, plus those a step size needs
        if controller.step_size is not None:
            h = controller.step_size
            half_spans = (t_end / 2 - t_start / 2).abs()  # halves: the span of the widest finite times overflows
            i = int(half_spans.argmax())
            needed = float(half_spans[i]) / h * 2 * (1 + 1e-9)
            if not needed <= DEFAULT_MAX_NUM_STEPS:
                raise ValueError(
                    f"options['step_size']={h:g} needs {needed:.3g} steps from t={float(t_start[i]):g} to "
                    f"t={float(t_end[i]):g}, more than {DEFAULT_MAX_NUM_STEPS}; pass a larger step_size, or "
                    "options['max_num_steps'] to allow more steps"
                )
            default_steps += math.ceil(needed)
    return integrate(
        f,
        y0,
        t_start,
        t_end,
        t_out,
        tableau,
        controller,
        max_num_steps=_int_option(options, "max_num_steps", default_steps),
        max_outputs_per_step=_int_option(options, "max_outputs_per_step", 8),
        sync_every=_int_option(options, "sync_every", 8, MAX_SYNC_EVERY),
    )


def time_dtype(options: dict[str, Any], y_dtype: torch.dtype) -> torch.dtype:
    """torchdiffeq's mixed precision: times and step sizes in `options['dtype']` (float64 by default)."""
    dt = options.get("dtype", torch.float64)
    if dt not in (torch.float32, torch.float64):
        raise ValueError(f"options['dtype'] must be torch.float32 or torch.float64; got {dt}")
    return torch.promote_types(dt, y_dtype)


def warn_failures(stats: SolverStats) -> None:
    """A RuntimeWarning naming the statuses of trajectories that did not reach the end."""
    bad = stats.status != Status.success
    if bool(bad.any()):
        names = sorted({n for n, b in zip(stats.status_names(), bad.tolist(), strict=True) if b})
        msg = "; ".join(f"{n}: {STATUS_MESSAGES[n]}" for n in names)
        warnings.warn(
            f"{int(bad.sum())} of {bad.numel()} trajectories stopped early ({msg}) Outputs after the stop "
            "are NaN; pass return_stats=True to inspect them.",
            RuntimeWarning,
            stacklevel=3,
        )


def odeint(
    func: Callable[[Tensor, State], State],
    y0: State,
    t: Tensor,
    *,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    method: str = "dopri5",
    options: dict[str, Any] | None = None,
    return_stats: bool = False,
) -> State | tuple[State, SolverStats | dict]:
    """Solve `dy/dt = func(t, y)`, `y(t[0]) = y0`, and return `y` at every time in `t` (torchdiffeq style).

    Adaptive methods control the local error per trajectory: a step is accepted when the RMS over components
    of `err_i / (atol + rtol · max(|y_i|, |y_new_i|))` is ≤ 1. Outputs come from the dense output of the steps
    that cross each time in `t` (steps do not stop at output times). Gradients: plain autograd through the
    engine's operations (the step-size sequence is treated as constant; no gradient w.r.t. `t`); see
    `odeint_adjoint`.

    Args:
        func: `func(t, y) -> dy/dt` with the structure and shapes of `y0`; `t` is 0-d, or with a batch
            dimension `b`, shaped `(1, …, B, …, 1)` (each trajectory's own time, broadcastable against `y`).
        y0: `(*S)` tensor or a tuple of tensors (floating, finite).
        t: `(T,)` strictly increasing or strictly decreasing times, `t[0]` the initial time; with
            `options['batch_dim']` also `(B, T)`, one row per trajectory.
        rtol, atol: relative and absolute tolerance (> 0; `rtol` ≥ 2.2e-16, float64's machine epsilon; `atol` not
            below the smallest normal number of the state's dtype; unused by fixed steps).
        method: one of `METHODS` ("dopri5", "tsit5", "bosh3", "dop853"/"dopri8", "adaptive_heun", and the
            fixed-step "euler", "midpoint", "heun"/"rk2", "rk4") or a stiff method "radau"/"rodas5".
        options: torchdiffeq's `step_size` (fixed steps of that size; without it, fixed-step methods step from
            one time in `t` to the next), `first_step`, `max_num_steps` (attempted steps per trajectory,
            default 1e5 for adaptive methods, what a fixed step size needs otherwise: a ValueError if that
            exceeds 1e5), `dtype` (of times, default float64), `min_step`, `max_step`, `safety`, `ifactor`,
            `dfactor`; and `batch_dim` (that dimension of every tensor of `y0` holds independent trajectories
            with their own step sizes), `pcoeff`/`icoeff` (PI controller), `max_outputs_per_step` (8),
            `sync_every` (8, at most `MAX_SYNC_EVERY` = 256). For "radau"/"rodas5" only: `jac` and
            `vectorized`, and for "radau" `radau5_tolerances` (see `fastsim.solvers.implicit.solve_implicit`).
        return_stats: also return the per-trajectory `SolverStats` (a dict for stiff methods).

    Returns:
        `(T, *S)` (a tuple of such for tuple `y0`), in the dtype of `y0`; with `return_stats`, `(ys, stats)`.
        A trajectory that stops early (status "max_num_steps", "non_finite", "step_size_underflow") has NaN at
        the times it did not reach, and a RuntimeWarning is issued unless `return_stats` is set.

    Raises:
        TypeError/ValueError: a bad argument, named in the message.
    """
    if not callable(func):
        raise TypeError(f"func must be callable; got {type(func).__name__}")
    opts = check_options(options)
    resolved = resolve_method(method)
    rtol, atol = check_rtol("rtol", rtol), check_tolerance("atol", atol)
    layout = StateLayout(y0, opts.get("batch_dim"))
    t = check_times("t", t, layout.device, layout.batch if layout.batch_dim is not None else None)
    if resolved is None:
        return _odeint_implicit(func, y0, t, method.lower(), rtol, atol, opts, return_stats)
    tableau, adaptive = resolved
    t_out = t.to(time_dtype(opts, layout.dtype)).expand(layout.batch, t.shape[-1])
    y_flat = layout.flatten(y0)
    f = layout.wrap(func)
    if t_out.shape[1] == 1:
        ys = y_flat[:, None, :]
        zero = torch.zeros(layout.batch, dtype=torch.int64, device=layout.device)
        stats = SolverStats(zero, zero, zero, torch.ones_like(zero, dtype=torch.int8), t_out[:, 0])
    else:
        ys, stats = solve_flat(
            f, y_flat, t_out[:, 0], t_out[:, -1], t_out, tableau, adaptive, rtol, atol, opts
        )  # fmt: skip
    out = layout.outputs(ys)
    if return_stats:
        return out, stats
    warn_failures(stats)
    return out


def _odeint_implicit(
    func: Callable,
    y0: State,
    t: Tensor,
    method: str,
    rtol: float,
    atol: float,
    opts: dict,
    return_stats: bool,
) -> Any:
    """Dispatch to `fastsim.solvers.implicit.solve_implicit` (decreasing `t` by reversing time)."""
    from fastsim.solvers.implicit import solve_implicit  # imported on first use: numpy/scipy LU paths

    if t.dim() != 1:
        raise ValueError(f"method {method!r} takes t of shape (T,); got {tuple(t.shape)}")
    if t.numel() > 1 and bool(t[1] < t[0]):
        # y(s) with s = −t solves dy/ds = −f(−s, y), whose Jacobian is −J(−s, y).
        jac = opts.get("jac")
        if callable(jac):
            opts = {**opts, "jac": lambda s, y: -jac(-s, y)}
        ys, stats = solve_implicit(lambda s, y: -func(-s, y), y0, -t, method, rtol, atol, opts)
    else:
        ys, stats = solve_implicit(func, y0, t, method, rtol, atol, opts)
    if return_stats:
        return ys, stats
    if stats.get("status", "success") != "success":
        warnings.warn(f"{method} stopped early: {stats.get('message', '')}", RuntimeWarning, stacklevel=3)
    return ys
