"""pytest-benchmark comparison of fastsim's NGS with the same architecture in plain PyG and in plain torch.

Run `pytest bench/bench_ngs.py` (heat and Rössler models, a batch of 16 ER graphs of 100–200 nodes: one training step
and one 40-step rollout per implementation) or with `FASTSIM_BENCH_SMOKE=1` (two tiny graphs, one round: a check of
the harness). Each peer's rollout is first checked against fastsim's; its time relative to fastsim's is stored in
`extra_info["ratio"]`. `python -m bench.ngs_report` measures the same implementations, adds the 3000-node graph and
the scipy DOP853 comparison, and writes the "ngs" section of bench/RESULTS.md.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
import pytest
import torch

from bench import flops
from bench import ngs_report as cases

pytest.importorskip("pytest_benchmark")

SMOKE = os.environ.get("FASTSIM_BENCH_SMOKE", "") not in ("", "0")
ROUNDS = 1 if SMOKE else 5
IMPLS = list(cases.IMPLEMENTATIONS)  # fastsim first
_medians: dict[tuple, float] = {}


@functools.cache
def _workload(system: str) -> cases.Workload:
    sizes = [20, 30] if SMOKE else [int(n) for n in np.random.default_rng(0).integers(100, 201, 16)]
    return cases.workload(system, sizes, 40)


def _record(benchmark, key: tuple, fastsim_key: tuple) -> None:
    _medians[key] = benchmark.stats.stats.median
    base = _medians.get(fastsim_key)
    if base:
        benchmark.extra_info["ratio"] = _medians[key] / base


@pytest.mark.parametrize("system", ["heat", "rossler"])
@pytest.mark.parametrize("impl", IMPLS)
def test_rollout(benchmark, system: str, impl: str) -> None:
    w, fn = _workload(system), cases.IMPLEMENTATIONS[impl]["rollout"]
    torch.testing.assert_close(fn(w), cases.IMPLEMENTATIONS["fastsim"]["rollout"](w), rtol=1e-4, atol=1e-4)
    benchmark.group = f"NGS {system} 40-step rollout, {w.graph.num_graphs} graphs"
    benchmark.pedantic(fn, args=(w,), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _record(benchmark, ("rollout", system, impl), ("rollout", system, IMPLS[0]))


@pytest.mark.parametrize("system", ["heat", "rossler"])
@pytest.mark.parametrize("impl", IMPLS)
def test_train_step(benchmark, system: str, impl: str) -> None:
    w, fn = _workload(system), cases.IMPLEMENTATIONS[impl]["train"]
    optimizer = cases.optimizer(w)
    benchmark.group = f"NGS {system} training step, {w.graph.num_graphs} graphs"
    benchmark.pedantic(fn, args=(w, optimizer), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _record(benchmark, ("train", system, impl), ("train", system, IMPLS[0]))


@pytest.mark.parametrize("system", ["heat", "rossler"])
def test_rollout_op_flop_formula(system: str) -> None:
    """The FLOP ratio's fastsim side: the compiled rollout op's registered formula counts the products of the
    plan's tensor-op step, which torch's FLOP counter sees one by one (a float64 state takes that path), except
    that the op forms layer 0's edge projection once per rollout where it is small (the smoke sizes), not in
    each step."""
    w = _workload(system)
    stepwise = dataclasses.replace(w, state=w.state.double())
    first = w.model.gn_layers[0].per_edge_update.first
    edges, hidden, width = w.graph.num_edges, first.out_features, w.model.edge_encoder[-2].out_features
    # step_flops halves a two-step rollout: the plan projects in both steps, the op once when it hoists.
    saved = edges * width * hidden if cases.hoists_edge_term(edges, hidden) else 0
    expected = cases.step_flops(stepwise, "fastsim") - saved
    assert cases.step_flops(w, "fastsim") == pytest.approx(expected, rel=1e-9)


def test_edge_backward_flop_formula() -> None:
    """The training FLOP ratio's fastsim side: the fused edge op's backward formula counts the products torch's FLOP
    counter sees in the reference's backward, plus the two forward products the fused backward recomputes."""
    from torch.utils.flop_counter import FlopCounterMode

    from fastsim.ops import reference

    w = _workload("rossler")
    g, (hidden, feats, out) = w.graph, (12, 5, 7)
    gen = torch.Generator().manual_seed(0)
    p_src, p_dst = (torch.randn(g.num_nodes, hidden, generator=gen) for _ in range(2))
    features, w_edge = torch.randn(g.num_edges, feats, generator=gen), torch.randn(hidden, feats, generator=gen)
    w2, b2 = torch.randn(out, hidden, generator=gen), torch.randn(out, generator=gen)
    inputs = [t.requires_grad_() for t in (p_src, p_dst, features, w_edge, w2, b2)]
    node, _ = reference.gn_edge_aggregate(g.indptr, g.src, p_src, p_dst, features, w_edge, None, None, w2, b2, False)
    counter = FlopCounterMode(display=False)
    with counter:
        torch.autograd.grad(node.sum(), inputs)
    reference_backward = counter.get_total_flops()
    recomputed = 2 * g.num_edges * hidden * (out + feats)
    shapes = (g.indptr.shape, g.src.shape, None, None, None, p_src.shape, p_dst.shape, features.shape, w_edge.shape)
    fused = flops.gn_edge_backward_flops(*shapes, None, None, w2.shape)
    assert fused == reference_backward + recomputed
