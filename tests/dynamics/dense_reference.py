"""Plain dense numpy formulas and small test graphs for the dynamics tests."""

import numpy as np
import torch

import fastsim
from fastsim.graphs import erdos_renyi
from tests.conftest import random_graph


def dense_weights(graph: fastsim.Graph, weight: torch.Tensor) -> np.ndarray:
    """`W[i, j] = Σ_{e: j -> i} w_e` (in-edge convention), from CSR-ordered `weight`."""
    w = np.zeros((graph.num_nodes, graph.num_nodes))
    np.add.at(w, (graph.dst.numpy(), graph.src.numpy()), weight.numpy())
    return w


def small_graphs() -> list[fastsim.Graph]:
    """An undirected ER graph and a directed multigraph with self-loops, repeated edges and isolated nodes."""
    return [erdos_renyi(12, 3.0, generator=1), random_graph(9, 30, seed=3)]


def batch_of_three() -> tuple[fastsim.Graph, list[fastsim.Graph]]:
    """Three undirected ER graphs of different sizes, and their block-diagonal batch."""
    graphs = [erdos_renyi(n, 3.0, generator=n) for n in (7, 11, 5)]
    return fastsim.Graph.batch_graphs(graphs), graphs


def split_nodes(x: torch.Tensor, batched: fastsim.Graph) -> list[torch.Tensor]:
    """Per-graph node blocks of `x (N, *)`."""
    return list(torch.split(x, batched.ptr.diff().tolist()))


def split_edges(x: torch.Tensor, graphs: list[fastsim.Graph]) -> list[torch.Tensor]:
    """Per-graph blocks of a CSR-ordered per-edge tensor of a batch (batching concatenates CSR blocks)."""
    return list(torch.split(x, [g.num_edges for g in graphs]))
