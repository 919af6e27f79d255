"""Triton kernels for the Runge-Kutta stage arithmetic: `rk_stage` and `rk_error_norm` (see csrc/rk/).

Registered as ``torch.ops.fastsim.rk_stage_triton`` / ``rk_error_norm_triton``. A kernel takes the stages as up
to 12 separate pointers (DOP853, the largest tableau, has 12 stages) so no stacked copy of the stages is made;
unused pointer slots are never read (`NUM_STAGES` is a compile-time constant).
"""

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

MAX_STAGES = 12
_BLOCK = 1024


@triton.jit
def _combine(k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, c_ptr, offs, mask, NUM_STAGES: tl.constexpr):
    """Σ_s c[s] · k_s[offs] in float64, unrolled over the NUM_STAGES stage pointers."""
    acc = tl.zeros(offs.shape, dtype=tl.float64)
    ks = (k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11)
    for s in tl.static_range(NUM_STAGES):
        acc += tl.load(c_ptr + s) * tl.load(ks[s] + offs, mask=mask, other=0.0).to(tl.float64)
    return acc


@triton.jit
def _rk_stage_kernel(
    y_ptr,
    dt_ptr,
    out_ptr,
    c_ptr,
    k0,
    k1,
    k2,
    k3,
    k4,
    k5,
    k6,
    k7,
    k8,
    k9,
    k10,
    k11,
    total,
    n,
    NUM_STAGES: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """out = y + dt[row] · Σ_s c_s k_s over a block of the flattened (B, N) state."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    acc = _combine(k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, c_ptr, offs, mask, NUM_STAGES)
    y = tl.load(y_ptr + offs, mask=mask, other=0.0)
    dt = tl.load(dt_ptr + offs // n, mask=mask, other=0.0)
    tl.store(out_ptr + offs, (y.to(tl.float64) + dt.to(tl.float64) * acc).to(y.dtype), mask=mask)


@triton.jit
def _rk_error_norm_kernel(
    y0_ptr,
    y1_ptr,
    dt_ptr,
    out_ptr,
    c_ptr,
    c_aux_ptr,
    k0,
    k1,
    k2,
    k3,
    k4,
    k5,
    k6,
    k7,
    k8,
    k9,
    k10,
    k11,
    n,
    tol_ptr,
    NUM_STAGES: tl.constexpr,
    NUM_AUX: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One program per trajectory: the weighted RMS (or DOP853 combined) error norm of its row."""
    row = tl.program_id(0).to(tl.int64)
    rtol = tl.load(tol_ptr)
    atol = tl.load(tol_ptr + 1)
    sum5 = tl.zeros((BLOCK,), dtype=tl.float64)
    sum3 = tl.zeros((BLOCK,), dtype=tl.float64)
    for start in range(0, n, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n
        offs = row * n + cols
        a = tl.abs(tl.load(y0_ptr + offs, mask=mask, other=0.0).to(tl.float64))
        b = tl.abs(tl.load(y1_ptr + offs, mask=mask, other=0.0).to(tl.float64))
        scale = atol + rtol * tl.maximum(a, b)
        e5 = _combine(k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, c_ptr, offs, mask, NUM_STAGES) / scale
        sum5 += tl.where(mask, e5 * e5, 0.0)
        if NUM_AUX > 0:
            e3 = _combine(k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, c_aux_ptr, offs, mask, NUM_AUX) / scale
            sum3 += tl.where(mask, e3 * e3, 0.0)
    s5 = tl.sum(sum5, axis=0)
    s3 = tl.sum(sum3, axis=0)
    h = tl.abs(tl.load(dt_ptr + row).to(tl.float64))
    if NUM_AUX > 0:  # Hairer's DOP853: |h| · ‖e5‖² / sqrt(N (‖e5‖² + 0.01 ‖e3‖²))
        denom = tl.sqrt(n * (s5 + 0.01 * s3))
        value = tl.where(denom > 0, h * s5 / tl.where(denom > 0, denom, 1.0), 0.0)
    else:
        value = tl.where(n > 0, h * tl.sqrt(s5 / tl.maximum(n, 1)), 0.0)
    tl.store(out_ptr + row, value.to(out_ptr.dtype.element_ty))


def _stage_args(ks: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    if count > MAX_STAGES:
        raise ValueError(f"the Triton RK kernels take at most {MAX_STAGES} stages; got {count}")
    used = list(ks[:count])
    return used + [used[0] if used else torch.empty(0)] * (MAX_STAGES - len(used))


def _coeffs(values: list[float], device: torch.device) -> torch.Tensor:
    """float64 values as a tensor: on a GPU, Triton would pass Python floats as float32 scalars."""
    return torch.tensor(values if values else [0.0], dtype=torch.float64, device=device)


@triton_op("fastsim::rk_stage_triton", mutates_args=())
def rk_stage_triton(y: torch.Tensor, dt: torch.Tensor, ks: list[torch.Tensor], coeffs: list[float]) -> torch.Tensor:
    """`y + dt[:, None] · Σ_s coeffs[s] · ks[s]` for `y (B, N)`, `dt (B,)`."""
    out = torch.empty_like(y)
    total = y.numel()
    if total == 0:
        return out
    if not coeffs:
        return out.copy_(y)
    c = _coeffs(coeffs, y.device)
    wrap_triton(_rk_stage_kernel)[(triton.cdiv(total, _BLOCK),)](
        y, dt, out, c, *_stage_args(ks, len(coeffs)), total, y.shape[1], NUM_STAGES=len(coeffs), BLOCK=_BLOCK
    )
    return out


@triton_op("fastsim::rk_error_norm_triton", mutates_args=())
def rk_error_norm_triton(
    y0: torch.Tensor,
    y1: torch.Tensor,
    dt: torch.Tensor,
    ks: list[torch.Tensor],
    b_err: list[float],
    b_err_aux: list[float],
    rtol: float,
    atol: float,
) -> torch.Tensor:
    """Per-trajectory error norm `(B,)` of the embedded estimate (see csrc/rk/rk_stage_cpu.cpp)."""
    out = torch.empty(y0.shape[0], dtype=y0.dtype, device=y0.device)
    if y0.shape[0] == 0:
        return out
    used = max(len(b_err), len(b_err_aux))
    block = min(_BLOCK, max(16, triton.next_power_of_2(max(y0.shape[1], 1))))
    wrap_triton(_rk_error_norm_kernel)[(y0.shape[0],)](
        y0,
        y1,
        dt,
        out,
        _coeffs(b_err, y0.device),
        _coeffs(b_err_aux, y0.device),
        *_stage_args(ks, used),
        y0.shape[1],
        _coeffs([rtol, atol], y0.device),
        NUM_STAGES=len(b_err),
        NUM_AUX=len(b_err_aux),
        BLOCK=block,
    )
    return out
