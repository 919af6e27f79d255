"""The only layer that touches compiled code: one validated, differentiable function per op."""

from fastsim.ops.activation import gelu
from fastsim.ops.dense import linear
from fastsim.ops.ensemble import ensemble_dopri5, ensemble_rodas5
from fastsim.ops.message_passing import (
    EDGE_OPS,
    REDUCTIONS,
    SegmentArgResult,
    gn_edge_aggregate,
    sddmm,
    segment_reduce,
    spmm,
)
from fastsim.ops.mi import gaussian_gram, kde_logsumexp, symmetric_eigvalsh
from fastsim.ops.rk import rk_error_norm, rk_stage

__all__ = [
    "EDGE_OPS",
    "REDUCTIONS",
    "SegmentArgResult",
    "ensemble_dopri5",
    "ensemble_rodas5",
    "gaussian_gram",
    "gelu",
    "gn_edge_aggregate",
    "kde_logsumexp",
    "linear",
    "sddmm",
    "segment_reduce",
    "rk_error_norm",
    "rk_stage",
    "spmm",
    "symmetric_eigvalsh",
]
