"""The Triton kernels (`fastsim.kernels`) against the pure-torch references: compiled on a GPU, else on CPU tensors
under TRITON_INTERPRET=1 (which conftest sets when there is no GPU).

Small random graphs with self-loops, multi-edges, isolated nodes and empty graphs, in float64 (tight
tolerance) and float32; min/max with ties and NaN; the fused edge step's backward against torch.autograd.
"""

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

REPO = Path(__file__).resolve().parents[2]


def _import_kernels():
    """`fastsim.kernels` from an installed build, else the repo's `kernels/` package (not built yet)."""
    try:
        return importlib.import_module("fastsim.kernels.message_passing")
    except ImportError:
        if str(REPO) not in sys.path:
            sys.path.append(str(REPO))
        return importlib.import_module("kernels.message_passing")


def _import_reference():
    try:
        return importlib.import_module("fastsim.ops.reference")
    except ImportError:
        spec = importlib.util.spec_from_file_location("_fastsim_reference", REPO / "fastsim/ops/reference.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


mp = _import_kernels()
gn_edge = importlib.import_module(mp.__name__.rsplit(".", 1)[0] + ".gn_edge")
gn_edge_backward = importlib.import_module(mp.__name__.rsplit(".", 1)[0] + ".gn_edge_backward")
ref = _import_reference()
ops = torch.ops.fastsim

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
if not INTERPRETED and not torch.cuda.is_available():
    pytest.skip("Triton kernels need a GPU or TRITON_INTERPRET=1", allow_module_level=True)
DEVICE = "cpu" if INTERPRETED else "cuda"
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-5, atol=1e-5)}
GN_TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}


@dataclass
class Graph:
    """The graph tensors of docs/ops.md, built from an edge list the plain way."""

    num_nodes: int
    indptr: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    rev_indptr: torch.Tensor
    rev_dst: torch.Tensor
    rev_perm: torch.Tensor

    @property
    def five(self) -> tuple[torch.Tensor, ...]:
        return self.indptr, self.src, self.rev_indptr, self.rev_dst, self.rev_perm


def make_graph(num_nodes: int, src: list[int], dst: list[int]) -> Graph:
    src_t, dst_t = torch.tensor(src, dtype=torch.long), torch.tensor(dst, dtype=torch.long)
    perm = torch.sort(dst_t, stable=True).indices  # CSR order: by destination, callers' order within
    src_t, dst_t = src_t[perm], dst_t[perm]
    rev_perm = torch.sort(src_t, stable=True).indices  # transposed CSR: by source, CSR order within

    def indptr(ids):
        return torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(ids, minlength=num_nodes).cumsum(0)])

    tensors = (indptr(dst_t), src_t, dst_t, indptr(src_t), dst_t[rev_perm], rev_perm)
    return Graph(num_nodes, *(t.to(DEVICE) for t in tensors))


def random_graph(seed: int) -> Graph:
    """12 nodes, 40 edges: self-loops and multi-edges included; node 11 is isolated."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, 11, (36,), generator=g).tolist() + [3, 1, 1, 5]
    dst = torch.randint(0, 11, (36,), generator=g).tolist() + [3, 2, 2, 5]
    return make_graph(12, src, dst)


GRAPHS = {
    "random": lambda: random_graph(0),
    "hub": lambda: make_graph(3, [0] * 5 + [1] * 20 + [2] * 15, [0] * 38 + [1, 2]),  # a row of 38 edges
    "tiny": lambda: make_graph(5, [0, 1, 1, 4, 2, 2, 0], [1, 1, 1, 0, 2, 4, 4]),
    "no_edges": lambda: make_graph(4, [], []),
    "empty": lambda: make_graph(0, [], []),
}
DTYPES = [torch.float64, torch.float32]
REDUCES = ["sum", "mean", "min", "max"]


def values(shape, dtype, ties: bool, seed: int = 0) -> torch.Tensor:
    """Random values; with `ties`, small integers so that min/max ties are common."""
    g = torch.Generator().manual_seed(seed)
    if ties:
        return torch.randint(-2, 3, shape, generator=g).to(dtype).to(DEVICE)
    return torch.randn(shape, generator=g, dtype=dtype).to(DEVICE)


def assert_reduce_equal(out, arg, expected_out, expected_arg, dtype):
    torch.testing.assert_close(out, expected_out, equal_nan=True, **TOL[dtype])
    assert arg.dtype == torch.long
    assert torch.equal(arg, expected_arg)


@pytest.mark.parametrize("graph", list(GRAPHS))
@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trailing", [(), (1,), (2, 4)])
def test_segment_reduce(graph, reduce, dtype, trailing):
    g = GRAPHS[graph]()
    src = values((g.src.numel(), *trailing), dtype, ties=reduce in ("min", "max"))
    out, arg = ops.segment_reduce_triton(src, g.indptr, reduce)
    expected_out, expected_arg = ref.segment_reduce(src, g.indptr, reduce)
    assert out.shape == (g.num_nodes, *trailing)
    assert_reduce_equal(out, arg, expected_out, expected_arg, dtype)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # numpy, in the interpreter
@pytest.mark.parametrize("reduce", ["min", "max", "sum", "mean"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_segment_reduce_nan_and_inf(reduce, dtype):
    g = make_graph(5, [0] * 12, [0] * 4 + [1] * 4 + [3] * 4)  # rows of 4, 4, 0, 4 and 0 edges
    nan, inf = float("nan"), float("inf")
    src = torch.tensor(
        [[1, 3, -inf], [nan, 3, -inf], [2, nan, -inf], [nan, 0, -inf]]
        + [[inf, 1, 5], [2, inf, 5], [nan, -inf, 5], [inf, -inf, 5]]
        + [[0, 0, 7], [-1, 0, 7], [-1, 0, nan], [0, nan, nan]],
        dtype=dtype,
        device=DEVICE,
    )
    out, arg = ops.segment_reduce_triton(src, g.indptr, reduce)
    expected_out, expected_arg = ref.segment_reduce(src, g.indptr, reduce)
    assert_reduce_equal(out, arg, expected_out, expected_arg, dtype)
    assert torch.isnan(out[0, 0]) and torch.isnan(out[1, 0]) and not torch.isnan(out[2]).any()
    if reduce in ("min", "max"):
        assert arg[0, 0] == 1 and arg[1, 0] == 6 and arg[3, 2] == 10 and (arg[2] == -1).all()


@pytest.mark.parametrize("graph", ["random", "hub", "no_edges", "empty"])
@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("features", [1, 3, 8])
def test_spmm(graph, reduce, dtype, weighted, features):
    g = GRAPHS[graph]()
    ties = reduce in ("min", "max")
    x = values((g.num_nodes, features), dtype, ties, seed=1)
    weight = values((g.src.numel(),), dtype, ties, seed=2) if weighted else None
    out, arg = ops.spmm_triton(*g.five, weight, x, reduce)
    expected_out, expected_arg = ref.spmm(g.indptr, g.src, weight, x, reduce)
    assert_reduce_equal(out, arg, expected_out, expected_arg, dtype)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_spmm_nan_propagates():
    g = make_graph(3, [0, 1, 2, 1], [0, 0, 0, 2])
    x = torch.tensor([[1.0, 2.0], [float("nan"), 5.0], [3.0, float("nan")]], dtype=torch.float64, device=DEVICE)
    for reduce in REDUCES:
        out, arg = ops.spmm_triton(*g.five, None, x, reduce)
        expected_out, expected_arg = ref.spmm(g.indptr, g.src, None, x, reduce)
        assert_reduce_equal(out, arg, expected_out, expected_arg, torch.float64)
        assert torch.isnan(out[0]).all() and torch.isnan(out[2, 0]) and (out[1] == 0).all()


@pytest.mark.parametrize("graph", list(GRAPHS))
@pytest.mark.parametrize("op", ["dot", "add", "mul"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("features", [1, 3, 8, 70])
def test_sddmm(graph, op, dtype, features):
    g = GRAPHS[graph]()
    u = values((g.num_nodes, features), dtype, ties=False, seed=3)
    v = values((g.num_nodes, features), dtype, ties=False, seed=4)
    out = ops.sddmm_triton(*g.five, u, v, op)
    torch.testing.assert_close(out, ref.sddmm(g.indptr, g.src, u, v, op), **TOL[dtype])


def gn_inputs(
    g: Graph, dtype, hidden: int, out_dim: int, edge_term: bool | str, graph_term: bool, seed: int = 5
) -> dict:
    """Random arguments of gn_edge_aggregate (after the graph five), scaled so both GELUs see both signs.
    `edge_term="features"` gives (E, 3) edge features and their projection `w_edge`."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (scale * torch.randn(shape, generator=gen, dtype=dtype)).to(DEVICE)

    num_graphs = 3
    batch = torch.randint(0, num_graphs, (g.num_nodes,), generator=gen).to(DEVICE) if graph_term else None
    return dict(
        p_src=randn(g.num_nodes, hidden),
        p_dst=randn(g.num_nodes, hidden),
        edge_term=randn(g.src.numel(), 3 if edge_term == "features" else hidden) if edge_term else None,
        w_edge=randn(hidden, 3, scale=3**-0.5) if edge_term == "features" else None,
        graph_term=randn(num_graphs, hidden) if graph_term else None,
        batch=batch,
        w2=randn(out_dim, hidden, scale=hidden**-0.5),
        b2=randn(out_dim, scale=0.5),
    )


def gn_args(kw):
    """The forward op's (and the reference's) arguments after the graph."""
    return [kw[k] for k in ("p_src", "p_dst", "edge_term", "w_edge", "graph_term", "batch", "w2", "b2")]


@pytest.mark.parametrize("graph", list(GRAPHS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("terms", [(False, False), (True, True), (True, False), (False, True), ("features", True)])
@pytest.mark.parametrize("return_edges", [False, True])
def test_gn_edge_aggregate(graph, dtype, terms, return_edges):
    g = GRAPHS[graph]()
    kw = gn_inputs(g, dtype, hidden=6, out_dim=5, edge_term=terms[0], graph_term=terms[1])
    node_out, edge_out = ops.gn_edge_aggregate_triton(*g.five, *gn_args(kw), return_edges)
    expected_node, expected_edge = ref.gn_edge_aggregate(g.indptr, g.src, *gn_args(kw), return_edges)
    assert edge_out.shape == ((g.src.numel() if return_edges else 0), 5)
    torch.testing.assert_close(node_out, expected_node, **GN_TOL[dtype])
    torch.testing.assert_close(edge_out, expected_edge, **GN_TOL[dtype])


def check_gn_backward(g, dtype, hidden, out_dim, edge_term, graph_term, grad_edge, need_edge_grad):
    """All six gradients of the kernel's backward against torch.autograd through the reference."""
    kw = gn_inputs(g, dtype, hidden, out_dim, edge_term, graph_term)
    gen = torch.Generator().manual_seed(7)
    grad_node = torch.randn(g.num_nodes, out_dim, generator=gen, dtype=dtype).to(DEVICE)
    grad_e = torch.randn(g.src.numel(), out_dim, generator=gen, dtype=dtype).to(DEVICE) if grad_edge else None
    features = edge_term == "features"
    names = (
        ["p_src", "p_dst", "edge_term", "w_edge", "w2", "b2"]
        if features
        else ["p_src", "p_dst", "edge_term", "w2", "b2"]
    )
    leaves = {k: kw[k].clone().requires_grad_() for k in names if k != "edge_term"}
    # The reference always gets an edge term (zeros where the kernel gets None: the same gradient).
    zeros = torch.zeros(g.src.numel(), hidden, dtype=dtype, device=DEVICE)
    leaves["edge_term"] = (kw["edge_term"] if edge_term else zeros).clone().requires_grad_()
    node, edge = ref.gn_edge_aggregate(g.indptr, g.src, *gn_args({**kw, **leaves}), return_edges=True)
    loss = (node * grad_node).sum() + ((edge * grad_e).sum() if grad_edge else 0.0)
    expected = torch.autograd.grad(loss, [leaves[n] for n in names], allow_unused=True)
    expected = [torch.zeros_like(leaves[n]) if e is None else e for n, e in zip(names, expected, strict=True)]
    got = list(ops.gn_edge_aggregate_backward_triton(*g.five, *gn_args(kw), grad_node, grad_e, need_edge_grad))
    if not features:
        assert got.pop(3).shape == (hidden, 0)  # no w_edge, no gradient of it
    if not need_edge_grad:  # neither the edge term's gradient nor w_edge's is formed
        assert got[2].shape == (0, leaves["edge_term"].shape[1])
        keep = [k for k, n in enumerate(names) if n not in ("edge_term", "w_edge")]
        got, expected, names = ([seq[k] for k in keep] for seq in (got, expected, names))
    for name, a, b in zip(names, got, expected, strict=True):
        torch.testing.assert_close(a, b, **GN_TOL[dtype], msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("graph", ["random", "hub", "no_edges", "empty"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("terms", [(False, False), (True, True), ("features", True)])
@pytest.mark.parametrize("grad_edge", [False, True])
@pytest.mark.parametrize("need_edge_grad", [False, True])
def test_gn_edge_aggregate_backward(graph, dtype, terms, grad_edge, need_edge_grad):
    check_gn_backward(GRAPHS[graph](), dtype, 6, 5, *terms, grad_edge, need_edge_grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("need_edge_grad", [False, True])
def test_gn_edge_small_tiles(monkeypatch, dtype, need_edge_grad):
    """Several row blocks per program (grid-stride), hidden and output chunks, tiles smaller than a row.

    16 is the smallest tile a GPU's tl.dot takes (K >= 16; the one-hot products contract over rows and edges)."""
    small = gn_edge._Tiles(block_r=16, block_e=16, block_k=16, block_o=16, num_warps=4)
    for module in (gn_edge, gn_edge_backward):
        monkeypatch.setattr(module, "_tiles", lambda out_dim, dtype, backward: small)
    monkeypatch.setattr(gn_edge_backward, "_CPU_PROGRAMS", 2)
    gen = torch.Generator().manual_seed(1)
    src = torch.randint(0, 40, (120,), generator=gen).tolist()
    dst = [0] * 38 + torch.randint(0, 40, (82,), generator=gen).tolist()  # row 0 spans three edge tiles
    g = make_graph(40, src, dst)
    kw = gn_inputs(g, dtype, hidden=20, out_dim=33, edge_term=True, graph_term=True)
    node_out, edge_out = ops.gn_edge_aggregate_triton(*g.five, *gn_args(kw), True)
    expected_node, expected_edge = ref.gn_edge_aggregate(g.indptr, g.src, *gn_args(kw), True)
    torch.testing.assert_close(node_out, expected_node, **GN_TOL[dtype])
    torch.testing.assert_close(edge_out, expected_edge, **GN_TOL[dtype])
    check_gn_backward(g, dtype, 20, 33, True, True, True, need_edge_grad)


def test_gn_edge_wide_layers():
    """Default tiles, H and O not powers of two: several hidden chunks and (float64) output blocks."""
    g = random_graph(2)
    kw = gn_inputs(g, torch.float64, hidden=70, out_dim=150, edge_term=True, graph_term=False)
    node_out, _ = ops.gn_edge_aggregate_triton(*g.five, *gn_args(kw), False)
    expected_node, _ = ref.gn_edge_aggregate(g.indptr, g.src, *gn_args(kw), False)
    torch.testing.assert_close(node_out, expected_node, **GN_TOL[torch.float64])
    check_gn_backward(g, torch.float64, 70, 150, True, False, True, False)


def test_dtype_and_argument_errors():
    g = GRAPHS["tiny"]()
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.segment_reduce_triton(torch.ones(7, 2, dtype=torch.float16, device=DEVICE), g.indptr, "sum")
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.spmm_triton(*g.five, None, torch.ones(5, 2, dtype=torch.int64, device=DEVICE), "sum")
    with pytest.raises(ValueError, match="reduce"):
        ops.segment_reduce_triton(torch.ones(7, 2, device=DEVICE), g.indptr, "prod")
    with pytest.raises(ValueError, match="op"):
        ops.sddmm_triton(*g.five, torch.ones(5, 2, device=DEVICE), torch.ones(5, 2, device=DEVICE), "sub")
    kw = gn_inputs(g, torch.float32, 4, 3, edge_term=False, graph_term=False)
    kw["w2"] = kw["w2"].double()
    with pytest.raises(TypeError, match="w2"):
        ops.gn_edge_aggregate_triton(*g.five, *gn_args(kw), False)
    kw = gn_inputs(g, torch.float32, 4, 513, edge_term=False, graph_term=False)
    grad_node = torch.ones(g.num_nodes, 513, device=DEVICE)
    with pytest.raises(ValueError, match="at most 512"):
        ops.gn_edge_aggregate_backward_triton(*g.five, *gn_args(kw), grad_node, None, False)


def test_schemas_match_docs():
    """Argument lists and returns as in docs/ops.md (the `_triton` ops mirror the C++ schemas)."""
    graph = "Tensor indptr, Tensor src, Tensor rev_indptr, Tensor rev_dst, Tensor rev_perm"
    rest = "Tensor? graph_term, Tensor? batch, Tensor w2, Tensor b2"
    gn = f"Tensor p_src, Tensor p_dst, Tensor? edge_term, Tensor? w_edge, {rest}"
    expected = {
        "segment_reduce": "(Tensor src, Tensor indptr, str reduce) -> (Tensor, Tensor)",
        "spmm": f"({graph}, Tensor? weight, Tensor x, str reduce) -> (Tensor, Tensor)",
        "sddmm": f"({graph}, Tensor u, Tensor v, str op) -> Tensor",
        "gn_edge_aggregate": f"({graph}, {gn}, bool return_edges) -> (Tensor, Tensor)",
        "gn_edge_aggregate_backward": f"({graph}, {gn}, Tensor grad_node, Tensor? grad_edge, "
        "bool need_edge_grad) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)",
    }
    for name, schema in expected.items():
        assert str(getattr(ops, name + "_triton").default._schema) == f"fastsim::{name}_triton{schema}"


def test_fake_tensor_shapes():
    """triton_op derives the fake kernels by tracing the launchers: they must run on fake tensors."""
    g = random_graph(3)
    kw = gn_inputs(g, torch.float32, 6, 5, edge_term=True, graph_term=True)
    grad_node = torch.ones(g.num_nodes, 5, device=DEVICE)
    x = torch.ones(g.num_nodes, 3, device=DEVICE)
    cases = [
        (ops.segment_reduce_triton, (x[g.src], g.indptr, "max")),
        (ops.spmm_triton, (*g.five, None, x, "mean")),
        (ops.sddmm_triton, (*g.five, x, x, "add")),
        (ops.gn_edge_aggregate_triton, (*g.five, *gn_args(kw), True)),
        (ops.gn_edge_aggregate_backward_triton, (*g.five, *gn_args(kw), grad_node, None, True)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor"))
