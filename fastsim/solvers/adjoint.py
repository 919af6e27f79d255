"""`odeint_adjoint`: gradients by the continuous adjoint method, in memory independent of the number of steps.

For `L(y(t_0), …, y(t_{T−1}))` with `dy/dt = f(t, y; θ)`, the adjoint `a(t) = ∂L/∂y(t)` and the parameter
gradient solve, backwards from `t_{T−1}` to `t_0` (Pontryagin; Chen et al. 2018, torchdiffeq):

    dy/dt = f(t, y),    da/dt = −aᵀ ∂f/∂y,    dg/dt = −aᵀ ∂f/∂θ,

starting from `y(t_{T−1})`, `a = ∂L/∂y(t_{T−1})`, `g = 0`; at every earlier output time `t_i` the jump
`∂L/∂y(t_i)` is added to `a` and `y` is reset to the stored forward value. At `t_0`, `a = ∂L/∂y0` and
`g = ∂L/∂θ`. The forward pass stores only the outputs; each backward interval is one solve of the augmented
system with the same engine. Vector–Jacobian products come from `torch.autograd.grad` on one evaluation of
`f`.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from fastsim.solvers._inputs import State, StateLayout, check_rtol, check_times, check_tolerance
from fastsim.solvers.api import check_options, resolve_method, solve_flat, time_dtype, warn_failures

__all__ = ["odeint_adjoint"]


class _Problem:
    """Everything the autograd function needs besides the tensors it differentiates."""

    def __init__(self, func: Callable, layout: StateLayout, t: Tensor, fwd: dict, bwd: dict) -> None:
        self.func, self.layout, self.t, self.fwd, self.bwd = func, layout, t, fwd, bwd


class _AdjointSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, problem: _Problem, y0: Tensor, *params: Tensor) -> Tensor:
        fwd, lay = problem.fwd, problem.layout
        t_out = problem.t.expand(lay.batch, problem.t.shape[-1])
        with torch.no_grad():
            ys, stats = solve_flat(lay.wrap(problem.func), y0, t_out[:, 0], t_out[:, -1], t_out, **fwd)
        warn_failures(stats)
        ctx.problem = problem
        ctx.save_for_backward(ys, *params)
        return ys

    @staticmethod
    def backward(ctx: Any, grad_ys: Tensor) -> tuple[Tensor | None, ...]:
        problem = ctx.problem
        ys, *params = ctx.saved_tensors
        lay, bwd, t = problem.layout, problem.bwd, problem.t
        f_flat = lay.wrap(problem.func)
        B = lay.batch

        def augmented(s: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            y, a = state[0], state[1]
            with torch.enable_grad():
                y = y.detach().requires_grad_(True)
                f = f_flat(s.expand(B).to(t.dtype), y)
                vjp = torch.autograd.grad(f, (y, *params), -a, allow_unused=True)
            vjp = [torch.zeros_like(x) if v is None else v for v, x in zip(vjp, (y, *params), strict=True)]
            return (f.detach(), *vjp)

        aug_layout = StateLayout((ys[:, -1], grad_ys[:, -1], *[torch.zeros_like(p) for p in params]))
        g_aug = aug_layout.wrap(augmented)
        state = aug_layout.flatten((ys[:, -1], grad_ys[:, -1], *[torch.zeros_like(p) for p in params]))
        n_y = ys[:, -1].numel()
        T = t.shape[-1]
        for i in range(T - 1, 0, -1):
            ti = t[[i, i - 1]].to(bwd["time_dtype"])[None, :]
            out, stats = solve_flat(g_aug, state, ti[:, 0], ti[:, 1], ti, **bwd["solver"])
            warn_failures(stats)
            state = out[:, -1].clone()
            state[0, :n_y] = ys[:, i - 1].reshape(-1)
            state[0, n_y : 2 * n_y] += grad_ys[:, i - 1].reshape(-1)
        _, grad_y0, *grad_params = aug_layout.unflatten(state)
        grad_params = [g.to(p.dtype) for g, p in zip(grad_params, params, strict=True)]
        return (None, grad_y0.to(ys.dtype), *grad_params)


def odeint_adjoint(
    func: Callable[[Tensor, State], State],
    y0: State,
    t: Tensor,
    *,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    method: str = "dopri5",
    options: dict[str, Any] | None = None,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    adjoint_method: str | None = None,
    adjoint_options: dict[str, Any] | None = None,
    adjoint_params: tuple[Tensor, ...] | None = None,
) -> State:
    """`odeint` whose backward pass solves the adjoint system instead of backpropagating through the steps.

    Args:
        func: the right-hand side, an `nn.Module` unless `adjoint_params` is given.
        y0, t, rtol, atol, method, options: as in `odeint` (explicit methods; with `options['batch_dim']` the
            forward solve steps each trajectory independently; `t` must then be shared, `(T,)`).
        adjoint_rtol, adjoint_atol, adjoint_method, adjoint_options: for the backward solves (default: the
            forward ones, without `batch_dim`: the backward system couples the trajectories through `g`).
        adjoint_params: tensors to differentiate (default `func.parameters()`); those not requiring grad are
            skipped.

    Returns:
        As `odeint`: `(T, *S)` (tuple for tuple `y0`). Gradients flow to `y0` and the parameters, not to `t`.
    """
    if adjoint_params is None:
        if not isinstance(func, nn.Module):
            raise TypeError("func must be an nn.Module when adjoint_params is not given")
        adjoint_params = tuple(func.parameters())
    params = tuple(p for p in adjoint_params if isinstance(p, Tensor) and p.requires_grad)
    if not callable(func):
        raise TypeError(f"func must be callable; got {type(func).__name__}")
    opts = check_options(options)
    resolved = resolve_method(method)
    if resolved is None:
        raise ValueError(f"odeint_adjoint supports explicit methods only; got {method!r}")
    rtol, atol = check_rtol("rtol", rtol), check_tolerance("atol", atol)
    layout = StateLayout(y0, opts.get("batch_dim"))
    t = check_times("t", t, layout.device, None)
    tdt = time_dtype(opts, layout.dtype)
    fwd = {"tableau": resolved[0], "adaptive": resolved[1], "rtol": rtol, "atol": atol, "options": opts}
    b_opts = check_options(adjoint_options if adjoint_options is not None else opts)
    b_opts.pop("batch_dim", None)
    b_res = resolve_method(adjoint_method or method)
    if b_res is None:
        raise ValueError(f"adjoint_method must be explicit; got {adjoint_method!r}")
    solver = {
        "tableau": b_res[0],
        "adaptive": b_res[1],
        "rtol": check_rtol("adjoint_rtol", rtol if adjoint_rtol is None else adjoint_rtol),
        "atol": check_tolerance("adjoint_atol", atol if adjoint_atol is None else adjoint_atol),
        "options": b_opts,
    }
    problem = _Problem(func, layout, t.to(tdt), fwd, {"solver": solver, "time_dtype": tdt})
    if t.shape[0] == 1:
        return layout.outputs(layout.flatten(y0)[:, None, :])
    ys = _AdjointSolve.apply(problem, layout.flatten(y0), *params)
    return layout.outputs(ys)
