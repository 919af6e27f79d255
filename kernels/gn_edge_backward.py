"""Triton kernel for the backward of the fused graph-network edge step, `gn_edge_aggregate_backward`.

Two passes of one kernel, each over a CSR whose rows (destinations, then sources) the programs own, so no
atomics are needed; the edge MLP is recomputed from its inputs (see `gn_edge` for the forward and the shared
pieces). Registered as ``torch.ops.fastsim.gn_edge_aggregate_backward_triton``; see docs/ops.md.
"""

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .gn_edge import (
    _check_inputs,
    _dot_precision,
    _gelu,
    _gelu_grad,
    _preactivation,
    _row_block,
    _tile_rows,
    _tiles,
    interpreted_fake,
)

_PROGRAMS_PER_SM = 4  # CSR pass: persistent programs, each with an (O, H) grad_w2 partial in the workspace
_CPU_PROGRAMS = 4  # the same for CPU tensors (TRITON_INTERPRET=1)
_MAX_BACKWARD_OUT = 512  # an edge tile holds all O outputs; O = 1024 overflows shared memory on an H100


@triton.jit
def _gn_edge_backward_kernel(
    indptr_ptr, nbr_ptr, eid_ptr, p_src_ptr, p_dst_ptr, edge_term_ptr, graph_term_ptr, batch_ptr,
    w2_ptr, b2_ptr, grad_node_ptr, grad_edge_ptr, grad_rows_ptr, grad_edge_term_ptr, ws_w2_ptr, ws_b2_ptr,
    num_rows, H, O, num_programs,  # noqa: E741
    TRANSPOSED: tl.constexpr, HAS_EDGE_TERM: tl.constexpr, HAS_GRAPH_TERM: tl.constexpr,
    HAS_GRAD_EDGE: tl.constexpr, STORE_EDGE_GRAD: tl.constexpr, LOAD_EDGE_GRAD: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_O: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):  # fmt: skip
    """One pass of the backward over a CSR whose rows this program owns (persistent, grid-stride over blocks).

    With gm = grad_node[i] + grad_edge[e], gz2 = gm * GELU'(z2), gz1 = (gz2 @ w2) * GELU'(z1):
    TRANSPOSED=False walks the CSR (rows = destinations, nbr = src, edge = position): grad_rows = grad_p_dst
    (sum of gz1 over the row), gz1 stored as grad_edge_term when STORE_EDGE_GRAD, and this program's partial
    grad_w2 = sum gz2^T h and grad_b2 = sum gz2 accumulated in ws[pid] (summed by the caller: deterministic).
    TRANSPOSED=True walks the transposed CSR (rows = sources, nbr = rev_dst, edge = rev_perm[position]):
    grad_rows = grad_p_src, recomputing gz1, or reading it back from grad_edge_term when LOAD_EDGE_GRAD.
    The output width is held whole (BLOCK_O >= O); the hidden width is walked in chunks of BLOCK_K, twice per
    edge tile (z2, then gz1 and h recomputed), and the (rows, k) / (O, k) slices of grad_rows and ws[pid] are
    read, added to and written back: this program alone owns them, so nothing races (grad_rows and ws start
    at 0).
    """
    pid = tl.program_id(0)
    os = tl.arange(0, BLOCK_O)
    o_mask = os < O
    b2 = tl.load(b2_ptr + os, mask=o_mask, other=0.0)
    gb2_acc = tl.zeros((BLOCK_O,), dtype=b2.dtype)
    for rb in range(pid, tl.cdiv(num_rows, BLOCK_R), num_programs):
        rows, row_start, row_end, p_begin, p_end = _row_block(indptr_ptr, rb, num_rows, BLOCK_R)
        for p0 in range(p_begin, p_end, BLOCK_E):
            pos = p0 + tl.arange(0, BLOCK_E)
            p_mask = pos < p_end
            member, own = _tile_rows(rows, row_start, row_end, pos)
            member = member.to(b2.dtype)
            nbr = tl.load(nbr_ptr + pos, mask=p_mask, other=0)
            if TRANSPOSED:
                e = tl.load(eid_ptr + pos, mask=p_mask, other=0)
                src = own
                dst = nbr
            else:
                e = pos
                src = nbr
                dst = own
            if not LOAD_EDGE_GRAD:
                z2 = tl.zeros((BLOCK_E, BLOCK_O), dtype=b2.dtype)
                for k0 in range(0, H, BLOCK_K):
                    hs = k0 + tl.arange(0, BLOCK_K)
                    h_mask = hs < H
                    z1 = _preactivation(
                        e, p_mask, src, dst, p_src_ptr, p_dst_ptr, edge_term_ptr, graph_term_ptr, batch_ptr,
                        H, hs, h_mask, HAS_EDGE_TERM, HAS_GRAPH_TERM,
                    )  # fmt: skip
                    w2 = tl.load(
                        w2_ptr + os[:, None] * H + hs[None, :],
                        mask=o_mask[:, None] & h_mask[None, :],
                        other=0.0,
                    )
                    z2 += tl.dot(_gelu(z1), tl.trans(w2), input_precision=DOT_PRECISION)
                eo_mask = p_mask[:, None] & o_mask[None, :]
                gm = tl.load(grad_node_ptr + dst[:, None] * O + os[None, :], mask=eo_mask, other=0.0)
                if HAS_GRAD_EDGE:
                    gm += tl.load(grad_edge_ptr + e[:, None] * O + os[None, :], mask=eo_mask, other=0.0)
                gz2 = gm * _gelu_grad(z2 + b2[None, :])  # 0 on padded edges and outputs: gm is
                if not TRANSPOSED:
                    gb2_acc += tl.sum(gz2, axis=0)
            for k0 in range(0, H, BLOCK_K):
                hs = k0 + tl.arange(0, BLOCK_K)
                h_mask = hs < H
                eh_mask = p_mask[:, None] & h_mask[None, :]
                if LOAD_EDGE_GRAD:
                    gz1 = tl.load(grad_edge_term_ptr + e[:, None] * H + hs[None, :], mask=eh_mask, other=0.0)
                else:
                    z1 = _preactivation(
                        e, p_mask, src, dst, p_src_ptr, p_dst_ptr, edge_term_ptr, graph_term_ptr, batch_ptr,
                        H, hs, h_mask, HAS_EDGE_TERM, HAS_GRAPH_TERM,
                    )  # fmt: skip
                    oh_mask = o_mask[:, None] & h_mask[None, :]
                    w2 = tl.load(w2_ptr + os[:, None] * H + hs[None, :], mask=oh_mask, other=0.0)
                    gz1 = tl.dot(gz2, w2, input_precision=DOT_PRECISION) * _gelu_grad(z1)
                    if STORE_EDGE_GRAD:
                        tl.store(grad_edge_term_ptr + e[:, None] * H + hs[None, :], gz1, mask=eh_mask)
                    if not TRANSPOSED:
                        ws = ws_w2_ptr + (pid * O + os[:, None]).to(tl.int64) * H + hs[None, :]
                        gw2 = tl.dot(tl.trans(gz2), _gelu(z1), input_precision=DOT_PRECISION)
                        tl.store(ws, tl.load(ws, mask=oh_mask, other=0.0) + gw2, mask=oh_mask)
                out = grad_rows_ptr + rows[:, None] * H + hs[None, :]
                out_mask = (rows < num_rows)[:, None] & h_mask[None, :]
                tile = tl.dot(member, gz1, input_precision=DOT_PRECISION)
                tl.store(out, tl.load(out, mask=out_mask, other=0.0) + tile, mask=out_mask)
    if not TRANSPOSED:
        tl.store(ws_b2_ptr + pid * O + os, gb2_acc, mask=o_mask)


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
    w_edge: torch.Tensor | None,
    graph_term: torch.Tensor | None,
    batch: torch.Tensor | None,
    w2: torch.Tensor,
    b2: torch.Tensor,
    grad_node: torch.Tensor,
    grad_edge: torch.Tensor | None,
    need_edge_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of `gn_edge_aggregate` from `grad_node (N, O)` and optional `grad_edge (E, O)`.

    Pass 1 over the CSR gives grad_p_dst, the per-edge term's gradient and per-program grad_w2/grad_b2 partials
    (summed here in a fixed order); pass 2 over the transposed CSR gives grad_p_src, recomputing the edge MLP (or
    reusing the per-edge term's gradient when it was computed). With `w_edge (H, F)`, `edge_term` holds `(E, F)`
    edge features, projected by one GEMM here, and two more GEMMs give their gradient and w_edge's. The
    graph_term gradient, index_add(grad_p_dst, batch), is the caller's.

    Returns:
        `grad_p_src (N, H)`, `grad_p_dst (N, H)`, the gradient of edge_term (`(E, H)`, or `(E, F)` with w_edge;
        no rows unless `need_edge_grad`), `grad_w_edge (H, F)` (`(H, 0)` without w_edge), `grad_w2 (O, H)`,
        `grad_b2 (O,)`.

    Raises:
        TypeError: for dtypes other than float32/float64, or mixed dtypes.
        ValueError: for w_edge without edge_term, graph_term without batch or batch without graph_term, or O > 512.
    """
    _check_inputs(
        p_src, graph_term, batch, p_dst=p_dst, edge_term=edge_term, w_edge=w_edge, w2=w2, b2=b2,
        grad_node=grad_node, grad_edge=grad_edge,
    )  # fmt: skip
    features, hidden = edge_term, p_src.shape[1]
    if w_edge is not None:
        if edge_term is None:
            raise ValueError("w_edge needs edge_term (the edge features)")
        edge_term = edge_term @ w_edge.T
    grad_p_src, grad_p_dst, grad_term, grad_w2, grad_b2 = _backward_of_term(
        (indptr, src, rev_indptr, rev_dst, rev_perm), (p_src, p_dst, edge_term, graph_term, batch, w2, b2),
        grad_node, grad_edge, need_edge_grad,
    )  # fmt: skip
    if w_edge is None:
        return grad_p_src, grad_p_dst, grad_term, p_src.new_zeros((hidden, 0)), grad_w2, grad_b2
    if need_edge_grad:
        return grad_p_src, grad_p_dst, grad_term @ w_edge, grad_term.T @ features, grad_w2, grad_b2
    return grad_p_src, grad_p_dst, p_src.new_empty((0, w_edge.shape[1])), torch.zeros_like(w_edge), grad_w2, grad_b2


def _backward_of_term(
    graph: tuple[torch.Tensor, ...],
    inputs: tuple[torch.Tensor | None, ...],
    grad_node: torch.Tensor,
    grad_edge: torch.Tensor | None,
    need_edge_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two passes, with the per-edge term `(E, H)` itself (`inputs`: p_src, p_dst, edge_term, graph_term,
    batch, w2, b2); its gradient is returned as is."""
    indptr, src, rev_indptr, rev_dst, rev_perm = graph
    p_src, p_dst, edge_term, graph_term, batch, w2, b2 = inputs
    num_rows, num_edges = indptr.numel() - 1, src.numel()
    out_dim, hidden = w2.shape
    if out_dim > _MAX_BACKWARD_OUT:
        raise ValueError(f"the Triton backward supports w2 with at most {_MAX_BACKWARD_OUT} rows (O); got {out_dim}")
    if num_edges == 0 or out_dim == 0:
        zeros = p_src.new_zeros((num_rows, hidden))
        grad_edge_term = p_src.new_zeros((num_edges if need_edge_grad else 0, hidden))
        return zeros, zeros.clone(), grad_edge_term, torch.zeros_like(w2), torch.zeros_like(b2)
    grad_edge_term = p_src.new_empty((num_edges if need_edge_grad else 0, hidden))
    grad_p_src = p_src.new_zeros((num_rows, hidden))  # the kernels add into them
    grad_p_dst = p_src.new_zeros((num_rows, hidden))
    t = _tiles(out_dim, p_src.dtype, backward=True)
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
        HAS_GRAD_EDGE=grad_edge is not None, BLOCK_R=t.block_r, BLOCK_E=t.block_e, BLOCK_K=t.block_k,
        BLOCK_O=max(16, triton.next_power_of_2(out_dim)),  # all of O: every output feeds gz1
        DOT_PRECISION=_dot_precision(p_src.dtype), num_warps=t.num_warps, num_stages=t.num_stages,
    )  # fmt: skip
    if interpreted_fake(ws_w2):
        return grad_p_src, grad_p_dst, grad_edge_term, ws_w2.sum(0), ws_b2.sum(0)
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
