"""Random graph generators: degree statistics, connectivity, storage convention, seeds, hostile input."""

import networkx as nx
import pytest
import torch

import fastsim
from fastsim.graphs import barabasi_albert, erdos_renyi, largest_connected_component, random_regular, undirected_graph


def is_connected(graph: fastsim.Graph) -> bool:
    g = nx.Graph()
    g.add_nodes_from(range(graph.num_nodes))
    g.add_edges_from(graph.edge_index().T.tolist())
    return nx.is_connected(g)


def assert_undirected_both_directions(graph: fastsim.Graph) -> None:
    edges = graph.edge_index()
    half = graph.num_edges // 2
    assert graph.num_edges % 2 == 0
    assert torch.equal(edges[:, half:], edges[:, :half].flip(0))  # forward block, then the reversed block
    assert bool((edges[0, :half] < edges[1, :half]).all())  # u < v: no self-loops
    keys = edges[0, :half] * graph.num_nodes + edges[1, :half]
    assert torch.equal(keys, torch.unique(keys))  # sorted, no multi-edges


def test_erdos_renyi_mean_degree_and_exact_gnp_edge_count():
    n, k = 2000, 3.0
    counts = torch.tensor([erdos_renyi(n, k, generator=s).num_edges / 2 for s in range(20)], dtype=torch.float64)
    # E ~ Binomial(N(N-1)/2, p): mean N k / 2 = 3000, std ≈ 54.7; the mean of 20 draws has std ≈ 12.2.
    assert abs(counts.mean().item() - n * k / 2) < 50
    assert 30 < counts.std().item() < 85
    graph = erdos_renyi(n, k, generator=0)
    assert_undirected_both_directions(graph)
    degree = graph.in_degree().to(torch.float64)
    assert torch.equal(graph.in_degree(), graph.out_degree())
    assert abs(degree.mean().item() - k) < 0.25 and abs(degree.var().item() - k) < 0.5  # Poisson-like
    dense = erdos_renyi(40, 39.0, generator=1)
    assert dense.num_edges == 40 * 39  # p = 1: complete graph
    assert erdos_renyi(50, 0.0, generator=1).num_edges == 0


def test_erdos_renyi_dense_graphs_use_a_permutation():
    counts = torch.tensor([erdos_renyi(30, 20.0, generator=s).num_edges / 2 for s in range(40)])
    p, pairs = 20.0 / 29, 435  # E ~ Binomial(435, p): mean ≈ 300, std ≈ 9.6; mean of 40 draws: std ≈ 1.5
    assert abs(counts.mean().item() - pairs * p) < 6
    assert_undirected_both_directions(erdos_renyi(30, 20.0, generator=0))


def test_giant_component_is_connected_and_the_largest():
    graph = erdos_renyi(600, 1.5, generator=4)  # supercritical but fragmented
    giant = erdos_renyi(600, 1.5, giant_component=True, generator=4)
    assert is_connected(giant) and not is_connected(graph)
    g = nx.Graph()
    g.add_nodes_from(range(600))
    g.add_edges_from(graph.edge_index().T.tolist())
    assert giant.num_nodes == max(len(c) for c in nx.connected_components(g))
    assert giant.num_edges == 2 * g.subgraph(max(nx.connected_components(g), key=len)).number_of_edges()
    assert_undirected_both_directions(giant)


def test_largest_component_keeps_edge_data_and_order():
    edge_index = torch.tensor([[0, 3, 4, 5, 1], [1, 4, 5, 3, 0]])
    weight = torch.arange(5, dtype=torch.float64)
    graph = fastsim.Graph.from_edge_index(edge_index, 7, edge_weight=weight)
    giant = largest_connected_component(graph)
    assert giant.num_nodes == 3
    assert torch.equal(giant.edge_index(), torch.tensor([[0, 1, 2], [1, 2, 0]]))
    assert torch.equal(giant.to_caller_order(giant.edge_weight), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="single graph"):
        largest_connected_component(fastsim.Graph.batch_graphs([graph, graph]))


def test_random_regular_has_exact_degrees():
    for n, d in ((100, 3), (51, 4), (20, 0)):
        graph = random_regular(n, d, generator=n)
        assert graph.num_nodes == n and graph.num_edges == n * d
        assert bool((graph.in_degree() == d).all()) and bool((graph.out_degree() == d).all())
        assert_undirected_both_directions(graph)
    assert is_connected(random_regular(200, 3, generator=5))
    ring_parts = random_regular(60, 2, giant_component=True, generator=6)
    assert is_connected(ring_parts) and bool((ring_parts.in_degree() == 2).all())


def test_barabasi_albert_edge_count_and_degrees():
    for n, m in ((100, 1), (150, 2), (120, 3)):
        graph = barabasi_albert(n, m, generator=n)
        assert graph.num_edges == 2 * m * (n - m)  # star on m+1 nodes, then m edges per new node
        assert int(graph.in_degree().min()) >= m
        assert is_connected(graph)
        assert_undirected_both_directions(graph)
    hubs = barabasi_albert(2000, 2, generator=7).in_degree()
    assert hubs.max() > 40  # heavy tail, unlike ER's max degree ~ 12 at the same mean degree


@pytest.mark.parametrize(
    "make",
    [
        lambda g: erdos_renyi(300, 3.0, generator=g),
        lambda g: erdos_renyi(300, 1.2, giant_component=True, generator=g),
        lambda g: random_regular(100, 3, generator=g),
        lambda g: barabasi_albert(100, 2, generator=g),
    ],
)
def test_seeds_reproduce(make):
    a, b = make(11), make(torch.Generator().manual_seed(11))
    assert a.num_nodes == b.num_nodes and torch.equal(a.edge_index(), b.edge_index())
    assert not torch.equal(a.edge_index(), make(12).edge_index())


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: erdos_renyi(-3, 1.0), ValueError, "num_nodes must be >= 1"),
        (lambda: erdos_renyi(10, 9.5), ValueError, r"mean_degree must lie in \[0, num_nodes - 1\]"),
        (lambda: erdos_renyi(10, -1.0), ValueError, "mean_degree must lie in"),
        (lambda: erdos_renyi(10, float("nan")), ValueError, "mean_degree must lie in"),
        (lambda: erdos_renyi(10.0, 2.0), TypeError, "num_nodes must be an int"),
        (lambda: erdos_renyi(10, "2"), TypeError, "mean_degree must be a number"),
        (lambda: erdos_renyi(10, 2.0, generator="seed"), TypeError, "generator must be"),
        (lambda: random_regular(11, 3), ValueError, "num_nodes \\* degree must be even"),
        (lambda: random_regular(5, 5), ValueError, "degree must be < num_nodes"),
        (lambda: random_regular(-1, 2), ValueError, "num_nodes must be >= 1"),
        (lambda: random_regular(10, -2), ValueError, "degree must be >= 0"),
        (lambda: barabasi_albert(10, 0), ValueError, "edges_per_node must be >= 1"),
        (lambda: barabasi_albert(10, 10), ValueError, "edges_per_node must be < num_nodes"),
        (lambda: barabasi_albert(-5, 1), ValueError, "num_nodes must be >= 2"),
        # an id ≥ num_nodes used to alias another pair ((0, 5) became the edge 1 - 2 on 3 nodes)
        (
            lambda: undirected_graph(torch.tensor([[0, 5]]), 3),
            ValueError,
            r"pairs must hold node ids in \[0, num_nodes\) = \[0, 3\)",
        ),
        (lambda: undirected_graph(torch.tensor([[0, 3], [1, 2]]), 3), ValueError, "got ids 0 to 3"),
        (lambda: undirected_graph(torch.tensor([[-1, 2]]), 3), ValueError, "got ids -1 to 2"),
        (lambda: undirected_graph(torch.tensor([[0, 1]]), 2.0), TypeError, "num_nodes must be an int"),
    ],
)
def test_hostile_inputs_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
