"""Graph Neural Runge-Kutta (GNRK, ngs_gnrk.md §2): one shared GNN right-hand side `f_θ` inside an explicit RK step.

With a tableau `(a, b)` and a step `Δt` per node, the stages are `k_i = f_θ(x + Δt Σ_{j<i} a_ij k_j)` and the model
returns the averaged slope `Σ_i b_i k_i / Σ_i b_i`; the caller advances `x ← x + Δt · slope`. `f_θ` is autonomous
(no `t`, no `Δt` input), so the tableau and the step can change at test time without retraining. Stage states
are combined by the fused kernel `fastsim.ops.rk_stage` (`Δt` per node is its per-row step).

Approximators (`f_θ`), as in the reference code:

- `GraphApproximator`: heat, Kuramoto, coupled Rössler, one message-passing round
  `e'_ji = φ_e([h_j, h_i, enc(e_ji)])`, `ē_i = Σ_j e'_ji`, `w_i = φ_v([ē_i, g])`, `out = Dec(w)`, with per-feature
  encoders `MLP(1, d, d)` (Kuramoto encodes `sin θ` and `cos θ` and concatenates the `ω` embedding; Rössler
  feeds the `(a, b, c)` embedding to `φ_v`).
- `BurgersApproximator`: the two-round network for 2-D Burgers on a periodic, possibly non-uniform grid graph
  (directed +x/+y edges with spacing vectors), whose spacing-aware encoders let one model run on any grid.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from fastsim import ops
from fastsim.graph import Graph
from fastsim.models.blocks import MLP, EdgeBlock, _full_precision
from fastsim.solvers.stages import stage_combination
from fastsim.solvers.tableaux import TABLEAUX, Tableau

__all__ = [
    "GNRK",
    "SYSTEM_NAMES",
    "TABLEAU_ALIASES",
    "BurgersApproximator",
    "GraphApproximator",
    "resolve_tableau",
]

# GNRK's names for its tableaux: RK1 is Euler, RK2 Heun's trapezoid, RK4 the classical method.
TABLEAU_ALIASES = {"rk1": "euler", "rk2": "heun"}
SYSTEM_NAMES = ("burgers", "heat", "kuramoto", "rossler")


def resolve_tableau(tableau: str | Tableau) -> Tableau:
    """The `Tableau` for a name (`rk1`/`euler`, `rk2`/`heun`, `rk4`, or any key of `TABLEAUX`) or a tableau object.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
        TypeError: neither a string nor a `Tableau`.
    """
    if isinstance(tableau, Tableau):
        return tableau
    if not isinstance(tableau, str):
        raise TypeError(f"tableau must be a name or a Tableau; got {type(tableau).__name__}")
    name = TABLEAU_ALIASES.get(tableau.lower(), tableau.lower())
    if name not in TABLEAUX:
        valid = sorted({*TABLEAU_ALIASES, *TABLEAUX})
        raise ValueError(f"unknown tableau {tableau!r}; valid names: {', '.join(valid)}")
    return TABLEAUX[name]


def _check_state(x: object, num_nodes: int, width: int | None) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 2:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating (N, F) state tensor; got {got}")
    if x.shape[0] != num_nodes or (width is not None and x.shape[1] != width):
        raise ValueError(f"x must have shape ({num_nodes}, {width or 'F'}) for this graph; got {tuple(x.shape)}")
    return x


def _check_dt(dt: object, num_nodes: int, x: Tensor) -> Tensor:
    """`dt` as a `(N,)` per-node step of `x`'s dtype: from a number, a `(N,)` tensor or a `(N, 1)` column."""
    if isinstance(dt, (int, float)) and not isinstance(dt, bool):
        dt = torch.full((num_nodes,), float(dt), dtype=x.dtype, device=x.device)
    if not isinstance(dt, Tensor) or not dt.is_floating_point():
        raise TypeError(f"dt must be a number or a floating tensor; got {type(dt).__name__}")
    dt = dt.reshape(-1) if dt.dim() == 2 and dt.shape[1] == 1 else dt
    if dt.shape != (num_nodes,):
        raise ValueError(f"dt must be a number or a ({num_nodes},) per-node tensor; got {tuple(dt.shape)}")
    if not torch.compiler.is_compiling() and not bool((dt > 0).all() and torch.isfinite(dt).all()):
        raise ValueError("dt must be finite and > 0 on every node")
    return dt.to(x.dtype)


class FeatureEncoder(nn.Module):
    """Encodes each of `num_features` scalar columns by `MLP(1, d, d)` (GELU after both layers) and concatenates.

    Args:
        num_features: number of scalar columns. dim: embedding width d per column.
        shared: one MLP for every column (the reference's `DuplicatedEncoder`) instead of one per column.
    """

    def __init__(self, num_features: int, dim: int, *, shared: bool = False) -> None:
        super().__init__()
        self.num_features = num_features
        count = 1 if shared else num_features
        self.mlps = nn.ModuleList(MLP([1, dim, dim], final_activation=True) for _ in range(count))

    def forward(self, values: Tensor) -> Tensor:
        """`(M, num_features)` → `(M, num_features · d)`."""
        if len(self.mlps) == 1:  # one MLP call on all columns stacked as rows: (M·F, 1) → (M·F, d) → (M, F·d)
            return self.mlps[0](values.reshape(-1, 1)).view(values.shape[0], -1)
        return torch.cat([mlp(c) for mlp, c in zip(self.mlps, values.split(1, dim=1))], dim=1)


class GraphApproximator(nn.Module):
    """One message-passing round `f_θ` for ODEs on graphs (heat, Kuramoto, Rössler; module docstring).

    Args:
        state_dim: state components per node. node_features / edge_features / glob_features: scalar coefficients
            per node, edge and graph. dim: embedding width per scalar. edge_hidden / node_hidden: hidden widths of
            φ_e / φ_v. periodic_state: encode `(sin x, cos x)` instead of `x` (phases, Kuramoto).
    """

    def __init__(
        self,
        state_dim: int,
        node_features: int,
        edge_features: int,
        glob_features: int,
        *,
        dim: int = 16,
        edge_hidden: int = 64,
        node_hidden: int = 64,
        periodic_state: bool = False,
    ) -> None:
        super().__init__()
        if edge_features < 1:
            raise ValueError("a GraphApproximator needs at least one edge feature")
        self.state_dim, self.periodic_state = state_dim, periodic_state
        self.counts = (node_features, edge_features, glob_features)
        state_columns = 2 * state_dim if periodic_state else state_dim
        self.state_encoder = FeatureEncoder(state_columns, dim)
        self.node_encoder = FeatureEncoder(node_features, dim) if node_features else None
        self.edge_encoder = FeatureEncoder(edge_features, dim)
        self.glob_encoder = FeatureEncoder(glob_features, dim) if glob_features else None
        node_dim, edge_dim = (state_columns + node_features) * dim, edge_features * dim
        self.phi_e = EdgeBlock(node_dim, edge_dim, 0, edge_hidden, edge_dim)
        self.phi_v = MLP([edge_dim + glob_features * dim, node_hidden, node_dim], final_activation=True)
        self.decoder = MLP([node_dim, node_dim, state_dim])

    def prepare(self, graph: Graph, node: Tensor | None, edge: Tensor, glob: Tensor | None) -> dict[str, Tensor]:
        """The state-independent embeddings, computed once per RK step and shared by its stages.

        Args: node `(N, node_features)`, edge `(E, edge_features)` in CSR order, glob `(B, glob_features)`.
        """
        context = {"edge": self.edge_encoder(edge)}
        if self.node_encoder is not None:
            context["node"] = self.node_encoder(node)
        if self.glob_encoder is not None:
            context["glob"] = self.glob_encoder(glob)[graph.batch]
        return context

    def forward(self, graph: Graph, x: Tensor, context: Mapping[str, Tensor]) -> Tensor:
        """`dx/dt ≈ f_θ(x)`, `(N, state_dim)`."""
        features = torch.cat([x.sin(), x.cos()], dim=1) if self.periodic_state else x
        h = self.state_encoder(features)
        if "node" in context:
            h = torch.cat([h, context["node"]], dim=1)
        aggregated = self.phi_e(graph, h, context["edge"])
        w = self.phi_v(torch.cat([aggregated, context["glob"]], dim=1) if "glob" in context else aggregated)
        return self.decoder(w)


class _TwoLayer(nn.Module):
    """`GELU(W2 · GELU(W1 · [inputs] + b1) + b2)` (the reference's non-final `MLP(in, hidden, out)`), kept as two
    Linears so that the first can be applied block by block: blocks that do not depend on the state are
    projected once per RK step (`project`) and only the state-dependent blocks per stage."""

    def __init__(self, sizes: tuple[int, ...], hidden: int, out: int) -> None:
        super().__init__()
        self.sizes = sizes
        self.first, self.second = nn.Linear(sum(sizes), hidden), nn.Linear(hidden, out)

    def blocks(self) -> tuple[Tensor, ...]:
        """The first Linear's weight split by input block."""
        return self.first.weight.split(self.sizes, dim=1)

    def project(self, block: int, values: Tensor, *, bias: bool = True) -> Tensor:
        """`values · W1[block]ᵀ` (+ b1)."""
        weight = self.blocks()[block]
        return torch.addmm(self.first.bias, values, weight.T) if bias else values @ weight.T

    def finish(self, pre: Tensor) -> Tensor:
        """The rest of the MLP from the first layer's pre-activation `(..., hidden)`; without gradients `pre` is
        overwritten."""
        flat = _gelu(pre).reshape(-1, pre.shape[-1])
        return _gelu(torch.addmm(self.second.bias, flat, self.second.weight.T)).view(*pre.shape[:-1], -1)


def _gelu(x: Tensor) -> Tensor:
    """GELU (`fastsim.ops.gelu`); off the CPU in place on the intermediate `x` when no gradient is recorded
    (autograd needs the input)."""
    return torch.ops.aten.gelu_(x) if not torch.is_grad_enabled() and x.device.type != "cpu" else ops.gelu(x)


@functools.lru_cache(maxsize=8)
def _side_pairs(num_nodes: int, device: torch.device) -> Graph:
    """Round 2 of the Burgers approximator as a graph for the fused edge op: row (i, a) of ē1 (a = 0: ē1⁺, 1: ē1⁻)
    receives the two edges b of node i on the other side (a = 0: incoming, rows 2i + b; a = 1: outgoing,
    rev_perm[2i + b]). It depends on the grid's size only, so it is built once per size and device (building it
    sorts and checks ≈ 4·N indices, ≈ 3 % of a training step on a 100×100 grid)."""
    n = num_nodes
    indptr = torch.arange(0, 4 * n + 1, 2, device=device)
    return Graph.from_csr(indptr, torch.arange(2 * n, device=device).repeat_interleave(2), 2 * n)


class BurgersApproximator(nn.Module):
    """GNRK's two-round `f_θ` for 2-D Burgers on a periodic grid graph (ngs_gnrk.md §2.3).

    With `row → col` the +x/+y grid edges and spacing vectors `s_e` (`[dx, 0]` or `[0, dy]`):
    `e1 = φe1([h_row, h_col, enc2(1/s)])`, `ē1⁺ = Σ_row e1`, `ē1⁻ = Σ_col e1`, `w1 = φv1([ē1⁺, ē1⁻, enc2(1/S)])`
    (`S` the sum of a node's outgoing and incoming spacings per axis), `ē2⁺ = Σ_col φe2([enc1(s), ē1⁺[col]])`,
    `ē2⁻ = Σ_row φe2([enc1(s), ē1⁻[row]])`, `w2 = φv2([ē2⁺, ē2⁻, enc2(1/S)])`, `out = Dec(φ_ext([h, w2, g, w1]))`;
    `1/0` is read as 0. Encoders are shared over the columns of their input (u and v; the two spacing axes).
    Every φ is a two-layer MLP with GELU after both layers; the decoder has none after its last layer.

    Speed: the spacing and ν terms of every first layer are projected once per rollout or forward (`prepare`);
    the first edge MLP's node blocks are projected per node, not per edge; both edge rounds run through the fused
    edge op (`fastsim.ops.gn_edge_aggregate`: add, GELU, second Linear, GELU and sum without an (E, hidden)
    tensor), the second on a graph whose rows are (node, side) pairs, each receiving that node's two edges on
    the other side; every node of a grid graph has exactly two incoming and two outgoing edges, so the outgoing
    sums of round 1 are sums of two rows.

    Args:
        dim: embedding width per scalar (8). hidden: hidden width of φe*, φv* and φ_ext (32).
        nu_copies: 1 encodes ν once (10,882 parameters with the defaults, the paper's count); 2 repeats ν as the
            released code does (11,138 parameters).
    """

    def __init__(self, dim: int = 8, hidden: int = 32, nu_copies: int = 1) -> None:
        super().__init__()
        if nu_copies not in (1, 2):
            raise ValueError(f"nu_copies must be 1 (the paper's model) or 2 (the released code); got {nu_copies}")
        self.nu_copies = nu_copies
        self.state_encoder = FeatureEncoder(2, dim, shared=True)
        self.spacing_encoder = FeatureEncoder(2, dim, shared=True)
        self.nu_encoder = FeatureEncoder(1, dim)
        self.inverse_encoder = FeatureEncoder(2, dim, shared=True)
        pair = 2 * dim
        self.phi_e1 = _TwoLayer((pair, pair, pair), hidden, pair)  # [h_row, h_col, enc2(1/s)]
        self.phi_v1 = _TwoLayer((pair, pair, pair), hidden, pair)  # [ē1⁺, ē1⁻, enc2(1/S)]
        self.phi_e2 = _TwoLayer((pair, pair), hidden, pair)  # [enc1(s), ē1 at the far end]
        self.phi_v2 = _TwoLayer((pair, pair, pair), hidden, pair)  # [ē2⁺, ē2⁻, enc2(1/S)]
        self.phi_ext = _TwoLayer((pair, pair, nu_copies * dim, pair), hidden, pair)  # [h, w2, g, w1]
        self.decoder = MLP([pair, pair, 2])

    def prepare(self, graph: Graph, nu: Tensor) -> dict[str, object]:
        """The state-independent parts of every first layer, once per RK step (or rollout), in the grid layout.

        Every node of a grid graph has exactly two incoming edges (CSR rows `2i, 2i+1`) and two outgoing ones
        (`rev_perm[2i], rev_perm[2i+1]`); the second round's edge terms are laid out in that order for its
        `pairs` graph.

        Args: graph: grid graph with spacing `edge_attr (E, 2)` (CSR order, `check_grid_graph`). nu: `(B,)`
            viscosity per graph.
        """
        n = graph.num_nodes
        spacing = graph.edge_attr.to(nu.dtype)
        inv_spacing = torch.where(spacing > 0, 1.0 / spacing, torch.zeros_like(spacing))
        incoming = spacing.view(n, 2, 2).sum(1)
        outgoing = spacing[graph.rev_perm].view(n, 2, 2).sum(1)
        inv_double = self.inverse_encoder(1.0 / (incoming + outgoing))  # > 0 on every axis of a validated grid
        spacing_term = self.phi_e2.project(0, self.spacing_encoder(spacing))
        spacing_sides = [spacing_term.view(n, 2, -1), spacing_term[graph.rev_perm].view(n, 2, -1)]
        nu_emb = self.nu_encoder(nu[:, None]).repeat(1, self.nu_copies)
        return {
            "rev_perm": graph.rev_perm,
            "e1": self.phi_e1.project(2, self.inverse_encoder(inv_spacing)),
            "pairs": _side_pairs(n, spacing.device),
            "pairs_dst": spacing.new_zeros(2 * n, self.phi_e2.first.out_features),  # rows have no destination term
            "e2": torch.stack(spacing_sides, 1).view(4 * n, -1),
            "v1": self.phi_v1.project(2, inv_double),
            "v2": self.phi_v2.project(2, inv_double),
            "ext": self.phi_ext.project(2, nu_emb)[graph.batch],
        }

    def fused_weights(self) -> list[Tensor]:
        """The weights in the order of `torch.ops.fastsim.gnrk_burgers_f` (csrc/message_passing/gnrk_burgers_cpu.cpp):
        every Linear's weight transposed, the first edge MLP's second weight as it is."""
        pair = self.phi_e1.second.out_features
        encoder, decoder = self.state_encoder.mlps[0], self.decoder
        w_row, w_col, _ = self.phi_e1.blocks()
        w_h, w_w2, _, w_w1 = self.phi_ext.blocks()
        out = [encoder[0].weight.T, encoder[0].bias, encoder[2].weight.T, encoder[2].bias, w_row.T, w_col.T]
        out += [self.phi_e1.second.weight, self.phi_e1.second.bias]
        firsts = [
            self.phi_v1.first.weight[:, : 2 * pair],
            self.phi_e2.blocks()[1],
            self.phi_v2.first.weight[:, : 2 * pair],
        ]
        for first, mlp in zip(firsts, (self.phi_v1, self.phi_e2, self.phi_v2)):
            out += [first.T, mlp.second.weight.T, mlp.second.bias]
        out += [torch.cat([w_h, w_w2, w_w1], 1).T, self.phi_ext.second.weight.T, self.phi_ext.second.bias]
        out += [decoder[0].weight.T, decoder[0].bias, decoder[2].weight.T, decoder[2].bias]
        return [t.contiguous() for t in out]

    def forward(self, graph: Graph, x: Tensor, context: Mapping[str, object]) -> Tensor:
        """`(∂u/∂t, ∂v/∂t) ≈ f_θ(u, v)`, `(N, 2)`.

        Without gradients on the CPU (rollouts, evaluation) the whole evaluation is one compiled op
        (`torch.ops.fastsim.gnrk_burgers_f`: only round 1 goes through memory, the rest runs per tile of nodes in
        cache); with gradients, or on CUDA, the tensor ops below run.
        """
        if x.device.type == "cpu" and not torch.is_grad_enabled() and x.dtype == self.decoder[0].weight.dtype:
            terms = [context[k] for k in ("e1", "e2", "v1", "v2", "ext")]
            return torch.ops.fastsim.gnrk_burgers_f.default(
                x.contiguous(), graph.indptr, graph.src, context["rev_perm"], *terms, self.fused_weights()
            )
        n, pair = graph.num_nodes, self.phi_e1.second.out_features
        h = self.state_encoder(x)
        # round 1: e1 on the edges j → i, fused: the sum over each node's incoming edges and the messages per edge
        w_row, w_col, _ = self.phi_e1.blocks()
        e1_in, e1 = ops.gn_edge_aggregate(
            graph, h @ w_row.T, h @ w_col.T, self.phi_e1.second.weight, self.phi_e1.second.bias, context["e1"],
            return_edges=True,
        )  # fmt: skip
        # ē1⁺: the sum over each node's two outgoing edges (rows rev_perm[2i], rev_perm[2i + 1])
        e1_out = e1.index_select(0, context["rev_perm"]).view(n, 2, pair)
        bar1 = torch.stack([e1_out[:, 0] + e1_out[:, 1], e1_in], 1)  # (N, 2, pair): [ē1⁺, ē1⁻]
        w_pm = self.phi_v1.first.weight[:, : 2 * pair]
        w1 = self.phi_v1.finish(torch.addmm(context["v1"], bar1.view(n, -1), w_pm.T))
        # round 2: φe2([enc1(s), ē1 of the node]) on the 4 edges of every node, fused over the `pairs` graph
        far = bar1.view(2 * n, pair) @ self.phi_e2.blocks()[1].T
        second = self.phi_e2.second
        bar2 = ops.gn_edge_aggregate(
            context["pairs"], far, context["pairs_dst"], second.weight, second.bias, context["e2"]
        ).view(n, -1)  # [ē2⁺, ē2⁻]
        w2 = self.phi_v2.finish(torch.addmm(context["v2"], bar2, self.phi_v2.first.weight[:, : 2 * pair].T))
        w_h, w_w2, _, w_w1 = self.phi_ext.blocks()
        ext = torch.addmm(context["ext"], torch.cat([h, w2, w1], 1), torch.cat([w_h, w_w2, w_w1], 1).T)
        return self.decoder(self.phi_ext.finish(ext))


def check_grid_graph(graph: Graph) -> Graph:
    """`graph` if it is a grid graph (spacing vectors `[dx, 0]`/`[0, dy]` with finite spacings > 0).

    Raises:
        TypeError: not a Graph. ValueError: no `(E, 2)` spacing `edge_attr`, or a non-positive / non-finite one.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a fastsim.Graph; got {type(graph).__name__}")
    attr = graph.edge_attr
    if attr is None or attr.dim() != 2 or attr.shape[1] != 2:
        raise ValueError("graph must be a grid graph with spacing vectors edge_attr (E, 2) (PeriodicGrid.graph())")
    if not bool(torch.isfinite(attr).all()) or not bool(((attr > 0).sum(1) == 1).all() and (attr >= 0).all()):
        raise ValueError("grid spacings must be finite and > 0: every edge_attr row must be [dx, 0] or [0, dy]")
    two = torch.arange(0, graph.num_edges + 1, 2, device=graph.indptr.device)
    if graph.num_edges != 2 * graph.num_nodes or not (graph.indptr.equal(two) and graph.rev_indptr.equal(two)):
        raise ValueError("a grid graph has exactly 2 incoming and 2 outgoing edges (+x, +y) per node")
    return graph


# name → (state width, periodic, node / edge / glob coefficient names)
_SYSTEM_COEFFICIENTS: dict[str, tuple[int, bool, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "heat": (1, False, (), ("diffusivity",), ()),
    "kuramoto": (1, True, ("omega",), ("coupling",), ()),
    "rossler": (3, False, (), ("coupling",), ("a", "b", "c")),
    "burgers": (2, False, (), (), ("nu",)),
}


class GNRK(nn.Module):
    """An explicit Runge-Kutta step around one shared approximator `f_θ` (module docstring).

    `forward(x, dt, graph, **coefficients)` returns the averaged slope `Σ b_i k_i / Σ b_i`, `(N, F)`; `step`
    returns `x + Δt · slope`, `rollout` iterates it. `tableau` may be reassigned at any time (train RK1, test RK4).

    Args:
        system: "burgers", "heat", "kuramoto" or "rossler" (which coefficients `forward` takes).
        approximator: the `f_θ` module (`GraphApproximator` or `BurgersApproximator`).
        tableau: a tableau name (`rk1`/`euler`, `rk2`/`heun`, `rk4`, ...) or a `Tableau`.
    """

    def __init__(self, system: str, approximator: nn.Module, tableau: str | Tableau = "rk4") -> None:
        super().__init__()
        if system not in _SYSTEM_COEFFICIENTS:
            raise ValueError(f"system must be one of {', '.join(SYSTEM_NAMES)}; got {system!r}")
        self.system, self.approximator = system, approximator
        self.state_dim = _SYSTEM_COEFFICIENTS[system][0]
        self.tableau = tableau

    @property
    def tableau(self) -> Tableau:
        """The Runge-Kutta method of every step."""
        return self._tableau

    @tableau.setter
    def tableau(self, value: str | Tableau) -> None:
        tableau = resolve_tableau(value)
        if any(len(row) != i for i, row in enumerate(tableau.a)) or not math.isfinite(sum(tableau.b)):
            raise ValueError(f"tableau {tableau.name!r} must be explicit with one row of a per stage")
        if sum(tableau.b) == 0:
            raise ValueError(f"tableau {tableau.name!r} has weights b summing to 0")
        self._tableau = tableau

    @classmethod
    def for_system(cls, name: str, tableau: str | Tableau = "rk4", **options) -> GNRK:
        """The GNRK model of a system with the reference architecture.

        Args:
            name: "burgers", "heat", "kuramoto" or "rossler".
            tableau: the RK method (see `resolve_tableau`).
            options: approximator settings: for burgers `dim` (8), `hidden` (32), `nu_copies` (1); for the graph
                systems `dim` (16), `edge_hidden` (64), `node_hidden` (64).

        Raises:
            ValueError: an unknown system or tableau name.
        """
        if name not in _SYSTEM_COEFFICIENTS:
            raise ValueError(f"system must be one of {', '.join(SYSTEM_NAMES)}; got {name!r}")
        if name == "burgers":
            return cls(name, BurgersApproximator(**options), tableau)
        state, periodic, node, edge, glob = _SYSTEM_COEFFICIENTS[name]
        approximator = GraphApproximator(state, len(node), len(edge), len(glob), periodic_state=periodic, **options)
        return cls(name, approximator, tableau)

    def _context(self, graph: Graph, x: Tensor, coefficients: Mapping[str, Tensor]) -> dict[str, object]:
        _, _, node, edge, glob = _SYSTEM_COEFFICIENTS[self.system]
        expected = {*node, *edge, *glob}
        if set(coefficients) != expected:
            raise ValueError(f"{self.system} takes coefficients {sorted(expected)}; got {sorted(coefficients)}")

        def stack(names: tuple[str, ...], count: int, kind: str) -> Tensor | None:
            if not names:
                return None
            columns = []
            for n in names:
                value = coefficients[n]
                if not isinstance(value, Tensor) or value.shape != (count,):
                    got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                    raise ValueError(f"coefficient {n!r} must be a ({count},) per-{kind} tensor; got {got}")
                columns.append(value.to(device=x.device, dtype=x.dtype))
            return torch.stack(columns, dim=1)

        nodes = stack(node, graph.num_nodes, "node")
        edges = stack(edge, graph.num_edges, "edge")
        globs = stack(glob, graph.num_graphs, "graph")
        if self.system == "burgers":
            check_grid_graph(graph)
            if not bool((globs > 0).all()):
                raise ValueError("nu must be > 0")
            with _full_precision(x):  # see `stages`
                return self.approximator.prepare(graph, globs[:, 0])
        with _full_precision(x):
            return self.approximator.prepare(graph, nodes, edges, globs)

    def stages(self, x: Tensor, dt: Tensor, graph: Graph, context: Mapping[str, object]) -> list[Tensor]:
        """The stages `k_i = f_θ(x + Δt Σ_j a_ij k_j)` of one step (`dt` `(N,)` per node).

        Under autocast the stages run in full precision: the graph ops have no half-precision kernels, and an
        ~10k-parameter network gains nothing from fp16.
        """
        ks: list[Tensor] = []
        with _full_precision(x):
            for row in self.tableau.a:
                state = stage_combination(x, dt, ks, row)
                ks.append(self.approximator(graph, state, context).to(x.dtype))
        return ks

    def forward(self, x: Tensor, dt: Tensor | float, graph: Graph, **coefficients: Tensor) -> Tensor:
        """The averaged slope `Σ b_i k_i / Σ b_i` of one step from `x (N, F)` with steps `dt` (a number, `(N,)`
        per node or `(N, 1)`), `(N, F)`.

        Raises:
            ValueError: mismatched shapes, `dt <= 0`, wrong or missing coefficients, a non-grid graph for burgers.
        """
        x = _check_state(x, graph.num_nodes, self.state_dim)
        dt = _check_dt(dt, graph.num_nodes, x)
        ks = self.stages(x, dt, graph, self._context(graph, x, coefficients))
        weights = [b / sum(self.tableau.b) for b in self.tableau.b]
        return ops.rk_stage(torch.zeros_like(x), torch.ones_like(dt), ks, weights)

    def step(self, x: Tensor, dt: Tensor | float, graph: Graph, **coefficients: Tensor) -> Tensor:
        """`x + Δt · slope`: the state after one step."""
        x = _check_state(x, graph.num_nodes, self.state_dim)
        dt = _check_dt(dt, graph.num_nodes, x)
        context = self._context(graph, x, coefficients)
        ks = self.stages(x, dt, graph, context)
        return ops.rk_stage(x, dt, ks, [b / sum(self.tableau.b) for b in self.tableau.b])

    @torch.no_grad()
    def rollout(self, x0: Tensor, dts: Tensor, graph: Graph, **coefficients: Tensor) -> Tensor:
        """Autoregressive trajectory from `x0 (N, F)` with per-graph steps `dts (B, S)` (non-uniform allowed).

        The coefficient embeddings are computed once for the whole rollout.

        Returns:
            `(S + 1, N, F)` states, `[0]` being `x0`.

        Raises:
            ValueError: `dts` not `(B, S)` with finite entries > 0, or the checks of `forward`.
        """
        x = _check_state(x0, graph.num_nodes, self.state_dim)
        if not isinstance(dts, Tensor) or dts.dim() != 2 or dts.shape[0] != graph.num_graphs:
            got = tuple(dts.shape) if isinstance(dts, Tensor) else type(dts).__name__
            raise ValueError(f"dts must be a (B, S) tensor of steps with B = {graph.num_graphs}; got {got}")
        if not bool((dts > 0).all() and torch.isfinite(dts).all()):
            raise ValueError("dts must be finite and > 0")
        context = self._context(graph, x, coefficients)
        weights = [b / sum(self.tableau.b) for b in self.tableau.b]
        node_dts = dts.to(device=x.device, dtype=x.dtype)[graph.batch]  # (N, S)
        states = [x]
        for s in range(dts.shape[1]):
            dt = node_dts[:, s].contiguous()
            x = ops.rk_stage(x, dt, self.stages(x, dt, graph, context), weights)
            states.append(x)
        return torch.stack(states)


@torch.library.register_fake("fastsim::gnrk_burgers_f")
def _gnrk_burgers_f_fake(x, indptr, src, rev_perm, e1_term, e2_term, v1_term, v2_term, ext_term, weights):
    return x.new_empty(x.shape)
