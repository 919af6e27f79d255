"""`solve_ivp`: scipy's interface (`fun(t, y)`, `t_span`, `t_eval`, an `OdeResult`) on the batched engine."""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastsim.solvers._inputs import StateLayout, check_rtol, check_times, check_tolerance
from fastsim.solvers.api import METHODS, check_options, solve_flat, time_dtype
from fastsim.solvers.explicit import STATUS_MESSAGES, Status
from fastsim.solvers.tableaux import get_tableau

__all__ = ["OdeResult", "solve_ivp", "IVP_METHODS"]

# scipy's names first, then ours (any name of `odeint`'s explicit METHODS is accepted as well).
IVP_METHODS = {"RK45": "dopri5", "RK23": "bosh3", "DOP853": "dop853", "Radau": "radau"}


@dataclass
class OdeResult:
    """The solution, shaped like scipy's `OdeResult` (torch tensors instead of numpy arrays).

    Attributes:
        t: `(T,)` output times.
        y: `(n, T)` for a 1-D `y0`; `(B, n, T)` for a batch `(B, n)`.
        nfev, njev, nlu: right-hand-side evaluations, Jacobian evaluations and LU factorisations (ints; summed
            over a batch).
        status: 0 when every trajectory reached `t_span[1]`, −1 otherwise (scipy's codes).
        message: a sentence per distinct outcome.
        success: `status == 0`.
        stats: per trajectory, `(B,)` tensors `nfev`, `naccept`, `nreject` and the list `status` of names.
    """

    t: Tensor
    y: Tensor
    nfev: int
    njev: int
    nlu: int
    status: int
    message: str
    success: bool
    stats: dict[str, Any] = field(default_factory=dict)
    sol: None = None
    t_events: None = None
    y_events: None = None


def _method(method: object) -> str:
    if isinstance(method, str):
        if method in IVP_METHODS:
            return IVP_METHODS[method]
        if method in METHODS or method.lower() in ("radau", "rodas5"):
            return method if method in METHODS else method.lower()
    valid = ", ".join([*IVP_METHODS, *METHODS, "rodas5"])
    raise ValueError(f"unknown method {method!r}; valid methods: {valid}")


def _as_tensor(name: str, x: object, dtype: torch.dtype | None = None, device: Any = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        arr = np.asarray(x)
    except Exception as e:  # noqa: BLE001 - report any conversion failure as a TypeError naming the argument
        raise TypeError(f"{name} must be array-like; got {type(x).__name__}") from e
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be real numbers; got dtype {arr.dtype}")
    return torch.as_tensor(arr, dtype=dtype or torch.float64, device=device)


def solve_ivp(
    fun: Callable[..., Any],
    t_span: tuple[float, float],
    y0: Any,
    *,
    t_eval: Any = None,
    method: str = "DOP853",
    rtol: float = 1e-3,
    atol: float = 1e-6,
    dense_output: bool = False,
    max_step: float = math.inf,
    first_step: float | None = None,
    args: tuple | None = None,
    vectorized: bool = False,
    **options: Any,
) -> OdeResult:
    """Solve `dy/dt = fun(t, y)`, `y(t_span[0]) = y0`, scipy style.

    Args:
        fun: `fun(t, y, *args) -> dy/dt`; `y` is a torch tensor shaped like `y0` (a plain array returned by
            `fun` is converted). For a batch `y0 (B, n)`, `t` is `(B, 1)`: each trajectory's own time.
        t_span: `(t0, t1)`, `t1 ≠ t0` (either direction).
        y0: `(n,)` initial state, or `(B, n)`: B independent trajectories, each with its own step sizes.
        t_eval: times to report, within `t_span` and ordered in its direction; None: `t_span` itself (unlike
            scipy, which then reports every step: the engine keeps no step history).
        method: "RK45" (dopri5), "RK23" (bosh3), "DOP853", "Radau", or any `odeint` method name.
        rtol, atol: tolerances (> 0). max_step, first_step: bounds on / the first step size.
        dense_output: not supported (ValueError if True); use `t_eval`.
        args: a tuple of extra arguments for `fun`. vectorized: accepted for compatibility; explicit methods always
            evaluate `fun` once per stage for the whole batch.
        options: further `odeint` options (e.g. `max_num_steps`, `step_size`).

    Returns:
        An `OdeResult`.
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable; got {type(fun).__name__}")
    if dense_output:
        raise ValueError("dense_output=True is not supported; pass the times you need as t_eval")
    if args is not None and not isinstance(args, (tuple, list)):
        raise TypeError(f"args must be a tuple of extra arguments for fun (e.g. args=(k,)); got {type(args).__name__}")
    name = _method(method)
    rtol, atol = check_rtol("rtol", rtol), check_tolerance("atol", atol)
    y0 = _as_tensor("y0", y0)
    if not y0.is_floating_point():
        y0 = y0.to(torch.float64)
    if y0.dim() not in (1, 2):
        raise ValueError(f"y0 must have shape (n,) or (B, n); got {tuple(y0.shape)}")
    if not isinstance(t_span, (tuple, list)) or len(t_span) != 2:
        raise ValueError(f"t_span must be a pair (t0, t1); got {t_span!r}")
    try:
        t0, t1 = (float(v) for v in t_span)
    except (TypeError, ValueError) as e:
        raise TypeError(f"t_span must hold two real numbers; got {t_span!r}") from e
    if not (math.isfinite(t0) and math.isfinite(t1)) or t0 == t1:
        raise ValueError(f"t_span must hold two different finite numbers; got {t_span!r}")
    direction = 1.0 if t1 > t0 else -1.0
    if t_eval is None:
        t_eval_t = torch.tensor([t0, t1], dtype=torch.float64, device=y0.device)
    else:
        t_eval_t = check_times("t_eval", _as_tensor("t_eval", t_eval, device=y0.device), y0.device, None)
        lo, hi = min(t0, t1), max(t0, t1)
        if bool((t_eval_t < lo).any() | (t_eval_t > hi).any()):
            raise ValueError(f"t_eval must lie within t_span {t_span!r}")
        if t_eval_t.numel() > 1 and bool((t_eval_t[1] - t_eval_t[0]) * direction < 0):
            raise ValueError("t_eval must be ordered in the direction of t_span")
    opts = check_options(options)
    opts["max_step"], opts["first_step"] = max_step, first_step
    batched = y0.dim() == 2
    if name in ("radau", "rodas5"):
        return _solve_implicit(fun, t0, t1, y0, t_eval_t, name, rtol, atol, opts, args, batched)
    if batched:
        opts["batch_dim"] = 0
    layout = StateLayout(y0, opts.pop("batch_dim", None))
    B = layout.batch
    tdt = time_dtype(opts, layout.dtype)
    t_out = t_eval_t.to(tdt).expand(B, -1)
    start = torch.full((B,), t0, dtype=tdt, device=y0.device)
    end = torch.full((B,), t1, dtype=tdt, device=y0.device)
    tableau, adaptive = get_tableau(METHODS[name][0]), METHODS[name][1]
    f = layout.wrap(fun, tuple(args or ()))
    ys, stats = solve_flat(f, layout.flatten(y0), start, end, t_out, tableau, adaptive, rtol, atol, opts)
    y = ys.transpose(1, 2)  # (B, n, T)
    names = stats.status_names()
    ok = all(s == Status.success.name for s in names)
    message = " ".join(sorted({STATUS_MESSAGES[s] for s in names}))
    per_traj = {"nfev": stats.nfev, "naccept": stats.accepted, "nreject": stats.rejected, "status": names}
    return OdeResult(
        t=t_eval_t, y=y if batched else y[0], nfev=int(stats.nfev.sum()), njev=0, nlu=0,
        status=0 if ok else -1, message=message, success=ok, stats=per_traj,
    )  # fmt: skip


def _solve_implicit(
    fun: Callable, t0: float, t1: float, y0: Tensor, t_eval: Tensor, name: str, rtol: float, atol: float,
    opts: dict, args: tuple | None, batched: bool,
) -> OdeResult:  # fmt: skip
    """Radau/Rodas5 through `odeint`'s stiff dispatch (one coupled system for a batch)."""
    from fastsim.solvers.api import odeint

    grid = t_eval if bool(t_eval[0] == t0) else torch.cat([t_eval.new_tensor([t0]), t_eval])
    for k in ("max_step", "first_step"):
        if opts.get(k) is None or opts.get(k) == math.inf:
            opts.pop(k, None)
    extra = tuple(args or ())
    ys, st = odeint(lambda t, y: fun(t, y, *extra), y0, grid, rtol=rtol, atol=atol, method=name,
                    options=opts or None, return_stats=True)  # fmt: skip
    ys = ys[len(grid) - len(t_eval) :]
    y = ys.movedim(0, -1)
    ok = st.get("status", "success") == "success"
    return OdeResult(
        t=t_eval, y=y, nfev=int(st.get("nfev", 0)), njev=int(st.get("njev", 0)), nlu=int(st.get("nlu", 0)),
        status=0 if ok else -1, message=str(st.get("message", "")), success=ok, stats=dict(st),
    )  # fmt: skip
