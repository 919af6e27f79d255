"""Periodic 2-D grid graphs with uniform or non-uniform spacing, in GNRK's convention (ngs_gnrk.md §2.3).

A grid of `nx × ny` points has node `i = y · nx + x` at position `(X_x, Y_y)`, `X_x = Σ_{k<x} dx_k`,
`Y_y = Σ_{k<y} dy_k`. Every node has one **directed** edge in +x, to `((x+1) mod nx, y)`, and one in +y, to
`(x, (y+1) mod ny)`; in the caller order node `i`'s +x edge is edge `2i` and its +y edge is edge `2i + 1`. The
edge feature is the spacing vector: `[dx_x, 0]` on the +x edge and `[0, dy_y]` on the +y edge (GNRK
`dxdy2edge`), so node `i`'s incoming +x edge carries the spacing `dx_{x-1}` to its left neighbour.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from fastsim.graph import Graph
from fastsim.graphs.random import _int_arg, as_generator
from fastsim.graphs.time import divide_randomly

MIN_POINTS = 3  # a central difference needs distinct left and right neighbours


def _check_spacing(value: object, name: str) -> Tensor:
    if not isinstance(value, Tensor) or not value.is_floating_point() or value.dim() != 1:
        got = f"{value.dtype} {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
        raise TypeError(f"{name} must be a 1-D floating tensor of spacings; got {got}")
    if value.numel() < MIN_POINTS:
        raise ValueError(f"{name} must hold >= {MIN_POINTS} spacings; got {value.numel()}")
    if not bool(torch.isfinite(value).all()) or not bool((value > 0).all()):
        raise ValueError(f"{name} must hold finite spacings > 0")
    return value


@dataclasses.dataclass(frozen=True, eq=False)
class PeriodicGrid:
    """A periodic 2-D grid given by its spacings; `graph()` builds the GNRK grid graph.

    Attributes:
        dx: `(nx,)` spacing from point `x` to `x + 1` along x (the last one wraps to point 0).
        dy: `(ny,)` spacing along y, same convention.
    """

    dx: Tensor
    dy: Tensor

    def __post_init__(self) -> None:
        _check_spacing(self.dx, "dx")
        _check_spacing(self.dy, "dy")
        if self.dx.dtype != self.dy.dtype or self.dx.device != self.dy.device:
            raise ValueError(f"dx and dy must share dtype and device; got {self.dx.dtype}, {self.dy.dtype}")

    @property
    def nx(self) -> int:
        """Number of points along x."""
        return self.dx.numel()

    @property
    def ny(self) -> int:
        """Number of points along y."""
        return self.dy.numel()

    @property
    def num_nodes(self) -> int:
        """`nx · ny`."""
        return self.nx * self.ny

    @property
    def lengths(self) -> tuple[float, float]:
        """Domain lengths `(Lx, Ly) = (Σ dx, Σ dy)`."""
        return float(self.dx.sum()), float(self.dy.sum())

    def positions(self) -> Tensor:
        """`(N, 2)` coordinates `(X, Y)` of every node, node `i = y · nx + x`."""
        xs = torch.cat([self.dx.new_zeros(1), torch.cumsum(self.dx, 0)[:-1]])
        ys = torch.cat([self.dy.new_zeros(1), torch.cumsum(self.dy, 0)[:-1]])
        return torch.stack([xs.repeat(self.ny), ys.repeat_interleave(self.nx)], dim=1)

    def graph(self) -> Graph:
        """The directed +x/+y grid graph with spacing vectors as `edge_attr (E, 2)`, `E = 2N` (module
        docstring)."""
        device = self.dx.device
        x = torch.arange(self.nx, device=device).repeat(self.ny)
        y = torch.arange(self.ny, device=device).repeat_interleave(self.nx)
        node = y * self.nx + x
        right = y * self.nx + (x + 1) % self.nx
        up = ((y + 1) % self.ny) * self.nx + x
        src = torch.stack([node, node], dim=1).reshape(-1)
        dst = torch.stack([right, up], dim=1).reshape(-1)
        zeros = self.dx.new_zeros(self.num_nodes)
        attr = torch.stack(
            [torch.stack([self.dx[x], zeros], dim=1), torch.stack([zeros, self.dy[y]], dim=1)], dim=1
        ).reshape(-1, 2)
        return Graph.from_edge_index(torch.stack([src, dst]), self.num_nodes, edge_attr=attr)


def periodic_grid(
    nx: int,
    ny: int,
    *,
    lengths: Sequence[float] = (1.0, 1.0),
    spacing_delta: float = 0.0,
    generator: torch.Generator | int | None = None,
    dtype: torch.dtype = torch.float64,
) -> PeriodicGrid:
    """A periodic grid on `[0, Lx) × [0, Ly)`; uniform, or non-uniform as GNRK's dataset III.

    With `spacing_delta = δ > 0` the spacings are `divide_randomly(L, n, δ)`: each within ±δ of `L/n` and
    summing to `L` (GNRK `get_dxdy`, δ = 0.1 for dataset III). Such random spacings are not smooth; see
    `fastsim.dynamics.Burgers2D` for what that does to the order of its finite differences.

    Args:
        nx, ny: points per axis, each >= 3.
        lengths: `(Lx, Ly)`, both > 0.
        spacing_delta: δ in [0, 1); 0 gives a uniform grid.
        generator: torch.Generator, int seed, or None (only used when δ > 0).
        dtype: floating dtype of the spacings.

    Raises:
        TypeError, ValueError: sizes below 3, non-positive lengths, δ outside [0, 1).
    """
    nx, ny = _int_arg(nx, "nx", MIN_POINTS), _int_arg(ny, "ny", MIN_POINTS)
    if len(lengths) != 2 or not all(math.isfinite(v) and v > 0 for v in lengths):
        raise ValueError(f"lengths must be a pair of finite numbers > 0; got {lengths!r}")
    lx, ly = float(lengths[0]), float(lengths[1])
    if isinstance(spacing_delta, bool) or not isinstance(spacing_delta, (int, float)):
        raise TypeError(f"spacing_delta must be a number; got {type(spacing_delta).__name__}")
    if not 0.0 <= spacing_delta < 1.0:
        raise ValueError(f"spacing_delta must lie in [0, 1); got {spacing_delta}")
    if spacing_delta == 0:
        return PeriodicGrid(torch.full((nx,), lx / nx, dtype=dtype), torch.full((ny,), ly / ny, dtype=dtype))
    gen = as_generator(generator)
    dx = divide_randomly(lx, nx, spacing_delta, gen, dtype=dtype)
    dy = divide_randomly(ly, ny, spacing_delta, gen, dtype=dtype)
    return PeriodicGrid(dx, dy)
