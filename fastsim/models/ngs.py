"""The Neural Graph Simulator (NGS; Choi, Lee, Kahng, Jo, arXiv 2411.09120) on fastsim's fused graph ops.

One step maps a state `S(t)` and a step `Δt` to `S(t + Δt) = S(t) + Dec(GN_L(... GN_1(Enc(S, C, Δt))))`: encoders
for the state, Δt and the node / edge / global coefficients (two-layer MLPs ending in GELU), `L` graph-network layers
(`fastsim.models.blocks.GraphNetworkLayer`) and a decoder predicting ΔS. Δt enters only through the global
features. The coefficients do not change along a trajectory, so `rollout` encodes them once
(`encode_coefficients`) and re-encodes only the state and Δt each step. Architecture and per-system feature maps
follow the authors' code (docs/ngs.md; ngs_gnrk.md §1.2); `from_reference_checkpoint` loads their weights.

The Kuramoto model builds its message-passing graph every step from the phases: oscillators i ≠ j of the same
graph are linked when `|φ_i − φ_j|`, with `φ = θ mod 2π`, lies within `threshold` of π/2 or 3π/2
(`phase_threshold_graph`, vectorised over the whole batch).
"""

import dataclasses
import math
import os
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from fastsim.graph import Graph
from fastsim.models.blocks import MLP, GraphNetworkLayer
from fastsim.models.ngs_rollout import RolloutPlan, compiled_rollout, compiled_rollout_applies
from fastsim.models.ngs_traffic import TrafficNGS

__all__ = ["LAYOUTS", "NGS", "CoefficientEmbeddings", "NGSLayout", "NeuralGraphSimulator", "phase_threshold_graph"]


@dataclasses.dataclass(frozen=True)
class NGSLayout:
    """How a system's state and coefficients enter NGS (ngs_gnrk.md §1.2, "per-system feature mapping").

    Widths are multiples of `emb_dim`; a coefficient count of 0 means the system has none of that kind.

    Attributes:
        state_dim: state components per node. phase: the state is a phase θ, encoded as `(cos θ, sin θ)`, with the
            message-passing graph rebuilt from the phases each step (Kuramoto).
        state_width, node_width, edge_width, glob_width: embedding widths of the state and the coefficients.
        node_coefficients, edge_coefficients, glob_coefficients: coefficients per node / edge / graph. A system
            with `edge_width > 0` but no edge coefficients gets constant-one edge features (Kuramoto).
        emb_dim: the paper's `emb_dim` for this system.
    """

    state_dim: int
    phase: bool
    state_width: int
    node_coefficients: int
    node_width: int
    edge_coefficients: int
    edge_width: int
    glob_coefficients: int
    glob_width: int
    emb_dim: int

    @property
    def state_features(self) -> int:
        """Inputs of the state encoder: `(cos θ, sin θ)` for a phase, else the state itself."""
        return 2 if self.phase else self.state_dim


LAYOUTS: dict[str, NGSLayout] = {
    # T → d; D_ij → d; Δt → d.
    "heat": NGSLayout(1, False, 1, 0, 0, 1, 1, 0, 0, emb_dim=8),
    # (x, y, z) → 3d; K_ij → d; (a, b, c) → 3d and Δt → d.
    "rossler": NGSLayout(3, False, 3, 0, 0, 1, 1, 3, 3, emb_dim=32),
    # (cos θ, sin θ) → 2d and ω → d; constant-one edges of width d; K/N → d and Δt → d.
    "kuramoto": NGSLayout(1, True, 2, 1, 1, 0, 1, 1, 1, emb_dim=32),
}


class CoefficientEmbeddings(NamedTuple):
    """Encoded coefficients of a batch of trajectories, reused by every step of a rollout.

    Attributes:
        node: `(N, node_width)` or None. edge: `(E, edge_width)` in CSR order, or `(edge_width,)` shared by every
        edge. glob: `(B, glob_width)` or None. num_nodes, num_edges, num_graphs: the sizes they were encoded for.
    """

    node: Tensor | None
    edge: Tensor
    glob: Tensor | None
    num_nodes: int
    num_edges: int
    num_graphs: int


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"{str(x.dtype).removeprefix('torch.')} {tuple(x.shape)} on {x.device}"
    return type(x).__name__


def _all_finite(x: Tensor) -> bool:
    """Whether every value of `x` is finite. A finite sum proves it in one reduction (a NaN or inf value makes
    the sum NaN or inf); only a sum that is not finite (bad values, or an overflow) needs the elementwise check.
    Small rollouts are checked on every call, and each ATen call there costs a few µs."""
    return math.isfinite(x.sum().item()) or bool(torch.isfinite(x).all())


def _check_finite(x: Tensor, name: str) -> None:
    if not _all_finite(x):
        raise ValueError(f"{name} must be finite; got NaN or inf values")


def _check_steps(dt: Tensor) -> None:
    if dt.numel() and not (dt.min().item() > 0 and _all_finite(dt)):  # a NaN minimum fails `> 0` too
        raise ValueError("dt must hold finite steps > 0")


@torch.no_grad()
def phase_threshold_graph(theta: Tensor, graph: Graph, threshold: float) -> Graph:
    """NGS's Kuramoto interaction graph: within each graph of the batch, `j → i` for `i ≠ j` when
    `|φ_i − φ_j|` (`φ = θ mod 2π`) is within `threshold` (inclusive) of π/2 or of 3π/2.

    All `Σ_b N_b²` candidate pairs of the batch are formed at once (no loop over graphs) and filtered.

    Args:
        theta: `(N,)` phases. graph: supplies the node partition (`batch`, `ptr`); its edges are ignored.
        threshold: θ_th in radians (> 0); above π/2 every pair is kept (the all-to-all model).

    Returns:
        The graph with the kept edges (CSR order) and the batching of `graph`.
    """
    n, device = graph.num_nodes, theta.device
    sizes = graph.ptr.diff()
    candidates = sizes[graph.batch]  # each node i is a destination for every node of its graph
    crow = torch.cat([candidates.new_zeros(1), torch.cumsum(candidates, 0)])
    total = int(crow[-1])
    dst = torch.repeat_interleave(torch.arange(n, device=device), candidates, output_size=total)
    src = graph.ptr[graph.batch[dst]] + torch.arange(total, device=device) - crow[dst]
    phase = torch.remainder(theta, 2 * math.pi)
    diff = (phase[dst] - phase[src]).abs()
    kept = ((diff - 0.5 * math.pi).abs() <= threshold) | ((diff - 1.5 * math.pi).abs() <= threshold)
    kept &= src != dst
    dst, src = dst[kept], src[kept]
    indptr = torch.cat([dst.new_zeros(1), torch.cumsum(torch.bincount(dst, minlength=n), 0)])
    edges = Graph.from_csr(indptr, src, n)
    return dataclasses.replace(edges, batch=graph.batch, ptr=graph.ptr, num_graphs=graph.num_graphs)


def _encoder(inputs: int, width: int) -> nn.Module:
    return MLP([inputs, width, width], final_activation=True) if inputs else nn.Identity()


class NeuralGraphSimulator(nn.Module):
    """NGS for one system layout (`LAYOUTS`); build it with `NGS.for_system`.

    Args:
        system: a key of `LAYOUTS` ("heat", "rossler", "kuramoto").
        emb_dim: the base width d (> 0).
        depth: number of graph-network layers L (>= 1).
        threshold: Kuramoto only: θ_th of `phase_threshold_graph` (> 0; the reference's exact model uses 2.0).
    """

    def __init__(self, system: str, emb_dim: int, depth: int = 2, threshold: float | None = None) -> None:
        super().__init__()
        if system not in LAYOUTS:
            raise ValueError(f"system must be one of {', '.join(LAYOUTS)}; got {system!r}")
        for name, value in (("emb_dim", emb_dim), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")
        layout = LAYOUTS[system]
        if layout.phase:
            threshold = 2.0 if threshold is None else threshold
            if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
                raise ValueError(f"threshold must be a finite number > 0; got {threshold!r}")
            threshold = float(threshold)
        elif threshold is not None:
            raise ValueError(f"threshold applies to the kuramoto system only; got {threshold!r} for {system!r}")
        self.system, self.layout, self.emb_dim, self.depth, self.threshold = system, layout, emb_dim, depth, threshold
        d = emb_dim
        # Registration order = the reference's parameter order (its EMA stores a flat list in that order).
        self.state_encoder = _encoder(layout.state_features, layout.state_width * d)
        self.dt_encoder = _encoder(1, d)
        self.node_encoder = _encoder(layout.node_coefficients, layout.node_width * d)
        self.edge_encoder = _encoder(layout.edge_coefficients, layout.edge_width * d)
        self.glob_encoder = _encoder(layout.glob_coefficients, layout.glob_width * d)
        node_dim = (layout.state_width + layout.node_width) * d
        edge_dim, glob_dim = layout.edge_width * d, (1 + layout.glob_width) * d
        self.gn_layers = nn.ModuleList(GraphNetworkLayer(node_dim, edge_dim, glob_dim) for _ in range(depth))
        # The last layer's global update feeds nothing (as in the reference, which keeps it): its weights stay for
        # the parameter count and checkpoint compatibility, frozen so that DDP sees no unused trainable parameter.
        self.gn_layers[-1].glob_update.requires_grad_(False)
        self.decoder = MLP([node_dim, node_dim, layout.state_dim])

    @classmethod
    def for_system(
        cls, name: str, emb_dim: int | None = None, depth: int = 2, threshold: float | None = None
    ) -> "NeuralGraphSimulator | TrafficNGS":
        """NGS for system `name` with the paper's width (heat 8, rossler and kuramoto 32) unless `emb_dim` is given.

        With the paper's widths and depth 2 the parameter counts are heat 6,185, rossler 680,643, kuramoto 412,065.

        `name="traffic"` returns the forecasting variant instead, a `fastsim.models.ngs_traffic.TrafficNGS` (not
        autoregressive, no Δt) for PEMS-BAY's 325 sensors, d = 64 unless given: 5,833,292 parameters.
        """
        if name == "traffic":
            if threshold is not None:
                raise ValueError(f"threshold applies to the kuramoto system only; got {threshold!r} for 'traffic'")
            return TrafficNGS(emb_dim=64 if emb_dim is None else emb_dim, depth=depth)
        if name not in LAYOUTS:
            raise ValueError(f"system must be one of {', '.join(LAYOUTS)}, traffic; got {name!r}")
        return cls(name, LAYOUTS[name].emb_dim if emb_dim is None else emb_dim, depth, threshold)

    def model_args(self) -> dict:
        """The constructor arguments (plain data: stored in checkpoints to rebuild the model)."""
        return {"system": self.system, "emb_dim": self.emb_dim, "depth": self.depth, "threshold": self.threshold}

    # ------------------------------------------------------------------ inputs
    def _check_state(self, graph: Graph, state: object, finite: bool = True) -> Tensor:
        """`state` checked against the graph and the layout; `finite`: its values too."""
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a fastsim.Graph; got {type(graph).__name__}")
        # (one graph: no reduction needed, so a single trajectory's rollout pays for none)
        if graph.num_nodes == 0 or (graph.num_graphs > 1 and bool((graph.ptr.diff() == 0).any())):
            raise ValueError(f"every graph of the batch must have nodes; got sizes {graph.ptr.diff().tolist()}")
        n, k = graph.num_nodes, self.layout.state_dim
        shapes = [(n,), (n, 1)] if k == 1 else [(n, k)]
        if not isinstance(state, Tensor) or not state.is_floating_point() or tuple(state.shape) not in shapes:
            want = " or ".join(str(s) for s in shapes)
            raise ValueError(
                f"state must be a floating tensor of shape {want} (N = graph.num_nodes); got {_describe(state)}"
            )
        if state.device != graph.device:
            raise ValueError(f"state must be on the graph's device {graph.device}; got {_describe(state)}")
        if finite:
            _check_finite(state, "state")
        return state

    def _check_dt(
        self, dt: object, num_graphs: int, device: torch.device, leading: tuple[int, ...] = (), values: bool = True
    ) -> Tensor:
        """`dt` as `(*leading, B)` float tensor: a number or `(*leading,)` is shared by every graph. `values`: also
        check that the steps are finite and > 0."""
        if isinstance(dt, (int, float)) and not isinstance(dt, bool):
            dt = torch.tensor(float(dt))
        if not isinstance(dt, Tensor) or not dt.is_floating_point():
            raise TypeError(f"dt must be a positive number or a floating tensor; got {_describe(dt)}")
        if tuple(dt.shape) == leading:
            dt = dt.unsqueeze(-1).expand(*leading, num_graphs)
        if tuple(dt.shape) != (*leading, num_graphs):
            raise ValueError(f"dt must have shape {(*leading, num_graphs)} (one step per graph); got {_describe(dt)}")
        dt = dt.to(device)
        if values:
            _check_steps(dt)
        return dt

    def _coefficient(
        self, value: object, name: str, rows: int, count: int, graph: Graph, finite: bool = True
    ) -> Tensor | None:
        if count == 0:
            if value is not None:
                raise ValueError(f"{name} coefficients are not used by the {self.system} model; got {_describe(value)}")
            return None
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating tensor of shape ({rows}, {count}); got {_describe(value)}")
        if value.dim() == 1 and count == 1:
            value = value.unsqueeze(-1)
        if tuple(value.shape) != (rows, count) or value.device != graph.device:
            raise ValueError(f"{name} must have shape ({rows}, {count}) on {graph.device}; got {_describe(value)}")
        if finite:
            _check_finite(value, name)
        return value.to(self.decoder[0].weight.dtype)

    def _coefficients(
        self, graph: Graph, node: object = None, edge: object = None, glob: object = None, finite_edge: bool = True
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """The coefficients checked against the layout (and finite; the edge coefficients only with
        `finite_edge`), as `(rows, count)` tensors in the model's dtype."""
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a fastsim.Graph; got {type(graph).__name__}")
        layout = self.layout
        return (
            self._coefficient(node, "node", graph.num_nodes, layout.node_coefficients, graph),
            self._coefficient(edge, "edge", graph.num_edges, layout.edge_coefficients, graph, finite_edge),
            self._coefficient(glob, "glob", graph.num_graphs, layout.glob_coefficients, graph),
        )

    # ------------------------------------------------------------------ forward
    def encode_coefficients(
        self, graph: Graph, node: Tensor | None = None, edge: Tensor | None = None, glob: Tensor | None = None
    ) -> CoefficientEmbeddings:
        """Encode a batch's coefficients once (they are constant along a trajectory).

        Args:
            graph: the (batched) graph. node: `(N, k_v)` per-node coefficients. edge: `(E, k_e)` per-edge
            coefficients in CSR order. glob: `(B, k_g)` per-graph coefficients. A single coefficient may also be
            given as `(N,)`, `(E,)`, `(B,)`. Pass exactly the kinds the system uses (`LAYOUTS[system]`).
        """
        node, edge, glob = self._coefficients(graph, node, edge, glob)
        layout = self.layout
        if edge is None:  # no edge coefficients: every edge starts from the same constant-one features
            edge_emb = self.decoder[0].weight.new_ones(layout.edge_width * self.emb_dim)
        else:
            edge_emb = self.edge_encoder(edge)
        return CoefficientEmbeddings(
            None if node is None else self.node_encoder(node),
            edge_emb,
            None if glob is None else self.glob_encoder(glob),
            graph.num_nodes,
            graph.num_edges,
            graph.num_graphs,
        )

    def step(self, graph: Graph, state: Tensor, dt: Tensor | float, coefficients: CoefficientEmbeddings) -> Tensor:
        """One step: `S(t + Δt)` from `state = S(t)`, `dt (B,)` (or one number for every graph) and
        `encode_coefficients`'s output for the same graph. Returns the shape and dtype of `state`."""
        state = self._check_state(graph, state)
        dt = self._check_dt(dt, graph.num_graphs, graph.device)
        sizes = (coefficients.num_nodes, coefficients.num_edges, coefficients.num_graphs)
        if sizes != (graph.num_nodes, graph.num_edges, graph.num_graphs):
            raise ValueError(
                f"coefficients were encoded for (N, E, B) = {sizes}; the graph has "
                f"{(graph.num_nodes, graph.num_edges, graph.num_graphs)}"
            )
        return self._step(graph, state, dt, coefficients)

    def _phase_graph(self, state: Tensor, graph: Graph) -> Graph:
        """A phase system's message-passing graph for `state` (`(N,)` or `(N, 1)` phases)."""
        return phase_threshold_graph(state.reshape(-1).to(self.decoder[0].weight.dtype), graph, self.threshold)

    def _step(self, graph: Graph, state: Tensor, dt: Tensor, coefficients: CoefficientEmbeddings) -> Tensor:
        dtype = self.decoder[0].weight.dtype
        x = state.reshape(graph.num_nodes, self.layout.state_dim).to(dtype)
        if self.layout.phase:
            graph = self._phase_graph(x, graph)
            x = torch.cat([x.cos(), x.sin()], dim=1)
        node = self.state_encoder(x)
        if coefficients.node is not None:
            node = torch.cat([node, coefficients.node], dim=1)
        glob = self.dt_encoder(dt.to(dtype).unsqueeze(-1))
        if coefficients.glob is not None:
            glob = torch.cat([glob, coefficients.glob], dim=1)
        edge = coefficients.edge
        for k, layer in enumerate(self.gn_layers):
            node, edge, glob = layer(graph, node, edge, glob, last=k == self.depth - 1)
        delta = self.decoder(node)
        return state + delta.reshape(state.shape).to(state.dtype)

    def forward(
        self,
        graph: Graph,
        state: Tensor,
        dt: Tensor | float,
        node: Tensor | None = None,
        edge: Tensor | None = None,
        glob: Tensor | None = None,
    ) -> Tensor:
        """One step from raw coefficients: `step(graph, state, dt, encode_coefficients(graph, node, edge, glob))`."""
        return self.step(graph, state, dt, self.encode_coefficients(graph, node, edge, glob))

    def rollout(
        self,
        graph: Graph,
        state: Tensor,
        dts: Tensor,
        node: Tensor | None = None,
        edge: Tensor | None = None,
        glob: Tensor | None = None,
        *,
        autocast: torch.dtype | None = None,
    ) -> Tensor:
        """Autoregressive rollout over arbitrary (non-uniform) steps, in inference mode.

        Without autocast, on the CPU for heat and Rössler with `state` in the model's dtype, the whole rollout runs
        in one compiled op (`fastsim.models.ngs_rollout.compiled_rollout`); elsewhere the steps run through a
        `fastsim.models.ngs_rollout.RolloutPlan`, which does the work that is constant along the trajectory once
        (weight splits, Δt embeddings, the first layer's global and edge terms). Either way the results equal
        repeated `step` calls up to float rounding.

        Args:
            graph: the (batched) graph; graphs of any sizes. state: `(N, *F)` initial states.
            dts: `(S, B)` steps per graph, or `(S,)` shared by every graph; all > 0.
            node, edge, glob: the coefficients (see `encode_coefficients`), encoded once for all steps.
            autocast: torch.float16 or torch.bfloat16 to run under autocast (the fused graph ops stay in float32).

        Returns:
            `(S+1, N, *F)` states, the initial one first, in the dtype of `state`.
        """
        if autocast not in (None, torch.float16, torch.bfloat16):
            raise ValueError(f"autocast must be None, torch.float16 or torch.bfloat16; got {autocast!r}")
        state = self._check_state(graph, state, finite=False)
        if not isinstance(dts, Tensor) or dts.dim() not in (1, 2):
            raise ValueError(f"dts must be a floating tensor of shape (S,) or (S, B); got {_describe(dts)}")
        dts = self._check_dt(dts, graph.num_graphs, graph.device, leading=(dts.shape[0],), values=False)
        enabled = autocast is not None
        if not enabled and compiled_rollout_applies(self, graph, state):
            # The compiled op checks the state, the steps and the edge coefficients for NaN, inf and steps <= 0
            # itself (ValueError, with the messages of these checks): a reduction and a host read each here cost
            # ≈ 5 % of a single-trajectory rollout.
            _, edge, glob = self._coefficients(graph, node, edge, glob, finite_edge=False)  # no node coefficients
            with torch.inference_mode():
                return compiled_rollout(self, graph, state, dts, edge, glob)
        _check_finite(state, "state")
        _check_steps(dts)
        with torch.inference_mode(), torch.autocast(graph.device.type, dtype=autocast, enabled=enabled):
            coefficients = self.encode_coefficients(graph, node, edge, glob)
            states = [state]
            if enabled:  # the generic step keeps the fused graph ops in float32 under autocast
                for dt in dts:
                    states.append(self._step(graph, states[-1], dt, coefficients))
            else:
                plan = RolloutPlan(self, graph, coefficients, dts)
                for s in range(dts.shape[0]):
                    x = states[-1]
                    step_graph = self._phase_graph(x, graph) if self.layout.phase else graph
                    states.append(plan.step(s, step_graph, x))
        return torch.stack(states)

    # ------------------------------------------------------------------ reference weights
    @classmethod
    def from_reference_checkpoint(
        cls, path: str | os.PathLike, system: str, ema: bool = True, threshold: float | None = None
    ) -> "NeuralGraphSimulator":
        """Load a `checkpoint.pth` written by the NGS authors' code (keys `model` and `ema`).

        Their module names map one to one onto this model (`<mlp>.layers.{0,2}` ↔ `<mlp>.{0,2}`, and the edge
        MLP's `layers.{0,2}` ↔ `per_edge_update.{first,second}`); `emb_dim` and `depth` are read off the shapes.

        Args:
            path: the checkpoint file. system: its system ("heat", "rossler", "kuramoto").
            ema: load the exponential moving average of the weights (what the authors evaluate) instead of the
                raw weights. threshold: Kuramoto's θ_th (their `result/kuramoto_th{k}` uses π/k; th2 uses 2.0).

        Raises:
            FileNotFoundError: no file at `path`. ValueError: not an NGS checkpoint of `system`.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"reference checkpoint not found: {path}")
        if system not in LAYOUTS:
            raise ValueError(f"system must be one of {', '.join(LAYOUTS)}; got {system!r}")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            weights = saved["model"]
            width = weights["state_encoder.layers.2.weight"].shape[0]
        except (KeyError, TypeError, RuntimeError, OSError) as err:
            raise ValueError(f"{path} is not an NGS reference checkpoint ({err})") from None
        weights = {k.removeprefix("module."): v for k, v in weights.items()}  # saved from DDP
        layout = LAYOUTS[system]
        if width % layout.state_width:
            raise ValueError(f"{path}: state embedding width {width} does not fit the {system} layout")
        depth = len({k.split(".")[1] for k in weights if k.startswith("gn_layers.")})
        model = cls(system, width // layout.state_width, depth, threshold)
        names = [name for name, _ in model.named_parameters()]
        if ema:
            try:
                values = list(saved["ema"]["ema_parameters"])
            except (KeyError, TypeError):
                raise ValueError(f"{path} holds no EMA weights (ema.ema_parameters); pass ema=False") from None
        else:
            missing = [_reference_name(n) for n in names if _reference_name(n) not in weights]
            if missing or len(weights) != len(names):
                raise ValueError(
                    f"{path} does not match the {system} model: missing {missing[:4]}, "
                    f"{len(weights)} tensors for {len(names)} parameters"
                )
            values = [weights[_reference_name(n)] for n in names]
        state = dict(zip(names, values))
        bad = [n for n, p in model.named_parameters() if n not in state or state[n].shape != p.shape]
        if bad or len(values) != len(names):
            raise ValueError(
                f"{path} does not match the {system} model (emb_dim {model.emb_dim}, depth {depth}): "
                f"{len(values)} tensors for {len(names)} parameters, mismatched {bad[:4]}"
            )
        model.load_state_dict({n: v.float() for n, v in state.items()})
        return model


def _reference_name(name: str) -> str:
    """The authors' key of a parameter: `gn_layers.0.per_edge_update.first.weight` →
    `gn_layers.0.per_edge_update.layers.0.weight`, `decoder.2.bias` → `decoder.layers.2.bias`."""
    *path, layer, kind = name.split(".")
    index = {"first": "0", "second": "2"}.get(layer, layer)
    return ".".join([*path, "layers", index, kind])


NGS = NeuralGraphSimulator
