"""Kernel-width rules for the Gaussian kernels of the information estimators.

Every estimator result records the rule it used: the width sets where on [0, log N] a representation sits, so an
information plane is only meaningful with its rule and N (information.md §1.5, §5.3).

Rules, for samples `x (..., N, d)`:

- ``"iprl"``: σ = γ·N^(−1/(4+d)), γ = 2 — the rule of the "Information Flows of Diverse Autoencoders" code; it
  ignores the data's scale.
- ``"scott"``: σ = s·N^(−1/(4+d)), with `s` the root-mean-square per-feature standard deviation of `x`.
- ``"silverman"``: σ = s·(4/(d+2))^(1/(4+d))·N^(−1/(4+d)).
- ``"median"``: σ = the median pairwise Euclidean distance between distinct samples (Gretton's heuristic).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fastsim.ops.mi import all_finite, centred_in_units

__all__ = ["RULES", "kernel_width"]

RULES = ("iprl", "scott", "silverman", "median")


def kernel_width(x: Tensor, rule: str = "iprl", *, gamma: float = 2.0) -> Tensor:
    """The Gaussian kernel width σ of samples `x (..., N, d)` under `rule`, one per leading batch index.

    Args:
        x: `(..., N, d)` floating samples (N ≥ 1; N ≥ 2 and finite for the data-driven rules).
        rule: one of `RULES`.
        gamma: the constant γ of the "iprl" rule (positive, finite).

    Returns:
        `(...)` float tensor of widths (> 0 unless the samples are all identical, for the data-driven rules).

    Raises:
        TypeError: `x` not a floating tensor.
        ValueError: an unknown rule, a bad gamma, `x` with fewer than two dimensions, too few samples, or NaN.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}; got {rule!r}")
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a tensor of samples (..., N, d); got {getattr(x, 'shape', type(x).__name__)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor; got {x.dtype}")
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not (gamma > 0 and math.isfinite(gamma)):
        raise ValueError(f"gamma must be a positive finite number; got {gamma!r}")
    n, d = x.shape[-2], x.shape[-1]
    needed = 1 if rule == "iprl" else 2
    if n < needed:
        raise ValueError(f"rule {rule!r} needs N >= {needed} samples; got N = {n}")
    factor = float(n) ** (-1.0 / (4 + d))
    if rule == "iprl":
        return torch.full(x.shape[:-2], gamma * factor, dtype=x.dtype, device=x.device)
    if not all_finite(x):
        raise ValueError("x contains NaN or infinite values")
    # Measured on the samples as `centred_in_units` shifts and scales them where needed, then scaled back: cdist's
    # GEMM form (above 25 samples or features) would otherwise cancel against a large common offset, and squares
    # overflow or underflow for huge or tiny samples.
    u, unit = centred_in_units(x)
    if rule == "median":
        dist = torch.cdist(u, u)
        upper = torch.triu_indices(n, n, offset=1, device=x.device)
        return dist[..., upper[0], upper[1]].median(dim=-1).values * unit
    scale = u.var(dim=-2).mean(dim=-1).sqrt() * unit
    if rule == "silverman":
        factor *= (4.0 / (d + 2)) ** (1.0 / (4 + d))
    return scale * factor
