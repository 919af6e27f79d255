"""torch.compile(fullgraph=True) sees through every op: fake kernels, no graph breaks, same numbers."""

import torch
import torch.nn.functional as F

import fastsim
from fastsim.models import EdgeBlock
from tests.conftest import assert_compiles_like_eager, random_graph


def test_edge_block_matches_the_plain_mlp():
    graph = fastsim.Graph.batch_graphs([random_graph(7, 20, seed=s) for s in range(2)])
    block = EdgeBlock(node_dim=3, edge_dim=2, glob_dim=4, hidden_dim=9, out_dim=5).double()
    x = torch.randn(graph.num_nodes, 3, dtype=torch.float64)
    e = torch.randn(graph.num_edges, 2, dtype=torch.float64)
    g = torch.randn(2, 4, dtype=torch.float64)
    node, edges = block(graph, x, e, g, return_edges=True)
    inputs = torch.cat([x[graph.src], x[graph.dst], e, g[graph.batch[graph.dst]]], dim=1)
    messages = F.gelu(block.second(F.gelu(block.first(inputs))))
    torch.testing.assert_close(edges, messages)
    torch.testing.assert_close(node, torch.zeros_like(node).index_add_(0, graph.dst, messages))


def test_compiled_gn_layer_has_no_graph_breaks():
    graph = random_graph(30, 120, seed=2)
    block = EdgeBlock(node_dim=4, edge_dim=3, glob_dim=2, hidden_dim=8, out_dim=4)
    x = torch.randn(30, 4, requires_grad=True)
    e = torch.randn(graph.num_edges, 3)
    g = torch.randn(1, 2)

    def layer(x, e, g):
        node, edges = block(graph, x, e, g, return_edges=True)
        pooled = fastsim.ops.segment_reduce(node, graph.ptr, "min").values
        smooth = fastsim.ops.spmm(graph, node, "mean") + fastsim.ops.sddmm(graph, x, x, "dot").sum()
        return node.sum() + edges.square().sum() + pooled.sum() + smooth.sum()

    assert_compiles_like_eager(layer, x, e, g)
    explanation = torch._dynamo.explain(layer)(x, e, g)
    assert explanation.graph_break_count == 0
