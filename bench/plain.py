"""Plain-torch arithmetic for the peer implementations that reuse fastsim's model modules."""

import contextlib
from collections.abc import Iterator

from torch.nn import functional as F

from fastsim import ops


@contextlib.contextmanager
def aten_ops() -> Iterator[None]:
    """Inside, every model GELU and Linear (`fastsim.ops.gelu` and `fastsim.ops.linear`, looked up at call time by
    the models' blocks) is ATen's `F.gelu` and `F.linear`, as in a model written in plain PyG/torch: the peers share
    fastsim's modules for their weights only."""
    fastsim_ops = ops.gelu, ops.linear
    ops.gelu, ops.linear = F.gelu, F.linear
    try:
        yield
    finally:
        ops.gelu, ops.linear = fastsim_ops
