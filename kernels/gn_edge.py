"""Triton kernel for the fused graph-network edge step `gn_edge_aggregate`, and what its backward shares.

For every CSR edge e = (j -> i), with GELU(z) = z Phi(z) (exact erf form):

    z1[e] = p_src[j] + p_dst[i] + edge_term[e] + graph_term[batch[i]]      (H)
    m[e]  = GELU(GELU(z1[e]) @ w2.T + b2)                                  (O)
    node_out[i] = sum_{e into i} m[e]

A program owns a block of BLOCK_R consecutive rows, whose edges are one contiguous CSR range; it walks that
range in full tiles of BLOCK_E edges (so low-degree rows waste no tensor-core work) and adds each tile into
its rows with a one-hot (BLOCK_R, BLOCK_E) @ (BLOCK_E, .) product. Rows own their outputs (no atomics),
and the hidden layer is recomputed in the backward (`gn_edge_backward`) instead of storing an E x H tensor.
Registered as ``torch.ops.fastsim.gn_edge_aggregate_triton``; see docs/ops.md. Imports only torch and triton.
"""

import os
from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch._subclasses.fake_tensor import is_fake
from torch.library import triton_op, wrap_triton

_FLOAT_DTYPES = (torch.float32, torch.float64)


@triton.jit
def _gelu(z):
    return 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))


@triton.jit
def _gelu_grad(z):
    """GELU'(z) = Phi(z) + z phi(z)."""
    return 0.5 * (1.0 + tl.math.erf(z * 0.7071067811865476)) + z * 0.3989422804014327 * tl.exp(-0.5 * z * z)


@triton.jit
def _row_block(indptr_ptr, rb, num_rows, BLOCK_R: tl.constexpr):
    """Rows of block rb, their CSR ranges [row_start, row_end) (empty past num_rows) and the block's range."""
    rows = rb * BLOCK_R + tl.arange(0, BLOCK_R).to(tl.int64)
    row_start = tl.load(indptr_ptr + tl.minimum(rows, num_rows))
    row_end = tl.load(indptr_ptr + tl.minimum(rows + 1, num_rows))
    return rows, row_start, row_end, tl.min(row_start, axis=0), tl.max(row_end, axis=0)


@triton.jit
def _tile_rows(rows, row_start, row_end, pos):
    """One-hot (BLOCK_R, BLOCK_E) membership of CSR positions `pos` in the block's rows, and their rows."""
    member = (row_start[:, None] <= pos[None, :]) & (pos[None, :] < row_end[:, None])
    return member, tl.sum(tl.where(member, rows[:, None], 0), axis=0)


@triton.jit
def _preactivation(
    e, e_mask, src, dst, p_src_ptr, p_dst_ptr, edge_term_ptr, graph_term_ptr, batch_ptr, H, hs, h_mask,
    HAS_EDGE_TERM: tl.constexpr, HAS_GRAPH_TERM: tl.constexpr,
):  # fmt: skip
    """z1 (BLOCK_E, BLOCK_K) at hidden columns hs of the edges e = (src -> dst); 0 where masked."""
    mask = e_mask[:, None] & h_mask[None, :]
    z = tl.load(p_src_ptr + src[:, None] * H + hs[None, :], mask=mask, other=0.0)
    z += tl.load(p_dst_ptr + dst[:, None] * H + hs[None, :], mask=mask, other=0.0)
    if HAS_EDGE_TERM:
        z += tl.load(edge_term_ptr + e[:, None] * H + hs[None, :], mask=mask, other=0.0)
    if HAS_GRAPH_TERM:
        graph = tl.load(batch_ptr + dst, mask=e_mask, other=0)
        z += tl.load(graph_term_ptr + graph[:, None] * H + hs[None, :], mask=mask, other=0.0)
    return z


@triton.jit
def _gn_edge_forward_kernel(
    indptr_ptr, src_ptr, p_src_ptr, p_dst_ptr, edge_term_ptr, graph_term_ptr, batch_ptr, w2_ptr, b2_ptr,
    node_out_ptr, edge_out_ptr, num_rows, H, O,  # noqa: E741
    HAS_EDGE_TERM: tl.constexpr, HAS_GRAPH_TERM: tl.constexpr, RETURN_EDGES: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_O: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):  # fmt: skip
    """Grid: (row blocks, output-column blocks); node_out[rows, cols] = sum of m[:, cols] over their edges.

    The hidden layer is walked in chunks of BLOCK_K columns, z2 += GELU(z1[:, k]) @ w2[cols, k].T, so no
    (BLOCK_E, H) tile is ever held whole.
    """
    rows, row_start, row_end, e_begin, e_end = _row_block(indptr_ptr, tl.program_id(0), num_rows, BLOCK_R)
    os = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    o_mask = os < O
    b2 = tl.load(b2_ptr + os, mask=o_mask, other=0.0)
    acc = tl.zeros((BLOCK_R, BLOCK_O), dtype=b2.dtype)
    for e0 in range(e_begin, e_end, BLOCK_E):
        e = e0 + tl.arange(0, BLOCK_E)
        e_mask = e < e_end
        member, dst = _tile_rows(rows, row_start, row_end, e)
        src = tl.load(src_ptr + e, mask=e_mask, other=0)
        z2 = tl.zeros((BLOCK_E, BLOCK_O), dtype=b2.dtype)
        for k0 in range(0, H, BLOCK_K):
            hs = k0 + tl.arange(0, BLOCK_K)
            h_mask = hs < H
            z1 = _preactivation(
                e, e_mask, src, dst, p_src_ptr, p_dst_ptr, edge_term_ptr, graph_term_ptr, batch_ptr, H, hs,
                h_mask, HAS_EDGE_TERM, HAS_GRAPH_TERM,
            )  # fmt: skip
            w2 = tl.load(w2_ptr + os[:, None] * H + hs[None, :], mask=o_mask[:, None] & h_mask[None, :], other=0.0)
            z2 += tl.dot(_gelu(z1), tl.trans(w2), input_precision=DOT_PRECISION)
        m = _gelu(z2 + b2[None, :])
        acc += tl.dot(member.to(m.dtype), m, input_precision=DOT_PRECISION)
        if RETURN_EDGES:
            tl.store(edge_out_ptr + e[:, None] * O + os[None, :], m, mask=e_mask[:, None] & o_mask[None, :])
    out_mask = (rows < num_rows)[:, None] & o_mask[None, :]
    tl.store(node_out_ptr + rows[:, None] * O + os[None, :], acc, mask=out_mask)


@dataclass(frozen=True)
class _Tiles:
    """Tile sizes of the edge kernels (tl.dot needs every dimension >= 16 on the GPU)."""

    block_r: int  # rows per program
    block_e: int  # edges per tile
    block_k: int  # hidden columns per chunk
    block_o: int  # output columns per program in the forward (the backward always holds all O)
    num_warps: int = 8
    num_stages: int = 1  # the gathers are not worth pipelining buffers: they would double shared memory


def _tiles(out_dim: int, dtype: torch.dtype, backward: bool) -> _Tiles:
    """Tile sizes, chosen by compiling for sm_90 without a GPU and reading the ptxas reports.

    For O <= 128 (fp32) the forward and the backward's transposed pass are spill-free and the CSR pass of
    the backward spills < 100 bytes, all within 100 KiB of shared memory. Not tuned by measurement yet.
    """
    block_o = max(16, triton.next_power_of_2(out_dim))
    if backward:
        return _Tiles(block_r=16, block_e=16, block_k=32 if dtype == torch.float32 else 16, block_o=block_o)
    return _Tiles(block_r=16, block_e=32, block_k=32, block_o=min(block_o, 128 if dtype == torch.float32 else 64))


def _dot_precision(dtype: torch.dtype) -> str:
    """fp64 dots in fp64; fp32 dots at ~fp32 accuracy (3xTF32) unless torch allows TF32 matmuls."""
    if dtype == torch.float64:
        return "ieee"
    return "tf32x3" if torch.get_float32_matmul_precision() == "highest" else "tf32"


def interpreted_fake(t: torch.Tensor) -> bool:
    """True for a fake tensor under TRITON_INTERPRET=1, where the launchers must not launch.

    triton_op's fake kernel is the launcher itself. On the GPU, wrap_triton records the launch as a
    higher-order op that does nothing on fake tensors; the interpreter would run the kernel on them instead.
    """
    return os.environ.get("TRITON_INTERPRET") == "1" and is_fake(t)


def _check_inputs(
    p_src: torch.Tensor,
    graph_term: torch.Tensor | None,
    batch: torch.Tensor | None,
    **others: torch.Tensor | None,
) -> None:
    if p_src.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"p_src must be float32 or float64 for the Triton kernels; got {p_src.dtype}")
    for name, t in {"graph_term": graph_term, **others}.items():
        if t is not None and t.dtype != p_src.dtype:
            raise TypeError(f"{name} must have the dtype of p_src ({p_src.dtype}); got {t.dtype}")
    if (graph_term is None) != (batch is None):
        raise ValueError("graph_term and batch must be given together or both be None")


@triton_op("fastsim::gn_edge_aggregate_triton", mutates_args=())
def gn_edge_aggregate_triton(
    indptr: torch.Tensor,
    src: torch.Tensor,
    rev_indptr: torch.Tensor,
    rev_dst: torch.Tensor,
    rev_perm: torch.Tensor,
    p_src: torch.Tensor,
    p_dst: torch.Tensor,
    edge_term: torch.Tensor | None,
    w_edge: torch.Tensor | None,
    graph_term: torch.Tensor | None,
    batch: torch.Tensor | None,
    w2: torch.Tensor,
    b2: torch.Tensor,
    return_edges: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused edge MLP `m[e] = GELU(GELU(z1[e]) @ w2.T + b2)` summed into destinations (docs/ops.md).

    Args:
        indptr, src: the CSR graph (`rev_*` are not used by the forward).
        p_src, p_dst: `(N, H)`; edge_term: `(E, H)`, or `(E, F)` edge features with `w_edge (H, F)` (projected by
            one GEMM here), or None.
        graph_term, batch: `(B, H)` and `(N,)` (graph id of each node), or both None.
        w2, b2: `(O, H)` and `(O,)`. return_edges: also return the per-edge messages.

    Returns:
        `node_out (N, O)` and `edge_out = m (E, O)` if `return_edges`, else an empty `(0, O)` tensor.

    Raises:
        TypeError: for dtypes other than float32/float64, or mixed dtypes.
        ValueError: for graph_term without batch or batch without graph_term.
    """
    _check_inputs(p_src, graph_term, batch, p_dst=p_dst, edge_term=edge_term, w_edge=w_edge, w2=w2, b2=b2)
    if w_edge is not None:
        if edge_term is None:
            raise ValueError("w_edge needs edge_term (the edge features)")
        edge_term = edge_term @ w_edge.T
    num_rows, num_edges = indptr.numel() - 1, src.numel()
    out_dim, hidden = w2.shape
    edge_rows = num_edges if return_edges else 0
    if num_edges == 0 or out_dim == 0:
        return p_dst.new_zeros((num_rows, out_dim)), p_dst.new_zeros((edge_rows, out_dim))
    node_out = p_dst.new_empty((num_rows, out_dim))
    edge_out = p_dst.new_empty((edge_rows, out_dim))
    if interpreted_fake(node_out):
        return node_out, edge_out
    t = _tiles(out_dim, p_dst.dtype, backward=False)
    grid = (triton.cdiv(num_rows, t.block_r), triton.cdiv(out_dim, t.block_o))
    wrap_triton(_gn_edge_forward_kernel)[grid](
        indptr, src, p_src.contiguous(), p_dst.contiguous(),
        edge_term.contiguous() if edge_term is not None else p_src,
        graph_term.contiguous() if graph_term is not None else p_src,
        batch if batch is not None else indptr,
        w2.contiguous(), b2.contiguous(), node_out, edge_out if return_edges else node_out,
        num_rows, hidden, out_dim,
        HAS_EDGE_TERM=edge_term is not None, HAS_GRAPH_TERM=graph_term is not None, RETURN_EDGES=return_edges,
        BLOCK_R=t.block_r, BLOCK_E=t.block_e, BLOCK_K=t.block_k, BLOCK_O=t.block_o,
        DOT_PRECISION=_dot_precision(p_dst.dtype), num_warps=t.num_warps, num_stages=t.num_stages,
    )  # fmt: skip
    return node_out, edge_out
