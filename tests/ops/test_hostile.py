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
