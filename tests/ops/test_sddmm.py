import pytest
import torch

import fastsim
from fastsim.ops import reference
from tests.conftest import GRAPH_SIZES, random_graph


@pytest.mark.parametrize("op", ["dot", "add", "mul"])
@pytest.mark.parametrize("size", GRAPH_SIZES)
@pytest.mark.parametrize("features", [1, 6])
def test_matches_reference(device, op, size, features):
    graph = random_graph(*size, seed=2, device=device)
    u = torch.randn(graph.num_nodes, features, dtype=torch.float64, device=device)
    v = torch.randn(graph.num_nodes, features, dtype=torch.float64, device=device)
    out = fastsim.ops.sddmm(graph, u, v, op)
    torch.testing.assert_close(out, reference.sddmm(graph.indptr, graph.src, u, v, op), rtol=1e-12, atol=1e-12)


def test_per_edge_values_follow_the_edges():
    edge_index = torch.tensor([[0, 2, 1], [1, 0, 0]])
    graph = fastsim.Graph.from_edge_index(edge_index)
    u = torch.tensor([[1.0], [2.0], [3.0]])
    out = fastsim.ops.sddmm(graph, u, 10 * u, "add")[:, 0]
    # Back in the caller's order: edge 0→1 gives 1 + 20, 2→0 gives 3 + 10, 1→0 gives 2 + 10.
    assert out[graph.perm.argsort()].tolist() == [21.0, 13.0, 12.0]


@pytest.mark.parametrize("op", ["dot", "add", "mul"])
def test_gradcheck(device, op):
    graph = random_graph(8, 25, seed=5, device=device)
    u = torch.randn(8, 3, dtype=torch.float64, device=device, requires_grad=True)
    v = torch.randn(8, 3, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, v: fastsim.ops.sddmm(graph, u, v, op), (u, v))


@pytest.mark.parametrize("op", ["dot", "mul"])
def test_opcheck(device, op):
    graph = random_graph(9, 30, device=device)
    u = torch.randn(9, 4, dtype=torch.float64, device=device, requires_grad=True)
    v = torch.randn(9, 4, dtype=torch.float64, device=device, requires_grad=True)
    args = (graph.indptr, graph.src, graph.rev_indptr, graph.rev_dst, graph.rev_perm, u, v, op)
    torch.library.opcheck(torch.ops.fastsim.sddmm.default, args)
