"""NGS's non-uniform time grids: random steps that sum to the horizon (ngs_gnrk.md §1.4, `divide_randomly`).

GNRK uses the same routine for its non-uniform time steps and grid spacings (§2.4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from fastsim.graphs.random import as_generator


def _positive_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0; got {value}")
    return float(value)


def _steps_arg(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")
    return int(value)


def divide_randomly(
    total: float,
    steps: int,
    delta: float,
    generator: torch.Generator | int | None = None,
    *,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """`steps` positive numbers in `[(1-δ)T/S, (1+δ)T/S]` that sum to `T`, in random order (NGS
    `divide_randomly`).

    NGS's algorithm: with `lo, hi = (1∓δ) T/S` and `R` the part of `T` not yet used, step `i` (0-based) is
    drawn from U[max(lo, R - (S-i-1) hi), min(hi, R - (S-i-1) lo)], the widest interval that still lets the
    remaining steps reach `R` within the bounds; the last step is then exactly `R`. The steps are finally
    shuffled. Each step is therefore marginally close to, but not exactly, U[lo, hi].

    Args:
        total: the horizon T > 0.
        steps: the number of steps S >= 1.
        delta: relative half-width δ in [0, 1) (NGS also allows δ = 1, which permits zero-length steps).
        generator: torch.Generator, int seed, or None for torch's global generator.
        dtype: floating dtype of the result (drawn in float64).

    Returns:
        `(S,)` steps; `sum == T` up to rounding (a few ulp) and every step within the bounds up to rounding.

    Raises:
        TypeError: non-number arguments. ValueError: `total <= 0` or not finite, `steps < 1`, δ outside
        [0, 1).
    """
    total = _positive_number(total, "total")
    steps = _steps_arg(steps, "steps")
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.integer, np.floating)):
        raise TypeError(f"delta must be a number; got {type(delta).__name__}")
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"delta must lie in [0, 1); got {delta}")
    gen = as_generator(generator)
    mean = total / steps
    low_bound, high_bound = mean * (1.0 - delta), mean * (1.0 + delta)
    draws = torch.rand(steps, generator=gen, dtype=torch.float64).tolist()
    values, remaining = [], total
    for i, u in enumerate(draws):
        rest = steps - i - 1
        high = min(high_bound, remaining - rest * low_bound)
        low = max(low_bound, remaining - rest * high_bound)
        low, high = min(low, high), max(low, high)  # rounding can cross them by an ulp; NGS does the same
        value = remaining if rest == 0 else low + u * (high - low)
        values.append(value)
        remaining -= value
    order = torch.randperm(steps, generator=gen)
    return torch.tensor(values, dtype=torch.float64)[order].to(dtype)


def time_grid(
    max_time: float | Sequence[float],
    num_steps: int | Sequence[int],
    delta: float,
    generator: torch.Generator | int | None = None,
    *,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Output times `0 = t_0 < t_1 < ... < t_S`, NGS `sample_eval_time` generalised to several intervals.

    With `max_time = (T_1, T_2, ...)` and `num_steps = (S_1, S_2, ...)` the interval `[T_{k-1}, T_k]` is split
    into `S_k` random steps by `divide_randomly` (NGS: train `(1.0,)` / `(20,)`, test `(1.0, 2.0)` /
    `(20, 20)` for heat). Each `T_k` is hit exactly, so the training part of a test grid ends exactly at
    `T_1`.

    Args:
        max_time: T or increasing (T_1, T_2, ...), all > 0.
        num_steps: S or (S_1, S_2, ...), same length as `max_time`.
        delta: relative half-width δ in [0, 1).
        generator: torch.Generator, int seed, or None.
        dtype: floating dtype of the result.

    Returns:
        `(1 + Σ S_k,)` times.

    Raises:
        ValueError: mismatched lengths, non-increasing horizons, or an invalid argument of `divide_randomly`.
    """
    times = [max_time] if not isinstance(max_time, Sequence) else list(max_time)
    steps = [num_steps] if not isinstance(num_steps, Sequence) else list(num_steps)
    if len(times) != len(steps) or not times:
        raise ValueError(f"max_time and num_steps must have the same non-zero length; got {max_time}, {num_steps}")
    gen = as_generator(generator)
    parts, start = [torch.zeros(1, dtype=torch.float64)], 0.0
    for k, (end, count) in enumerate(zip(times, steps, strict=True)):
        end = _positive_number(end, f"max_time[{k}]")
        if end <= start:
            raise ValueError(f"max_time must be increasing; got {max_time}")
        part = start + torch.cumsum(divide_randomly(end - start, count, delta, gen), 0)
        part[-1] = end  # remove the rounding of the cumulative sum, as NGS does
        parts.append(part)
        start = end
    return torch.cat(parts).to(dtype)
