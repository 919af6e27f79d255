"""Sparse message passing on a `fastsim.Graph`: segment reductions, SpMM, SDDMM and the fused GN edge step.

Every per-edge tensor (weights, edge terms, outputs) is in the graph's CSR order (edges sorted by destination);
`Graph.to_csr_order` converts a tensor given in the caller's edge order. Gradients flow to every floating
input; see docs/ops.md for the exact semantics of each kernel.
"""

from typing import NamedTuple

import torch

from fastsim import _backend
from fastsim.graph import Graph
from fastsim.ops import message_passing_grad  # noqa: F401  (registers fake kernels and autograd)

REDUCTIONS = ("sum", "mean", "min", "max")
EDGE_OPS = ("dot", "add", "mul")


class SegmentArgResult(NamedTuple):
    """Result of a min/max reduction: the values and the position of the chosen element (-1 when empty)."""

    values: torch.Tensor
    indices: torch.Tensor


def _graph_five(graph: Graph) -> tuple[torch.Tensor, ...]:
    return graph.indptr, graph.src, graph.rev_indptr, graph.rev_dst, graph.rev_perm


def _check_graph(graph: object) -> Graph:
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a fastsim.Graph; got {type(graph).__name__}")
    return graph


def _check_float(name: str, t: object, device: torch.device, shape: tuple[int | None, ...]) -> torch.Tensor:
    """Checks type, floating dtype, device and shape (None matches any size); returns `t` contiguous."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor (float32/float64); got {t.dtype}")
    if t.device != device:
        raise ValueError(f"{name} is on {t.device} but the graph is on {device}")
    if t.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        want = str(tuple("*" if s is None else s for s in shape)).replace("'", "")
        raise ValueError(f"{name} must have shape {want}; got {tuple(t.shape)}")
    return t.contiguous()


def _check_reduce(reduce: str, allowed: tuple[str, ...], what: str = "reduce") -> None:
    if reduce not in allowed:
        raise ValueError(f"{what} must be one of {allowed}; got {reduce!r}")


def _check_indptr(indptr: object, num_items: int, device: torch.device) -> torch.Tensor:
    if not isinstance(indptr, torch.Tensor):
        raise TypeError(f"indptr must be a torch.Tensor; got {type(indptr).__name__}")
    if indptr.dtype != torch.int64 or indptr.dim() != 1 or indptr.numel() == 0:
        raise ValueError(f"indptr must be a non-empty 1-D int64 tensor; got {indptr.dtype} {tuple(indptr.shape)}")
    if indptr.device != device:
        raise ValueError(f"indptr is on {indptr.device} but src is on {device}")
    if not torch.compiler.is_compiling():  # data checks need a host sync; compiled callers pass checked CSR
        if int(indptr[0]) != 0:
            raise ValueError(f"indptr[0] must be 0; got {int(indptr[0])}")
        if indptr.numel() > 1 and bool((indptr[1:] < indptr[:-1]).any()):
            raise ValueError("indptr must be non-decreasing")
        if int(indptr[-1]) != num_items:
            raise ValueError(f"indptr[-1] must equal src.shape[0] = {num_items}; got {int(indptr[-1])}")
    return indptr.contiguous()


def segment_reduce(src: torch.Tensor, indptr: torch.Tensor, reduce: str = "sum") -> torch.Tensor | SegmentArgResult:
    """Reduce `src` over contiguous segments: `out[i] = reduce(src[indptr[i]:indptr[i+1]])`.

    Args:
        src: `(E, *F)` floating values, segments along dim 0.
        indptr: `(N+1,)` int64 offsets, starting at 0, non-decreasing, ending at E.
        reduce: "sum", "mean", "min" or "max". Empty segments give 0.

    Returns:
        `(N, *F)` values for sum/mean; for min/max a `SegmentArgResult(values, indices)` whose indices give the
        position along dim 0 of `src` of the first extreme element, or -1 for an empty segment.

    Raises:
        TypeError, ValueError: for a wrong type, dtype, device or shape, or an invalid `indptr`.
    """
    _check_reduce(reduce, REDUCTIONS)
    if not isinstance(src, torch.Tensor):
        raise TypeError(f"src must be a torch.Tensor; got {type(src).__name__}")
    if src.dim() == 0:
        raise ValueError("src must have at least one dimension (segments run along dim 0)")
    src = _check_float("src", src, src.device, (None,) * src.dim())
    indptr = _check_indptr(indptr, src.shape[0], src.device)
    out, arg = _backend.op("segment_reduce", src.device)(src, indptr, reduce)
    return SegmentArgResult(out, arg) if reduce in ("min", "max") else out


def spmm(graph: Graph, x: torch.Tensor, reduce: str = "sum", weight: torch.Tensor | None = None) -> torch.Tensor:
    """Aggregate neighbour features: `y[i] = reduce_{j→i} w_ji · x[j]`.

    Args:
        graph: the graph (edges j → i; a node aggregates over its incoming edges).
        x: `(N, F)` or `(N,)` node features.
        reduce: "sum", "mean" (sum / in-degree), "min" or "max". Nodes without incoming edges get 0.
        weight: `(E,)` edge weights in CSR order, of the dtype of `x`; defaults to `graph.edge_weight`
                (cast to the dtype of `x`; unweighted if the graph has none).

    Returns:
        `(N, F)` (or `(N,)`) aggregated features. Differentiable in `x` and `weight`.
    """
    graph = _check_graph(graph)
    _check_reduce(reduce, REDUCTIONS)
    device = graph.indptr.device
    squeeze = isinstance(x, torch.Tensor) and x.dim() == 1
    x = _check_float("x", x.unsqueeze(-1) if squeeze else x, device, (graph.num_nodes, None))
    if weight is None and graph.edge_weight is not None:
        weight = graph.edge_weight.to(x.dtype)  # the graph's own weights follow the features' precision
    if weight is not None:
        weight = _check_float("weight", weight, device, (graph.num_edges,))
        if weight.dtype != x.dtype:
            raise TypeError(f"weight must have the dtype of x ({x.dtype}); got {weight.dtype}")
    out, _ = _backend.op("spmm", device)(*_graph_five(graph), weight, x, reduce)
    return out.squeeze(-1) if squeeze else out


def sddmm(graph: Graph, u: torch.Tensor, v: torch.Tensor, op: str = "dot") -> torch.Tensor:
    """Per-edge values from source features `u` and destination features `v`, for every edge j → i.

    "dot": `out[e] = <u[j], v[i]>` with shape `(E,)`; "add"/"mul": `u[j] + v[i]` / `u[j] * v[i]`, `(E, F)`.
    Outputs are in CSR order. Differentiable in `u` and `v`.
    """
    graph = _check_graph(graph)
    _check_reduce(op, EDGE_OPS, "op")
    device = graph.indptr.device
    u = _check_float("u", u, device, (graph.num_nodes, None))
    v = _check_float("v", v, device, (graph.num_nodes, u.shape[1]))
    if u.dtype != v.dtype:
        raise TypeError(f"u and v must share a dtype; got {u.dtype} and {v.dtype}")
    return _backend.op("sddmm", device)(*_graph_five(graph), u, v, op)


def gn_edge_aggregate(
    graph: Graph,
    p_src: torch.Tensor,
    p_dst: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    edge_term: torch.Tensor | None = None,
    graph_term: torch.Tensor | None = None,
    return_edges: bool = False,
    *,
    w_edge: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The fused graph-network edge step, summed into destinations, without an E×H hidden tensor.

    For every edge e = j → i: `m_e = GELU(GELU(p_src[j] + p_dst[i] + edge_term[e] + graph_term[batch[i]]) W2ᵀ + b2)`
    and `out[i] = Σ_{e into i} m_e`. `p_src`/`p_dst` are the node-level projections of the edge MLP's first
    Linear (its weight split by input block), so the per-edge GEMM of a graph-network layer becomes two node GEMMs.

    Args:
        graph: the (possibly batched) graph; `graph.batch` maps nodes to graphs for `graph_term`.
        p_src, p_dst: `(N, H)` source and destination projections (the first-layer bias folded into either).
        w2, b2: `(O, H)` and `(O,)`, the second Linear.
        edge_term: optional `(E, H)` per-edge projection, in CSR order; with `w_edge`, `(E, F)` edge features.
        graph_term: optional `(B, H)` per-graph projection, B = `graph.num_graphs`.
        return_edges: also return the per-edge messages `m` `(E, O)` (CSR order), the next layer's edge features.
        w_edge: optional `(H, F)` edge block of the first Linear: the per-edge term is then `edge_term @ w_edgeᵀ`,
            formed inside the CPU kernel per tile of edges (no `(E, H)` tensor; on CUDA and in the Triton op by
            one GEMM) and differentiable in both.

    Returns:
        `(N, O)` aggregated messages, or `(node_out, edge_out)` when `return_edges`.
    """
    graph = _check_graph(graph)
    device = graph.indptr.device
    p_src = _check_float("p_src", p_src, device, (graph.num_nodes, None))
    hidden = p_src.shape[1]
    p_dst = _check_float("p_dst", p_dst, device, (graph.num_nodes, hidden))
    w2 = _check_float("w2", w2, device, (None, hidden))
    b2 = _check_float("b2", b2, device, (w2.shape[0],))
    if w_edge is not None:
        if edge_term is None:
            raise ValueError("w_edge needs edge_term: the (E, F) edge features it projects")
        w_edge = _check_float("w_edge", w_edge, device, (hidden, None))
    if edge_term is not None:
        width = hidden if w_edge is None else w_edge.shape[1]
        edge_term = _check_float("edge_term", edge_term, device, (graph.num_edges, width))
    batch = None
    if graph_term is not None:
        graph_term = _check_float("graph_term", graph_term, device, (graph.num_graphs, hidden))
        batch = graph.batch
    for name, t in (
        ("p_dst", p_dst),
        ("w2", w2),
        ("b2", b2),
        ("edge_term", edge_term),
        ("w_edge", w_edge),
        ("graph_term", graph_term),
    ):
        if t is not None and t.dtype != p_src.dtype:
            raise TypeError(f"{name} must have the dtype of p_src ({p_src.dtype}); got {t.dtype}")
    if p_src.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"gn_edge_aggregate supports float32 and float64; got {p_src.dtype}")
    node_out, edge_out = _backend.op("gn_edge_aggregate", device)(
        *_graph_five(graph), p_src, p_dst, edge_term, w_edge, graph_term, batch, w2, b2, return_edges
    )
    return (node_out, edge_out) if return_edges else node_out
