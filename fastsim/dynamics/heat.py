"""Linear heat diffusion on a graph (NGS and GNRK "heat", ngs_gnrk.md §1.4 and §2.4)."""

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
    per_edge_uniform,
    random_fraction_mask,
    uniform,
)
from fastsim.dynamics.jacobian import sparse_csr
from fastsim.graph import Graph
from fastsim.graphs.random import as_generator


@dataclasses.dataclass(frozen=True)
class HeatRanges:
    """Sampling ranges: per-edge diffusivity `D_ji ~ U[diffusivity]`; the fraction `h ~ U[hot_fraction]` of
    the nodes of each graph starts at T = 1, the rest at T = 0."""

    diffusivity: Range = (0.1, 2.0)
    hot_fraction: Range = (0.2, 0.8)

    def __post_init__(self) -> None:
        check_range(self.diffusivity, "diffusivity", lower=0.0)
        lo, hi = check_range(self.hot_fraction, "hot_fraction", lower=0.0)
        if hi > 1.0:
            raise ValueError(f"hot_fraction must lie in [0, 1]; got {self.hot_fraction}")


NGS_HEAT = HeatRanges()  # NGS simulation.txt: --dissipation 0.1 2.0 --hot_ratio 0.2 0.8
GNRK_HEAT = HeatRanges(diffusivity=(0.1, 1.0), hot_fraction=(0.1, 0.9))  # GNRK README (ngs_gnrk.md §2.4)


class HeatDiffusion(nn.Module):
    r"""Heat diffusion `dT/dt = -L_D T` with the in-edge weighted Laplacian.

    `dT_i/dt = Σ_{j→i} D_ji (T_j - T_i)`, i.e. `L_D = diag(d_in) - W` with `W[i, j] = Σ_{e: j→i} D_e` and
    `d_in[i] = Σ_{e: j→i} D_e`. Heat flows into `i` along its incoming edges. On an undirected graph stored as
    both directions with symmetric `D` this is NGS/GNRK's `-L T` (symmetric, `Σ_i T_i` conserved); on a
    directed graph `L_D` is the in-degree Laplacian and the total is not conserved. Self-loops contribute
    nothing.

    Coefficient ranges (sample_coefficients): NGS `D ~ U[0.1, 2.0]`, GNRK `D ~ U[0.1, 1.0]` per edge.

    Args:
        graph: the (batched) graph, edges `j -> i`.
        diffusivity: `(E,)` per-edge `D` in CSR order (`graph.to_csr_order` converts the caller's order).

    Raises:
        TypeError, ValueError: wrong type, shape or device of `diffusivity` (the message names it).
    """

    def __init__(self, graph: Graph, diffusivity: Tensor) -> None:
        super().__init__()
        self.graph = check_graph(graph)
        self.register_buffer("diffusivity", check_coefficient(diffusivity, "diffusivity", (graph.num_edges,), graph))

    def _check(self, y: object) -> Tensor:
        n = self.graph.num_nodes
        if not isinstance(y, Tensor) or not y.is_floating_point() or y.dim() not in (1, 2) or y.shape[0] != n:
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"y must be a floating tensor of shape (N,) or (N, F) with N = {n}; got {got}")
        return y

    def forward(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`dT/dt` for temperatures `y` of shape `(N,)` or `(N, F)` (F independent fields)."""
        x = self._check(y).unsqueeze(-1) if y.dim() == 1 else self._check(y)
        weight = self.diffusivity.to(y.dtype)
        # One SpMM gives both Σ_j D_ji T_j and the weighted in-degree d_in (the column of ones).
        agg = ops.spmm(self.graph, torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1), weight=weight)
        out = agg[:, :-1] - agg[:, -1:] * x
        return out.squeeze(-1) if y.dim() == 1 else out

    def jacobian(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`-L_D` as an `(n, n)` sparse CSR tensor, `n = y.numel()` (state flattened row-major
        for `(N, F)`)."""
        n, f = self.graph.num_nodes, 1 if self._check(y).dim() == 1 else y.shape[1]
        weight = self.diffusivity.to(y.dtype)
        degree = ops.spmm(self.graph, y.new_ones(n), weight=weight)
        feat = torch.arange(f, device=y.device)
        rows = (self.graph.dst[:, None] * f + feat).reshape(-1)
        cols = (self.graph.src[:, None] * f + feat).reshape(-1)
        diag = torch.arange(n * f, device=y.device)
        values = torch.cat([weight.repeat_interleave(f), -degree.repeat_interleave(f)])
        return sparse_csr(torch.cat([rows, diag]), torch.cat([cols, diag]), values, n * f)

    @staticmethod
    def sample_coefficients(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: HeatRanges = NGS_HEAT,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> dict[str, Tensor]:
        """`{"diffusivity": (E,)}`, `D ~ U[ranges.diffusivity]`, one draw per undirected edge (symmetric)."""
        return {"diffusivity": per_edge_uniform(check_graph(graph), ranges.diffusivity, generator, dtype)}

    @staticmethod
    def initial_state(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: HeatRanges = NGS_HEAT,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """`(N,)` hot spots: per graph, `floor(N_b h)` random nodes at 1 and the rest at 0,
        `h ~ U[hot_fraction]`."""
        graph, gen = check_graph(graph), as_generator(generator)
        fractions = uniform(graph.num_graphs, ranges.hot_fraction, gen, torch.float64, torch.device("cpu"))
        return random_fraction_mask(graph, fractions, gen).to(dtype)
