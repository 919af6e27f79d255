import pytest
import torch

import fastsim
from fastsim.ops import reference
from tests.conftest import GRAPH_SIZES, random_graph


@pytest.mark.parametrize("reduce", ["sum", "mean", "min", "max"])
@pytest.mark.parametrize("size", GRAPH_SIZES)
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_reference(device, reduce, size, weighted):
    graph = random_graph(*size, seed=sum(size), device=device, weighted=weighted)
    x = torch.randn(graph.num_nodes, 7, dtype=torch.float64, device=device)
    out = fastsim.ops.spmm(graph, x, reduce)
    expected, _ = reference.spmm(graph.indptr, graph.src, graph.edge_weight, x, reduce)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float16, 2e-2), (torch.bfloat16, 5e-2)])
def test_low_precision(device, dtype, tol):
    graph = random_graph(30, 120, device=device)
    x = torch.randn(30, 16, device=device)
    out = fastsim.ops.spmm(graph, x.to(dtype))
    expected, _ = reference.spmm(graph.indptr, graph.src, None, x.double(), "sum")
    torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol)


def test_one_dimensional_features():
    graph = random_graph(9, 30, weighted=True)
    x = torch.randn(9, dtype=torch.float64)
    torch.testing.assert_close(fastsim.ops.spmm(graph, x), fastsim.ops.spmm(graph, x[:, None])[:, 0])


def test_nan_propagates():
    graph = fastsim.Graph.from_edge_index(torch.tensor([[0, 1, 2], [1, 1, 2]]))
    x = torch.tensor([[float("nan")], [1.0], [2.0]], dtype=torch.float64)
    for reduce in ["sum", "mean", "min", "max"]:
        out = fastsim.ops.spmm(graph, x, reduce)
        assert torch.isnan(out[1, 0]) and out[2, 0] == 2.0 and out[0, 0] == 0.0


@pytest.mark.parametrize("reduce", ["sum", "mean", "min", "max"])
def test_gradcheck(device, reduce):
    graph = random_graph(8, 25, seed=3, device=device)
    x = torch.randn(8, 3, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.rand(graph.num_edges, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: fastsim.ops.spmm(graph, x, reduce, weight=w), (x, w))


def test_gradients_match_reference():
    graph = random_graph(40, 200, seed=1)
    x = torch.randn(40, 5, dtype=torch.float64, requires_grad=True)
    w = torch.rand(200, dtype=torch.float64, requires_grad=True)
    for reduce in ["sum", "mean", "max"]:
        grads = torch.autograd.grad(fastsim.ops.spmm(graph, x, reduce, weight=w).square().sum(), (x, w))
        ref, _ = reference.spmm(graph.indptr, graph.src, w, x, reduce)
        expected = torch.autograd.grad(ref.square().sum(), (x, w))
        for g, e in zip(grads, expected):
            torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("reduce", ["sum", "max"])
def test_opcheck(device, reduce):
    graph = random_graph(9, 30, device=device, weighted=True)
    x = torch.randn(9, 4, dtype=torch.float64, device=device, requires_grad=True)
    w = graph.edge_weight.clone().requires_grad_()
    args = (graph.indptr, graph.src, graph.rev_indptr, graph.rev_dst, graph.rev_perm, w, x, reduce)
    torch.library.opcheck(torch.ops.fastsim.spmm.default, args)
