"""pytest-benchmark comparison of `fastsim.ops.linear` (csrc/nn/linear_cpu.cpp) with `torch.nn.functional.linear`
(MKL's sgemm), forward and backward, at the node-level shapes of the graph models' training steps.

Run `OMP_NUM_THREADS=1 pytest bench/bench_linear.py` or, with `FASTSIM_BENCH_SMOKE=1`, at one small shape (a
check of the harness). fastsim runs first in each group; ATen's stores its time relative to fastsim's in
`extra_info["ratio"]` (above 1: fastsim is faster). Both sides compute the same products on the same inputs; the
outputs and gradients are checked against each other first.
"""

from __future__ import annotations

import functools
import os

import pytest
import torch
from torch.nn import functional as F

from fastsim.ops import linear

pytest.importorskip("pytest_benchmark")

SMOKE = os.environ.get("FASTSIM_BENCH_SMOKE", "") not in ("", "0")
ROUNDS = 1 if SMOKE else 20
# (rows, in, out): NGS Rössler at d = 32 on 16 graphs of 100–200 nodes (edge MLP's node projections, the node and
# global updates), and GNRK Burgers on the 100×100 grid.
SHAPES = [(256, 128, 64)] if SMOKE else [(2408, 96, 352), (2408, 256, 256), (2408, 256, 96), (10000, 32, 32)]
IMPLS = {"fastsim": linear, "ATen (MKL)": F.linear}
_medians: dict[tuple, float] = {}


@functools.cache
def _inputs(shape: tuple[int, int, int]) -> tuple[torch.Tensor, ...]:
    rows, k, n = shape
    gen = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(s, generator=gen).requires_grad_() for s in ((rows, k), (n, k), (n,)))
    return x, w, b, torch.randn(rows, n, generator=gen)


def _step(fn, x, w, b, grad) -> tuple[torch.Tensor, ...]:
    return (fn(x, w, b).detach(), *torch.autograd.grad(fn(x, w, b), (x, w, b), grad))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("impl", list(IMPLS))
def test_linear_forward_backward(benchmark, impl: str, shape: tuple[int, int, int]) -> None:
    inputs = _inputs(shape)
    for ours, theirs in zip(_step(IMPLS[impl], *inputs), _step(F.linear, *inputs)):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-3)
    benchmark.group = f"linear forward + backward, {shape[0]} x {shape[1]} -> {shape[2]}"
    benchmark.pedantic(_step, args=(IMPLS[impl], *inputs), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _medians[(impl, shape)] = benchmark.stats.stats.median
    base = _medians.get(("fastsim", shape))
    if base:
        benchmark.extra_info["ratio"] = _medians[(impl, shape)] / base
