"""Seeded inputs of the message-passing benchmarks: graph sizes, random graphs and the tensors of one case.

`Inputs` builds each tensor on first use and caches it, so a case pays only for what its implementations read,
and every implementation reads the same tensors. `bench.message_passing_cases` re-exports these names.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from functools import cached_property

import torch

import fastsim
from bench import message_passing_peers as peers

SMOKE = os.environ.get("FASTSIM_BENCH_SMOKE", "0") not in ("", "0")
GRAPH_KINDS = ("erdos_renyi", "power_law")
FEATURES = (1, 16, 64)
GN_HIDDEN = 64
POWER_LAW_GAMMA = 2.5  # in-degree tail P(k) ∝ k^-γ


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Graph size: `num_nodes` N and `num_edges` E."""

    num_nodes: int
    num_edges: int


def sizes_for(device: str, smoke: bool) -> Sizes:
    """N=2e3, E=2e4 in smoke mode; else N=1e5, E=1e6 on CPU and N=1e6, E=1e7 on CUDA."""
    if smoke:
        return Sizes(2_000, 20_000)
    return Sizes(1_000_000, 10_000_000) if torch.device(device).type == "cuda" else Sizes(100_000, 1_000_000)


def synchronize(device: str) -> None:
    """Wait for queued kernels on `device` (no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@functools.lru_cache(maxsize=2)
def build_graph(kind: str, sizes: Sizes, device: str, seed: int = 0) -> fastsim.Graph:
    """A seeded random multigraph with float32 edge weights in [0, 1); sources are uniform.

    "erdos_renyi": destinations uniform. "power_law": Chung–Lu style, the destination of each edge is the node
    of rank r with probability ∝ r^(-1/(γ-1)), γ = POWER_LAW_GAMMA, so in-degrees follow a power law with
    exponent γ; ranks are shuffled over node ids so the hubs are not clustered at low indices.
    """
    n, e = sizes.num_nodes, sizes.num_edges
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=gen)
    if kind == "erdos_renyi":
        dst = torch.randint(0, n, (e,), generator=gen)
    elif kind == "power_law":
        rank_weight = torch.arange(1, n + 1, dtype=torch.float64).pow(-1.0 / (POWER_LAW_GAMMA - 1.0))
        cdf = rank_weight.cumsum(0)
        rank = torch.searchsorted(cdf, torch.rand(e, generator=gen, dtype=torch.float64) * cdf[-1])
        dst = torch.randperm(n, generator=gen)[rank.clamp_(max=n - 1)]
    else:
        raise ValueError(f"kind must be one of {GRAPH_KINDS}; got {kind!r}")
    weight = torch.rand(e, generator=gen)
    edge_index = torch.stack([src, dst]).to(device)
    return fastsim.Graph.from_edge_index(edge_index, n, edge_weight=weight.to(device))


@dataclasses.dataclass(frozen=True)
class GNParams:
    """The GN edge MLP `[x_src, x_dst] → Linear(2H→H) → GELU → Linear(H→O) → GELU` and the loss weights."""

    x: torch.Tensor  # (N, H) node features, requires grad
    w1: torch.Tensor  # (H, 2H): [W_src | W_dst]
    b1: torch.Tensor  # (H,)
    w2: torch.Tensor  # (O, H)
    b2: torch.Tensor  # (O,)
    upstream: torch.Tensor  # (N, O): loss = Σ out ⊙ upstream

    @property
    def leaves(self) -> tuple[torch.Tensor, ...]:
        return self.x, self.w1, self.b1, self.w2, self.b2


class Inputs:
    """The tensors of one case, each built on first use (seeded) and cached; float32 on `device`."""

    def __init__(self, graph_kind: str, sizes: Sizes, features: int, device: str = "cpu", seed: int = 0):
        self.graph_kind, self.sizes, self.features, self.device, self.seed = (
            graph_kind,
            sizes,
            features,
            device,
            seed,
        )
        self.references: dict[str, object] = {}  # op name -> fastsim result, filled by `check`

    def _randn(self, *shape: int, salt: int) -> torch.Tensor:
        gen = torch.Generator(self.device).manual_seed(1000 * self.seed + salt)
        return torch.randn(shape, generator=gen, device=self.device)

    def build(self, names: tuple[str, ...]) -> Inputs:
        """Build the named inputs now (outside any timed region)."""
        for name in names:
            getattr(self, name)
        return self

    @cached_property
    def graph(self) -> fastsim.Graph:
        return build_graph(self.graph_kind, self.sizes, self.device, self.seed)

    @cached_property
    def x(self) -> torch.Tensor:
        return self._randn(self.sizes.num_nodes, self.features, salt=1)

    @cached_property
    def weight(self) -> torch.Tensor:
        return self.graph.edge_weight

    @cached_property
    def edge_index(self) -> torch.Tensor:
        """`(2, E)` [src; dst] in CSR order, for PyG."""
        return torch.stack([self.graph.src, self.graph.dst])

    @cached_property
    def csr(self) -> torch.Tensor:
        """The weighted adjacency as a torch CSR tensor: row i holds the edges into i, columns are sources."""
        return peers.csr_tensor(self.graph, self.weight)

    @cached_property
    def csr_pattern(self) -> torch.Tensor:
        return peers.csr_tensor(self.graph, torch.ones_like(self.weight))

    @cached_property
    def u(self) -> torch.Tensor:
        return self._randn(self.sizes.num_nodes, self.features, salt=2)

    @cached_property
    def v(self) -> torch.Tensor:
        return self._randn(self.sizes.num_nodes, self.features, salt=3)

    @cached_property
    def edge_values(self) -> torch.Tensor:
        """`(E, F)` per-edge values, segmented by destination (CSR order)."""
        return self._randn(self.sizes.num_edges, self.features, salt=4)

    @cached_property
    def gn(self) -> GNParams:
        h, n = self.features, self.sizes.num_nodes

        def uniform(*shape: int, fan_in: int, salt: int) -> torch.Tensor:  # nn.Linear's default init
            gen = torch.Generator(self.device).manual_seed(1000 * self.seed + salt)
            bound = 1.0 / math.sqrt(fan_in)
            t = torch.rand(shape, generator=gen, device=self.device) * (2 * bound) - bound
            return t.requires_grad_()

        x = self._randn(n, h, salt=5).requires_grad_()
        w1, b1 = uniform(h, 2 * h, fan_in=2 * h, salt=6), uniform(h, fan_in=2 * h, salt=7)
        w2, b2 = uniform(h, h, fan_in=h, salt=8), uniform(h, fan_in=h, salt=9)
        return GNParams(x, w1, b1, w2, b2, self._randn(n, h, salt=10))
