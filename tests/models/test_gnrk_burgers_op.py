"""The compiled Burgers approximator (`torch.ops.fastsim.gnrk_burgers_f`, run by `BurgersApproximator` without
gradients on the CPU) against its tensor-op forward, which runs whenever gradients are recorded."""

import pytest
import torch

from fastsim.dynamics.burgers2d import Burgers2D
from fastsim.graph import Graph
from fastsim.graphs.grid import periodic_grid
from fastsim.models import GNRK


def setup(nx, ny, dtype, batch=1, nu_copies=1, seed=0):
    torch.manual_seed(seed)
    grids = [periodic_grid(nx + k, ny, spacing_delta=0.1, generator=seed + k) for k in range(batch)]
    graph = Graph.batch_graphs([g.graph() for g in grids]) if batch > 1 else grids[0].graph()
    x = torch.cat([Burgers2D.initial_state(g.graph(), 4, positions=g.positions(), lengths=g.lengths) for g in grids])
    model = GNRK.for_system("burgers", nu_copies=nu_copies).to(dtype)
    nu = torch.linspace(0.005, 0.02, batch, dtype=dtype)
    x = x.to(dtype)
    with torch.no_grad():
        context = model._context(graph, x, {"nu": nu})
    return model, graph, x, nu, context


def both(model, graph, x, context):
    with torch.no_grad():
        fused = model.approximator(graph, x, context)
    with torch.enable_grad():
        plain = model.approximator(graph, x, context)
    return fused, plain.detach()


@pytest.mark.parametrize("shape, batch, nu_copies", [((12, 10), 1, 1), ((7, 9), 3, 2), ((3, 3), 1, 1)])
def test_compiled_approximator_equals_the_tensor_ops_in_float64(shape, batch, nu_copies):
    model, graph, x, _, context = setup(*shape, torch.float64, batch, nu_copies)
    fused, plain = both(model, graph, x, context)
    torch.testing.assert_close(fused, plain, rtol=1e-12, atol=1e-12)


def test_compiled_approximator_in_float32_on_two_threads():
    model, graph, x, _, context = setup(40, 37, torch.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two, plain = both(model, graph, x, context)
        torch.set_num_threads(1)
        one, _ = both(model, graph, x, context)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(one, plain, rtol=1e-5, atol=1e-6)
    assert torch.equal(one, two)  # every node is computed by one tile, in the same order


def test_rollout_uses_it_and_matches_the_tensor_op_rollout():
    model, graph, x, nu, _ = setup(10, 8, torch.float64)
    dts = torch.full((1, 3), 1e-3, dtype=torch.float64)
    fused = model.rollout(x, dts, graph, nu=nu)
    states = [x]
    with torch.enable_grad():  # the tensor-op path
        for _ in range(3):
            states.append(model.step(states[-1], 1e-3, graph, nu=nu).detach())
    torch.testing.assert_close(fused, torch.stack(states), rtol=1e-12, atol=1e-12)


def op_args(model, graph, x, context):
    terms = [context[k] for k in ("e1", "e2", "v1", "v2", "ext")]
    return (x, graph.indptr, graph.src, context["rev_perm"], *terms, model.approximator.fused_weights())


def test_opcheck_and_compile():
    model, graph, x, _, context = setup(5, 4, torch.float64)
    args = op_args(model, graph, x, context)
    op = torch.ops.fastsim.gnrk_burgers_f.default
    torch.library.opcheck(op, args)
    compiled = torch.compile(op, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(*args), op(*args))


def test_malformed_arguments_raise():
    model, graph, x, _, context = setup(5, 4, torch.float64)
    x, indptr, src, rev_perm, e1, e2, v1, v2, ext, weights = op_args(model, graph, x, context)
    op = torch.ops.fastsim.gnrk_burgers_f.default
    with pytest.raises(RuntimeError, match="weights must hold the 24"):
        op(x, indptr, src, rev_perm, e1, e2, v1, v2, ext, weights[:-1])
    with pytest.raises(RuntimeError, match="weights must have the dtype of x"):
        op(x, indptr, src, rev_perm, e1, e2, v1, v2, ext, [w.float() for w in weights])
    with pytest.raises(RuntimeError, match="x must be"):
        op(x[:-1], indptr, src, rev_perm, e1, e2, v1, v2, ext, weights)
    with pytest.raises(RuntimeError, match="the terms must be"):
        op(x, indptr, src, rev_perm, e1, e2[:-1], v1, v2, ext, weights)
    with pytest.raises(RuntimeError, match="two incoming and two outgoing"):
        op(x, indptr, src, rev_perm[:-1], e1, e2, v1, v2, ext, weights)
    bad = rev_perm.clone()
    bad[3] = rev_perm.numel()
    with pytest.raises(RuntimeError, match=r"rev_perm must hold indices in \[0, 40\)"):
        op(x, indptr, src, bad, e1, e2, v1, v2, ext, weights)
    with pytest.raises(RuntimeError, match=r"src must hold indices in \[0, 20\)"):
        op(x, indptr, -src, rev_perm, e1, e2, v1, v2, ext, weights)
    unsorted = indptr.clone()
    unsorted[1] = 7
    with pytest.raises(RuntimeError, match="indptr must be non-decreasing"):
        op(x, unsorted, src, rev_perm, e1, e2, v1, v2, ext, weights)
    with pytest.raises(RuntimeError, match="Burgers approximator's shapes"):
        op(x, indptr, src, rev_perm, e1, e2, v1, v2, ext, [*weights[:22], weights[22][:, :1].contiguous(), weights[23]])
