"""Graph-network building blocks on top of the fused message-passing ops."""

import contextlib

import torch
from torch import nn

from fastsim import ops
from fastsim.graph import Graph


class GELU(nn.Module):
    """`nn.GELU()` through `fastsim.ops.gelu`: the compiled kernel on the CPU, ATen's elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.gelu(x)


class Linear(nn.Linear):
    """`nn.Linear` through `fastsim.ops.linear`: the compiled tile products on the CPU, ATen's elsewhere (the same
    parameters and state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.linear(x, self.weight, self.bias)


class MLP(nn.Sequential):
    """Linear layers with an activation between them (and after the last one if `final_activation`).

    Args:
        dims: layer widths `[in, hidden..., out]`, at least two. activation: a module class such as `GELU`.
        final_activation: also apply the activation to the output.
    """

    def __init__(self, dims: list[int], activation: type[nn.Module] = GELU, final_activation: bool = False) -> None:
        if len(dims) < 2 or any(d <= 0 for d in dims):
            raise ValueError(f"dims must list at least two positive widths; got {dims}")
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(Linear(d_in, d_out))
            if final_activation or i < len(dims) - 2:
                layers.append(activation())
        super().__init__(*layers)


class EdgeBlock(nn.Module):
    """The edge update and sum aggregation of a graph-network layer (NGS φ_e and ρ_e→v), fused.

    Mathematically `m_ji = GELU(W2 · GELU(W1 · [x_j, x_i, e_ji, g] + b1) + b2)` and `out_i = Σ_j m_ji`, i.e. a
    two-layer MLP on the concatenated edge input followed by a scatter-sum. The first Linear is split by input
    block (`W1 = [W_src | W_dst | W_edge | W_glob]`): its node blocks are applied per node and its graph block
    per graph, and `fastsim.ops.gn_edge_aggregate` does the rest, projecting the edge features by `W_edge`
    itself, without materialising any per-edge hidden tensor.

    Args:
        node_dim: node feature size n. edge_dim: edge feature size (0 for none). glob_dim: graph feature size
        (0 for none). hidden_dim: hidden width H (NGS uses the input width 2n+e+g). out_dim: message size O.
    """

    def __init__(self, node_dim: int, edge_dim: int, glob_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        for name, value in (("node_dim", node_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
            if value <= 0:
                raise ValueError(f"{name} must be positive; got {value}")
        if edge_dim < 0 or glob_dim < 0:
            raise ValueError(f"edge_dim and glob_dim must be >= 0; got {edge_dim}, {glob_dim}")
        self.dims = (node_dim, node_dim, edge_dim, glob_dim)
        self.first = nn.Linear(sum(self.dims), hidden_dim)
        self.second = nn.Linear(hidden_dim, out_dim)

    def forward(
        self,
        graph: Graph,
        x: torch.Tensor,
        edge_attr: torch.Tensor | None = None,
        glob: torch.Tensor | None = None,
        return_edges: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Aggregated messages `(N, O)`, and the per-edge messages `(E, O)` in CSR order if `return_edges`.

        Args:
            graph: the graph. x: `(N, n)` node features. edge_attr: `(E, e)` in CSR order (if edge_dim > 0), or
            `(e,)` features shared by every edge (folded into the bias: no per-edge term is formed).
            glob: `(B, g)` per-graph features (if glob_dim > 0), B = graph.num_graphs.

        Under autocast the fused step runs in float32 (the op has no half-precision kernel).
        """
        with _full_precision(x):
            x, edge_attr, glob = (_float32(t) for t in (x, edge_attr, glob))
            w_src, w_dst, w_edge, w_glob = self.first.weight.split(self.dims, dim=1)
            bias = self.first.bias
            per_edge = self.dims[2] and edge_attr.dim() == 2  # projected inside the fused op
            if self.dims[2] and not per_edge:
                bias = bias + w_edge @ edge_attr
            p_src = ops.linear(x, w_src)
            p_dst = ops.linear(x, w_dst, bias)
            graph_term = ops.linear(glob, w_glob) if self.dims[3] else None
            return ops.gn_edge_aggregate(
                graph, p_src, p_dst, self.second.weight, self.second.bias, edge_attr if per_edge else None,
                graph_term, return_edges, w_edge=w_edge if per_edge else None,
            )  # fmt: skip


def _float32(t: torch.Tensor | None) -> torch.Tensor | None:
    """`t` in float32 when autocast left it in half precision (fastsim's graph ops take float32/float64)."""
    return t.float() if t is not None and t.dtype in (torch.float16, torch.bfloat16) else t


def _full_precision(x: torch.Tensor):
    """A context with autocast off on `x`'s device (a no-op context when autocast is not on)."""
    enabled = torch.is_autocast_enabled(x.device.type)
    return torch.autocast(x.device.type, enabled=False) if enabled else contextlib.nullcontext()


class GraphNetworkLayer(nn.Module):
    """One NGS graph-network layer (ngs_gnrk.md §1.2): edge, node and global updates without residuals.

    `e'_ji = φ_e([v_j, v_i, e_ji, g])`, `ê_i = Σ_j e'_ji`, `v'_i = φ_v([v_i, ê_i, g])`, then
    `g' = φ_g([min_i v'_i, min_i ê_i, g])` with minima over the nodes of each graph (over the aggregated
    messages `ê`, not the raw edges, as the reference does). Every φ is a two-layer MLP whose hidden width is its
    input width, with GELU after both layers. φ_e and the sum run fused (`EdgeBlock`).

    Args:
        node_dim, edge_dim, glob_dim: widths of the node, edge and graph features (all > 0).
    """

    def __init__(self, node_dim: int, edge_dim: int, glob_dim: int) -> None:
        super().__init__()
        edge_in, update_in = 2 * node_dim + edge_dim + glob_dim, node_dim + edge_dim + glob_dim
        self.per_edge_update = EdgeBlock(node_dim, edge_dim, glob_dim, edge_in, edge_dim)
        self.per_node_update = MLP([update_in, update_in, node_dim], final_activation=True)
        self.glob_update = MLP([update_in, update_in, glob_dim], final_activation=True)

    def forward(
        self, graph: Graph, node: torch.Tensor, edge: torch.Tensor, glob: torch.Tensor, *, last: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """New `(node (N, n), edge (E, e), glob (B, g))` features.

        Args:
            graph: the (batched) graph, edges j → i. node: `(N, n)`. edge: `(E, e)` in CSR order, or `(e,)` shared
            by every edge. glob: `(B, g)`.
            last: the final layer of a stack, whose edge and graph outputs nobody reads: they are not computed
                and returned as None.
        """
        if last:
            aggregated, edge_out = self.per_edge_update(graph, node, edge, glob), None
        else:
            aggregated, edge_out = self.per_edge_update(graph, node, edge, glob, return_edges=True)
        node_out = self.per_node_update(torch.cat([node, aggregated, glob.index_select(0, graph.batch)], dim=1))
        if last:
            return node_out, None, None
        with _full_precision(node):
            node_min = ops.segment_reduce(_float32(node_out), graph.ptr, "min").values
            edge_min = ops.segment_reduce(_float32(aggregated), graph.ptr, "min").values
        glob_out = self.glob_update(torch.cat([node_min, edge_min, glob], dim=1))
        return node_out, edge_out, glob_out
