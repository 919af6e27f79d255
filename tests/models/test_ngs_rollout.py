"""The compiled NGS rollout op (`torch.ops.fastsim.ngs_rollout`, run by `RolloutPlan.run`) against the plan's
step written with tensor ops, which `tests/models/test_ngs.py` checks against the generic step and the authors'
formulation."""

import pytest
import torch

from fastsim.graph import Graph
from fastsim.graphs import erdos_renyi
from fastsim.models import NGS
from fastsim.models.ngs_rollout import RolloutPlan

SIZES = [(40,), (20, 1, 35), (9, 0, 6)]  # one graph; batches with a one-node graph and an edgeless graph


def make_plan(system, sizes, dtype=torch.float64, steps=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    no_edges = torch.zeros(2, 0, dtype=torch.long)
    graphs = [erdos_renyi(n, 3.0, generator=gen) if n > 1 else Graph.from_edge_index(no_edges, 1) for n in sizes if n]
    if 0 in sizes:  # the edgeless graph
        graphs.append(Graph.from_edge_index(no_edges, 5))
    graph = Graph.batch_graphs(graphs)
    torch.manual_seed(seed)
    model = NGS.for_system(system, emb_dim=4).to(dtype).eval()
    n, e, b = graph.num_nodes, graph.num_edges, graph.num_graphs
    if system == "heat":
        state, coefficients = torch.rand(n, generator=gen, dtype=dtype), {"edge": torch.rand(e, dtype=dtype)}
    else:
        state = torch.randn(n, 3, generator=gen, dtype=dtype)
        coefficients = {"edge": torch.rand(e, dtype=dtype), "glob": torch.rand(b, 3, dtype=dtype)}
    dts = 0.01 + 0.08 * torch.rand(steps, b, generator=gen, dtype=dtype)
    with torch.inference_mode():
        plan = RolloutPlan(model, graph, model.encode_coefficients(graph, **coefficients), dts)
    return plan, graph, state


def step_loop(plan, graph, state):
    states, x = [], state
    with torch.inference_mode(), plan.kernels():
        for s in range(len(plan.glob0)):
            x = plan.step(s, graph, x)
            states.append(x)
    return torch.stack(states)


@pytest.mark.parametrize("system", ["heat", "rossler"])
@pytest.mark.parametrize("sizes", SIZES)
def test_compiled_rollout_equals_the_step_loop_in_float64(system, sizes):
    plan, graph, state = make_plan(system, sizes)
    assert plan.fused
    with torch.inference_mode():
        fused = plan.run(graph, state)
    torch.testing.assert_close(fused, step_loop(plan, graph, state), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("system", ["heat", "rossler"])
def test_compiled_rollout_in_float32_and_on_two_threads(system):
    plan, graph, state = make_plan(system, (60, 45), dtype=torch.float32, steps=6)
    threads = torch.get_num_threads()
    with torch.inference_mode():
        try:
            torch.set_num_threads(1)
            one = plan.run(graph, state)
            torch.set_num_threads(2)
            two = plan.run(graph, state)
        finally:
            torch.set_num_threads(threads)
    torch.testing.assert_close(one, step_loop(plan, graph, state), rtol=1e-5, atol=1e-5)
    assert torch.equal(one, two)  # every row is computed by one chunk, in the same order


def test_model_rollout_uses_the_compiled_op_only_where_it_applies():
    plan, graph, state = make_plan("heat", (30,))
    assert plan.fused
    with torch.inference_mode():
        kuramoto = NGS.for_system("kuramoto", emb_dim=4).double()
        coefficients = kuramoto.encode_coefficients(
            graph, node=torch.randn(30, dtype=torch.float64), glob=torch.rand(1, dtype=torch.float64)
        )
        assert not RolloutPlan(kuramoto, graph, coefficients, torch.full((2, 1), 0.1, dtype=torch.float64)).fused


def test_opcheck_and_compile():
    plan, graph, state = make_plan("rossler", (12, 7), steps=2)
    args = plan.op_args(graph, state)
    torch.library.opcheck(torch.ops.fastsim.ngs_rollout.default, args)
    compiled = torch.compile(torch.ops.fastsim.ngs_rollout.default, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(*args), torch.ops.fastsim.ngs_rollout.default(*args))


def test_malformed_arguments_raise():
    plan, graph, state = make_plan("heat", (12,), steps=2)
    x, indptr, src, ptr, edge, globals_, weights = plan.op_args(graph, state)
    op = torch.ops.fastsim.ngs_rollout.default
    with pytest.raises(RuntimeError, match="weights must hold"):
        op(x, indptr, src, ptr, edge, globals_, weights[:-1])
    with pytest.raises(RuntimeError, match="weights must have the dtype of state"):
        op(x, indptr, src, ptr, edge, globals_, [w.float() for w in weights])
    with pytest.raises(RuntimeError, match="an edge MLP's first Linear"):
        op(x, indptr, src, ptr, edge, globals_[..., :-1].contiguous(), weights)
    with pytest.raises(RuntimeError, match="a node update's second Linear"):
        op(x, indptr, src, ptr, edge, globals_, weights[:10] + [weights[10][:-1], weights[11][:-1]] + weights[12:])
    with pytest.raises(RuntimeError, match="edge_features must be"):
        op(x, indptr, src, ptr, edge[:-1], globals_, weights)
    with pytest.raises(RuntimeError, match="globals must be"):
        op(x, indptr, src, ptr, edge, globals_[:, :0], weights)
    with pytest.raises(RuntimeError, match="state must be"):
        op(x[:-1], indptr, src, ptr, edge, globals_, weights)


def test_weights_are_read_in_place():
    """The op reads strided weights (transposed views, column blocks) through their strides: the same result
    from weights stored transposed (non-contiguous views of the same values)."""
    plan, graph, state = make_plan("rossler", (15, 9), steps=3)
    x, indptr, src, ptr, edge, globals_, weights = plan.op_args(graph, state)
    strided = [w.t().contiguous().t() if w.dim() == 2 else torch.stack([w, w], 1)[:, 0] for w in weights]
    assert not any(w.is_contiguous() for w in strided if w.dim() == 2 and min(w.shape) > 1)
    op = torch.ops.fastsim.ngs_rollout.default
    with torch.inference_mode():
        torch.testing.assert_close(op(x, indptr, src, ptr, edge, globals_, strided), plan.run(graph, state))
