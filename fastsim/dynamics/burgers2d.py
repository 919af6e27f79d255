"""2-D viscous Burgers' equation on a periodic, possibly non-uniform grid graph (GNRK, ngs_gnrk.md
§2.3-2.4)."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from fastsim import ops
from fastsim.dynamics.coefficients import (
    Range,
    check_coefficient,
    check_graph,
    check_range,
    check_state,
    uniform,
)
from fastsim.graph import Graph
from fastsim.graphs.random import as_generator


@dataclasses.dataclass(frozen=True)
class BurgersRanges:
    """Sampling ranges: per-graph viscosity `ν ~ U[nu]`; initial phases `φ ~ U[phase]` and Gaussian centres
    `x₀, y₀ ~ U[offset]` (four of each per graph: u and v, x and y)."""

    nu: Range = (0.005, 0.02)
    phase: Range = (-math.pi, math.pi)
    offset: Range = (0.0, 1.0)

    def __post_init__(self) -> None:
        check_range(self.nu, "nu", lower=0.0)
        check_range(self.phase, "phase")
        check_range(self.offset, "offset")


# GNRK datasets: I varies phases and offsets at ν = 0.01, II ν ~ U[0.005, 0.02], III the grid, IV the Δt.
GNRK_BURGERS = BurgersRanges()
GNRK_BURGERS_I = BurgersRanges(nu=(0.01, 0.01))


def _node_sums(graph: Graph, edge_values: Tensor) -> tuple[Tensor, Tensor]:
    """Per-node sums of `edge_values (E, F)` over incoming and over outgoing edges."""
    incoming = ops.segment_reduce(edge_values, graph.indptr, "sum")
    outgoing = ops.segment_reduce(edge_values[graph.rev_perm], graph.rev_indptr, "sum")
    return incoming, outgoing


def _check_grid(graph: Graph) -> Tensor:
    """The spacing `edge_attr (E, 2)` of a grid graph: one in- and one out-edge per axis and node."""
    attr = graph.edge_attr
    if attr is None or attr.dim() != 2 or attr.shape[1] != 2 or not attr.is_floating_point():
        raise ValueError("graph must be a grid graph with spacing vectors edge_attr (E, 2) (see PeriodicGrid)")
    axis = torch.stack([attr[:, 0] > 0, attr[:, 1] > 0], dim=1)
    if not bool(torch.isfinite(attr).all()) or not bool((axis.sum(1) == 1).all() and ((attr == 0) | axis).all()):
        raise ValueError("graph edge_attr must be [dx, 0] or [0, dy] with a finite spacing > 0 on every edge")
    incoming, outgoing = _node_sums(graph, axis.to(attr.dtype))
    if not bool((incoming == 1).all() and (outgoing == 1).all()):
        raise ValueError("graph must have exactly one incoming and one outgoing edge per axis at every node")
    return attr


class Burgers2D(nn.Module):
    r"""2-D viscous Burgers on a periodic grid graph, state `(N, 2)` = `(u, v)` per node:

        u_t = -u u_x - v u_y + ν (u_xx + u_yy),    v_t = -u v_x - v v_y + ν (v_xx + v_yy).

    GNRK's finite differences on a non-uniform grid (its `burgers_2d`): with `h₊` the spacing to the next
    point and `h₋` to the previous one along an axis, `D₊ = (u₊ - u)/h₊`, `D₋ = (u - u₋)/h₋`,

        u_x ≈ (h₋ D₊ + h₊ D₋) / (h₊ + h₋),    u_xx ≈ 2 (D₊ - D₋) / (h₊ + h₋).

    The first derivative is second-order on any grid. The second derivative is second-order on uniform and
    smoothly stretched grids (`h₊ - h₋ = O(h²)`), but only first-order on grids with independent random
    spacings such as GNRK's dataset III (its truncation error is `(h₊ - h₋) u_xxx / 3`).

    Both stencils are linear, so they are built once as edge weights on the grid graph plus its reverse (each
    node sees its ±x and ±y neighbours) and applied with three SpMMs per evaluation: `∂x`, `∂y` and `∇²` on
    `(u, v)`.

    Coefficient ranges (sample_coefficients, GNRK): `ν = 0.01` (datasets I, III, IV) or `ν ~ U[0.005, 0.02]`
    (II).

    Args:
        graph: a (batch of) periodic grid graph(s) from `PeriodicGrid.graph()`: directed +x/+y edges
            with spacing vectors `edge_attr (E, 2)` (`[dx, 0]` or `[0, dy]`).
        nu: `(B,)` per-graph viscosity ν.

    Raises:
        ValueError: `graph` is not such a grid graph, or `nu` has the wrong shape.
    """

    def __init__(self, graph: Graph, nu: Tensor) -> None:
        super().__init__()
        self.graph = check_graph(graph)
        self.register_buffer("nu", check_coefficient(nu, "nu", (graph.num_graphs,), graph))
        attr = _check_grid(graph)
        h_minus, h_plus = _node_sums(graph, attr)  # (N, 2): spacing to the previous / next point per axis
        total = h_plus + h_minus
        first = torch.stack([h_minus / (h_plus * total), -h_plus / (h_minus * total)])  # (±, N, axis)
        second = torch.stack([2.0 / (h_plus * total), 2.0 / (h_minus * total)])
        axis = (attr > 0).to(attr.dtype)  # (E, 2) one-hot axis of each edge
        src, dst = graph.src, graph.dst

        # Stencil edges: each grid edge j -> i (j is i's "-" neighbour) and its reverse i -> j (i is j's "+").
        def weights(coef: Tensor) -> Tensor:
            return torch.cat([axis * coef[1][dst], axis * coef[0][src]])  # (2E, 2), per axis

        stencil = Graph.from_edge_index(torch.stack([torch.cat([src, dst]), torch.cat([dst, src])]), graph.num_nodes)
        stencil = dataclasses.replace(stencil, batch=graph.batch, ptr=graph.ptr, num_graphs=graph.num_graphs)
        self.stencil = stencil
        w_first, w_second = stencil.to_csr_order(weights(first)), stencil.to_csr_order(weights(second))
        self.register_buffer("weight_x", w_first[:, 0].contiguous())
        self.register_buffer("weight_y", w_first[:, 1].contiguous())
        self.register_buffer("weight_laplace", w_second.sum(1).contiguous())
        self.register_buffer("diag_first", (h_plus - h_minus) / (h_plus * h_minus))  # (N, 2) centre weight
        self.register_buffer("diag_laplace", (-2.0 / (h_plus * h_minus)).sum(1))  # (N,)

    def derivatives(self, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`∂x y`, `∂y y` and `∇² y`, each `(N, 2)`, for fields `y (N, 2)` (or `(N, F)`)."""
        if not isinstance(y, Tensor) or y.dim() != 2 or y.shape[0] != self.graph.num_nodes:
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"y must have shape (N, F) with N = {self.graph.num_nodes}; got {got}")
        dt = y.dtype

        def apply(weight: Tensor, diag: Tensor) -> Tensor:
            return ops.spmm(self.stencil, y, weight=weight.to(dt)) + diag.to(dt)[:, None] * y

        grad_x = apply(self.weight_x, self.diag_first[:, 0])
        grad_y = apply(self.weight_y, self.diag_first[:, 1])
        return grad_x, grad_y, apply(self.weight_laplace, self.diag_laplace)

    def forward(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`d(u, v)/dt`, shape `(N, 2)`."""
        check_state(y, "y", (self.graph.num_nodes, 2))
        grad_x, grad_y, laplace = self.derivatives(y)
        nu = self.nu.to(y.dtype)[self.graph.batch]
        return -y[:, :1] * grad_x - y[:, 1:] * grad_y + nu[:, None] * laplace

    @staticmethod
    def sample_coefficients(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: BurgersRanges = GNRK_BURGERS,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> dict[str, Tensor]:
        """`{"nu": (B,)}` with `ν ~ U[ranges.nu]`."""
        graph = check_graph(graph)
        return {"nu": uniform(graph.num_graphs, ranges.nu, generator, dtype, graph.device)}

    @staticmethod
    def initial_state(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: BurgersRanges = GNRK_BURGERS,
        *,
        positions: Tensor,
        lengths: tuple[float, float] = (1.0, 1.0),
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        r"""`(N, 2)` GNRK initial fields, per graph and per field `w ∈ {u, v}`:

            w = sin(2π x / Lx - φ₁) sin(2π y / Ly - φ₂) exp(-(x - x₀)² - (y - y₀)²),  scaled to max |w| = 1,

        with `φ ~ U[ranges.phase]` and `(x₀, y₀) ~ U[ranges.offset]` drawn per graph and field.

        Args:
            graph: the (batched) grid graph.
            generator: torch.Generator, int seed, or None.
            ranges: sampling ranges.
            positions: `(N, 2)` node coordinates (`PeriodicGrid.positions()`, concatenated for a batch).
            lengths: the periods `(Lx, Ly)` of the domain, finite and > 0.
            dtype: floating dtype of the result.
        """
        graph, gen = check_graph(graph), as_generator(generator)
        try:
            lx, ly = (float(v) for v in lengths)
        except (TypeError, ValueError):
            lx = ly = math.nan
        if not (0 < lx < math.inf and 0 < ly < math.inf):  # 0 would divide the phases by zero: NaN fields
            raise ValueError(f"lengths must be a pair of finite numbers > 0; got {lengths!r}")
        positions = check_coefficient(positions, "positions", (graph.num_nodes, 2), graph).to(torch.float64)
        b = graph.num_graphs
        phase = uniform(4 * b, ranges.phase, gen, torch.float64, graph.device).view(b, 4)[graph.batch]
        offset = uniform(4 * b, ranges.offset, gen, torch.float64, graph.device).view(b, 4)[graph.batch]
        x, y = positions[:, 0], positions[:, 1]
        fields = []
        for k in (0, 2):  # u uses (phase, offset)[0:2], v uses [2:4]
            wave = torch.sin(2 * math.pi * x / lx - phase[:, k])
            wave = wave * torch.sin(2 * math.pi * y / ly - phase[:, k + 1])
            field = wave * torch.exp(-((x - offset[:, k]) ** 2) - (y - offset[:, k + 1]) ** 2)
            peak = ops.segment_reduce(field.abs(), graph.ptr, "max").values
            fields.append(field / peak[graph.batch])
        return torch.stack(fields, dim=1).to(dtype)
