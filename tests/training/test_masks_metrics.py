import math
from collections import deque

import pytest
import torch

from fastsim import Graph
from fastsim.training import add_gaussian_noise, grow_mask, mae, mean_interval, missing_node_mask, mse, rmse


def path_graph(n: int) -> Graph:
    forward = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    return Graph.from_edge_index(torch.cat([forward, forward.flip(0)], dim=1), num_nodes=n)


def bfs_within(graph: Graph, seeds: torch.Tensor, depth: int) -> torch.Tensor:
    """Reference: nodes reachable from a seed in at most `depth` hops along the edges (j → i)."""
    out_edges = {j: [] for j in range(graph.num_nodes)}
    for j, i in graph.edge_index().T.tolist():
        out_edges[j].append(i)
    hops = {int(s): 0 for s in seeds.nonzero().flatten()}
    queue = deque(hops)
    while queue:
        j = queue.popleft()
        if hops[j] < depth:
            for i in out_edges[j]:
                if i not in hops:
                    hops[i] = hops[j] + 1
                    queue.append(i)
    mask = torch.zeros(graph.num_nodes, dtype=torch.bool)
    mask[list(hops)] = True
    return mask


def test_growth_on_a_path_graph():
    graph = path_graph(10)
    seeds = torch.zeros(10, dtype=torch.bool)
    seeds[[2, 9]] = True
    assert grow_mask(graph, seeds, 0).nonzero().flatten().tolist() == [2, 9]
    assert grow_mask(graph, seeds, 2).nonzero().flatten().tolist() == [0, 1, 2, 3, 4, 7, 8, 9]
    directed = Graph.from_edge_index(torch.stack([torch.arange(9), torch.arange(1, 10)]), num_nodes=10)
    assert grow_mask(directed, seeds, 2).nonzero().flatten().tolist() == [2, 3, 4, 9]  # downstream only


def test_growth_matches_bfs_on_random_graphs_and_ignores_edge_weights():
    gen = torch.Generator().manual_seed(0)
    for depth in (1, 2, 3):
        edges = torch.randint(0, 60, (2, 120), generator=gen)
        graph = Graph.from_edge_index(edges, num_nodes=60, edge_weight=torch.zeros(120))
        seeds = torch.rand(60, generator=gen) < 0.05
        assert torch.equal(grow_mask(graph, seeds, depth), bfs_within(graph, seeds, depth))


def test_missing_node_mask_is_seeded_and_has_the_right_rate():
    graph = path_graph(4000)
    first = missing_node_mask(graph, 0.1, 0, torch.Generator().manual_seed(5))
    again = missing_node_mask(graph, 0.1, 0, torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and abs(first.float().mean().item() - 0.1) < 0.015
    grown = missing_node_mask(graph, 0.1, 2, torch.Generator().manual_seed(5))
    assert torch.equal(grown, grow_mask(graph, first, 2))
    assert not missing_node_mask(graph, 0.0, 2).any() and missing_node_mask(graph, 1.0, 0).all()
    with pytest.raises(ValueError, match="p must be in"):
        missing_node_mask(graph, 1.5, 2)
    with pytest.raises(ValueError, match="depth must be"):
        grow_mask(graph, first, -1)
    with pytest.raises(ValueError, match="mask must be a bool tensor of shape"):
        grow_mask(graph, first[:5], 1)


def test_gaussian_noise():
    x = torch.zeros(200, 100, dtype=torch.float64)
    noisy = add_gaussian_noise(x, 1e-3, torch.Generator().manual_seed(1))
    assert noisy.std().item() == pytest.approx(1e-3, rel=0.02) and noisy.dtype == torch.float64
    assert torch.equal(noisy, add_gaussian_noise(x, 1e-3, torch.Generator().manual_seed(1)))
    assert add_gaussian_noise(x, 0.0) is x
    with pytest.raises(ValueError, match="sigma"):
        add_gaussian_noise(x, -1.0)


def test_masked_metrics_exclude_missing_nodes():
    pred = torch.tensor([[1.0, 1.0], [2.0, 2.0], [100.0, -100.0]])
    target = torch.zeros(3, 2)
    missing = torch.tensor([False, False, True])
    assert mae(pred, target, missing).item() == pytest.approx(1.5)
    assert mse(pred, target, missing).item() == pytest.approx(2.5)
    assert rmse(pred, target, missing).item() == pytest.approx(2.5**0.5)
    trajectory = pred.expand(4, 3, 2)  # (T, N, F): nodes along dimension 1
    assert mae(trajectory, target.expand(4, 3, 2), missing, node_dim=1).item() == pytest.approx(1.5)
    assert mse(pred, target, torch.ones(3, dtype=torch.bool)).item() == 0.0  # everything masked
    pred.requires_grad_(True)
    mse(pred, target, missing).backward()
    assert torch.all(pred.grad[2] == 0) and torch.all(pred.grad[:2] != 0)
    with pytest.raises(ValueError, match=r"missing must have shape \(3,\)"):
        mae(pred, target, missing[:2])
    with pytest.raises(TypeError, match="missing must be a bool"):
        mae(pred, target, missing.float())
    with pytest.raises(ValueError, match="match in shape"):
        mae(pred, target[:2])


def test_mean_interval_uses_the_sample_standard_deviation():
    mean, half = mean_interval([1.0, 2.0, 3.0, 6.0])
    assert mean == pytest.approx(3.0)
    assert half == pytest.approx(1.96 * (14 / 3) ** 0.5 / 2)  # s² = Σ(x − 3)² / (n − 1) = 14 / 3
    assert mean_interval(torch.tensor([0.5]))[0] == 0.5 and math.isnan(mean_interval([0.5])[1])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        mean_interval([])
