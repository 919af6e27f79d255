import pytest
import torch

import fastsim
from fastsim.ops import reference
from tests.conftest import GRAPH_SIZES, random_graph


def gn_inputs(graph, hidden=5, out=4, edge="term", glob=True, dtype=torch.float64, seed=0):
    """Random op inputs; `edge`: None, "term" (an (E, H) edge term) or "features" ((E, 3) features and w_edge)."""
    gen = torch.Generator().manual_seed(seed)
    device = graph.indptr.device

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype).to(device).requires_grad_()

    return {
        "p_src": rand(graph.num_nodes, hidden),
        "p_dst": rand(graph.num_nodes, hidden),
        "w2": rand(out, hidden),
        "b2": rand(out),
        "edge_term": rand(graph.num_edges, 3 if edge == "features" else hidden) if edge else None,
        "graph_term": rand(graph.num_graphs, hidden) if glob else None,
        "w_edge": rand(hidden, 3) if edge == "features" else None,
    }


def run_reference(graph, inputs, return_edges=True):
    return reference.gn_edge_aggregate(
        graph.indptr,
        graph.src,
        inputs["p_src"],
        inputs["p_dst"],
        inputs["edge_term"],
        inputs["w_edge"],
        inputs["graph_term"],
        graph.batch,
        inputs["w2"],
        inputs["b2"],
        return_edges,
    )


@pytest.mark.parametrize("size", GRAPH_SIZES)
@pytest.mark.parametrize("edge, glob", [(None, False), ("term", False), ("term", True), ("features", True)])
def test_forward_matches_reference(device, size, edge, glob):
    graph = random_graph(*size, seed=4, device=device)
    inputs = gn_inputs(graph, edge=edge, glob=glob)
    node, edges = fastsim.ops.gn_edge_aggregate(graph, **inputs, return_edges=True)
    ref_node, ref_edges = run_reference(graph, inputs)
    torch.testing.assert_close(node, ref_node, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(edges, ref_edges, rtol=1e-12, atol=1e-12)
    assert fastsim.ops.gn_edge_aggregate(graph, **inputs).shape == (graph.num_nodes, 4)


def test_batched_graphs_use_their_graph_term():
    graphs = [random_graph(6, 15, seed=s) for s in range(3)]
    batch = fastsim.Graph.batch_graphs(graphs)
    inputs = gn_inputs(batch, hidden=8, out=3)
    node = fastsim.ops.gn_edge_aggregate(batch, **inputs)
    torch.testing.assert_close(node, run_reference(batch, inputs)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("hidden, out", [(64, 64), (130, 7)])
def test_float32_wide_layers(hidden, out):
    graph = random_graph(300, 3000, seed=1)
    inputs = {
        k: (v.detach().float() * 0.3 if v is not None else None)
        for k, v in gn_inputs(graph, hidden, out, edge="features").items()
    }
    node = fastsim.ops.gn_edge_aggregate(graph, **inputs)
    double = {k: v.double() if v is not None else None for k, v in inputs.items()}
    torch.testing.assert_close(node.double(), run_reference(graph, double)[0], rtol=1e-4, atol=1e-4)


def test_float32_gelu_is_accurate_over_its_range():
    """The float kernels use a rational erf (csrc/common/gelu.h): messages and gradients as close to float64 as
    torch's own float32 arithmetic gets (errors ≤ 1.5e-6 of the largest entry), with pre-activations spread over
    ±8 (both saturated tails and the curved middle)."""
    graph = random_graph(50, 600, seed=3)
    inputs = {k: v if v is None else (v.detach() * 3).requires_grad_() for k, v in gn_inputs(graph, 3, 2).items()}
    single = {k: v.detach().float().requires_grad_() if v is not None else None for k, v in inputs.items()}
    ref_node, ref_edges = run_reference(graph, inputs)
    node, edges = fastsim.ops.gn_edge_aggregate(graph, **single, return_edges=True)
    torch.testing.assert_close(edges.double(), ref_edges, rtol=4e-6, atol=4e-6)
    names = [k for k, v in inputs.items() if v is not None]
    grads = torch.autograd.grad(node.sum(), [single[k] for k in names])
    expected = torch.autograd.grad(ref_node.sum(), [inputs[k] for k in names])
    for name, g, e in zip(names, grads, expected):
        scale = float(e.abs().max())
        torch.testing.assert_close(g.double(), e, rtol=0, atol=4e-6 * scale, msg=f"gradient of {name}")


@pytest.mark.parametrize("size", [(40, 200), (10, 300)])
@pytest.mark.parametrize("return_edges", [False, True])
@pytest.mark.parametrize("edge", ["term", "features"])
def test_gradients_match_reference(device, return_edges, size, edge):
    graph = random_graph(*size, seed=6, device=device)
    inputs = gn_inputs(graph, hidden=6, out=5, edge=edge)
    names = [k for k, v in inputs.items() if v is not None]

    def loss(result):
        node, edges = result if isinstance(result, tuple) else (result, None)
        value = (node * torch.linspace(-1, 1, node.numel(), dtype=node.dtype, device=device).view_as(node)).sum()
        return value + (edges.square().sum() if return_edges else 0)

    grads = torch.autograd.grad(
        loss(fastsim.ops.gn_edge_aggregate(graph, **inputs, return_edges=return_edges)),
        [inputs[n] for n in names],
    )
    ref = run_reference(graph, inputs, return_edges)
    expected = torch.autograd.grad(loss(ref if return_edges else ref[0]), [inputs[n] for n in names])
    for name, g, e in zip(names, grads, expected):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10, msg=f"gradient of {name}")


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("edge", ["term", "features"])
def test_gradients_on_the_transposed_sweep(two_threads, edge):
    """On the CPU with several threads and E < threads · N, grad_p_src comes from a second sweep over the transposed
    CSR, which recomputes the edge MLP (edge features projected there as well)."""
    graph = random_graph(200, 150, seed=3)
    inputs = gn_inputs(graph, hidden=6, out=5, edge=edge)
    names = [k for k, v in inputs.items() if v is not None]
    weights = torch.linspace(-1, 1, graph.num_nodes * 5, dtype=torch.float64).view(graph.num_nodes, 5)
    leaves = [inputs[n] for n in names]
    grads = torch.autograd.grad((fastsim.ops.gn_edge_aggregate(graph, **inputs) * weights).sum(), leaves)
    expected = torch.autograd.grad((run_reference(graph, inputs, False)[0] * weights).sum(), leaves)
    for name, g, e in zip(names, grads, expected):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10, msg=f"gradient of {name}")


@pytest.mark.parametrize("edge", ["term", "features"])
def test_gradcheck(device, edge):
    graph = fastsim.Graph.batch_graphs([random_graph(4, 9, seed=1), random_graph(3, 6, seed=2)]).to(device)
    inputs = gn_inputs(graph, hidden=3, out=2, edge=edge)
    names = [k for k, v in inputs.items() if v is not None]
    assert torch.autograd.gradcheck(
        lambda *a: fastsim.ops.gn_edge_aggregate(graph, **dict(zip(names, a)), return_edges=True),
        tuple(inputs[n] for n in names),
    )


@pytest.mark.parametrize("edge", ["term", "features"])
def test_opcheck(device, edge):
    graph = random_graph(9, 30, device=device)
    i = gn_inputs(graph, hidden=4, out=3, edge=edge)
    args = (
        graph.indptr,
        graph.src,
        graph.rev_indptr,
        graph.rev_dst,
        graph.rev_perm,
        i["p_src"],
        i["p_dst"],
        i["edge_term"],
        i["w_edge"],
        i["graph_term"],
        graph.batch,
        i["w2"],
        i["b2"],
        True,
    )
    torch.library.opcheck(torch.ops.fastsim.gn_edge_aggregate.default, args)
    grad_node = torch.randn(9, 3, dtype=torch.float64, device=device)
    grad_edge = torch.randn(graph.num_edges, 3, dtype=torch.float64, device=device)
    detached = [a.detach() if isinstance(a, torch.Tensor) else a for a in args[:-1]]
    torch.library.opcheck(torch.ops.fastsim.gn_edge_aggregate_backward.default, (*detached, grad_node, grad_edge, True))
