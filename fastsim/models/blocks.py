"""Graph-network building blocks on top of the fused message-passing ops."""

import torch
from torch import nn

from fastsim import ops
from fastsim.graph import Graph


class MLP(nn.Sequential):
    """Linear layers with an activation between them (and after the last one if `final_activation`).

    Args:
        dims: layer widths `[in, hidden..., out]`, at least two. activation: a module class such as `nn.GELU`.
        final_activation: also apply the activation to the output.
    """

    def __init__(self, dims: list[int], activation: type[nn.Module] = nn.GELU, final_activation: bool = False) -> None:
        if len(dims) < 2 or any(d <= 0 for d in dims):
            raise ValueError(f"dims must list at least two positive widths; got {dims}")
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(d_in, d_out))
            if final_activation or i < len(dims) - 2:
                layers.append(activation())
        super().__init__(*layers)


class EdgeBlock(nn.Module):
    """The edge update and sum aggregation of a graph-network layer (NGS φ_e and ρ_e→v), fused.

    Mathematically `m_ji = GELU(W2 · GELU(W1 · [x_j, x_i, e_ji, g] + b1) + b2)` and `out_i = Σ_j m_ji`, i.e. a
    two-layer MLP on the concatenated edge input followed by a scatter-sum. The first Linear is applied per node
    (`W1 = [W_src | W_dst | W_edge | W_glob]`), and `fastsim.ops.gn_edge_aggregate` does the rest without
    materialising per-edge hidden activations.

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
            graph: the graph. x: `(N, n)` node features. edge_attr: `(E, e)` in CSR order (if edge_dim > 0).
            glob: `(B, g)` per-graph features (if glob_dim > 0), B = graph.num_graphs.
        """
        w_src, w_dst, w_edge, w_glob = self.first.weight.split(self.dims, dim=1)
        p_src = x @ w_src.T
        p_dst = torch.addmm(self.first.bias, x, w_dst.T)
        edge_term = edge_attr @ w_edge.T if self.dims[2] else None
        graph_term = glob @ w_glob.T if self.dims[3] else None
        return ops.gn_edge_aggregate(
            graph, p_src, p_dst, self.second.weight, self.second.bias, edge_term, graph_term, return_edges
        )
