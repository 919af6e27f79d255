"""pytest-benchmark comparison of the fused ensemble integrator with scipy, torchdiffeq and torchode.

Run `pytest bench/bench_solvers.py` (workload (a) of issue 4: heat on 1000 ER graphs, N ∈ [100, 200], k ∈ [2, 4],
T = 2, rtol = atol = 1e-8, 41 non-uniform output times) or with `FASTSIM_BENCH_SMOKE=1` (20 graphs, one round:
a check of the harness). Each test is one implementation of `bench.solver_cases`; all share one
`benchmark.group`, fastsim runs first, and every other test checks its outputs against fastsim's (≤ 1e-6) and
stores its time relative to fastsim's in `extra_info["ratio"]`. `python -m bench.solvers_report` runs the same
implementations interleaved (plus the coupled-Rössler workload) and writes bench/RESULTS_solvers.md.
"""

from __future__ import annotations

import functools
import os

import pytest
import torch

from bench import solver_cases as cases

pytest.importorskip("pytest_benchmark")

SMOKE = os.environ.get("FASTSIM_BENCH_SMOKE", "") not in ("", "0")
NUM_GRAPHS = 20 if SMOKE else 1000
IMPLS = list(cases.IMPLEMENTATIONS)  # fastsim first
_medians: dict[str, float] = {}


@functools.lru_cache(maxsize=1)
def _workload() -> cases.Workload:
    return cases.heat_workload(NUM_GRAPHS)


@functools.lru_cache(maxsize=1)
def _reference() -> torch.Tensor:
    return cases.run_fastsim(_workload())


@pytest.mark.parametrize("impl", IMPLS)
def test_heat_ensemble(benchmark, impl: str) -> None:
    available = cases.available()
    if impl not in available:
        pytest.skip(f"{impl}: package not installed")
    fn, w = available[impl], _workload()
    out = fn(w)  # correctness first (and a warm-up)
    assert (out.double() - _reference().double()).abs().max().item() <= 1e-6
    benchmark.group = f"heat ensemble, {NUM_GRAPHS} graphs"
    if SMOKE:
        benchmark.pedantic(fn, args=(w,), rounds=1, iterations=1, warmup_rounds=0)
    else:
        benchmark.pedantic(fn, args=(w,), rounds=3, iterations=1, warmup_rounds=0)
    _medians[impl] = benchmark.stats.stats.median
    base = _medians.get(IMPLS[0])
    if base:
        benchmark.extra_info["ratio"] = _medians[impl] / base
