"""Triton kernels for the CSR message-passing ops: `segment_reduce`, `spmm` and `sddmm`.

Each op is registered as ``torch.ops.fastsim.<name>_triton`` with `torch.library.triton_op`, with the schema
and semantics of docs/ops.md; autograd and backend choice live in `fastsim.ops`. Destination rows own their
outputs, so no kernel here needs atomics and every result is deterministic. Importing this module also
registers the fused graph-network edge ops of `gn_edge` and `gn_edge_backward`. Imports only torch, triton.
"""

import math

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .gn_edge import gn_edge_aggregate_triton, interpreted_fake
from .gn_edge_backward import gn_edge_aggregate_backward_triton

__all__ = [
    "gn_edge_aggregate_backward_triton",
    "gn_edge_aggregate_triton",
    "sddmm_triton",
    "segment_reduce_triton",
    "spmm_triton",
]

_REDUCE_CODES = {"sum": 0, "mean": 1, "min": 2, "max": 3}
_SDDMM_CODES = {"dot": 0, "add": 1, "mul": 2}
_FLOAT_DTYPES = (torch.float32, torch.float64)
_ROWS_PER_PROGRAM = 4


@triton.jit
def _csr_reduce_kernel(
    values_ptr,
    index_ptr,
    weight_ptr,
    indptr_ptr,
    out_ptr,
    arg_ptr,
    num_rows,
    num_cols,
    HAS_INDEX: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    REDUCE: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_F: tl.constexpr,
):
    """`out[i, f] = reduce_{e in indptr[i]:indptr[i+1]} w[e] * values[index[e], f]`.

    Without an index, index[e] = e; without weights, w = 1. Grid: (blocks of ROWS rows, blocks of BLOCK_F
    columns). Each row is read in chunks of BLOCK_E edges into a (BLOCK_E, BLOCK_F) running state, so lane k
    sees edges k, k + BLOCK_E, ... in increasing order; the lanes are combined once per row.
    REDUCE: 0 sum, 1 mean, 2 min, 3 max; min runs as max of the negated values.
    For min/max a lane takes a value if it has none yet, or it is NaN, or it is strictly greater, and never
    after it holds a NaN; across lanes the smallest edge position among the winners is kept. So the first
    extreme element wins, and NaN wins and sticks (docs/ops.md). The program owns its rows: no atomics.
    """
    pid_r = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    col_mask = cols < num_cols
    lanes = tl.arange(0, BLOCK_E)
    for r in range(ROWS):
        row = pid_r * ROWS + r
        if row < num_rows:
            start = tl.load(indptr_ptr + row)
            end = tl.load(indptr_ptr + row + 1)
            acc = tl.zeros((BLOCK_E, BLOCK_F), dtype=out_ptr.dtype.element_ty)
            arg = tl.full((BLOCK_E, BLOCK_F), -1, tl.int64)
            for e0 in range(start, end, BLOCK_E):
                e = e0 + lanes
                e_mask = e < end
                item = e
                if HAS_INDEX:
                    item = tl.load(index_ptr + e, mask=e_mask, other=0)
                mask = e_mask[:, None] & col_mask[None, :]
                v = tl.load(values_ptr + item[:, None] * num_cols + cols[None, :], mask=mask, other=0.0)
                if HAS_WEIGHT:
                    v = v * tl.load(weight_ptr + e, mask=e_mask, other=0.0)[:, None]
                if REDUCE <= 1:
                    acc += v
                else:
                    if REDUCE == 2:
                        v = -v
                    take = mask & (acc == acc) & ((v != v) | (v > acc) | (arg < 0))
                    acc = tl.where(take, v, acc)
                    arg = tl.where(take, e[:, None], arg)
            out_ptrs = out_ptr + row * num_cols + cols
            if REDUCE <= 1:
                res = tl.sum(acc, axis=0)
                if REDUCE == 1:
                    res = res / tl.maximum(end - start, 1).to(res.dtype)
                tl.store(out_ptrs, res, mask=col_mask)
            else:
                seen = arg >= 0
                is_nan = seen & (acc != acc)
                is_num = seen & (acc == acc)
                nan_arg = tl.min(tl.where(is_nan, arg, end), axis=0)
                nan_val = tl.sum(tl.where(is_nan, acc, 0.0), axis=0)  # NaN iff the row holds a NaN
                best = tl.max(tl.where(is_num, acc, float("-inf")), axis=0)
                best_arg = tl.min(tl.where(is_num & (acc == best[None, :]), arg, end), axis=0)
                has_nan = nan_arg < end
                res = tl.where(has_nan, nan_val, best)
                res_arg = tl.where(has_nan, nan_arg, best_arg)
                if REDUCE == 2:
                    res = -res
                found = res_arg < end
                tl.store(out_ptrs, tl.where(found, res, 0.0), mask=col_mask)
                tl.store(arg_ptr + row * num_cols + cols, tl.where(found, res_arg, -1), mask=col_mask)


@triton.jit
def _sddmm_kernel(
    indptr_ptr,
    src_ptr,
    u_ptr,
    v_ptr,
    out_ptr,
    num_rows,
    num_edges,
    num_cols,
    OP: tl.constexpr,
    BLOCK_E: tl.constexpr,
    BLOCK_F: tl.constexpr,
):
    """Per-edge `u[src[e]] . v[i]` (OP 0, out (E,)), `u[src[e]] + v[i]` (1) or `*` (2) (out (E, F)).

    Grid: blocks of BLOCK_E consecutive CSR edges, so the work is balanced whatever the degrees. The
    destination i of edge e (the last row with indptr[i] <= e) comes from a vectorised binary search over
    indptr, and the feature dimension is walked in chunks of BLOCK_F. Each edge is written by one program.
    """
    e = tl.program_id(0).to(tl.int64) * BLOCK_E + tl.arange(0, BLOCK_E)
    e_mask = e < num_edges
    lo = tl.zeros((BLOCK_E,), tl.int64)
    hi = tl.zeros((BLOCK_E,), tl.int64) + num_rows
    width = num_rows
    while width > 1:  # invariant: indptr[lo] <= e < indptr[hi] (indptr[num_rows] = E)
        mid = (lo + hi) // 2
        go_right = tl.load(indptr_ptr + mid, mask=e_mask, other=0) <= e
        lo = tl.where(go_right, mid, lo)
        hi = tl.where(go_right, hi, mid)
        width = (width + 1) // 2
    src = tl.load(src_ptr + e, mask=e_mask, other=0)
    dot = tl.zeros((BLOCK_E,), dtype=out_ptr.dtype.element_ty)
    for f0 in range(0, num_cols, BLOCK_F):
        cols = f0 + tl.arange(0, BLOCK_F)
        mask = e_mask[:, None] & (cols < num_cols)[None, :]
        a = tl.load(u_ptr + src[:, None] * num_cols + cols[None, :], mask=mask, other=0.0)
        b = tl.load(v_ptr + lo[:, None] * num_cols + cols[None, :], mask=mask, other=0.0)
        if OP == 0:
            dot += tl.sum(a * b, axis=1)
        else:
            res = a + b if OP == 1 else a * b
            tl.store(out_ptr + e[:, None] * num_cols + cols[None, :], res, mask=mask)
    if OP == 0:
        tl.store(out_ptr + e, dot, mask=e_mask)


def _check_float(name: str, t: torch.Tensor) -> None:
    if t.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64 for the Triton kernels; got {t.dtype}")


def _check_reduce(reduce: str) -> None:
    if reduce not in _REDUCE_CODES:
        raise ValueError(f"reduce must be one of {tuple(_REDUCE_CODES)}; got {reduce!r}")


def _pow2_between(n: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, triton.next_power_of_2(max(int(n), 1))))


def _csr_reduce(
    values: torch.Tensor,
    index: torch.Tensor | None,
    weight: torch.Tensor | None,
    indptr: torch.Tensor,
    num_cols: int,
    out_shape: tuple[int, ...],
    reduce: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Allocate `(out, arg)` and launch `_csr_reduce_kernel` (nothing to launch for an empty output)."""
    num_rows = indptr.numel() - 1
    out = values.new_empty(out_shape)
    minmax = reduce in ("min", "max")
    arg = torch.empty(out_shape if minmax else (0,), dtype=torch.long, device=values.device)
    if out.numel() == 0 or interpreted_fake(out):
        return out, arg
    num_edges = index.numel() if index is not None else values.shape[0]
    block_f = _pow2_between(num_cols, 1, 128)
    # ~ the mean degree, with the (BLOCK_E, BLOCK_F) running state <= 2048 elements (no register spills)
    block_e = _pow2_between(math.ceil(num_edges / num_rows), 4, min(32, 2048 // block_f))
    grid = (triton.cdiv(num_rows, _ROWS_PER_PROGRAM), triton.cdiv(num_cols, block_f))
    wrap_triton(_csr_reduce_kernel)[grid](
        values,
        index if index is not None else indptr,
        weight if weight is not None else values,
        indptr,
        out,
        arg if minmax else indptr,
        num_rows,
        num_cols,
        HAS_INDEX=index is not None,
        HAS_WEIGHT=weight is not None,
        REDUCE=_REDUCE_CODES[reduce],
        ROWS=_ROWS_PER_PROGRAM,
        BLOCK_E=block_e,
        BLOCK_F=block_f,
    )
    return out, arg


@triton_op("fastsim::segment_reduce_triton", mutates_args=())
def segment_reduce_triton(src: torch.Tensor, indptr: torch.Tensor, reduce: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduce `src (E, *F)` over the CSR segments `indptr (N+1,)` (sum, mean, min or max).

    Returns:
        `out (N, *F)` (0 for empty segments) and, for min/max, `arg (N, *F)` with the position in `src` of the
        first extreme element (-1 for empty segments; a NaN wins), else an empty `(0,)` int64 tensor.

    Raises:
        TypeError: for a `src` dtype other than float32/float64. ValueError: for an unknown `reduce`.
    """
    _check_float("src", src)
    _check_reduce(reduce)
    num_cols = math.prod(src.shape[1:])
    out_shape = (indptr.numel() - 1, *src.shape[1:])
    return _csr_reduce(src.contiguous(), None, None, indptr, num_cols, out_shape, reduce)


@triton_op("fastsim::spmm_triton", mutates_args=())
def spmm_triton(
    indptr: torch.Tensor,
    src: torch.Tensor,
    rev_indptr: torch.Tensor,
    rev_dst: torch.Tensor,
    rev_perm: torch.Tensor,
    weight: torch.Tensor | None,
    x: torch.Tensor,
    reduce: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`out[i] = reduce_{e into i} w_e * x[src[e]]` over the CSR rows (`rev_*` are for the caller's backward).

    Returns:
        `out (N, F)` (0 for empty rows) and, for min/max, `arg (N, F)` with the CSR edge position chosen
        (first extreme wins, NaN wins, -1 for empty rows), else an empty `(0,)` int64 tensor.

    Raises:
        TypeError: for `x`/`weight` dtypes other than float32/float64. ValueError: for an unknown `reduce`.
    """
    _check_float("x", x)
    if weight is not None and weight.dtype != x.dtype:
        raise TypeError(f"weight must have the dtype of x ({x.dtype}); got {weight.dtype}")
    _check_reduce(reduce)
    num_cols = x.shape[1]
    out_shape = (indptr.numel() - 1, num_cols)
    return _csr_reduce(x.contiguous(), src, weight, indptr, num_cols, out_shape, reduce)


@triton_op("fastsim::sddmm_triton", mutates_args=())
def sddmm_triton(
    indptr: torch.Tensor,
    src: torch.Tensor,
    rev_indptr: torch.Tensor,
    rev_dst: torch.Tensor,
    rev_perm: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    op: str,
) -> torch.Tensor:
    """Per-edge values from source features `u (N, F)` and destination features `v (N, F)`.

    Returns:
        For every CSR edge e into node i: `dot` gives `out (E,)`, `out[e] = sum_f u[src[e], f] v[i, f]`;
        `add` / `mul` give `out (E, F)`, `u[src[e]] + v[i]` / `u[src[e]] * v[i]`.

    Raises:
        TypeError: for dtypes other than float32/float64 or `u`, `v` of different dtypes.
        ValueError: for an unknown `op`.
    """
    _check_float("u", u)
    if v.dtype != u.dtype:
        raise TypeError(f"v must have the dtype of u ({u.dtype}); got {v.dtype}")
    if op not in _SDDMM_CODES:
        raise ValueError(f"op must be one of {tuple(_SDDMM_CODES)}; got {op!r}")
    num_rows, num_edges, num_cols = indptr.numel() - 1, src.numel(), u.shape[1]
    out = u.new_empty((num_edges,) if op == "dot" else (num_edges, num_cols))
    if num_edges == 0 or interpreted_fake(out):
        return out
    if num_cols == 0:
        return out.zero_()
    block_e = 64
    grid = (triton.cdiv(num_edges, block_e),)
    wrap_triton(_sddmm_kernel)[grid](
        indptr,
        src,
        u.contiguous(),
        v.contiguous(),
        out,
        num_rows,
        num_edges,
        num_cols,
        OP=_SDDMM_CODES[op],
        BLOCK_E=block_e,
        BLOCK_F=_pow2_between(num_cols, 1, 32),
    )
    return out
