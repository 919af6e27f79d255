"""Kuramoto oscillators: per-edge coupling (GNRK) and global all-to-all coupling (NGS), ngs_gnrk.md §1.4.

The third form, NGS's thresholded all-to-all model whose coupling graph switches with the phases (the stiff
problem of §1.6, `θ_th ∈ {π/2, π/3, π/4, π/6}`), lives with the stiff test problems:
`fastsim.dynamics.stiff.ThresholdedKuramoto`. With `θ_th >= π/2` it is the model of `KuramotoMeanField`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from fastsim import ops
from fastsim.dynamics.coefficients import (
    check_coefficient,
    check_graph,
    check_range,
    check_state,
    normal_clipped,
    per_edge_uniform,
    uniform,
)
from fastsim.dynamics.jacobian import sparse_csr
from fastsim.graph import Graph
from fastsim.graphs.random import as_generator


@dataclasses.dataclass(frozen=True)
class KuramotoRanges:
    """Sampling ranges: `ω_i ~ N(0, 1)` clipped to `±omega_clip` (None: unclipped), coupling `K ~ U[coupling]`
    (per graph for `KuramotoMeanField`, per undirected edge for `Kuramoto`), `θ_i(0) ~ U[-π, π]`."""

    coupling: tuple[float, float] = (0.1, 0.9)
    omega_clip: float | None = 3.0

    def __post_init__(self) -> None:
        check_range(self.coupling, "coupling")
        if self.omega_clip is not None and not self.omega_clip > 0:
            raise ValueError(f"omega_clip must be > 0 or None; got {self.omega_clip}")


NGS_KURAMOTO = KuramotoRanges()  # NGS simulation.txt --coupling 0.1 0.9; sample_omega clips to [-3, 3]
GNRK_KURAMOTO = KuramotoRanges(coupling=(0.1, 0.5), omega_clip=None)  # GNRK README; get_omega: normal(0, 1)


def _phases(y: Tensor) -> tuple[Tensor, Tensor]:
    return torch.sin(y), torch.cos(y)


def _initial_phases(graph: Graph, generator: torch.Generator | int | None, dtype: torch.dtype) -> Tensor:
    return uniform(graph.num_nodes, (-math.pi, math.pi), generator, dtype, graph.device)


class Kuramoto(nn.Module):
    r"""Kuramoto oscillators with per-edge coupling (GNRK): `dθ_i/dt = ω_i + Σ_{j→i} K_ji sin(θ_j - θ_i)`.

    Evaluated in O(E) as `ω_i + cos θ_i Σ_j K_ji sin θ_j - sin θ_i Σ_j K_ji cos θ_j` (one SpMM of
    `[sin θ, cos θ]`). On a complete graph with `K_ji = K/N` this is NGS's all-to-all model;
    `KuramotoMeanField` does that in O(N).

    Coefficient ranges (sample_coefficients, GNRK): `ω ~ N(0, 1)`, `K_ij ~ U[0.1, 0.5]` symmetric per edge.

    Args:
        graph: the (batched) graph, edges `j -> i`.
        omega: `(N,)` natural frequencies `ω`.
        coupling: `(E,)` per-edge `K` in CSR order.
    """

    def __init__(self, graph: Graph, omega: Tensor, coupling: Tensor) -> None:
        super().__init__()
        self.graph = check_graph(graph)
        self.register_buffer("omega", check_coefficient(omega, "omega", (graph.num_nodes,), graph))
        self.register_buffer("coupling", check_coefficient(coupling, "coupling", (graph.num_edges,), graph))

    def _aggregate(self, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`sin θ`, `cos θ` and `(N, 2)` `[Σ_j K_ji sin θ_j, Σ_j K_ji cos θ_j]`."""
        sin, cos = _phases(check_state(y, "y", (self.graph.num_nodes,)))
        agg = ops.spmm(self.graph, torch.stack([sin, cos], dim=1), weight=self.coupling.to(y.dtype))
        return sin, cos, agg

    def forward(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`dθ/dt` for phases `y (N,)`."""
        sin, cos, agg = self._aggregate(y)
        return self.omega.to(y.dtype) + cos * agg[:, 0] - sin * agg[:, 1]

    def jacobian(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`(N, N)` sparse CSR: `J_ij = Σ_{e: j→i} K_e cos(θ_j - θ_i)`,
        `J_ii = -Σ_{j→i} K_ji cos(θ_j - θ_i)`."""
        sin, cos, agg = self._aggregate(y)
        unit = torch.stack([cos, sin], dim=1)
        edge = self.coupling.to(y.dtype) * ops.sddmm(self.graph, unit, unit, "dot")  # K_e cos(θ_src - θ_dst)
        diag = -(cos * agg[:, 1] + sin * agg[:, 0])
        nodes = torch.arange(self.graph.num_nodes, device=y.device)
        rows, cols = torch.cat([self.graph.dst, nodes]), torch.cat([self.graph.src, nodes])
        return sparse_csr(rows, cols, torch.cat([edge, diag]), self.graph.num_nodes)

    @staticmethod
    def sample_coefficients(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: KuramotoRanges = GNRK_KURAMOTO,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> dict[str, Tensor]:
        """`{"omega": (N,), "coupling": (E,)}` drawn from `ranges` (default GNRK's), `K` symmetric per
        edge."""
        graph, gen = check_graph(graph), as_generator(generator)
        omega = normal_clipped(graph.num_nodes, ranges.omega_clip, gen, dtype, graph.device)
        return {"omega": omega, "coupling": per_edge_uniform(graph, ranges.coupling, gen, dtype)}

    @staticmethod
    def initial_state(
        graph: Graph, generator: torch.Generator | int | None = None, *, dtype: torch.dtype = torch.float64
    ) -> Tensor:
        """`(N,)` phases `θ_i(0) ~ U[-π, π]` (NGS and GNRK)."""
        return _initial_phases(check_graph(graph), generator, dtype)


class KuramotoMeanField(nn.Module):
    r"""All-to-all Kuramoto with global coupling (NGS): `dθ_i/dt = ω_i + (K/N) Σ_{j≠i} sin(θ_j - θ_i)`.

    O(N) through the order parameter: with `S = Σ_j sin θ_j`, `C = Σ_j cos θ_j` over the oscillators of the
    same graph, `dθ_i/dt = ω_i + (K/N)(cos θ_i S - sin θ_i C)` (the `j = i` term is `sin 0 = 0`). Only the
    node partition of `graph` (`batch`, `ptr`) is used; its edges are ignored. `N` is the size of each graph,
    so NGS's global attribute `K/N` is `coupling / N_b`.

    Coefficient ranges (sample_coefficients, NGS): `ω ~ N(0, 1)` clipped to [-3, 3], `K ~ U[0.1, 0.9]` per
    graph.

    Args:
        graph: the (batched) graph; one all-to-all population per graph.
        omega: `(N,)` natural frequencies.
        coupling: `(B,)` per-graph `K` (not divided by N).
    """

    def __init__(self, graph: Graph, omega: Tensor, coupling: Tensor) -> None:
        super().__init__()
        self.graph = check_graph(graph)
        self.register_buffer("omega", check_coefficient(omega, "omega", (graph.num_nodes,), graph))
        self.register_buffer("coupling", check_coefficient(coupling, "coupling", (graph.num_graphs,), graph))
        self.register_buffer("sizes", graph.ptr.diff())

    def _order_parameter(self, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """`sin θ`, `cos θ`, per-node `[S, C]` of its graph `(N, 2)`, and per-node `K/N_b`."""
        sin, cos = _phases(check_state(y, "y", (self.graph.num_nodes,)))
        unit = torch.stack([sin, cos], dim=1)
        if self.graph.num_graphs == 1:
            sums = unit.sum(dim=0, keepdim=True)
        else:
            sums = ops.segment_reduce(unit, self.graph.ptr, "sum")
        scale = self.coupling.to(y.dtype) / self.sizes.clamp(min=1).to(y.dtype)
        return sin, cos, sums[self.graph.batch], scale[self.graph.batch]

    def forward(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`dθ/dt` for phases `y (N,)`."""
        sin, cos, sums, scale = self._order_parameter(y)
        return self.omega.to(y.dtype) + scale * (cos * sums[:, 0] - sin * sums[:, 1])

    def jacobian(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`(N, N)` sparse CSR with dense `N_b × N_b` blocks: `J_ij = (K/N) cos(θ_j - θ_i)` for `j ≠ i` in the
        same graph, `J_ii = -(K/N) Σ_{j≠i} cos(θ_j - θ_i) = -(K/N)(cos θ_i C + sin θ_i S - 1)`. Σ N_b²
        entries."""
        sin, cos, sums, scale = self._order_parameter(y)
        batch, ptr, n = self.graph.batch, self.graph.ptr, self.graph.num_nodes
        row_nnz = self.sizes[batch]
        crow = torch.cat([row_nnz.new_zeros(1), torch.cumsum(row_nnz, 0)])
        rows = torch.repeat_interleave(torch.arange(n, device=y.device), row_nnz)
        cols = ptr[batch[rows]] + torch.arange(rows.numel(), device=y.device) - crow[rows]
        values = scale[rows] * (cos[rows] * cos[cols] + sin[rows] * sin[cols])
        diag = -scale * (cos * sums[:, 1] + sin * sums[:, 0] - 1.0)
        values = torch.where(rows == cols, diag[rows], values)
        return torch.sparse_csr_tensor(crow, cols, values, (n, n), check_invariants=False)

    @staticmethod
    def sample_coefficients(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: KuramotoRanges = NGS_KURAMOTO,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> dict[str, Tensor]:
        """`{"omega": (N,), "coupling": (B,)}` drawn from `ranges` (default NGS's)."""
        graph, gen = check_graph(graph), as_generator(generator)
        omega = normal_clipped(graph.num_nodes, ranges.omega_clip, gen, dtype, graph.device)
        return {
            "omega": omega,
            "coupling": uniform(graph.num_graphs, ranges.coupling, gen, dtype, graph.device),
        }

    @staticmethod
    def initial_state(
        graph: Graph, generator: torch.Generator | int | None = None, *, dtype: torch.dtype = torch.float64
    ) -> Tensor:
        """`(N,)` phases `θ_i(0) ~ U[-π, π]` (NGS)."""
        return _initial_phases(check_graph(graph), generator, dtype)
