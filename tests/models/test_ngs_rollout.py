"""The compiled NGS rollout op (`torch.ops.fastsim.ngs_rollout`, run by `compiled_rollout`) against the plan's
step written with tensor ops, which `tests/models/test_ngs.py` checks against the generic step and the authors'
formulation."""

from typing import NamedTuple

import pytest
import torch

from fastsim.graph import Graph
from fastsim.graphs import erdos_renyi
from fastsim.models import NGS
from fastsim.models.ngs_rollout import RolloutPlan, compiled_rollout, compiled_rollout_applies, compiled_rollout_args

SIZES = [(40,), (20, 1, 35), (9, 0, 6)]  # one graph; batches with a one-node graph and an edgeless graph


class Case(NamedTuple):
    model: torch.nn.Module
    graph: Graph
    state: torch.Tensor
    dts: torch.Tensor
    coefficients: dict

    def plan(self) -> RolloutPlan:
        with torch.inference_mode():
            encoded = self.model.encode_coefficients(self.graph, **self.coefficients)
            return RolloutPlan(self.model, self.graph, encoded, self.dts)

    def args(self) -> tuple:
        _, edge, glob = self.model._coefficients(self.graph, **self.coefficients)
        return compiled_rollout_args(self.model, self.graph, self.state, self.dts, edge, glob)

    def run(self) -> torch.Tensor:
        _, edge, glob = self.model._coefficients(self.graph, **self.coefficients)
        with torch.inference_mode():
            return compiled_rollout(self.model, self.graph, self.state, self.dts, edge, glob)


def make_case(system, sizes, dtype=torch.float64, steps=4, seed=0, emb_dim=4) -> Case:
    gen = torch.Generator().manual_seed(seed)
    no_edges = torch.zeros(2, 0, dtype=torch.long)
    graphs = [erdos_renyi(n, 3.0, generator=gen) if n > 1 else Graph.from_edge_index(no_edges, 1) for n in sizes if n]
    if 0 in sizes:  # the edgeless graph
        graphs.append(Graph.from_edge_index(no_edges, 5))
    graph = Graph.batch_graphs(graphs)
    torch.manual_seed(seed)
    model = NGS.for_system(system, emb_dim=emb_dim).to(dtype).eval()
    n, e, b = graph.num_nodes, graph.num_edges, graph.num_graphs
    if system == "heat":
        state, coefficients = torch.rand(n, generator=gen, dtype=dtype), {"edge": torch.rand(e, dtype=dtype)}
    else:
        state = torch.randn(n, 3, generator=gen, dtype=dtype)
        coefficients = {"edge": torch.rand(e, dtype=dtype), "glob": torch.rand(b, 3, dtype=dtype)}
    dts = 0.01 + 0.08 * torch.rand(steps, b, generator=gen, dtype=dtype)
    return Case(model, graph, state, dts, coefficients)


def step_loop(case: Case) -> torch.Tensor:
    """The initial state and the states after each step, from the plan's tensor-op steps."""
    plan, states = case.plan(), [case.state]
    with torch.inference_mode():
        for s in range(len(case.dts)):
            states.append(plan.step(s, case.graph, states[-1]))
    return torch.stack(states)


@pytest.mark.parametrize("system", ["heat", "rossler"])
@pytest.mark.parametrize("sizes", SIZES)
def test_compiled_rollout_equals_the_step_loop_in_float64(system, sizes):
    case = make_case(system, sizes)
    assert compiled_rollout_applies(case.model, case.graph, case.state)
    torch.testing.assert_close(case.run(), step_loop(case), rtol=1e-12, atol=1e-12)


def test_compiled_rollout_with_layer_0_projected_per_tile():
    """Past 2¹⁶ values of layer 0's edge term (E · H) the op projects the constant edge features per tile in every
    step instead of once: Rössler at the paper's width (H = 352) on ≈ 900 edges."""
    case = make_case("rossler", (300,), steps=2, emb_dim=32)
    hidden = case.model.gn_layers[0].per_edge_update.first.out_features
    assert case.graph.num_edges * hidden > 1 << 16
    torch.testing.assert_close(case.run(), step_loop(case), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("system", ["heat", "rossler"])
def test_compiled_rollout_in_float32_and_on_two_threads(system):
    case = make_case(system, (60, 45), dtype=torch.float32, steps=6)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = case.run()
        torch.set_num_threads(2)
        two = case.run()
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(one, step_loop(case), rtol=1e-5, atol=1e-5)
    assert torch.equal(one, two)  # every row is computed by one chunk, in the same order


def test_model_rollout_uses_the_compiled_op_only_where_it_applies():
    case = make_case("heat", (30,))
    assert compiled_rollout_applies(case.model, case.graph, case.state)
    assert not compiled_rollout_applies(case.model, case.graph, case.state.float())  # not the model's dtype
    kuramoto = NGS.for_system("kuramoto", emb_dim=4).double()
    assert not compiled_rollout_applies(kuramoto, case.graph, case.state)
    with torch.inference_mode():
        rolled = case.model.rollout(case.graph, case.state, case.dts[:, 0], **case.coefficients)
    torch.testing.assert_close(rolled, step_loop(case), rtol=1e-12, atol=1e-12)


def test_opcheck_and_compile():
    args = make_case("rossler", (12, 7), steps=2).args()
    torch.library.opcheck(torch.ops.fastsim.ngs_rollout.default, args)
    compiled = torch.compile(torch.ops.fastsim.ngs_rollout.default, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(*args), torch.ops.fastsim.ngs_rollout.default(*args))


def test_malformed_arguments_raise():
    x, indptr, src, ptr, edge, dts, glob, weights = make_case("heat", (12,), steps=2).args()
    op = torch.ops.fastsim.ngs_rollout.default
    with pytest.raises(RuntimeError, match="weights must hold"):
        op(x, indptr, src, ptr, edge, dts, glob, weights[:-1])
    with pytest.raises(RuntimeError, match="weights must have the dtype of state"):
        op(x, indptr, src, ptr, edge, dts, glob, [w.float() for w in weights])
    with pytest.raises(RuntimeError, match="an edge MLP's first Linear"):
        op(x, indptr, src, ptr, edge, dts, torch.ones(1, 1, dtype=x.dtype), weights)
    with pytest.raises(RuntimeError, match="the edge encoder's first Linear"):
        op(x, indptr, src, ptr, edge.expand(-1, 2).contiguous(), dts, glob, weights)
    with pytest.raises(RuntimeError, match="a node update's second Linear"):
        op(x, indptr, src, ptr, edge, dts, glob, weights[:18] + [weights[18][:-1], weights[19][:-1]] + weights[20:])
    with pytest.raises(RuntimeError, match="edge_coefficients must be"):
        op(x, indptr, src, ptr, edge[:-1], dts, glob, weights)
    with pytest.raises(RuntimeError, match="dts must be"):
        op(x, indptr, src, ptr, edge, dts[:, :0], glob, weights)
    with pytest.raises(RuntimeError, match="glob_embedding must be"):
        op(x, indptr, src, ptr, edge, dts, glob[:0], weights)
    with pytest.raises(RuntimeError, match="state must be"):
        op(x[:-1], indptr, src, ptr, edge, dts, glob, weights)
    with pytest.raises(RuntimeError, match=r"src must hold indices in \[0, 12\)"):
        op(x, indptr, src + 12, ptr, edge, dts, glob, weights)
    with pytest.raises(RuntimeError, match="indptr must run from 0 to"):
        op(x, indptr - 1, src, ptr, edge, dts, glob, weights)
    with pytest.raises(RuntimeError, match="ptr must run from 0 to 12"):
        op(x, indptr, src, ptr * 2, edge, dts, glob, weights)


def test_hostile_values_raise_value_errors():
    """The op checks the values NGS.rollout leaves to it, with the messages of the Python checks."""
    x, indptr, src, ptr, edge, dts, glob, weights = make_case("heat", (12,), steps=2).args()
    op = torch.ops.fastsim.ngs_rollout.default
    nan = x.clone()
    nan[3] = float("nan")
    with pytest.raises(ValueError, match="state must be finite"):
        op(nan, indptr, src, ptr, edge, dts, glob, weights)
    for bad in (0.0, -0.1, float("inf"), float("nan")):
        steps = dts.clone()
        steps[1, 0] = bad
        with pytest.raises(ValueError, match="dt must hold finite steps > 0"):
            op(x, indptr, src, ptr, edge, steps, glob, weights)
    with pytest.raises(ValueError, match="edge must be finite"):
        op(x, indptr, src, ptr, edge.clone().fill_(float("inf")), dts, glob, weights)


def test_weights_are_read_in_place():
    """The op reads strided weights (transposed views, column blocks) through their strides: the same result
    from weights stored transposed (non-contiguous views of the same values)."""
    case = make_case("rossler", (15, 9), steps=3)
    *inputs, weights = case.args()
    strided = [w.t().contiguous().t() if w.dim() == 2 else torch.stack([w, w], 1)[:, 0] for w in weights]
    assert not any(w.is_contiguous() for w in strided if w.dim() == 2 and min(w.shape) > 1)
    with torch.inference_mode():
        torch.testing.assert_close(torch.ops.fastsim.ngs_rollout.default(*inputs, strided), case.run().view(4, -1, 3))
