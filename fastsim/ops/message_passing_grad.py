"""Fake (meta) kernels and autograd formulas of the message-passing ops, shared by the C++ and Triton ops.

Backwards are made of other fastsim ops: the transpose of a graph is its reverse CSR (`rev_indptr`, `rev_dst`,
`rev_perm`), so the gradient of an aggregation is an aggregation over the reversed graph, with no atomics.
"""

import torch

from fastsim import _backend

OPS = ("segment_reduce", "spmm", "sddmm", "gn_edge_aggregate", "gn_edge_aggregate_backward")
_LONG = torch.int64


def _arg_shape(reduce: str, shape) -> tuple[int, ...]:
    return tuple(shape) if reduce in ("min", "max") else (0,)


# ----------------------------------------------------------------------------------------------- fake kernels
def _segment_reduce_fake(src, indptr, reduce):
    shape = (indptr.shape[0] - 1, *src.shape[1:])
    return src.new_empty(shape), src.new_empty(_arg_shape(reduce, shape), dtype=_LONG)


def _spmm_fake(indptr, src, rev_indptr, rev_dst, rev_perm, weight, x, reduce):
    shape = (indptr.shape[0] - 1, x.shape[1])
    return x.new_empty(shape), x.new_empty(_arg_shape(reduce, shape), dtype=_LONG)


def _sddmm_fake(indptr, src, rev_indptr, rev_dst, rev_perm, u, v, op):
    return u.new_empty((src.shape[0],) if op == "dot" else (src.shape[0], u.shape[1]))


def _gn_fake(
    indptr,
    src,
    rev_indptr,
    rev_dst,
    rev_perm,
    p_src,
    p_dst,
    edge_term,
    w_edge,
    graph_term,
    batch,
    w2,
    b2,
    return_edges,
):
    out = w2.shape[0]
    return p_src.new_empty((p_dst.shape[0], out)), p_src.new_empty((src.shape[0] if return_edges else 0, out))


def _gn_backward_fake(
    indptr,
    src,
    rev_indptr,
    rev_dst,
    rev_perm,
    p_src,
    p_dst,
    edge_term,
    w_edge,
    graph_term,
    batch,
    w2,
    b2,
    grad_node,
    grad_edge,
    need_edge_grad,
):
    hidden, features = p_src.shape[1], 0 if w_edge is None else w_edge.shape[1]
    edge_grad = p_src.new_empty((src.shape[0] if need_edge_grad else 0, hidden if w_edge is None else features))
    return (
        p_src.new_empty(p_src.shape),
        p_dst.new_empty(p_dst.shape),
        edge_grad,
        p_src.new_empty((hidden, features)),
        w2.new_empty(w2.shape),
        b2.new_empty(b2.shape),
    )


# ------------------------------------------------------------------------------------------------ helpers
def _call(name, *args):
    device = next(a.device for a in args if isinstance(a, torch.Tensor))
    return _backend.op(name, device)(*args)


def _segment_ids(indptr: torch.Tensor, num_items: int) -> torch.Tensor:
    counts = indptr[1:] - indptr[:-1]
    return torch.repeat_interleave(torch.arange(counts.shape[0], device=indptr.device), counts, output_size=num_items)


def _reversed(indptr, src, rev_indptr, rev_dst, rev_perm):
    """The graph five of the transposed graph: its reverse is the original CSR."""
    inverse = torch.empty_like(rev_perm).scatter_(0, rev_perm, torch.arange(rev_perm.shape[0], device=rev_perm.device))
    return rev_indptr, rev_dst, indptr, src, inverse


def _in_degree(indptr: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return (indptr[1:] - indptr[:-1]).clamp(min=1).to(like.dtype).unsqueeze(-1)


def _scatter_arg(grad: torch.Tensor, arg: torch.Tensor, rows: torch.Tensor, num_rows: int) -> torch.Tensor:
    """out[rows[arg[i, f]], f] += grad[i, f] for every arg[i, f] >= 0 (min/max backward)."""
    feats = grad.shape[1]
    valid = arg >= 0
    target = torch.where(valid, rows[arg.clamp(min=0)], num_rows)  # invalid entries go to a dropped row
    out = grad.new_zeros((num_rows + 1) * feats)
    flat = target * feats + torch.arange(feats, device=grad.device)
    out.scatter_add_(0, flat.reshape(-1), torch.where(valid, grad, 0).reshape(-1))
    return out.view(num_rows + 1, feats)[:num_rows]


# ------------------------------------------------------------------------------------------------ autograd
def _segment_reduce_setup(ctx, inputs, output):
    src, indptr, reduce = inputs
    ctx.reduce, ctx.src_shape = reduce, src.shape
    ctx.save_for_backward(indptr, output[1])


def _segment_reduce_backward(ctx, grad_out, _grad_arg):
    indptr, arg = ctx.saved_tensors
    num_items = ctx.src_shape[0]
    if ctx.reduce in ("min", "max"):
        flat = grad_out.reshape(grad_out.shape[0], -1)
        rows = torch.arange(num_items, device=flat.device)
        return _scatter_arg(flat, arg.reshape(flat.shape), rows, num_items).reshape(ctx.src_shape), None, None
    if ctx.reduce == "mean":
        grad_out = grad_out / _in_degree(indptr, grad_out).view(-1, *([1] * (grad_out.dim() - 1)))
    return grad_out[_segment_ids(indptr, num_items)], None, None


def _spmm_setup(ctx, inputs, output):
    indptr, src, rev_indptr, rev_dst, rev_perm, weight, x, reduce = inputs
    ctx.reduce, ctx.has_weight = reduce, weight is not None
    ctx.save_for_backward(indptr, src, rev_indptr, rev_dst, rev_perm, weight, x, output[1])


def _spmm_backward(ctx, grad_out, _grad_arg):
    indptr, src, rev_indptr, rev_dst, rev_perm, weight, x, arg = ctx.saved_tensors
    grad_x = grad_w = None
    graph = (indptr, src, rev_indptr, rev_dst, rev_perm)
    if ctx.reduce in ("min", "max"):
        num_edges = src.shape[0]
        w_chosen = weight[arg.clamp(min=0)] if ctx.has_weight else 1.0
        if ctx.needs_input_grad[6]:
            grad_x = _scatter_arg(grad_out * w_chosen, arg, src, x.shape[0])
        if ctx.has_weight and ctx.needs_input_grad[5]:
            x_chosen = x.gather(0, src[arg.clamp(min=0)])
            edges = torch.arange(num_edges, device=x.device)
            grad_w = _scatter_arg(grad_out * x_chosen, arg, edges, num_edges).sum(1)
        return None, None, None, None, None, grad_w, grad_x, None
    if ctx.reduce == "mean":
        grad_out = grad_out / _in_degree(indptr, grad_out)
    if ctx.needs_input_grad[6]:
        w_rev = weight[rev_perm] if ctx.has_weight else None
        grad_x, _ = _call("spmm", *_reversed(*graph), w_rev, grad_out.contiguous(), "sum")
    if ctx.has_weight and ctx.needs_input_grad[5]:
        grad_w = _call("sddmm", *graph, x, grad_out.contiguous(), "dot")
    return None, None, None, None, None, grad_w, grad_x, None


def _sddmm_setup(ctx, inputs, output):
    indptr, src, rev_indptr, rev_dst, rev_perm, u, v, op = inputs
    ctx.op = op
    ctx.save_for_backward(indptr, src, rev_indptr, rev_dst, rev_perm, u, v)


def _sddmm_backward(ctx, grad):
    indptr, src, rev_indptr, rev_dst, rev_perm, u, v = ctx.saved_tensors
    graph = (indptr, src, rev_indptr, rev_dst, rev_perm)
    grad = grad.contiguous()
    grad_u = grad_v = None
    if ctx.op == "dot":  # d<u_j, v_i>: grad_v[i] = Σ g_e u_j (an SpMM), grad_u[j] = Σ g_e v_i (the transpose)
        if ctx.needs_input_grad[5]:
            grad_u, _ = _call("spmm", *_reversed(*graph), grad[rev_perm], v, "sum")
        if ctx.needs_input_grad[6]:
            grad_v, _ = _call("spmm", *graph, grad, u, "sum")
    else:
        g_u = grad[rev_perm] if ctx.op == "add" else grad[rev_perm] * v[rev_dst]
        g_v = grad if ctx.op == "add" else grad * u[src]
        if ctx.needs_input_grad[5]:
            grad_u, _ = _call("segment_reduce", g_u.contiguous(), rev_indptr, "sum")
        if ctx.needs_input_grad[6]:
            grad_v, _ = _call("segment_reduce", g_v.contiguous(), indptr, "sum")
    return None, None, None, None, None, grad_u, grad_v, None


def _gn_setup(ctx, inputs, output):
    (
        indptr,
        src,
        rev_indptr,
        rev_dst,
        rev_perm,
        p_src,
        p_dst,
        edge_term,
        w_edge,
        graph_term,
        batch,
        w2,
        b2,
        return_edges,
    ) = inputs
    ctx.has_edge, ctx.has_graph = edge_term is not None, graph_term is not None
    ctx.num_graphs = graph_term.shape[0] if graph_term is not None else 0
    # With w_edge only the (E, F) edge features are kept, not their (E, H) projection.
    ctx.save_for_backward(
        indptr, src, rev_indptr, rev_dst, rev_perm, p_src, p_dst, edge_term, w_edge, graph_term, batch, w2, b2
    )


def _gn_backward(ctx, grad_node, grad_edge):
    *graph, p_src, p_dst, edge_term, w_edge, graph_term, batch, w2, b2 = ctx.saved_tensors
    grad_edge = grad_edge.contiguous() if grad_edge is not None and grad_edge.numel() else None
    need_edge_grad = ctx.has_edge and (ctx.needs_input_grad[7] or ctx.needs_input_grad[8])
    inputs = (p_src, p_dst, edge_term, w_edge, graph_term, batch, w2, b2)
    grad_p_src, grad_p_dst, grad_edge_term, grad_w_edge, grad_w2, grad_b2 = _call(
        "gn_edge_aggregate_backward", *graph, *inputs, grad_node.contiguous(), grad_edge, need_edge_grad
    )
    grad_edge_term = grad_edge_term if ctx.has_edge and ctx.needs_input_grad[7] else None
    grad_w_edge = grad_w_edge if w_edge is not None and ctx.needs_input_grad[8] else None
    grad_graph = None
    if ctx.has_graph and ctx.needs_input_grad[9]:
        grad_graph = grad_p_dst.new_zeros((ctx.num_graphs, grad_p_dst.shape[1])).index_add_(0, batch, grad_p_dst)
    return (None,) * 5 + (
        grad_p_src,
        grad_p_dst,
        grad_edge_term,
        grad_w_edge,
        grad_graph,
        None,
        grad_w2,
        grad_b2,
        None,
    )


_FAKES = {
    "segment_reduce": _segment_reduce_fake,
    "spmm": _spmm_fake,
    "sddmm": _sddmm_fake,
    "gn_edge_aggregate": _gn_fake,
    "gn_edge_aggregate_backward": _gn_backward_fake,
}
_AUTOGRAD = {
    "segment_reduce": (_segment_reduce_backward, _segment_reduce_setup),
    "spmm": (_spmm_backward, _spmm_setup),
    "sddmm": (_sddmm_backward, _sddmm_setup),
    "gn_edge_aggregate": (_gn_backward, _gn_setup),
}


def register(suffix: str = "") -> None:
    """Registers fake kernels (unless the op has one, as Triton ops do) and autograd for fastsim::<op><suffix>."""
    for name in OPS:
        qualname = f"fastsim::{name}{suffix}"
        if not suffix:
            torch.library.register_fake(qualname)(_FAKES[name])
        if name in _AUTOGRAD:
            backward, setup = _AUTOGRAD[name]
            torch.library.register_autograd(qualname, backward, setup_context=setup)


register()
