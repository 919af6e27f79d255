"""Corruptions of training data for robustness: Gaussian noise and missing nodes (docs/training.md).

A missing node's own prediction is unreliable, and so is every node within `depth` hops downstream of it, since a
`depth`-layer graph network mixes those nodes' states into its prediction. `missing_node_mask` therefore draws
missing nodes with probability `p` and grows the mask `depth` times along the edges (j → i marks i if j is marked);
the loss then excludes every marked node (`fastsim.training.metrics`, `missing=`).
"""

import math

import torch
from torch import Tensor

from fastsim.graph import Graph
from fastsim.ops import spmm


def add_gaussian_noise(x: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """`x + σ·ε`, ε ~ N(0, 1) i.i.d., drawn on the generator's device (so a seed gives the same noise anywhere).

    Args:
        x: floating tensor of any shape (a trajectory `(T, N, F)`, a state `(N, F)`, ...).
        sigma: noise standard deviation, >= 0 (0 returns `x` unchanged).
        generator: source of randomness; the global one when None.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating torch.Tensor; got {type(x).__name__}")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite number >= 0; got {sigma}")
    if sigma == 0:
        return x
    device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return x + sigma * noise.to(x.device)


def grow_mask(graph: Graph, mask: Tensor, depth: int) -> Tensor:
    """Grow a node mask `depth` hops along the edges: after each hop, i is marked if i or any j with j → i is.

    Args:
        graph: the (batched) graph; edges j → i.
        mask: bool `(N,)` nodes marked at hop 0.
        depth: number of hops, >= 0.

    Returns:
        bool `(N,)` grown mask.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a fastsim.Graph; got {type(graph).__name__}")
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != (graph.num_nodes,):
        raise ValueError(f"mask must be a bool tensor of shape ({graph.num_nodes},); got {mask!r:.80}")
    if mask.device != graph.device:
        raise ValueError(f"mask must be on the graph's device {graph.device}; got {mask.device}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be an int >= 0; got {depth!r}")
    # Explicit unit weights: the graph's own edge weights (possibly 0 or negative) must not hide a neighbour.
    ones = torch.ones(graph.num_edges, dtype=torch.float32, device=graph.device)
    marked = mask.to(torch.float32)
    for _ in range(depth):
        marked = torch.maximum(marked, spmm(graph, marked, reduce="max", weight=ones))
    return marked > 0


def missing_node_mask(graph: Graph, p: float, depth: int, generator: torch.Generator | None = None) -> Tensor:
    """Nodes excluded from the loss: each node missing with probability `p`, the mask grown `depth` hops.

    Args:
        graph: the (batched) graph.
        p: probability that a node is missing, in [0, 1].
        depth: hops of growth (the number of graph-network layers of the model).
        generator: source of randomness (drawn on its device, then moved to the graph's); global when None.

    Returns:
        bool `(N,)`, True for nodes to exclude.
    """
    if not (0 <= p <= 1):
        raise ValueError(f"p must be in [0, 1]; got {p}")
    device = generator.device if generator is not None else graph.device
    missing = (torch.rand(graph.num_nodes, generator=generator, device=device) < p).to(graph.device)
    return grow_mask(graph, missing, depth)
