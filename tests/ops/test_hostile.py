"""Hostile input gets a Python exception that names the problem: never a crash, hang or silent wrong answer."""

import pytest
import torch

import fastsim
from tests.conftest import random_graph

GRAPH = random_graph(6, 12, weighted=True)
X = torch.randn(6, 3)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: fastsim.ops.spmm("graph", X), TypeError, "graph must be a fastsim.Graph"),
        (lambda: fastsim.ops.spmm(GRAPH, X.long()), TypeError, "x must be a floating tensor"),
        (lambda: fastsim.ops.spmm(GRAPH, X[:5]), ValueError, r"x must have shape \(6, \*\)"),
        (lambda: fastsim.ops.spmm(GRAPH, X[None]), ValueError, "x must have shape"),
        (lambda: fastsim.ops.spmm(GRAPH, [[1.0]]), TypeError, "x must be a torch.Tensor"),
        (lambda: fastsim.ops.spmm(GRAPH, X, "prod"), ValueError, "reduce must be one of"),
        (
            lambda: fastsim.ops.spmm(GRAPH, X, weight=torch.ones(11)),
            ValueError,
            r"weight must have shape \(12,\)",
        ),
        (
            lambda: fastsim.ops.spmm(GRAPH, X, weight=torch.ones(12).double()),
            TypeError,
            "weight must have the dtype",
        ),
        (lambda: fastsim.ops.sddmm(GRAPH, X, X[:, :2]), ValueError, r"v must have shape \(6, 3\)"),
        (lambda: fastsim.ops.sddmm(GRAPH, X, X, "sub"), ValueError, "op must be one of"),
        (lambda: fastsim.ops.sddmm(GRAPH, X, X.double()), TypeError, "u and v must share a dtype"),
        (lambda: fastsim.ops.segment_reduce(X, torch.tensor([0, 2, 6]).int()), ValueError, "indptr must be"),
        (
            lambda: fastsim.ops.segment_reduce(X, torch.tensor([1, 2, 6])),
            ValueError,
            r"indptr\[0\] must be 0",
        ),
        (lambda: fastsim.ops.segment_reduce(X, torch.tensor([0, 4, 2, 6])), ValueError, "non-decreasing"),
        (
            lambda: fastsim.ops.segment_reduce(X, torch.tensor([0, 2, 5])),
            ValueError,
            r"indptr\[-1\] must equal",
        ),
        (
            lambda: fastsim.ops.segment_reduce(X, torch.tensor([0, 2, 9])),
            ValueError,
            r"indptr\[-1\] must equal",
        ),
        (lambda: fastsim.ops.segment_reduce(X, torch.tensor([], dtype=torch.long)), ValueError, "non-empty"),
        (
            lambda: fastsim.ops.segment_reduce(torch.tensor(1.0), torch.tensor([0])),
            ValueError,
            "at least one dim",
        ),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def gn_args(hidden=4, out=3, **overrides):
    args = {
        "p_src": torch.randn(6, hidden),
        "p_dst": torch.randn(6, hidden),
        "w2": torch.randn(out, hidden),
        "b2": torch.randn(out),
    }
    args.update(overrides)
    return args


FEATURES = {"edge_term": torch.randn(12, 2)}  # (E, F) edge features, projected by w_edge


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        ({"p_dst": torch.randn(6, 5)}, ValueError, r"p_dst must have shape \(6, 4\)"),
        ({"w2": torch.randn(3, 5)}, ValueError, r"w2 must have shape \(\*, 4\)"),
        ({"b2": torch.randn(4)}, ValueError, r"b2 must have shape \(3,\)"),
        ({"edge_term": torch.randn(11, 4)}, ValueError, r"edge_term must have shape \(12, 4\)"),
        ({"w_edge": torch.randn(4, 2)}, ValueError, "w_edge needs edge_term"),
        (FEATURES | {"w_edge": torch.randn(5, 2)}, ValueError, r"w_edge must have shape \(4, \*\)"),
        ({"edge_term": torch.randn(12, 3), "w_edge": torch.randn(4, 2)}, ValueError, r"edge_term must .* \(12, 2\)"),
        (FEATURES | {"w_edge": torch.randn(4, 2).double()}, TypeError, "w_edge must have the dtype"),
        ({"graph_term": torch.randn(2, 4)}, ValueError, r"graph_term must have shape \(1, 4\)"),
        ({"p_dst": torch.randn(6, 4).double()}, TypeError, "p_dst must have the dtype of p_src"),
        (
            {
                "p_src": torch.randn(6, 4).half(),
                "p_dst": torch.randn(6, 4).half(),
                "w2": torch.randn(3, 4).half(),
                "b2": torch.randn(3).half(),
            },
            TypeError,
            "supports float32 and float64",
        ),
    ],
)
def test_gn_bad_arguments_are_named(overrides, error, match):
    with pytest.raises(error, match=match):
        fastsim.ops.gn_edge_aggregate(GRAPH, **gn_args(**overrides))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_mismatch_is_named():
    with pytest.raises(ValueError, match="x is on cuda"):
        fastsim.ops.spmm(GRAPH, X.cuda())


def test_nan_inputs_propagate_without_crashing():
    x = torch.full((6, 3), float("nan"))
    assert torch.isnan(fastsim.ops.spmm(GRAPH, x)[GRAPH.in_degree() > 0]).all()
    node = fastsim.ops.gn_edge_aggregate(GRAPH, **gn_args(p_src=torch.full((6, 4), float("nan"))))
    assert torch.isnan(node[GRAPH.in_degree() > 0]).all()


def test_direct_op_calls_are_checked_in_cpp():
    """Calls that bypass the wrappers still fail with an exception, not a crash."""
    with pytest.raises(RuntimeError, match="reduce must be one of"):
        torch.ops.fastsim.segment_reduce(X, torch.tensor([0, 6]), "prod")
    with pytest.raises(RuntimeError, match="indptr must be int64"):
        torch.ops.fastsim.segment_reduce(X, torch.tensor([0, 6], dtype=torch.int32), "sum")


def _with(t: torch.Tensor, position: int, value: int) -> torch.Tensor:
    out = t.clone()
    out[position] = value
    return out


def _graph_five(**overrides):
    five = {k: getattr(GRAPH, k) for k in ("indptr", "src", "rev_indptr", "rev_dst", "rev_perm")}
    return [overrides.get(k, v) for k, v in five.items()]


BAD_INDICES = {  # a bad entry of each index tensor and the message naming it
    "src": ({"src": _with(GRAPH.src, 3, 6)}, r"src must hold indices in \[0, 6\); got values from 0 to 6"),
    "negative src": ({"src": _with(GRAPH.src, 3, -1)}, r"src must hold indices in \[0, 6\)"),
    "indptr": ({"indptr": _with(GRAPH.indptr, 2, 99)}, "indptr must be non-decreasing"),
    "indptr end": ({"indptr": _with(GRAPH.indptr, 6, 11)}, "indptr must run from 0 to 12"),
    "rev_dst": ({"rev_dst": _with(GRAPH.rev_dst, 0, 10**9)}, r"rev_dst must hold indices in \[0, 6\)"),
    "rev_perm": ({"rev_perm": _with(GRAPH.rev_perm, 0, 12)}, r"rev_perm must hold indices in \[0, 12\)"),
    "rev_indptr": ({"rev_indptr": _with(GRAPH.rev_indptr, 1, -3)}, "rev_indptr must be non-decreasing"),
}


@pytest.mark.parametrize("case", BAD_INDICES)
def test_direct_calls_with_bad_indices_raise_instead_of_reading_out_of_bounds(case):
    """The kernels index memory with the graph's tensors: out-of-range or unsorted ones fail in C++ before."""
    overrides, match = BAD_INDICES[case]
    graph = _graph_five(**overrides)
    p, w2, b2 = torch.randn(6, 4), torch.randn(3, 4), torch.randn(3)
    gn = (p, p, None, None, None, None, w2, b2)
    calls = [lambda: torch.ops.fastsim.gn_edge_aggregate(*graph, *gn, True)]
    calls.append(lambda: torch.ops.fastsim.gn_edge_aggregate_backward(*graph, *gn, torch.ones(6, 3), None, False))
    if case in ("src", "negative src", "indptr", "indptr end"):  # what spmm and sddmm read
        calls.append(lambda: torch.ops.fastsim.spmm(*graph, None, X, "sum"))
        calls.append(lambda: torch.ops.fastsim.sddmm(*graph, X, X, "dot"))
    for call in calls:
        with pytest.raises(RuntimeError, match=match):
            call()


def test_direct_segment_reduce_with_bad_offsets_raises():
    with pytest.raises(RuntimeError, match="indptr must be non-decreasing"):
        torch.ops.fastsim.segment_reduce(X, torch.tensor([0, 5, 1, 6]), "sum")
    with pytest.raises(RuntimeError, match="indptr must run from 0 to 6; got 0 to 9"):
        torch.ops.fastsim.segment_reduce(X, torch.tensor([0, 2, 9]), "max")


def test_direct_gn_call_with_a_batch_index_past_the_graph_terms_raises():
    p, w2, b2 = torch.randn(6, 4), torch.randn(3, 4), torch.randn(3)
    batch = _with(torch.zeros(6, dtype=torch.long), 5, 2)
    with pytest.raises(RuntimeError, match=r"batch must hold indices in \[0, 2\)"):
        torch.ops.fastsim.gn_edge_aggregate(*_graph_five(), p, p, None, None, torch.randn(2, 4), batch, w2, b2, False)


@pytest.mark.parametrize(
    "t_eval, match",
    [([0.0, float("nan"), 1.0], "t_eval must be finite"), ([0.0, 2.0, 1.0], "t_eval must be strictly increasing")],
)
def test_direct_ensemble_calls_check_their_output_times(t_eval, match):
    """A NaN output time is never passed: the fused solvers reported success with unwritten outputs."""
    t = torch.tensor(t_eval, dtype=torch.float64)
    y0, diffusivity = torch.rand(6, dtype=torch.float64), torch.rand(12, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=match):
        torch.ops.fastsim.ensemble_dopri5(
            torch.tensor([0, 6]), GRAPH.indptr, GRAPH.src, None, diffusivity, None, y0, t, "heat", 1e-6, 1e-9, 0.0, 100
        )
    rober = (
        torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64),
        torch.tensor([[0.04, 3e7, 1e4]], dtype=torch.float64),
    )
    with pytest.raises(RuntimeError, match=match):
        torch.ops.fastsim.ensemble_rodas5(*rober, t, "rober", 1e-6, 1e-9, 0.0, 100)
