"""Triton kernels for the fused graph-network edge step `gn_edge_aggregate` and its backward.

For every CSR edge e = (j -> i), with GELU(z) = z Phi(z) (exact erf form):

    z1[e] = p_src[j] + p_dst[i] + edge_term[e] + graph_term[batch[i]]      (H)
    m[e]  = GELU(GELU(z1[e]) @ w2.T + b2)                                  (O)
    node_out[i] = sum_{e into i} m[e]

A program owns a block of BLOCK_R consecutive rows, whose edges are one contiguous CSR range; it walks that
range in full tiles of BLOCK_E edges (so low-degree rows waste no tensor-core work) and adds each tile into
its rows with a one-hot (BLOCK_R, BLOCK_E) @ (BLOCK_E, .) product. Rows own their outputs (no atomics),
and the hidden layer is recomputed in the backward instead of storing an E x H tensor. Registered as
``torch.ops.fastsim.gn_edge_aggregate{,_backward}_triton``; see docs/ops.md. Imports only torch and triton.
"""

from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

_FLOAT_DTYPES = (torch.float32, torch.float64)
_PROGRAMS_PER_SM = 4  # backward over CSR rows: persistent programs, each with an (O, H) grad_w2 partial
_CPU_PROGRAMS = 4  # the same for CPU tensors (TRITON_INTERPRET=1)


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
    """z1 (BLOCK_E, BLOCK_H) for edges e = (src -> dst); padded rows and columns are 0."""
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
    BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_O: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):  # fmt: skip
    """Grid: (row blocks, output-column blocks); node_out[rows, cols] = sum of m[:, cols] over their edges."""
    rows, row_start, row_end, e_begin, e_end = _row_block(indptr_ptr, tl.program_id(0), num_rows, BLOCK_R)
    hs = tl.arange(0, BLOCK_H)
    h_mask = hs < H
    os = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    o_mask = os < O
    w2 = tl.load(w2_ptr + os[:, None] * H + hs[None, :], mask=o_mask[:, None] & h_mask[None, :], other=0.0)
    b2 = tl.load(b2_ptr + os, mask=o_mask, other=0.0)
    acc = tl.zeros((BLOCK_R, BLOCK_O), dtype=w2.dtype)
    for e0 in range(e_begin, e_end, BLOCK_E):
        e = e0 + tl.arange(0, BLOCK_E)
        e_mask = e < e_end
        member, dst = _tile_rows(rows, row_start, row_end, e)
        src = tl.load(src_ptr + e, mask=e_mask, other=0)
        z1 = _preactivation(
            e, e_mask, src, dst, p_src_ptr, p_dst_ptr, edge_term_ptr, graph_term_ptr, batch_ptr, H, hs,
            h_mask, HAS_EDGE_TERM, HAS_GRAPH_TERM,
        )  # fmt: skip
        z2 = tl.dot(_gelu(z1), tl.trans(w2), input_precision=DOT_PRECISION) + b2[None, :]
        m = _gelu(z2)
        acc += tl.dot(member.to(m.dtype), m, input_precision=DOT_PRECISION)
        if RETURN_EDGES:
            tl.store(edge_out_ptr + e[:, None] * O + os[None, :], m, mask=e_mask[:, None] & o_mask[None, :])
    out_mask = (rows < num_rows)[:, None] & o_mask[None, :]
    tl.store(node_out_ptr + rows[:, None] * O + os[None, :], acc, mask=out_mask)


@triton.jit
def _gn_edge_backward_kernel(
    indptr_ptr, nbr_ptr, eid_ptr, p_src_ptr, p_dst_ptr, edge_term_ptr, graph_term_ptr, batch_ptr,
    w2_ptr, b2_ptr, grad_node_ptr, grad_edge_ptr, grad_rows_ptr, grad_edge_term_ptr, ws_w2_ptr, ws_b2_ptr,
    num_rows, H, O, num_programs,  # noqa: E741
    TRANSPOSED: tl.constexpr, HAS_EDGE_TERM: tl.constexpr, HAS_GRAPH_TERM: tl.constexpr,
    HAS_GRAD_EDGE: tl.constexpr, STORE_EDGE_GRAD: tl.constexpr, LOAD_EDGE_GRAD: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_O: tl.constexpr,
    NUM_O_CHUNKS: tl.constexpr, DOT_PRECISION: tl.constexpr,
):  # fmt: skip
    """One pass of the backward over a CSR whose rows this program owns (persistent, grid-stride over blocks).

    With gm = grad_node[i] + grad_edge[e], gz2 = gm * GELU'(z2), gz1 = (gz2 @ w2) * GELU'(z1):
    TRANSPOSED=False walks the CSR (rows = destinations, nbr = src, edge = position): grad_rows = grad_p_dst
    (sum of gz1 over the row), gz1 stored as grad_edge_term when STORE_EDGE_GRAD, and this program's partial
    grad_w2 = sum gz2^T h and grad_b2 = sum gz2 written to ws[pid] (summed by the caller: deterministic).
    TRANSPOSED=True walks the transposed CSR (rows = sources, nbr = rev_dst, edge = rev_perm[position]):
    grad_rows = grad_p_src, recomputing gz1, or reading it back from grad_edge_term when LOAD_EDGE_GRAD.
    """
    pid = tl.program_id(0)
    hs = tl.arange(0, BLOCK_H)
    h_mask = hs < H
    dtype = w2_ptr.dtype.element_ty
    gw2_acc = tl.zeros((BLOCK_O, BLOCK_H), dtype=dtype)  # used when the output fits one chunk
    gb2_acc = tl.zeros((BLOCK_O,), dtype=dtype)
    for rb in range(pid, tl.cdiv(num_rows, BLOCK_R), num_programs):
        rows, row_start, row_end, p_begin, p_end = _row_block(indptr_ptr, rb, num_rows, BLOCK_R)
        acc = tl.zeros((BLOCK_R, BLOCK_H), dtype=dtype)
        for p0 in range(p_begin, p_end, BLOCK_E):
            pos = p0 + tl.arange(0, BLOCK_E)
            p_mask = pos < p_end
            eh_mask = p_mask[:, None] & h_mask[None, :]
            member, own = _tile_rows(rows, row_start, row_end, pos)
            nbr = tl.load(nbr_ptr + pos, mask=p_mask, other=0)
            if TRANSPOSED:
                e = tl.load(eid_ptr + pos, mask=p_mask, other=0)
                src = own
                dst = nbr
            else:
                e = pos
                src = nbr
                dst = own
            if LOAD_EDGE_GRAD:
                gz1 = tl.load(grad_edge_term_ptr + e[:, None] * H + hs[None, :], mask=eh_mask, other=0.0)
            else:
                z1 = _preactivation(
                    e, p_mask, src, dst, p_src_ptr, p_dst_ptr, edge_term_ptr, graph_term_ptr, batch_ptr,
                    H, hs, h_mask, HAS_EDGE_TERM, HAS_GRAPH_TERM,
                )  # fmt: skip
                hid = _gelu(z1)
                ghid = tl.zeros((BLOCK_E, BLOCK_H), dtype=dtype)
                for oc in range(NUM_O_CHUNKS):
                    os = oc * BLOCK_O + tl.arange(0, BLOCK_O)
                    o_mask = os < O
                    oh_mask = o_mask[:, None] & h_mask[None, :]
                    w2 = tl.load(w2_ptr + os[:, None] * H + hs[None, :], mask=oh_mask, other=0.0)
                    b2 = tl.load(b2_ptr + os, mask=o_mask, other=0.0)
                    z2 = tl.dot(hid, tl.trans(w2), input_precision=DOT_PRECISION) + b2[None, :]
                    eo_mask = p_mask[:, None] & o_mask[None, :]
                    gm = tl.load(grad_node_ptr + dst[:, None] * O + os[None, :], mask=eo_mask, other=0.0)
                    if HAS_GRAD_EDGE:
                        gm += tl.load(grad_edge_ptr + e[:, None] * O + os[None, :], mask=eo_mask, other=0.0)
                    gz2 = gm * _gelu_grad(z2)
                    ghid += tl.dot(gz2, w2, input_precision=DOT_PRECISION)
                    if not TRANSPOSED:
                        gw2 = tl.dot(tl.trans(gz2), hid, input_precision=DOT_PRECISION)
                        gb2 = tl.sum(gz2, axis=0)
                        if NUM_O_CHUNKS == 1:
                            gw2_acc += gw2
                            gb2_acc += gb2
                        else:  # program-private slice of the workspace: read-modify-write, no race
                            ws_w2 = ws_w2_ptr + (pid * O + os[:, None]).to(tl.int64) * H + hs[None, :]
                            tl.store(ws_w2, tl.load(ws_w2, mask=oh_mask, other=0.0) + gw2, mask=oh_mask)
                            ws_b2 = ws_b2_ptr + pid * O + os
                            tl.store(ws_b2, tl.load(ws_b2, mask=o_mask, other=0.0) + gb2, mask=o_mask)
                gz1 = tl.where(eh_mask, ghid * _gelu_grad(z1), 0.0)
                if STORE_EDGE_GRAD:
                    tl.store(grad_edge_term_ptr + e[:, None] * H + hs[None, :], gz1, mask=eh_mask)
            acc += tl.dot(member.to(dtype), gz1, input_precision=DOT_PRECISION)
        row_mask = (rows < num_rows)[:, None] & h_mask[None, :]
        tl.store(grad_rows_ptr + rows[:, None] * H + hs[None, :], acc, mask=row_mask)
    if not TRANSPOSED:
        if NUM_O_CHUNKS == 1:
            os = tl.arange(0, BLOCK_O)
            o_mask = os < O
            ws_w2 = ws_w2_ptr + (pid * O + os[:, None]).to(tl.int64) * H + hs[None, :]
            tl.store(ws_w2, gw2_acc, mask=o_mask[:, None] & h_mask[None, :])
            tl.store(ws_b2_ptr + pid * O + os, gb2_acc, mask=o_mask)


@dataclass(frozen=True)
class _Tiles:
    """Tile sizes of the edge kernels (tl.dot needs every dimension >= 16 on the GPU)."""

    block_r: int
    block_e: int
    block_h: int
    block_o: int
    num_warps: int


def _tiles(hidden: int, out_dim: int, dtype: torch.dtype) -> _Tiles:
    """Hidden width padded to a power of two held whole; output width in chunks of <= 128 (64 for float64)."""
    block_h = max(16, triton.next_power_of_2(hidden))
    block_o = min(max(16, triton.next_power_of_2(out_dim)), 128 if dtype == torch.float32 else 64)
    block_e = 32 if dtype == torch.float32 and block_h <= 128 else 16
    return _Tiles(16, block_e, block_h, block_o, 8 if block_h * block_o >= 128 * 64 else 4)


def _dot_precision(dtype: torch.dtype) -> str:
    """fp64 dots in fp64; fp32 dots at ~fp32 accuracy (3xTF32) unless torch allows TF32 matmuls."""
    if dtype == torch.float64:
        return "ieee"
    return "tf32x3" if torch.get_float32_matmul_precision() == "highest" else "tf32"


def _check_inputs(
    p_src: torch.Tensor,
    graph_term: torch.Tensor | None,
    batch: torch.Tensor | None,
    **others: torch.Tensor | None,
) -> None:
    if p_src.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"p_src must be float32 or float64 for the Triton kernels; got {p_src.dtype}")
    for name, t in others.items():
        if t is not None and t.dtype != p_src.dtype:
            raise TypeError(f"{name} must have the dtype of p_src ({p_src.dtype}); got {t.dtype}")
    if graph_term is not None and graph_term.dtype != p_src.dtype:
        raise TypeError(f"graph_term must have the dtype of p_src ({p_src.dtype}); got {graph_term.dtype}")
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
    graph_term: torch.Tensor | None,
    batch: torch.Tensor | None,
    w2: torch.Tensor,
    b2: torch.Tensor,
    return_edges: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused edge MLP `m[e] = GELU(GELU(z1[e]) @ w2.T + b2)` summed into destinations (docs/ops.md).

    Args:
        indptr, src: the CSR graph (`rev_*` are not used by the forward).
        p_src, p_dst: `(N, H)`; edge_term: `(E, H)` or None.
        graph_term, batch: `(B, H)` and `(N,)` (graph id of each node), or both None.
        w2, b2: `(O, H)` and `(O,)`. return_edges: also return the per-edge messages.

    Returns:
        `node_out (N, O)` and `edge_out = m (E, O)` if `return_edges`, else an empty `(0, O)` tensor.

    Raises:
        TypeError: for dtypes other than float32/float64, or mixed dtypes.
        ValueError: for graph_term without batch or batch without graph_term.
    """
    _check_inputs(p_src, graph_term, batch, p_dst=p_dst, edge_term=edge_term, w2=w2, b2=b2)
    num_rows, num_edges = indptr.numel() - 1, src.numel()
    out_dim, hidden = w2.shape
    edge_rows = num_edges if return_edges else 0
    if num_edges == 0 or out_dim == 0:
        return p_dst.new_zeros((num_rows, out_dim)), p_dst.new_zeros((edge_rows, out_dim))
    node_out = p_dst.new_empty((num_rows, out_dim))
    edge_out = p_dst.new_empty((edge_rows, out_dim))
    t = _tiles(hidden, out_dim, p_dst.dtype)
    grid = (triton.cdiv(num_rows, t.block_r), triton.cdiv(out_dim, t.block_o))
    wrap_triton(_gn_edge_forward_kernel)[grid](
        indptr, src, p_src.contiguous(), p_dst.contiguous(),
        edge_term.contiguous() if edge_term is not None else p_src,
        graph_term.contiguous() if graph_term is not None else p_src,
        batch if batch is not None else indptr,
        w2.contiguous(), b2.contiguous(), node_out, edge_out if return_edges else node_out,
        num_rows, hidden, out_dim,
        HAS_EDGE_TERM=edge_term is not None, HAS_GRAPH_TERM=graph_term is not None, RETURN_EDGES=return_edges,
        BLOCK_R=t.block_r, BLOCK_E=t.block_e, BLOCK_H=t.block_h, BLOCK_O=t.block_o,
        DOT_PRECISION=_dot_precision(p_dst.dtype), num_warps=t.num_warps,
    )  # fmt: skip
    return node_out, edge_out


@triton_op("fastsim::gn_edge_aggregate_backward_triton", mutates_args=())
def gn_edge_aggregate_backward_triton(
    indptr: torch.Tensor,
    src: torch.Tensor,
    rev_indptr: torch.Tensor,
    rev_dst: torch.Tensor,
    rev_perm: torch.Tensor,
    p_src: torch.Tensor,
    p_dst: torch.Tensor,
    edge_term: torch.Tensor | None,
    graph_term: torch.Tensor | None,
    batch: torch.Tensor | None,
    w2: torch.Tensor,
    b2: torch.Tensor,
    grad_node: torch.Tensor,
    grad_edge: torch.Tensor | None,
    need_edge_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of `gn_edge_aggregate` from `grad_node (N, O)` and optional `grad_edge (E, O)`.

    Pass 1 over the CSR gives grad_p_dst, grad_edge_term and per-program grad_w2/grad_b2 partials (summed
    here in a fixed order); pass 2 over the transposed CSR gives grad_p_src, recomputing the edge MLP (or
    reusing grad_edge_term when it was computed). The graph_term gradient, index_add(grad_p_dst, batch), is
    the caller's.

    Returns:
        `grad_p_src (N, H)`, `grad_p_dst (N, H)`, `grad_edge_term (E, H)` (`(0, H)` unless `need_edge_grad`),
        `grad_w2 (O, H)`, `grad_b2 (O,)`.

    Raises:
        TypeError: for dtypes other than float32/float64, or mixed dtypes.
        ValueError: for graph_term without batch or batch without graph_term.
    """
    _check_inputs(
        p_src, graph_term, batch, p_dst=p_dst, edge_term=edge_term, w2=w2, b2=b2, grad_node=grad_node,
        grad_edge=grad_edge,
    )  # fmt: skip
    num_rows, num_edges = indptr.numel() - 1, src.numel()
    out_dim, hidden = w2.shape
    if num_edges == 0 or out_dim == 0:
        zeros = p_src.new_zeros((num_rows, hidden))
        grad_edge_term = p_src.new_zeros((num_edges if need_edge_grad else 0, hidden))
        return zeros, zeros.clone(), grad_edge_term, torch.zeros_like(w2), torch.zeros_like(b2)
    grad_edge_term = p_src.new_empty((num_edges if need_edge_grad else 0, hidden))
    grad_p_src = p_src.new_empty((num_rows, hidden))
    grad_p_dst = p_src.new_empty((num_rows, hidden))
    t = _tiles(hidden, out_dim, p_src.dtype)
    num_blocks = triton.cdiv(num_rows, t.block_r)
    if p_src.device.type == "cuda":
        sms = torch.cuda.get_device_properties(p_src.device).multi_processor_count
        num_programs = min(num_blocks, _PROGRAMS_PER_SM * sms)
    else:
        num_programs = min(num_blocks, _CPU_PROGRAMS)
    ws_w2 = p_src.new_zeros((num_programs, out_dim, hidden))
    ws_b2 = p_src.new_zeros((num_programs, out_dim))
    tensors = (
        p_src.contiguous(), p_dst.contiguous(),
        edge_term.contiguous() if edge_term is not None else p_src,
        graph_term.contiguous() if graph_term is not None else p_src,
        batch if batch is not None else indptr,
        w2.contiguous(), b2.contiguous(), grad_node.contiguous(),
        grad_edge.contiguous() if grad_edge is not None else grad_node,
    )  # fmt: skip
    flags = dict(
        HAS_EDGE_TERM=edge_term is not None, HAS_GRAPH_TERM=graph_term is not None,
        HAS_GRAD_EDGE=grad_edge is not None, BLOCK_R=t.block_r, BLOCK_E=t.block_e, BLOCK_H=t.block_h,
        BLOCK_O=t.block_o, NUM_O_CHUNKS=triton.cdiv(out_dim, t.block_o),
        DOT_PRECISION=_dot_precision(p_src.dtype), num_warps=t.num_warps,
    )  # fmt: skip
    edge_grad_buf = grad_edge_term if need_edge_grad else grad_p_dst
    wrap_triton(_gn_edge_backward_kernel)[(num_programs,)](
        indptr, src, src, *tensors, grad_p_dst, edge_grad_buf, ws_w2, ws_b2, num_rows, hidden, out_dim,
        num_programs, TRANSPOSED=False, STORE_EDGE_GRAD=need_edge_grad, LOAD_EDGE_GRAD=False, **flags,
    )  # fmt: skip
    wrap_triton(_gn_edge_backward_kernel)[(num_blocks,)](
        rev_indptr, rev_dst, rev_perm, *tensors, grad_p_src, edge_grad_buf, ws_w2, ws_b2, num_rows, hidden,
        out_dim, num_blocks, TRANSPOSED=True, STORE_EDGE_GRAD=False, LOAD_EDGE_GRAD=need_edge_grad, **flags,
    )  # fmt: skip
    return grad_p_src, grad_p_dst, grad_edge_term, ws_w2.sum(0), ws_b2.sum(0)
