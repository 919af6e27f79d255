"""Tests for `fastsim.graph.Graph`: CSR layout against brute force, converters, batching, hostile inputs."""

import dataclasses
import sys

import numpy as np
import pytest
import torch

from fastsim.graph import Graph

INDEX_FIELDS = ("indptr", "src", "dst", "perm", "rev_indptr", "rev_dst", "rev_perm", "batch", "ptr")


def random_edges(seed: int, num_nodes: int = 12, num_edges: int = 40) -> torch.Tensor:
    """Random `(2, E)` edges with self-loops, multi-edges and the last 3 nodes isolated."""
    gen = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, num_nodes - 3, (2, num_edges), generator=gen)
    loops = torch.tensor([[0, 4], [0, 4]])
    repeated = edges[:, :5]  # the first five edges again: multi-edges
    edges = torch.cat([edges, loops, repeated, edges[:, :2]], dim=1)
    return edges[:, torch.randperm(edges.shape[1], generator=gen)]


def assert_same_graph(a: Graph, b: Graph) -> None:
    assert a.num_nodes == b.num_nodes and a.num_graphs == b.num_graphs
    for name in INDEX_FIELDS:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("edge_weight", "edge_attr"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert torch.equal(x, y), name


def assert_layout(g: Graph, edge_index: torch.Tensor) -> None:
    """Every invariant of docs/ops.md, checked against a plain Python scan of the caller's edges."""
    n, e = g.num_nodes, edge_index.shape[1]
    pairs = edge_index.t().tolist()
    assert g.num_edges == e and g.indptr.shape == (n + 1,) and g.indptr[0] == 0 and g.indptr[-1] == e
    for name in INDEX_FIELDS:
        t = getattr(g, name)
        assert t.dtype == torch.int64 and t.is_contiguous(), name
    for i in range(n):
        incoming = [(s, pos) for pos, (s, d) in enumerate(pairs) if d == i]  # caller order
        lo, hi = g.indptr[i].item(), g.indptr[i + 1].item()
        assert list(zip(g.src[lo:hi].tolist(), g.perm[lo:hi].tolist(), strict=True)) == incoming
        assert g.dst[lo:hi].tolist() == [i] * (hi - lo)
        outgoing = [(d, pos) for pos, (s, d) in enumerate(pairs) if s == i]
        lo, hi = g.rev_indptr[i].item(), g.rev_indptr[i + 1].item()
        got = list(zip(g.rev_dst[lo:hi].tolist(), g.perm[g.rev_perm[lo:hi]].tolist(), strict=True))
        assert got == outgoing
    assert torch.equal(g.edge_index()[:, g.perm], torch.stack([g.src, g.dst]))
    assert torch.equal(g.rev_dst, g.dst[g.rev_perm])
    assert bool((g.src[g.rev_perm].diff() >= 0).all()) and bool((g.dst.diff() >= 0).all())
    assert torch.equal(torch.sort(g.perm).values, torch.arange(e))
    assert torch.equal(torch.sort(g.rev_perm).values, torch.arange(e))
    assert torch.equal(g.in_degree(), torch.bincount(edge_index[1], minlength=n))
    assert torch.equal(g.out_degree(), torch.bincount(edge_index[0], minlength=n))


def edge_triples(g: Graph) -> list[tuple[int, int, float]]:
    """The edges as a sorted multiset of (src, dst, weight) for comparing converters."""
    w = g.edge_weight.tolist() if g.edge_weight is not None else [1.0] * g.num_edges
    return sorted(zip(g.src.tolist(), g.dst.tolist(), [round(x, 5) for x in w], strict=True))


@pytest.mark.parametrize("seed", range(4))
def test_layout_matches_brute_force(seed: int) -> None:
    edge_index = random_edges(seed)
    g = Graph.from_edge_index(edge_index)
    assert g.num_nodes == int(edge_index.max()) + 1
    assert_layout(g, edge_index)
    assert torch.equal(g.edge_index(), edge_index)
    assert g.num_graphs == 1 and torch.equal(g.batch, torch.zeros(g.num_nodes, dtype=torch.int64))
    assert g.ptr.tolist() == [0, g.num_nodes]


def test_isolated_nodes_and_int32_input() -> None:
    edge_index = random_edges(7)
    g = Graph.from_edge_index(edge_index.to(torch.int32), num_nodes=15)
    assert_layout(g, edge_index)
    assert g.in_degree()[-6:].tolist() == [0] * 6 and g.out_degree()[-6:].tolist() == [0] * 6


@pytest.mark.parametrize("num_nodes", [None, 0, 4])
def test_empty_graph(num_nodes: int | None) -> None:
    g = Graph.from_edge_index(torch.empty(2, 0, dtype=torch.int64), num_nodes, edge_weight=torch.empty(0))
    n = num_nodes or 0
    assert g.num_nodes == n and g.num_edges == 0
    assert g.indptr.tolist() == [0] * (n + 1) and g.rev_indptr.tolist() == [0] * (n + 1)
    assert g.edge_index().shape == (2, 0) and g.ptr.tolist() == [0, n]
    assert_same_graph(g.reverse(), g)
    assert "num_nodes=" + str(n) in repr(g)


def test_weight_and_attr_follow_their_edge() -> None:
    edge_index = random_edges(1)
    e = edge_index.shape[1]
    weight = torch.randn(e, dtype=torch.float64)
    attr = torch.randn(e, 3, 2)
    g = Graph.from_edge_index(edge_index, edge_weight=weight, edge_attr=attr)
    assert torch.equal(g.edge_weight, weight[g.perm]) and torch.equal(g.edge_attr, attr[g.perm])
    lookup = {}
    for pos, (s, d) in enumerate(edge_index.t().tolist()):
        lookup.setdefault((s, d), []).append(weight[pos].item())
    for p in range(e):  # multi-edges keep their weights in the caller's order
        key = (g.src[p].item(), g.dst[p].item())
        assert g.edge_weight[p].item() == lookup[key].pop(0)
    assert g.edge_weight.is_contiguous() and g.edge_attr.is_contiguous()


def test_weight_keeps_gradient() -> None:
    weight = torch.rand(6, requires_grad=True)
    g = Graph.from_edge_index(torch.tensor([[0, 1, 2, 2, 0, 3], [1, 1, 0, 0, 2, 1]]), edge_weight=weight)
    (g.edge_weight * torch.arange(6.0)).sum().backward()
    assert torch.equal(weight.grad[g.perm], torch.arange(6.0))


def test_to_csr_order_and_back() -> None:
    edge_index = random_edges(9)
    values = torch.randn(edge_index.shape[1], 2, dtype=torch.float64, requires_grad=True)
    g = Graph.from_edge_index(edge_index, edge_attr=values.detach())
    csr = g.to_csr_order(values)
    assert torch.equal(csr, g.edge_attr)
    back = g.to_caller_order(csr)
    assert torch.equal(back, values)
    (back * torch.arange(2.0, dtype=torch.float64)).sum().backward()
    assert torch.equal(values.grad, torch.arange(2.0, dtype=torch.float64).expand_as(values))
    with pytest.raises(ValueError, match=r"values must have shape \(E, \*\) with E = 49"):
        g.to_csr_order(torch.ones(48))
    with pytest.raises(TypeError, match="values must be a torch.Tensor"):
        g.to_caller_order([1.0])


def test_reverse_equals_flipped_graph_and_shares_storage() -> None:
    edge_index = random_edges(2)
    weight, attr = torch.rand(edge_index.shape[1]), torch.rand(edge_index.shape[1], 2)
    g = Graph.from_edge_index(edge_index, 13, edge_weight=weight, edge_attr=attr)
    r = g.reverse()
    assert_same_graph(r, Graph.from_edge_index(edge_index.flip(0), 13, edge_weight=weight, edge_attr=attr))
    assert_same_graph(r.reverse(), g)
    assert r.indptr.data_ptr() == g.rev_indptr.data_ptr() and r.rev_dst.data_ptr() == g.src.data_ptr()
    assert_layout(r, edge_index.flip(0))


def test_from_csr() -> None:
    g = Graph.from_edge_index(random_edges(3), edge_weight=torch.rand(49))
    c = Graph.from_csr(g.indptr, g.src, g.num_nodes, edge_weight=g.edge_weight)
    for name in ("indptr", "src", "dst", "rev_indptr", "edge_weight"):  # within a source: CSR order now
        assert torch.equal(getattr(c, name), getattr(g, name)), name
    assert torch.equal(c.perm, torch.arange(g.num_edges))
    assert_layout(c, torch.stack([g.src, g.dst]))
    assert Graph.from_csr(torch.zeros(1, dtype=torch.int64), torch.empty(0, dtype=torch.int64)).num_nodes == 0


def test_converters_agree() -> None:
    sp = pytest.importorskip("scipy.sparse")
    nx = pytest.importorskip("networkx")
    edge_index = torch.tensor([[0, 0, 1, 2, 3, 3, 4], [1, 2, 2, 0, 3, 1, 0]])
    weight = torch.tensor([0.5, 2.0, -1.0, 3.0, 4.0, 0.25, 7.0], dtype=torch.float64)
    ref = Graph.from_edge_index(edge_index, 6, edge_weight=weight)
    coo = sp.coo_array((weight.numpy(), tuple(edge_index.numpy())), shape=(6, 6))
    assert_same_graph(Graph.from_scipy(coo), ref)  # COO order is the caller's order
    assert edge_triples(Graph.from_scipy(coo.tocsr())) == edge_triples(ref)
    assert edge_triples(Graph.from_scipy(sp.csc_matrix(coo))) == edge_triples(ref)
    dg = nx.DiGraph()
    dg.add_nodes_from(range(6))
    dg.add_weighted_edges_from(zip(*edge_index.tolist(), weight.tolist(), strict=True))
    from_nx = Graph.from_networkx(dg)
    assert from_nx.num_nodes == 6 and edge_triples(from_nx) == edge_triples(ref)
    assert edge_triples(Graph.from_scipy(nx.to_scipy_sparse_array(dg))) == edge_triples(ref)
    assert Graph.from_networkx(dg, weight=None).edge_weight is None


def test_networkx_undirected_multigraph_and_labels() -> None:
    nx = pytest.importorskip("networkx")
    ug = nx.Graph()
    ug.add_nodes_from(["c", "a", "b", "z"])  # node order is list(g.nodes); "z" isolated
    ug.add_edge("a", "b", weight=2.0)
    ug.add_edge("c", "c", weight=5.0)  # undirected self-loop: one edge
    ug.add_edge("c", "a")  # no weight: counts as 1.0
    g = Graph.from_networkx(ug)
    assert edge_triples(g) == [(0, 0, 5.0), (0, 1, 1.0), (1, 0, 1.0), (1, 2, 2.0), (2, 1, 2.0)]
    assert g.num_nodes == 4
    assert edge_triples(Graph.from_scipy(nx.to_scipy_sparse_array(ug))) == edge_triples(g)
    mg = nx.MultiDiGraph([(0, 1), (0, 1), (1, 1)])
    assert edge_triples(Graph.from_networkx(mg)) == [(0, 1, 1.0), (0, 1, 1.0), (1, 1, 1.0)]
    assert Graph.from_networkx(mg).edge_weight is None
    bad = nx.DiGraph([(0, 1, {"weight": "heavy"})])
    with pytest.raises(TypeError, match="weight"):
        Graph.from_networkx(bad)
    with pytest.raises(ValueError, match="edge_weight must be finite; got NaN"):
        Graph.from_networkx(nx.DiGraph([(0, 1, {"weight": float("nan")})]))


def test_from_pyg() -> None:
    pyg_data = pytest.importorskip("torch_geometric.data")
    edge_index = random_edges(4)
    weight, attr = torch.rand(edge_index.shape[1]), torch.rand(edge_index.shape[1], 4)
    data = pyg_data.Data(edge_index=edge_index, edge_weight=weight, edge_attr=attr, num_nodes=14)
    assert_same_graph(Graph.from_pyg(data), Graph.from_edge_index(edge_index, 14, weight, attr))
    plain = Graph.from_pyg(pyg_data.Data(edge_index=edge_index, num_nodes=14))
    assert plain.edge_weight is None and plain.edge_attr is None
    small = pyg_data.Data(
        edge_index=torch.tensor([[0, 1], [1, 2]]), edge_weight=torch.ones(2), edge_attr=attr[:2], num_nodes=3
    )
    batch = pyg_data.Batch.from_data_list([data, small])
    b = Graph.from_pyg(batch)
    ours = Graph.batch_graphs([Graph.from_pyg(data), Graph.from_pyg(small)])
    for name in INDEX_FIELDS:
        assert torch.equal(getattr(b, name), getattr(ours, name)), name
    assert b.num_graphs == 2 and b.ptr.tolist() == [0, 14, 17]


def test_from_pyg_without_torch_geometric(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch_geometric.data", None)  # makes the import fail
    with pytest.raises(TypeError, match=r"data must be a torch_geometric.data.Data \(torch_geometric is not"):
        Graph.from_pyg(object())


def test_edge_index_subclass_is_stored_as_plain_tensor() -> None:
    pyg = pytest.importorskip("torch_geometric")
    edge_index = random_edges(8)
    g = Graph.from_edge_index(pyg.EdgeIndex(edge_index))
    assert type(g.src) is torch.Tensor and type(g.perm) is torch.Tensor
    assert_same_graph(g, Graph.from_edge_index(edge_index))


def test_scipy_keeps_duplicates_and_explicit_zeros() -> None:
    sp = pytest.importorskip("scipy.sparse")
    coo = sp.coo_matrix(([1.0, 0.0, 2.0, 3.0], ([0, 1, 0, 2], [1, 2, 1, 2])), shape=(4, 4))
    g = Graph.from_scipy(coo)  # (0, 1) twice, an explicit zero on (1, 2), a self-loop on 2, node 3 isolated
    assert edge_triples(g) == [(0, 1, 1.0), (0, 1, 2.0), (1, 2, 0.0), (2, 2, 3.0)]
    assert g.num_nodes == 4 and g.edge_weight.dtype == torch.float64


def test_batch_graphs() -> None:
    edges = [random_edges(5), torch.empty(2, 0, dtype=torch.int64), random_edges(6, num_nodes=8, num_edges=9)]
    sizes = [15, 3, 8]
    weights = [torch.rand(e.shape[1]) for e in edges]
    graphs = [Graph.from_edge_index(e, n, w) for e, n, w in zip(edges, sizes, weights, strict=True)]
    b = Graph.batch_graphs(graphs)
    offsets = [0, 15, 18]
    joined = torch.cat([e + off for e, off in zip(edges, offsets, strict=True)], dim=1)
    flat = Graph.from_edge_index(joined, 26, torch.cat(weights))  # same CSR, built by sorting
    assert_same_graph(b, dataclasses.replace(flat, batch=b.batch, ptr=b.ptr, num_graphs=3))
    assert_layout(b, joined)
    assert b.num_graphs == 3 and b.ptr.tolist() == [0, 15, 18, 26]
    assert b.batch.tolist() == [0] * 15 + [1] * 3 + [2] * 8
    nested = Graph.batch_graphs([b, graphs[0]])  # batched inputs are flattened
    assert nested.num_graphs == 4 and nested.ptr.tolist() == [0, 15, 18, 26, 41]
    assert nested.batch[-15:].tolist() == [3] * 15
    assert_same_graph(Graph.batch_graphs((graphs[0],)), graphs[0])


def test_immutable_and_to() -> None:
    g = Graph.from_edge_index(random_edges(0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.num_nodes = 3
    assert g.to("cpu") is g
    meta = g.to("meta")
    assert meta.device.type == "meta" and meta.num_edges == g.num_edges
    with pytest.raises(ValueError, match=r"graphs must all be on one device; got \['cpu', 'meta'\]"):
        Graph.batch_graphs([g, meta])
    with pytest.raises(ValueError, match=r"src must be contiguous int64"):
        dataclasses.replace(g, src=g.src.float())


E = torch.tensor([[0, 1, 2], [1, 2, 0]])
NAN, INF = float("nan"), float("inf")
EDGE_INDEX_HOSTILE = [  # overrides of from_edge_index(edge_index=E), the error, and a regex of its message
    ({"edge_index": [[0, 1], [1, 0]]}, TypeError, r"edge_index must be an integer torch.Tensor .*; got list"),
    ({"edge_index": E.float()}, TypeError, r"edge_index must have an integer dtype .*; got float32 \(2, 3\)"),
    ({"edge_index": E.bool()}, TypeError, r"edge_index must have an integer dtype .*; got bool \(2, 3\)"),
    ({"edge_index": E.t()}, ValueError, r"edge_index must have shape \(2, E\); got int64 \(3, 2\)"),
    ({"edge_index": E[0]}, ValueError, r"edge_index must have shape \(2, E\); got int64 \(3,\)"),
    ({"edge_index": E - 1}, ValueError, "edge_index must hold node indices >= 0; got minimum -1"),
    ({"num_nodes": 2}, ValueError, "edge_index must hold node indices < num_nodes = 2; got maximum 2"),
    ({"num_nodes": -1}, ValueError, "num_nodes must be a non-negative int; got -1"),
    ({"num_nodes": 3.0}, TypeError, "num_nodes must be a non-negative int; got float"),
    ({"num_nodes": True}, TypeError, "num_nodes must be a non-negative int; got bool"),
    ({"edge_weight": torch.ones(4)}, ValueError, r"edge_weight must have shape \(E,\) = \(3,\); got"),
    ({"edge_weight": torch.ones(3, 1)}, ValueError, r"edge_weight must have shape .* got float32 \(3, 1\)"),
    ({"edge_weight": torch.ones(3).long()}, TypeError, "edge_weight must be a floating torch.Tensor"),
    ({"edge_weight": [1.0, 2.0, 3.0]}, TypeError, "edge_weight must be a floating torch.Tensor .*; got list"),
    ({"edge_weight": torch.ones(3, device="meta")}, ValueError, "edge_weight must be on the graph's device"),
    ({"edge_weight": torch.tensor([1.0, NAN, 0.0])}, ValueError, "edge_weight must be finite; got NaN"),
    ({"edge_weight": torch.tensor([1.0, -INF, 0.0])}, ValueError, "edge_weight must be finite; got inf"),
    ({"edge_attr": torch.ones(2, 4)}, ValueError, r"edge_attr must have shape \(E, \*\) with E = 3"),
    ({"edge_attr": torch.tensor(1.0)}, ValueError, r"edge_attr must have shape .*; got float32 \(\)"),
    ({"edge_attr": torch.ones(3, 2).int()}, TypeError, "edge_attr must be a floating torch.Tensor"),
]


@pytest.mark.parametrize(("overrides", "error", "match"), EDGE_INDEX_HOSTILE)
def test_from_edge_index_hostile(overrides: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Graph.from_edge_index(**{"edge_index": E, **overrides})


def test_batch_and_converter_hostile() -> None:
    g, weighted = Graph.from_edge_index(E), Graph.from_edge_index(E, edge_weight=torch.ones(3))
    with pytest.raises(ValueError, match="graphs must hold at least one Graph; got an empty sequence"):
        Graph.batch_graphs([])
    with pytest.raises(TypeError, match=r"graphs\[1\] must be a Graph; got Tensor"):
        Graph.batch_graphs([g, E])
    with pytest.raises(TypeError, match="graphs must be a sequence of Graph; got Graph"):
        Graph.batch_graphs(g)
    missing = r"edge_weight must be set on all graphs or none; missing on graphs \[1\]"
    with pytest.raises(ValueError, match=missing):
        Graph.batch_graphs([weighted, g])
    attr2, attr3 = (Graph.from_edge_index(E, edge_attr=torch.ones(3, k)) for k in (2, 3))
    with pytest.raises(ValueError, match="edge_attr must share dtype and trailing shape"):
        Graph.batch_graphs([attr2, attr3])
    with pytest.raises(TypeError, match="matrix must be a scipy.sparse matrix or array; got ndarray"):
        Graph.from_scipy(np.eye(3))
    with pytest.raises(TypeError, match="g must be a networkx graph; got dict"):
        Graph.from_networkx({0: [1]})
    with pytest.raises(TypeError, match="data must be a torch_geometric.data.Data"):
        Graph.from_pyg({"edge_index": E})


T = torch.tensor
CSR_HOSTILE = [  # (indptr, src, num_nodes), the error, and a regex of its message
    ((T([0, 1, 3.0]), T([0, 1, 2]), None), TypeError, "indptr must have an integer dtype"),
    ((T([[0, 1]]), T([0]), None), ValueError, r"indptr must have shape \(N\+1,\)"),
    ((T([], dtype=torch.int64), T([0]), None), ValueError, "indptr must have length N \\+ 1 >= 1"),
    ((T([1, 2, 3]), T([0, 1, 0]), None), ValueError, r"indptr\[0\] must be 0; got 1"),
    ((T([0, 2, 1, 3]), T([0, 1, 2]), None), ValueError, "indptr must be non-decreasing"),
    ((T([0, 1, 2]), T([0, 1, 1]), None), ValueError, r"indptr\[-1\] must equal the number of edges"),
    ((T([0, 1, 3]), T([0, 2, 1]), None), ValueError, "src must hold node indices < num_nodes = 2; got max"),
    ((T([0, 1, 3]), T([0, -1, 1]), None), ValueError, "src must hold node indices >= 0; got minimum -1"),
    ((T([0, 1, 3]), T([0.0, 1, 1]), None), TypeError, "src must have an integer dtype"),
    ((T([0, 1, 3]), T([0, 1, 1]), 3), ValueError, "indptr must have length num_nodes \\+ 1 = 4; got 3"),
    ((T([0, 1, 3]), T([0, 1, 1]), -3), ValueError, "num_nodes must be a non-negative int; got -3"),
    ((T([0, 1, 3]), T([0, 1, 1], device="meta"), None), ValueError, "src must be on indptr's device cpu"),
]


@pytest.mark.parametrize(("args", "error", "match"), CSR_HOSTILE)
def test_from_csr_hostile(args: tuple, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Graph.from_csr(*args)


def test_converter_hostile_values() -> None:
    sp = pytest.importorskip("scipy.sparse")
    with pytest.raises(ValueError, match=r"matrix must be square \(N, N\); got shape \(2, 3\)"):
        Graph.from_scipy(sp.random(2, 3, density=0.5, format="csr"))
    with pytest.raises(ValueError, match="edge_weight must be finite; got NaN"):
        Graph.from_scipy(sp.csr_matrix(np.array([[0.0, np.nan], [1.0, 0.0]])))
    ints = Graph.from_scipy(sp.csr_array(np.array([[0, 2], [3, 0]])))
    assert ints.edge_weight.dtype == torch.get_default_dtype()
    assert edge_triples(ints) == [(0, 1, 2.0), (1, 0, 3.0)]
