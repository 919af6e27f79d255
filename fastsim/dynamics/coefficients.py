"""Validation and seeded sampling of the coefficients and states of the graph dynamics.

Coefficients come in three kinds (NGS's node / edge / global split, ../shared/research/ngs_gnrk.md §1.1): per
node `(N,)`, per edge `(E,)` in the graph's CSR order, and per graph `(B,)` with `B = graph.num_graphs`.
Samplers draw on the CPU from a `torch.Generator` (or an int seed) and move the result to the graph's device,
so a seed gives the same numbers on every device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from fastsim.graph import Graph
from fastsim.graphs.random import as_generator

Range = tuple[float, float]


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"{str(x.dtype).removeprefix('torch.')} {tuple(x.shape)}"
    return type(x).__name__


def check_graph(graph: object) -> Graph:
    """`graph` itself, or a TypeError naming it."""
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a fastsim.Graph; got {type(graph).__name__}")
    return graph


def check_coefficient(value: object, name: str, shape: tuple[int, ...], graph: Graph) -> Tensor:
    """Check a finite floating coefficient tensor of exactly `shape` on the graph's device.

    Called once when a module is built, not per right-hand-side evaluation.

    Raises:
        TypeError: `value` is not a floating tensor.
        ValueError: wrong shape or device, or NaN/inf entries (the message names `name` and the expected shape).
    """
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise TypeError(f"{name} must be a floating torch.Tensor of shape {shape}; got {_describe(value)}")
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {_describe(value)}")
    if value.device != graph.device:
        raise ValueError(f"{name} must be on the graph's device {graph.device}; got {value.device}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite; it contains NaN or inf")
    return value


def check_state(y: object, name: str, shape: tuple[int, ...]) -> Tensor:
    """Check the state `y` passed to a right-hand side: a floating tensor of `shape`."""
    if not isinstance(y, Tensor) or not y.is_floating_point():
        raise TypeError(f"{name} must be a floating torch.Tensor of shape {shape}; got {_describe(y)}")
    if tuple(y.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {_describe(y)}")
    return y


def check_range(value: Sequence[float], name: str, lower: float | None = None) -> Range:
    """A finite `(low, high)` pair with `low <= high` (and `low >= lower` when given), or a ValueError naming it."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of numbers; got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} must be a pair of finite numbers; got {value!r}")
    if not low <= high:
        raise ValueError(f"{name} must satisfy low <= high; got {value!r}")
    if lower is not None and low < lower:
        raise ValueError(f"{name} must lie in [{lower}, inf); got {value!r}")
    return low, high


def uniform(
    size: int,
    bounds: Range,
    generator: torch.Generator | int | None,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """`size` i.i.d. draws from U[low, high], drawn on the CPU and moved to `device`."""
    low, high = bounds
    u = torch.rand(size, generator=as_generator(generator), dtype=torch.float64)
    return (low + (high - low) * u).to(dtype=dtype, device=device)


def per_edge_uniform(
    graph: Graph, bounds: Range, generator: torch.Generator | int | None, dtype: torch.dtype
) -> Tensor:
    """Per-edge draws from U[low, high], `(E,)` in CSR order, equal on both directions of an undirected edge.

    Edges are grouped by their unordered pair `{u, v}`: `u -> v` and `v -> u` (and parallel edges) share one
    draw, as NGS and GNRK duplicate one value per undirected edge. One value is drawn per distinct pair, in
    increasing order of `(min(u, v), max(u, v))`, so the result does not depend on how the edges were listed.
    """
    lo = torch.minimum(graph.src, graph.dst)
    hi = torch.maximum(graph.src, graph.dst)
    keys = lo * max(graph.num_nodes, 1) + hi
    unique, inverse = torch.unique(keys, return_inverse=True)
    values = uniform(unique.numel(), bounds, generator, dtype, torch.device("cpu"))
    return values.to(graph.device)[inverse]


def random_fraction_mask(graph: Graph, fractions: Tensor, generator: torch.Generator | int | None) -> Tensor:
    """Boolean `(N,)`: in graph `b`, exactly `floor(N_b · fractions[b])` nodes chosen uniformly without
    replacement.

    This is NGS/GNRK's "hot spots" rule (`rng.choice(N, int(N * ratio), replace=False)`), batched.
    """
    gen = as_generator(generator)
    batch, ptr = graph.batch.cpu(), graph.ptr.cpu()
    sizes = ptr.diff()
    counts = torch.floor(sizes.to(torch.float64) * fractions.cpu().to(torch.float64)).to(torch.int64)
    order = torch.randperm(graph.num_nodes, generator=gen)
    order = order[torch.argsort(batch[order], stable=True)]  # each graph's nodes, in a random order
    rank = torch.empty_like(order)
    rank[order] = torch.arange(graph.num_nodes) - ptr[batch[order]]
    return (rank < counts[batch]).to(graph.device)


def normal_clipped(
    size: int,
    clip: float | None,
    generator: torch.Generator | int | None,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """`size` draws from N(0, 1), clipped to `[-clip, clip]` unless `clip` is None."""
    z = torch.randn(size, generator=as_generator(generator), dtype=torch.float64)
    if clip is not None:
        z = z.clamp(-clip, clip)
    return z.to(dtype=dtype, device=device)
