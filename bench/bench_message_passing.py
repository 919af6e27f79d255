"""pytest-benchmark comparison of fastsim's message-passing kernels with torch, torch.sparse and PyG.

Run `pytest bench/bench_message_passing.py` (full sizes: N=1e5, E=1e6 on CPU) or with `FASTSIM_BENCH_SMOKE=1`
(N=2e3, E=2e4, one round: a seconds-long check of the harness). `FASTSIM_BENCH_DEVICE=cuda` runs on the GPU
(N=1e6, E=1e7) and adds the "cpp" and "triton" fastsim backends. Every test is one (op, implementation) on one
(graph, F); tests of one case share a `benchmark.group`, and each non-fastsim test stores its time relative to
fastsim's in `extra_info` (fastsim runs first in each group). Every result is checked against fastsim's before
it is timed. `python -m bench.report` runs the same cases interleaved and writes bench/RESULTS.md.
"""

from __future__ import annotations

import functools
import os

import pytest
import torch

from bench import message_passing_cases as cases
from bench import peak_memory

pytest.importorskip("pytest_benchmark")

DEVICE = os.environ.get("FASTSIM_BENCH_DEVICE", "cpu")
SIZES = cases.sizes_for(DEVICE, cases.SMOKE)
if torch.device(DEVICE).type == "cuda" and not torch.cuda.is_available():
    pytest.skip("FASTSIM_BENCH_DEVICE=cuda but no CUDA device", allow_module_level=True)

CASES = [
    pytest.param(op.name, graph, features, impl.name, id=f"{op.name}-{graph}-F{features}-{impl.name}")
    for op in cases.OPS.values()
    for graph in cases.GRAPH_KINDS
    for features in op.features
    for impl in op.impls_for(DEVICE)
]

_fastsim_results: dict[str, dict[str, float]] = {}  # group -> {"median": s, "peak_bytes": B} of its fastsim test


@functools.lru_cache(maxsize=1)
def _inputs(graph: str, features: int) -> cases.Inputs:
    """One case's inputs, kept while consecutive tests (the implementations of one group) use them."""
    return cases.Inputs(graph, SIZES, features, DEVICE)


def _run(benchmark, op: cases.Op, call) -> None:
    if cases.SMOKE:
        benchmark.pedantic(call, rounds=1, iterations=1, warmup_rounds=0)
    elif op.slow:  # a full-size fwd+bwd takes seconds: a few explicit rounds
        benchmark.pedantic(call, rounds=3, iterations=1, warmup_rounds=1)
    else:
        benchmark(call)


@pytest.mark.parametrize("op_name, graph, features, impl_name", CASES)
def test_message_passing(benchmark, op_name: str, graph: str, features: int, impl_name: str) -> None:
    op = cases.OPS[op_name]
    impl = op.impl(impl_name)
    if impl.requires:
        pytest.importorskip(impl.requires)
    inputs = _inputs(graph, features)
    try:
        cases.check(op, impl, inputs)
    except cases.Unsupported as err:
        pytest.skip(str(err))
    group = f"{op_name} {graph} F={features}"
    benchmark.group = group
    benchmark.extra_info.update(op=op_name, graph=graph, features=features, impl=impl_name)
    benchmark.extra_info.update(num_nodes=SIZES.num_nodes, num_edges=SIZES.num_edges, device=DEVICE)
    _run(benchmark, op, cases.timed(impl, inputs))

    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    median = stats.stats.median if stats else None
    own: dict[str, float] = {}
    if median is not None:
        own["median"] = median
        if impl.traffic is not None:
            benchmark.extra_info["gbps"] = impl.traffic.gbps(SIZES, features, median)
    if op.slow:  # the fused GN step exists to save memory: measure it, in a fresh process
        own["peak_bytes"], method = peak_memory.measure(op_name, impl_name, graph, SIZES, features, DEVICE)
        benchmark.extra_info.update(peak_memory_bytes=own["peak_bytes"], peak_memory_method=method)
    if impl is op.impls[0]:
        _fastsim_results[group] = own
        return
    reference = _fastsim_results.get(group, {})
    if "median" in reference and "median" in own:
        benchmark.extra_info["fastsim_over_peer_time"] = reference["median"] / own["median"]
        benchmark.extra_info["fastsim_speedup"] = own["median"] / reference["median"]
    if "peak_bytes" in reference and "peak_bytes" in own and reference["peak_bytes"] > 0:
        benchmark.extra_info["peak_memory_ratio"] = own["peak_bytes"] / reference["peak_bytes"]
