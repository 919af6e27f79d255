"""Error metrics between predictions and targets, optionally excluding missing nodes.

`missing` is a bool `(N,)` mask over the nodes along dimension `node_dim` of the inputs; masked entries count
neither in the sum nor in the denominator. When every entry is masked the result is 0 (and so is its gradient),
which keeps a training step on a fully masked batch harmless without a host sync.
"""

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"{str(x.dtype).removeprefix('torch.')} {tuple(x.shape)} on {x.device}"
    return type(x).__name__


def _masked_mean(error: Tensor, missing: Tensor | None, node_dim: int) -> Tensor:
    if missing is None:
        return error.mean()
    if not isinstance(missing, Tensor) or missing.dtype != torch.bool or missing.dim() != 1:
        raise TypeError(f"missing must be a bool tensor of shape (N,); got {_describe(missing)}")
    if error.dim() == 0:
        raise ValueError("a missing-node mask needs inputs with a node dimension; got scalars")
    dim = node_dim % error.dim()
    if missing.shape[0] != error.shape[dim] or missing.device != error.device:
        raise ValueError(
            f"missing must have shape ({error.shape[dim]},) (dimension {node_dim} of the inputs) on {error.device}; "
            f"got {_describe(missing)}"
        )
    shape = [1] * error.dim()
    shape[dim] = -1
    keep = (~missing).view(shape).expand_as(error)
    return torch.where(keep, error, 0).sum() / keep.sum().clamp(min=1)


def _errors(pred: Tensor, target: Tensor) -> Tensor:
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"{name} must be a floating torch.Tensor; got {_describe(x)}")
    if pred.shape != target.shape or pred.device != target.device:
        raise ValueError(
            f"pred and target must match in shape and device; got {_describe(pred)} vs {_describe(target)}"
        )
    return pred - target


def mae(pred: Tensor, target: Tensor, missing: Tensor | None = None, node_dim: int = 0) -> Tensor:
    """Mean absolute error `mean |pred − target|` over the entries of nodes not `missing` (a 0-d tensor)."""
    return _masked_mean(_errors(pred, target).abs(), missing, node_dim)


def mse(pred: Tensor, target: Tensor, missing: Tensor | None = None, node_dim: int = 0) -> Tensor:
    """Mean squared error `mean (pred − target)²` over the entries of nodes not `missing` (a 0-d tensor)."""
    return _masked_mean(_errors(pred, target).square(), missing, node_dim)


def rmse(pred: Tensor, target: Tensor, missing: Tensor | None = None, node_dim: int = 0) -> Tensor:
    """Root mean squared error, `sqrt(mse)`, over the entries of nodes not `missing` (a 0-d tensor)."""
    return mse(pred, target, missing, node_dim).sqrt()


def mean_interval(values: Sequence[float]) -> tuple[float, float]:
    """The mean of per-sample errors and the half-width of its 95 % interval, 1.96 · s / √n with the sample
    standard deviation s (NaN for a single sample, which has no spread to estimate)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence; got shape {x.shape}")
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else math.nan
    return float(x.mean()), float(half)
