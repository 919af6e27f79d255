"""SIS and SIR epidemics on graphs in the individual-based mean-field (quenched mean-field, NIMFA) form.

Each node carries probabilities, not a stochastic state: `ρ_i` is the probability that node `i` is infected,
and neighbours are treated as independent (the closure of Van Mieghem's N-intertwined mean-field
approximation). Neither NGS nor GNRK has an epidemic system (ngs_gnrk.md §1.8); the sampling ranges below are
fastsim's own choice, not a paper's: rates of order 0.1-0.5 put most samples above the epidemic threshold
`β/γ > 1/λ_max(A)` of graphs with mean degree 2-6.
"""

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
    random_fraction_mask,
    uniform,
)
from fastsim.dynamics.jacobian import node_block_csr, sparse_csr
from fastsim.graph import Graph
from fastsim.graphs.random import as_generator


@dataclasses.dataclass(frozen=True)
class EpidemicRanges:
    """Sampling ranges (fastsim's choice, see the module docstring): per-edge infection rate
    `β ~ U[infection]`, per-node recovery rate `γ ~ U[recovery]`, and a fraction `~ U[infected_fraction]` of
    each graph's nodes infected at t = 0."""

    infection: Range = (0.1, 0.5)
    recovery: Range = (0.1, 0.5)
    infected_fraction: Range = (0.05, 0.2)

    def __post_init__(self) -> None:
        check_range(self.infection, "infection", lower=0.0)
        check_range(self.recovery, "recovery", lower=0.0)
        if check_range(self.infected_fraction, "infected_fraction", lower=0.0)[1] > 1.0:
            raise ValueError(f"infected_fraction must lie in [0, 1]; got {self.infected_fraction}")


EPIDEMIC = EpidemicRanges()


class _Epidemic(nn.Module):
    """Shared coefficient handling: per-edge infection rate `β (E,)`, per-node recovery rate `γ (N,)`."""

    def __init__(self, graph: Graph, infection_rate: Tensor, recovery_rate: Tensor) -> None:
        super().__init__()
        self.graph = check_graph(graph)
        self.register_buffer(
            "infection_rate", check_coefficient(infection_rate, "infection_rate", (graph.num_edges,), graph)
        )
        self.register_buffer(
            "recovery_rate", check_coefficient(recovery_rate, "recovery_rate", (graph.num_nodes,), graph)
        )

    def _force(self, infected: Tensor) -> Tensor:
        """Infection pressure `λ_i = Σ_{j→i} β_ji ρ_j`, `(N,)`."""
        return ops.spmm(self.graph, infected, weight=self.infection_rate.to(infected.dtype))

    @staticmethod
    def sample_coefficients(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: EpidemicRanges = EPIDEMIC,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> dict[str, Tensor]:
        """`{"infection_rate": (E,), "recovery_rate": (N,)}`, `β` symmetric per undirected edge."""
        graph, gen = check_graph(graph), as_generator(generator)
        beta = per_edge_uniform(graph, ranges.infection, gen, dtype)
        gamma = uniform(graph.num_nodes, ranges.recovery, gen, dtype, graph.device)
        return {"infection_rate": beta, "recovery_rate": gamma}

    @staticmethod
    def _seeds(
        graph: Graph, generator: torch.Generator | int | None, ranges: EpidemicRanges, dtype: torch.dtype
    ) -> Tensor:
        graph, gen = check_graph(graph), as_generator(generator)
        fractions = uniform(graph.num_graphs, ranges.infected_fraction, gen, torch.float64, torch.device("cpu"))
        return random_fraction_mask(graph, fractions, gen).to(dtype)


class SIS(_Epidemic):
    r"""SIS individual-based mean-field: `dρ_i/dt = -γ_i ρ_i + (1 - ρ_i) Σ_{j→i} β_ji ρ_j`, state `ρ (N,)`.

    With `β_ji = β A_ji` and `γ_i = γ` this is NIMFA's `dρ_i/dt = -γ ρ_i + β (1 - ρ_i) Σ_j A_ij ρ_j`.
    `[0, 1]^N` is invariant. Ranges: `EpidemicRanges` (fastsim's own, no paper source).

    Args:
        graph: the (batched) graph, infection travels along `j -> i`.
        infection_rate: `(E,)` per-edge `β` in CSR order.
        recovery_rate: `(N,)` per-node `γ`.
    """

    def forward(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`dρ/dt`, shape `(N,)`."""
        rho = check_state(y, "y", (self.graph.num_nodes,))
        return -self.recovery_rate.to(y.dtype) * rho + (1.0 - rho) * self._force(rho)

    def jacobian(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`(N, N)` sparse CSR: `J_ij = β_ji (1 - ρ_i)`, `J_ii = -γ_i - Σ_j β_ji ρ_j` (plus self-loop
        terms)."""
        rho = check_state(y, "y", (self.graph.num_nodes,))
        graph, nodes = self.graph, torch.arange(self.graph.num_nodes, device=y.device)
        edge = self.infection_rate.to(y.dtype) * (1.0 - rho[graph.dst])
        diag = -self.recovery_rate.to(y.dtype) - self._force(rho)
        rows, cols = torch.cat([graph.dst, nodes]), torch.cat([graph.src, nodes])
        return sparse_csr(rows, cols, torch.cat([edge, diag]), graph.num_nodes)

    @staticmethod
    def initial_state(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: EpidemicRanges = EPIDEMIC,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """`(N,)`: `ρ = 1` on a random fraction `~ U[infected_fraction]` of each graph's nodes, 0
        elsewhere."""
        return _Epidemic._seeds(graph, generator, ranges, dtype)


class SIR(_Epidemic):
    r"""SIR individual-based mean-field, state `(N, 3)` = `(S_i, I_i, R_i)` probabilities per node:

        dS_i/dt = -S_i λ_i,   dI_i/dt = S_i λ_i - γ_i I_i,   dR_i/dt = γ_i I_i,   λ_i = Σ_{j→i} β_ji I_j.

    `S_i + I_i + R_i` is conserved at every node. Ranges: `EpidemicRanges` (fastsim's own, no paper source).

    Args:
        graph: the (batched) graph, infection travels along `j -> i`.
        infection_rate: `(E,)` per-edge `β` in CSR order.
        recovery_rate: `(N,)` per-node `γ`.
    """

    def forward(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`d(S, I, R)/dt`, shape `(N, 3)`."""
        check_state(y, "y", (self.graph.num_nodes, 3))
        s, i = y[:, 0], y[:, 1]
        new = s * self._force(i)
        recovered = self.recovery_rate.to(y.dtype) * i
        return torch.stack([-new, new - recovered, recovered], dim=1)

    def jacobian(self, t: Tensor | float, y: Tensor) -> Tensor:
        """`(3N, 3N)` sparse CSR for the state flattened row-major (`S_i, I_i, R_i` at `3i, 3i+1, 3i+2`)."""
        check_state(y, "y", (self.graph.num_nodes, 3))
        graph, n = self.graph, self.graph.num_nodes
        s, force, gamma = y[:, 0], self._force(y[:, 1]), self.recovery_rate.to(y.dtype)
        edge = self.infection_rate.to(y.dtype) * s[graph.dst]  # ∂(S_i λ_i)/∂I_j for the edge j -> i
        source, target = 3 * graph.src + 1, 3 * graph.dst  # ∂Ṡ_i/∂I_j = −edge, ∂İ_i/∂I_j = +edge
        coupling = (torch.cat([target, target + 1]), torch.cat([source, source]), torch.cat([-edge, edge]))
        return node_block_csr(coupling, [(0, 0, -force), (1, 0, force), (1, 1, -gamma), (2, 1, gamma)], n, 3)

    @staticmethod
    def initial_state(
        graph: Graph,
        generator: torch.Generator | int | None = None,
        ranges: EpidemicRanges = EPIDEMIC,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """`(N, 3)`: `(S, I, R) = (0, 1, 0)` on a random fraction `~ U[infected_fraction]` of each graph's
        nodes, `(1, 0, 0)` elsewhere."""
        infected = _Epidemic._seeds(graph, generator, ranges, dtype)
        return torch.stack([1.0 - infected, infected, torch.zeros_like(infected)], dim=1)
