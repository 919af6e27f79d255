"""Seeded random graphs: Erdős–Rényi, random regular and Barabási–Albert, as `fastsim.Graph`.

Undirected graphs are stored as both directions, as NGS and GNRK feed them to PyG (ngs_gnrk.md §2.3): the edge
`{u, v}` becomes `u -> v` and `v -> u`. The caller order is every pair `(u, v)` with `u < v`, sorted, followed
by the same pairs reversed, so `graph.edge_index()[:, :E//2]` lists each undirected edge once.

Every generator takes `generator`: a `torch.Generator`, an int seed, or None for torch's global generator. The
same generator state gives the same graph. Erdős–Rényi is sampled in torch; random regular and Barabási–Albert
call the networkx generators that GNRK uses, seeded from `generator`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from fastsim.graph import Graph


def as_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    """A `torch.Generator` from a generator (returned as is), an int seed, or None (torch's global generator).

    Raises:
        TypeError: anything else (bools included).
    """
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(int(generator))
    raise TypeError(f"generator must be a torch.Generator, an int seed or None; got {type(generator).__name__}")


def _int_arg(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def _networkx_seed(generator: torch.Generator | int | None) -> int:
    """An int seed for networkx, drawn from `generator`."""
    return int(torch.randint(0, 2**62, (1,), generator=as_generator(generator)).item())


def undirected_graph(pairs: Tensor, num_nodes: int) -> Graph:
    """A `Graph` storing each undirected edge of `pairs (M, 2)` as both directions (see the module docstring).

    Pairs are normalised to `u < v` and sorted; self-loops and repeated pairs are dropped (simple graph).

    Raises:
        TypeError: a non-int `num_nodes`.
        ValueError: `pairs` is not an integer `(M, 2)` tensor of node ids in `[0, num_nodes)`.
    """
    if not isinstance(pairs, Tensor) or pairs.dim() != 2 or pairs.shape[1] != 2 or pairs.is_floating_point():
        got = f"{pairs.dtype} {tuple(pairs.shape)}" if isinstance(pairs, Tensor) else type(pairs).__name__
        raise ValueError(f"pairs must be an integer tensor of shape (M, 2); got {got}")
    num_nodes = _int_arg(num_nodes, "num_nodes", 0)
    pairs = pairs.to(torch.int64)
    # An id ≥ num_nodes would alias another pair in the key `lo · num_nodes + hi` below.
    id_min, id_max = (int(pairs.min()), int(pairs.max())) if pairs.numel() else (0, -1)
    if id_min < 0 or id_max >= num_nodes:
        raise ValueError(f"pairs must hold node ids in [0, num_nodes) = [0, {num_nodes}); got ids {id_min} to {id_max}")
    lo, hi = torch.minimum(pairs[:, 0], pairs[:, 1]), torch.maximum(pairs[:, 0], pairs[:, 1])
    keys = torch.unique(lo[lo != hi] * max(num_nodes, 1) + hi[lo != hi])  # sorted, duplicates removed
    u, v = keys // max(num_nodes, 1), keys % max(num_nodes, 1)
    edge_index = torch.stack([torch.cat([u, v]), torch.cat([v, u])])
    return Graph.from_edge_index(edge_index, num_nodes)


def largest_connected_component(graph: Graph) -> Graph:
    """The subgraph on the largest (weakly) connected component, nodes relabelled `0..N'-1` in their old
    order.

    Ties go to the component holding the smallest node index (networkx's `filter_gcc` in NGS/GNRK does the
    same). Edge order, `edge_weight` and `edge_attr` are kept for the surviving edges.

    Raises:
        ValueError: `graph` is a batch of several graphs.
    """
    import scipy.sparse
    from scipy.sparse.csgraph import connected_components

    if graph.num_graphs != 1:
        raise ValueError(f"graph must be a single graph; got a batch of {graph.num_graphs}")
    if graph.num_nodes == 0:
        return graph
    edge_index = graph.edge_index().cpu()
    ones = np.ones(graph.num_edges)
    adjacency = scipy.sparse.coo_array(
        (ones, (edge_index[0].numpy(), edge_index[1].numpy())), shape=(graph.num_nodes,) * 2
    )
    _, labels = connected_components(adjacency, directed=True, connection="weak")
    labels = torch.from_numpy(labels).to(torch.int64)
    keep = labels == torch.bincount(labels).argmax()  # argmax takes the first (smallest-label) maximum
    new_index = torch.cumsum(keep, 0) - 1
    keep_edge = keep[edge_index[0]]  # both ends lie in one component
    device = graph.device
    weight = None if graph.edge_weight is None else graph.to_caller_order(graph.edge_weight)
    attr = None if graph.edge_attr is None else graph.to_caller_order(graph.edge_attr)
    mask = keep_edge.to(device)
    return Graph.from_edge_index(
        new_index[edge_index[:, keep_edge]].to(device),
        int(keep.sum()),
        edge_weight=None if weight is None else weight[mask],
        edge_attr=None if attr is None else attr[mask],
    )


def _sample_subset(population: int, count: int, generator: torch.Generator | None) -> Tensor:
    """`count` distinct integers drawn uniformly from `[0, population)`, sorted."""
    if 4 * count > population:  # dense: a permutation of all candidates
        return torch.sort(torch.randperm(population, generator=generator)[:count]).values
    chosen = torch.empty(0, dtype=torch.int64)
    while chosen.numel() < count:  # i.i.d. draws, deduplicated: the distinct values form an exchangeable set
        extra = torch.randint(0, population, (2 * (count - chosen.numel()) + 16,), generator=generator)
        chosen = torch.unique(torch.cat([chosen, extra]))
    pick = torch.randperm(chosen.numel(), generator=generator)[:count]  # uniform subset: still exchangeable
    return torch.sort(chosen[pick]).values


def _decode_pairs(keys: Tensor) -> Tensor:
    """Pair `(j, i)`, `j < i`, of each lower-triangle index `k = i(i-1)/2 + j`, as `(M, 2)`."""
    i = torch.floor((1.0 + torch.sqrt(1.0 + 8.0 * keys.to(torch.float64))) / 2.0).to(torch.int64)
    i = i - (i * (i - 1) // 2 > keys).to(torch.int64)  # correct the float estimate by at most one
    i = i + ((i + 1) * i // 2 <= keys).to(torch.int64)
    return torch.stack([keys - i * (i - 1) // 2, i], dim=1)


def erdos_renyi(
    num_nodes: int,
    mean_degree: float,
    *,
    giant_component: bool = False,
    generator: torch.Generator | int | None = None,
) -> Graph:
    """Erdős–Rényi G(N, p) with `p = mean_degree / (N - 1)`, as NGS samples it (`fast_gnp_random_graph`).

    Exact G(N, p): the edge count is drawn from Binomial(N(N-1)/2, p), then that many distinct node pairs
    uniformly. The expected mean degree is `mean_degree`. NGS keeps the whole graph; GNRK keeps the giant
    component (`giant_component=True`), which then has fewer than N nodes.

    Args:
        num_nodes: N >= 1.
        mean_degree: k in [0, N-1].
        giant_component: keep only the largest connected component (nodes relabelled in order).
        generator: torch.Generator, int seed, or None.

    Returns:
        An undirected graph stored as both directions (CPU).

    Raises:
        TypeError: a non-int `num_nodes` or non-number `mean_degree`.
        ValueError: `num_nodes < 1`, or `mean_degree` outside [0, N-1] or not finite.
    """
    n = _int_arg(num_nodes, "num_nodes", 1)
    if isinstance(mean_degree, bool) or not isinstance(mean_degree, (int, float, np.integer, np.floating)):
        raise TypeError(f"mean_degree must be a number; got {type(mean_degree).__name__}")
    if not 0.0 <= float(mean_degree) <= n - 1:
        raise ValueError(f"mean_degree must lie in [0, num_nodes - 1] = [0, {n - 1}]; got {mean_degree}")
    gen = as_generator(generator)
    num_pairs = n * (n - 1) // 2
    p = float(mean_degree) / (n - 1) if n > 1 else 0.0
    count = torch.binomial(
        torch.tensor([float(num_pairs)], dtype=torch.float64),
        torch.tensor([p], dtype=torch.float64),
        generator=gen,
    )
    keys = _sample_subset(num_pairs, int(count.item()), gen)
    graph = undirected_graph(_decode_pairs(keys), n)
    return largest_connected_component(graph) if giant_component else graph


def random_regular(
    num_nodes: int,
    degree: int,
    *,
    giant_component: bool = False,
    generator: torch.Generator | int | None = None,
) -> Graph:
    """A uniformly random simple `degree`-regular graph (networkx `random_regular_graph`, as in GNRK).

    GNRK adds a node when `N · degree` is odd and keeps the giant component; here an odd product is an error,
    and the giant component is optional (it only matters for degree <= 2, where the graph may be
    disconnected).

    Args:
        num_nodes: N >= 1. degree: 0 <= d < N with N·d even.
        giant_component: keep only the largest connected component.
        generator: torch.Generator, int seed, or None.

    Raises:
        TypeError: non-int arguments. ValueError: negative sizes, `degree >= num_nodes`, odd `N · degree`.
    """
    import networkx as nx

    n = _int_arg(num_nodes, "num_nodes", 1)
    d = _int_arg(degree, "degree", 0)
    if d >= n:
        raise ValueError(f"degree must be < num_nodes = {n}; got {d}")
    if (n * d) % 2:
        raise ValueError(f"num_nodes * degree must be even for a regular graph; got {n} * {d} = {n * d}")
    g = nx.random_regular_graph(d, n, seed=_networkx_seed(generator))
    pairs = torch.tensor(list(g.edges), dtype=torch.int64).reshape(-1, 2)
    graph = undirected_graph(pairs, n)
    return largest_connected_component(graph) if giant_component else graph


def barabasi_albert(num_nodes: int, edges_per_node: int, *, generator: torch.Generator | int | None = None) -> Graph:
    """Barabási–Albert preferential attachment (networkx `barabasi_albert_graph`, as in GNRK).

    Starts from a star on `m + 1` nodes; each later node attaches to `m` distinct existing nodes chosen with
    probability proportional to degree. The graph is connected with exactly `m (N - m)` undirected edges and
    mean degree `2m (N - m) / N ≈ 2m` (GNRK sets `m = int(mean_degree / 2)`).

    Args:
        num_nodes: N >= 2. edges_per_node: 1 <= m < N.
        generator: torch.Generator, int seed, or None.

    Raises:
        TypeError: non-int arguments. ValueError: `num_nodes < 2`, `edges_per_node` outside [1, N-1].
    """
    import networkx as nx

    n = _int_arg(num_nodes, "num_nodes", 2)
    m = _int_arg(edges_per_node, "edges_per_node", 1)
    if m >= n:
        raise ValueError(f"edges_per_node must be < num_nodes = {n}; got {m}")
    g = nx.barabasi_albert_graph(n, m, seed=_networkx_seed(generator))
    return undirected_graph(torch.tensor(list(g.edges), dtype=torch.int64).reshape(-1, 2), n)
