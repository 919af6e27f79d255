"""pytest-benchmark comparison of the fused ensemble integrators with scipy, torchdiffeq and torchode.

Run `pytest bench/bench_solvers.py` (workload (a) of issue 4: heat on 1000 ER graphs, N ∈ [100, 200], k ∈ [2, 4],
T = 2, rtol = atol = 1e-8, 41 non-uniform output times; (b) 100 all-to-all Kuramoto populations of N = 1000;
(d) HIRES with fused Rodas5 vs scipy Radau/LSODA at one tolerance) or with `FASTSIM_BENCH_SMOKE=1` (tiny sizes,
one round: a check of the harness). Each test is one implementation of `bench.solver_cases`; the tests of a
workload share one `benchmark.group`, fastsim runs first, and every other test checks its outputs against
fastsim's (≤ 1e-6 relative to the largest value) and stores its time relative to fastsim's in
`extra_info["ratio"]`. `python -m bench.solvers_report` runs the same implementations interleaved (plus the
coupled-Rössler workload and the work-precision ladders of (d)) and writes the "solvers" section of
bench/RESULTS.md.
"""

from __future__ import annotations

import functools
import os

import pytest
import torch

from bench import solver_cases as cases
from bench import stiff_cases

pytest.importorskip("pytest_benchmark")

SMOKE = os.environ.get("FASTSIM_BENCH_SMOKE", "") not in ("", "0")
WORKLOADS = {  # name → workload factory at benchmark (or smoke) size
    "heat": lambda: cases.heat_workload(20 if SMOKE else 1000),
    "kuramoto": lambda: cases.kuramoto_workload(2 if SMOKE else 100, 100 if SMOKE else 1000),
}
IMPLS = list(cases.IMPLEMENTATIONS)  # fastsim first
ROUNDS = 1 if SMOKE else 3
_medians: dict[tuple[str, str], float] = {}


@functools.cache
def _workload(name: str) -> cases.Workload:
    return WORKLOADS[name]()


@functools.cache
def _reference(name: str) -> torch.Tensor:
    return cases.run_fastsim(_workload(name))


def _record(benchmark, key: tuple[str, str], fastsim_key: tuple[str, str]) -> None:
    _medians[key] = benchmark.stats.stats.median
    base = _medians.get(fastsim_key)
    if base:
        benchmark.extra_info["ratio"] = _medians[key] / base


@pytest.mark.parametrize("workload", list(WORKLOADS))
@pytest.mark.parametrize("impl", IMPLS)
def test_ensemble(benchmark, workload: str, impl: str) -> None:
    available = cases.available()
    if impl not in available:
        pytest.skip(f"{impl}: package not installed")
    if workload == "kuramoto" and not SMOKE and impl.startswith(("torchdiffeq", "torchode")):
        pytest.skip(f"{impl}: ~40 s a round on (b); measured once by python -m bench.solvers_report")
    fn, w = available[impl], _workload(workload)
    out, ref = fn(w).double(), _reference(workload).double()  # correctness first (and a warm-up)
    assert (out - ref).abs().max().item() <= 1e-6 * (1 + ref.abs().max().item())  # phases grow to ~20
    benchmark.group = f"{workload} ensemble, {w.num_graphs} graphs"
    benchmark.pedantic(fn, args=(w,), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _record(benchmark, (workload, impl), (workload, IMPLS[0]))


@pytest.mark.parametrize("solver", stiff_cases.SOLVERS)
def test_stiff_hires(benchmark, solver: str) -> None:
    """(d) at one tolerance (rtol = 1e-8, the test set's atol); equal-accuracy ratios: bench.solvers_report."""
    w = stiff_cases.test_set_workload("hires")
    rtol, atol = 1e-8, w.problem.atol(1e-8)
    assert w.digits(stiff_cases.run(w, solver, rtol, atol)) >= 4.5
    benchmark.group = "stiff HIRES, rtol 1e-8"
    benchmark.pedantic(stiff_cases.run, args=(w, solver, rtol, atol), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _record(benchmark, ("hires", solver), ("hires", stiff_cases.SOLVERS[0]))
