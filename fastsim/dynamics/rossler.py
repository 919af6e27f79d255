"""Coupled Rössler oscillators, diffusively coupled through y (NGS and GNRK, ngs_gnrk.md §1.4 and §2.4)."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from fastsim import ops
from fastsim.dynamics.coefficients import (
    Range,
    check_coefficient,
    check_graph,
    check_range,
    check_state,
    per_edge_uniform,
    uniform,
)
from fastsim.dynamics.jacobian import node_block_csr
from fastsim.graph import Graph
from fastsim.graphs.random import as_generator


@dataclasses.dataclass(frozen=True)
class RosslerRanges:
    """Sampling ranges: per-graph `a ~ U[a]`, `b ~ U[b]`, `c ~ U[c]`; per-edge `K ~ U[coupling]`; initial
    `x, y ~ U[xy]`, `z ~ U[z]`."""

    a: Range = (0.1, 0.3)
    b: Range = (0.1, 0.3)
    c: Range = (5.0, 7.0)
    coupling: Range = (0.01, 0.05)
    xy: Range = (-4.0, 4.0)
    z: Range = (0.0, 6.0)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            check_range(getattr(self, field.name), field.name)


NGS_ROSSLER = RosslerRanges()  # NGS simulation.txt: --a 0.1 0.3 --b 0.1 0.3 --c 5.0 7.0 --coupling 0.01 0.05
GNRK_ROSSLER = RosslerRanges(coupling=(0.02, 0.04))  # GNRK README (ngs_gnrk.md §2.4)


class CoupledRossler(nn.Module):
    r"""Rössler oscillators coupled through `y` on a graph, state `(N, 3)` = `(x, y, z)` per node:

        dx_i/dt = -y_i - z_i
        dy_i/dt = x_i + a y_i + Σ_{j→i} K_ji (y_j - y_i)
        dz_i/dt = b + z_i (x_i - c)

    NGS and GNRK use this form with a symmetric `K` on an undirected graph (their `A @ y - A.sum(0) * y`); the
    sum here runs over the incoming edges `j -> i`. `a, b, c` are per graph.

    Coefficient ranges (sample_coefficients): `a, b ~ U[0.1, 0.3]`, `c ~ U[5, 7]`; `K ~ U[0.01, 0.05]` (NGS)
    or `U[0.02, 0.04]` (GNRK) per edge; initial `x, y ~ U[-4, 4]`, `z ~ U[0, 6]`.

    Args:
        graph: the (batched) graph.
        a, b, c: `(B,)` per-graph parameters.
        coupling: `(E,)` per-edge `K` in CSR order.
    """

    def __init__(self, graph: Graph, a: Tensor, b: Tensor, c: Tensor, coupling: Tensor) -> None:
        super().__init__()
        self.graph = check_graph(graph)
        for name, value in (("a", a), ("b", b), ("c", c)):
            self.register_buffer(name, check_coefficient(value, name, (graph.num_graphs,), graph))
        self.register_buffer("coupling", check_coefficient(coupling, "coupling", (graph.num_edges,), graph))

    def _parts(self, y: Tensor) -> tuple[Tensor, ...]:
        """Per-node `a, b, c`, and `(N, 2)` `[Σ_j K_ji y_j, Σ_j K_ji]`."""
        check_state(y, "y", (self.graph.num_nodes, 3))
        batch = self.graph.batch
        a, b, c = (p.to(y.dtype)[batch] for p in (self.a, self.b, self.c))
        pair = torch.stack([y[:, 1], y.new_ones(y.shape[0])], dim=1)
        agg = ops.spmm(self.graph, pair, weight=self.coupling.to(y.dtype))
        return a, b, c, agg

    def forward(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`d(x, y, z)/dt`, shape `(N, 3)`."""
        a, b, c, agg = self._parts(y)
        px, py, pz = y.unbind(dim=1)
        vx = -py - pz
        vy = px + a * py + agg[:, 0] - agg[:, 1] * py
        vz = b + pz * (px - c)
        return torch.stack([vx, vy, vz], dim=1)

    def jacobian(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`(3N, 3N)` sparse CSR for the state flattened row-major (`x_i, y_i, z_i` at `3i, 3i+1, 3i+2`)."""
        a, b, c, agg = self._parts(y)
        n = self.graph.num_nodes
        px, _, pz = y.unbind(dim=1)
        blocks = [  # (row, col, value) of each node's 3 × 3 block
            (0, 1, -torch.ones_like(px)),
            (0, 2, -torch.ones_like(px)),
            (1, 0, torch.ones_like(px)),
            (1, 1, a - agg[:, 1]),
            (2, 0, pz),
            (2, 2, px - c),
        ]
        coupling = (3 * self.graph.dst + 1, 3 * self.graph.src + 1, self.coupling.to(y.dtype))
        return node_block_csr(coupling, blocks, n, 3)

    @staticmethod
    def sample_coefficients(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: RosslerRanges = NGS_ROSSLER,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> dict[str, Tensor]:
        """`{"a", "b", "c": (B,), "coupling": (E,)}` drawn from `ranges` (default NGS's), `K` symmetric per
        edge."""
        graph, gen = check_graph(graph), as_generator(generator)
        out = {k: uniform(graph.num_graphs, getattr(ranges, k), gen, dtype, graph.device) for k in ("a", "b", "c")}
        out["coupling"] = per_edge_uniform(graph, ranges.coupling, gen, dtype)
        return out

    @staticmethod
    def initial_state(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: RosslerRanges = NGS_ROSSLER,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """`(N, 3)`: `x, y ~ U[ranges.xy]`, `z ~ U[ranges.z]` per node."""
        graph, gen = check_graph(graph), as_generator(generator)
        n, dev = graph.num_nodes, graph.device
        x, y = uniform(n, ranges.xy, gen, dtype, dev), uniform(n, ranges.xy, gen, dtype, dev)
        return torch.stack([x, y, uniform(n, ranges.z, gen, dtype, dev)], dim=1)
