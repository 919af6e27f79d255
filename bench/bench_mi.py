"""pytest-benchmark comparison of fastsim.info's estimators with the authors' numpy/scipy code and plain torch.

Run `pytest bench/bench_mi.py` or, with `FASTSIM_BENCH_SMOKE=1`, at tiny sizes (a check of the harness).
Workloads (bench.mi_report.WORKLOADS): 10,000 MI evaluations at N = 100 (d = 784 and 50), the information plane
of a five-layer autoencoder (every layer, 100 evaluations), one MI at N = 1000, 4096 and 16384 (fastsim with
stochastic Lanczos quadrature at 4096 and 16384; the exact peers are timed by the report only) and the KDE bound
at N = 16384.
Each test is one implementation; fastsim runs first in its group and the others store their time relative to
fastsim's in `extra_info["ratio"]`. `python -m bench.mi_report` runs the same implementations interleaved and
writes the "info" section of bench/RESULTS.md, with KDE peak memory.
"""

from __future__ import annotations

import functools

import pytest

from bench import mi_report as report

pytest.importorskip("pytest_benchmark")

ROUNDS = 1 if report.SMOKE else 3
_medians: dict[tuple[str, str], float] = {}


@functools.cache
def _inputs(workload: str):
    return report.WORKLOADS[workload].make()


@pytest.mark.parametrize(
    ("workload", "impl"),
    [(w, name) for w, spec in report.WORKLOADS.items() for name in spec.impls],
)
def test_mi(benchmark, workload: str, impl: str) -> None:
    spec = report.WORKLOADS[workload]
    if not report.SMOKE and impl in spec.too_slow:
        pytest.skip(f"{impl} at {workload}: over a minute per call on 2 cores (bench.mi_report times it once)")
    benchmark.group = workload
    inputs = _inputs(workload)
    benchmark.pedantic(spec.impls[impl], args=inputs, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _medians[(workload, impl)] = benchmark.stats.stats.median
    base = _medians.get((workload, next(iter(spec.impls))))
    if base:
        benchmark.extra_info["ratio"] = _medians[(workload, impl)] / base
