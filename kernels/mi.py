"""Triton kernels of the information estimators: the fused Gaussian Gram and the streamed KDE log-sum-exp
(see csrc/mi/). Registered as ``torch.ops.fastsim.gaussian_gram_triton`` / ``kde_logsumexp_triton``.

Distances are summed from differences a feature block at a time (no ‖a‖² + ‖b‖² − 2a·b cancellation) and
accumulated in float64.
"""

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

_BLOCK = 16  # rows (and columns) of a tile
_BLOCK_D = 16  # features per step of the distance sum


@triton.jit
def _tile_distances(x_ptr, rows, cols, row_mask, col_mask, d, BLOCK_D: tl.constexpr):
    """‖x_r − x_c‖² for a (rows × cols) tile of one batch element (x_ptr points at its (N, d) samples)."""
    acc = tl.zeros((rows.shape[0], cols.shape[0]), dtype=tl.float64)
    for start in range(0, d, BLOCK_D):
        feats = start + tl.arange(0, BLOCK_D)
        fmask = feats < d
        a = tl.load(x_ptr + rows[:, None] * d + feats[None, :], mask=row_mask[:, None] & fmask[None, :], other=0.0)
        b = tl.load(x_ptr + cols[:, None] * d + feats[None, :], mask=col_mask[:, None] & fmask[None, :], other=0.0)
        diff = a.to(tl.float64)[:, None, :] - b.to(tl.float64)[None, :, :]
        acc += tl.sum(diff * diff, axis=2)
    return acc


@triton.jit
def _gaussian_gram_kernel(
    x_ptr,
    sigma_ptr,
    factor_ptr,
    other_ptr,
    out_ptr,
    n,
    d,
    HAS_OTHER: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """One (BLOCK × BLOCK) tile of batch element program_id(2): exp(−d²/(2σ²)) · factor (· other)."""
    b = tl.program_id(2).to(tl.int64)
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    row_mask, col_mask = rows < n, cols < n
    d2 = _tile_distances(x_ptr + b * n * d, rows, cols, row_mask, col_mask, d, BLOCK_D)
    s = tl.load(sigma_ptr + b).to(tl.float64)
    k = tl.exp(-d2 / (2.0 * s * s)) * tl.load(factor_ptr + b)
    offs = b * n * n + rows[:, None] * n + cols[None, :]
    mask = row_mask[:, None] & col_mask[None, :]
    if HAS_OTHER:
        k = k * tl.load(other_ptr + offs, mask=mask, other=0.0).to(tl.float64)
    tl.store(out_ptr + offs, k.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _kde_logsumexp_kernel(t_ptr, out_ptr, n, d, scale_ptr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    """log Σ_j exp(−scale·‖t_i − t_j‖²) for a block of rows, streaming column tiles with an online maximum."""
    b = tl.program_id(1).to(tl.int64)
    scale = tl.load(scale_ptr)
    rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    row_mask = rows < n
    base = t_ptr + b * n * d
    m = tl.full((BLOCK,), float("-inf"), dtype=tl.float64)
    acc = tl.zeros((BLOCK,), dtype=tl.float64)
    for start in range(0, n, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        col_mask = cols < n
        v = -scale * _tile_distances(base, rows, cols, row_mask, col_mask, d, BLOCK_D)
        v = tl.where(col_mask[None, :], v, float("-inf"))
        new_m = tl.maximum(m, tl.max(v, axis=1))
        acc = acc * tl.exp(m - new_m) + tl.sum(tl.exp(v - new_m[:, None]), axis=1)
        m = new_m
    tl.store(out_ptr + b * n + rows, (m + tl.log(acc)).to(out_ptr.dtype.element_ty), mask=row_mask)


@triton_op("fastsim::gaussian_gram_triton", mutates_args=())
def gaussian_gram_triton(x: torch.Tensor, sigma: torch.Tensor, other: torch.Tensor | None) -> torch.Tensor:
    """`(B, N, N)` normalised Gaussian Gram matrices of `x (B, N, d)` (joined with `other` when given)."""
    bsz, n, d = x.shape
    out = torch.empty(bsz, n, n, dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    if other is None:
        factor = torch.full((bsz,), 1.0 / n, dtype=torch.float64, device=x.device)
    else:  # tr(A ∘ O) = tr(O)/N since A_ii = 1/N
        factor = 1.0 / other.diagonal(dim1=1, dim2=2).to(torch.float64).sum(-1)
    grid = (triton.cdiv(n, _BLOCK), triton.cdiv(n, _BLOCK), bsz)
    wrap_triton(_gaussian_gram_kernel)[grid](
        x,
        sigma,
        factor,
        other if other is not None else out,
        out,
        n,
        d,
        HAS_OTHER=other is not None,
        BLOCK=_BLOCK,
        BLOCK_D=_BLOCK_D,
    )
    return out


@triton_op("fastsim::kde_logsumexp_triton", mutates_args=())
def kde_logsumexp_triton(t: torch.Tensor, scale: float) -> torch.Tensor:
    """`(B, N)` row log-sum-exps of `−scale·‖t_i − t_j‖²` for `t (B, N, d)`, O(B·N) memory."""
    bsz, n, d = t.shape
    out = torch.empty(bsz, n, dtype=t.dtype, device=t.device)
    if out.numel() == 0:
        return out
    # a float64 tensor, not a Python float: on a GPU, Triton passes Python floats as float32 scalars
    scale_tensor = torch.tensor([scale], dtype=torch.float64, device=t.device)
    wrap_triton(_kde_logsumexp_kernel)[(triton.cdiv(n, _BLOCK), bsz)](
        t, out, n, d, scale_tensor, BLOCK=_BLOCK, BLOCK_D=_BLOCK_D
    )
    return out
