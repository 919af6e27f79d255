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

import torch
from torch import Tensor

__all__ = ["RULES", "kernel_width"]

RULES = ("iprl", "scott", "silverman", "median")


def kernel_width(x: Tensor, rule: str = "iprl", *, gamma: float = 2.0) -> Tensor:
    """The Gaussian kernel width σ of samples `x (..., N, d)` under `rule`, one per leading batch index.

    Args:
        x: `(..., N, d)` samples (N ≥ 2 for the data-driven rules).
        rule: one of `RULES`.
        gamma: the constant γ of the "iprl" rule.

    Returns:
        `(...)` float tensor of widths (> 0 unless the samples are all identical, for the data-driven rules).

    Raises:
        ValueError: an unknown rule, or `x` with fewer than two dimensions.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}; got {rule!r}")
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a tensor of samples (..., N, d); got {getattr(x, 'shape', type(x).__name__)}")
    n, d = x.shape[-2], x.shape[-1]
    factor = float(n) ** (-1.0 / (4 + d))
    if rule == "iprl":
        return torch.full(x.shape[:-2], gamma * factor, dtype=x.dtype, device=x.device)
    if n < 2:
        raise ValueError(f"rule {rule!r} needs at least two samples; got N = {n}")
    if rule == "median":
        dist = torch.cdist(x, x)
        upper = torch.triu_indices(n, n, offset=1, device=x.device)
        return dist[..., upper[0], upper[1]].median(dim=-1).values
    scale = x.var(dim=-2).mean(dim=-1).sqrt()
    if rule == "silverman":
        factor *= (4.0 / (d + 2)) ** (1.0 / (4 + d))
    return scale * factor
