"""Plain-torch arithmetic for the peer implementations that reuse fastsim's model modules."""

import contextlib
from collections.abc import Iterator

from torch.nn import functional as F

from fastsim import ops


@contextlib.contextmanager
def aten_gelu() -> Iterator[None]:
    """Inside, every model GELU (`fastsim.ops.gelu`, looked up at call time by the models' blocks) is ATen's
    `F.gelu`, as in a model written in plain PyG/torch: the peers share fastsim's modules for their weights only."""
    fastsim_gelu = ops.gelu
    ops.gelu = F.gelu
    try:
        yield
    finally:
        ops.gelu = fastsim_gelu
