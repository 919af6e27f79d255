"""Kolchinsky–Tracey pairwise-distance bounds on the mutual information of noisy representations.

A representation `T` is taken as `T = h(X) + ε`, `ε ~ N(0, v·I)`: a mixture of N Gaussians of variance `v`
centred on the samples `t_i`. Its entropy is bounded with the KL (upper) and Bhattacharyya (lower) pairwise
distances (Kolchinsky & Tracey 2017; Saxe et al.'s `kde.py`, information.md §5.2), which for the mutual
information with the input reduce to

    I_upper(X; T) = −mean_i log mean_j exp(−‖t_i − t_j‖² / (2v)),
    I_lower(X; T) = −mean_i log mean_j exp(−‖t_i − t_j‖² / (8v)),

and for the labels, `I(T; Y) = H(T) − Σ_y p(y) H(T | Y = y)` with each entropy bounded the same way. Both are
at most `log N`. The row log-sum-exps are streamed by `fastsim.ops.kde_logsumexp`: memory O(N), not O(N²).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from fastsim.info.renyi import _check_samples, _log
from fastsim.ops import kde_logsumexp

__all__ = ["KDEBounds", "kde_mutual_information"]


@dataclass(frozen=True)
class KDEBounds:
    """Upper and lower bounds `(...)` on a mutual information, with the noise variance and unit they assume."""

    upper: Tensor
    lower: Tensor
    noise_variance: float
    unit: str


def _mean_log_mean_exp(t: Tensor, variance: float) -> Tensor:
    """`mean_i log mean_j exp(−‖t_i − t_j‖² / (2·variance))` over the samples of `t (..., N, d)`."""
    return kde_logsumexp(t, 1.0 / (2.0 * variance)).mean(-1) - math.log(t.shape[-2])


def kde_mutual_information(
    t: Tensor,
    *,
    noise_variance: float = 0.1,
    labels: Tensor | None = None,
    unit: str = "bits",
) -> KDEBounds:
    """Bounds on `I(X; T)`, or on `I(T; Y)` when `labels` are given, for samples `t (..., N, d)`.

    Args:
        t: representations of N inputs (a batch of them over the leading dimensions).
        noise_variance: `v` of the Gaussian noise added to `T` (> 0; Saxe et al. use 0.1).
        labels: `(N,)` integer class labels, for `I(T; Y)`.
        unit: ``"bits"`` or ``"nats"``.

    Raises:
        ValueError: bad shapes, NaN, a bad unit, a variance that is not positive or whose kernel scales 1/(2v) and
            1/(8v) are not positive floats (v outside ≈ [3e-309, 4e307]), or samples so spread out for it that the
            squared distances overflow.
    """
    t = _check_samples(t, "t")
    scale = _log(unit, None)
    if isinstance(noise_variance, bool) or not isinstance(noise_variance, (int, float)) or not noise_variance > 0:
        raise ValueError(f"noise_variance must be a positive number; got {noise_variance!r}")
    if not (math.isfinite(4.0 * noise_variance) and math.isfinite(1.0 / (2.0 * noise_variance))):
        raise ValueError(
            "noise_variance must lie between about 3e-309 and 4e307, where the kernel scales 1/(2v) and 1/(8v) are "
            f"positive floats; got {noise_variance!r}"
        )

    def entropy_terms(x: Tensor, v: float) -> Tensor:  # H(T) up to constants that cancel in every difference
        return -_mean_log_mean_exp(x, v)

    bounds = []
    for v in (noise_variance, 4.0 * noise_variance):  # KL: v; Bhattacharyya: 4v (exponent ‖·‖²/(8v))
        h = entropy_terms(t, v)
        if labels is not None:
            if not isinstance(labels, Tensor) or labels.shape != (t.shape[-2],) or labels.is_floating_point():
                raise ValueError(f"labels must be an integer tensor of shape ({t.shape[-2]},)")
            for label in labels.unique():
                members = (labels == label).nonzero().squeeze(1).to(t.device)
                h = h - members.numel() / t.shape[-2] * entropy_terms(t.index_select(-2, members), v)
        bounds.append(h * scale)
    return KDEBounds(bounds[0], bounds[1], float(noise_variance), unit)
