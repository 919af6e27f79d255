"""Fused Runge-Kutta stage arithmetic, for any right-hand side (used by fastsim.solvers).

`rk_stage(y, dt, ks, coeffs) = y + dt[:, None] · Σ_s coeffs[s] · ks[s]` in one pass over memory instead of one
axpy per stage, and `rk_error_norm` the per-trajectory weighted RMS norm of an embedded error estimate.
"""

import math
from collections.abc import Sequence

import torch

from fastsim import _backend


def _check_stage_args(y: torch.Tensor, dt: torch.Tensor, ks: Sequence[torch.Tensor], count: int) -> None:
    if not isinstance(y, torch.Tensor) or y.dim() != 2 or not y.is_floating_point():
        raise ValueError(f"y must be a floating (B, N) tensor; got {getattr(y, 'shape', type(y).__name__)}")
    if not isinstance(dt, torch.Tensor) or dt.shape != (y.shape[0],) or dt.dtype != y.dtype:
        raise ValueError(f"dt must be a ({y.shape[0]},) tensor of dtype {y.dtype}")
    if len(ks) < count:
        raise ValueError(f"ks holds {len(ks)} stages but {count} coefficients were given")
    for s, k in enumerate(ks[:count]):
        if not isinstance(k, torch.Tensor) or k.shape != y.shape or k.dtype != y.dtype or k.device != y.device:
            raise ValueError(f"ks[{s}] must match y (shape {tuple(y.shape)}, {y.dtype}, {y.device})")


def rk_stage(y: torch.Tensor, dt: torch.Tensor, ks: Sequence[torch.Tensor], coeffs: Sequence[float]) -> torch.Tensor:
    """`y + dt[:, None] · Σ_s coeffs[s] · ks[s]`: a Runge-Kutta stage state (or, with the weights b, y_new).

    Args:
        y: `(B, N)` state; dt: `(B,)` step sizes; ks: stages, each `(B, N)` (only the first len(coeffs) used);
        coeffs: the tableau row (Python floats).

    Returns:
        `(B, N)`; differentiable in `y`, `dt` and every stage.
    """
    coeffs = [float(c) for c in coeffs]
    _check_stage_args(y, dt, ks, len(coeffs))
    stages = [k.contiguous() for k in ks[: len(coeffs)]]
    return _backend.op("rk_stage", y.device)(y.contiguous(), dt.contiguous(), stages, coeffs)


def rk_error_norm(
    y0: torch.Tensor,
    y1: torch.Tensor,
    dt: torch.Tensor,
    ks: Sequence[torch.Tensor],
    b_err: Sequence[float],
    rtol: float,
    atol: float,
    b_err_aux: Sequence[float] | None = None,
) -> torch.Tensor:
    """Per-trajectory error norm of the embedded estimate `dt · Σ_s b_err[s] · ks[s]`, `(B,)`.

    With `sc = atol + rtol · max(|y0|, |y1|)` and `e = Σ_s b_err[s] ks[s] / sc`: `|dt| · sqrt(mean(e²))`; with
    `b_err_aux` (DOP853's 3rd-order weights, e3 likewise) Hairer's `|dt| · ‖e‖² / sqrt(N (‖e‖² + 0.01 ‖e3‖²))`.
    Step-size control only: the result carries no gradient.
    """
    rtol, atol = float(rtol), float(atol)
    if not (math.isfinite(rtol) and math.isfinite(atol) and rtol >= 0 and atol >= 0 and rtol + atol > 0):
        raise ValueError(f"rtol and atol must be finite and >= 0, not both 0; got rtol={rtol}, atol={atol}")
    b_err = [float(c) for c in b_err]
    b_err_aux = [float(c) for c in (b_err_aux or [])]
    _check_stage_args(y0, dt, ks, max(len(b_err), len(b_err_aux)))
    if y1.shape != y0.shape or y1.dtype != y0.dtype:
        raise ValueError(f"y1 must match y0 ({tuple(y0.shape)}, {y0.dtype})")
    stages = [k.detach().contiguous() for k in ks[: max(len(b_err), len(b_err_aux))]]
    return _backend.op("rk_error_norm", y0.device)(
        y0.detach().contiguous(),
        y1.detach().contiguous(),
        dt.detach().contiguous(),
        stages,
        b_err,
        b_err_aux,
        rtol,
        atol,
    )


# ------------------------------------------------------------------------------------- fake kernels, autograd
def _rk_stage_fake(y, dt, ks, coeffs):
    return torch.empty_like(y)


def _rk_error_norm_fake(y0, y1, dt, ks, b_err, b_err_aux, rtol, atol):
    return y0.new_empty(y0.shape[0])


def _rk_stage_setup(ctx, inputs, output):
    y, dt, ks, coeffs = inputs
    ctx.coeffs, ctx.num_stages = coeffs, len(ks)
    ctx.save_for_backward(dt, *ks)


def _rk_stage_backward(ctx, grad):
    dt, *ks = ctx.saved_tensors
    grad_dt = None
    if ctx.needs_input_grad[1]:
        combined = rk_stage(torch.zeros_like(grad), torch.ones_like(dt), ks, ctx.coeffs)
        grad_dt = (grad * combined).sum(dim=1)
    scaled = grad * dt[:, None]
    grad_ks = [scaled * c for c in ctx.coeffs] + [None] * (ctx.num_stages - len(ctx.coeffs))
    return grad, grad_dt, grad_ks, None


def register(suffix: str = "") -> None:
    """Fake kernels (C++ ops only; Triton ops derive theirs) and autograd for fastsim::rk_*<suffix>."""
    if not suffix:
        torch.library.register_fake("fastsim::rk_stage")(_rk_stage_fake)
        torch.library.register_fake("fastsim::rk_error_norm")(_rk_error_norm_fake)
    torch.library.register_autograd(f"fastsim::rk_stage{suffix}", _rk_stage_backward, setup_context=_rk_stage_setup)


register()
