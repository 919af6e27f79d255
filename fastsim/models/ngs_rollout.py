"""NGS rollouts for inference, with everything that is constant along a trajectory computed once.

At the paper's sizes (hundreds of nodes, widths 8–350) a step of `NeuralGraphSimulator._step` is ≈ 70 small ATen
calls plus module and argument-checking overhead, which sets the time more than the arithmetic does.

On the CPU, for a fixed graph (heat, Rössler), `compiled_rollout` runs the whole rollout in one call of the
compiled op `torch.ops.fastsim.ngs_rollout` (csrc/message_passing/ngs_rollout_cpu.cpp): it takes the raw steps and
edge coefficients and the model's Linear layers as they are, encodes the Δt of all steps and the edge
coefficients itself, and runs every step with each product a register-blocked tile product on tiles of node rows
in cache, a Linear on a concatenation `[a, b, g]` the sum of its column blocks' products (the global block once
per graph, as a per-graph bias), no ATen call and no buffer allocated per step. The first layer's edge features
are constant along the rollout, so their projection is formed once where it is small (a single heat graph).

Elsewhere (CUDA; Kuramoto, whose edges are rebuilt from the phases every step) a `RolloutPlan` is built once per
rollout (the weights do not change while it runs) and holds the Δt embeddings of all S steps, encoded in one batch:
the first graph-network layer's global input (with the constant global coefficients). Its `step` runs the
per-state work with the fused graph ops called directly (their inputs were checked once), from weights the plan
splits by input block and transposes on first use (`layers`, `codec`), and with all S steps' first-layer global
terms from one product (`inputs0`); every layer hands its `(E, e)` edge features and `W_edge` to the fused edge
step. The results of both equal the generic step's up to float rounding (sums regrouped).
"""

import functools
from typing import NamedTuple

import torch
from torch import Tensor, nn

from fastsim import _backend, ops
from fastsim.graph import Graph


class _Linear(NamedTuple):
    """A Linear `y = x Wᵀ + b` as `addmm(b, x, wt)` with `wt = Wᵀ` contiguous."""

    wt: Tensor
    b: Tensor | None

    @classmethod
    def of(cls, layer: nn.Linear, cols: slice = slice(None), bias: bool = True) -> "_Linear":
        return cls(layer.weight[:, cols].t().contiguous(), layer.bias if bias else None)

    def __call__(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        b = self.b if bias is None else bias
        return x @ self.wt if b is None else torch.addmm(b, x, self.wt)


class _MLP(NamedTuple):
    """A `fastsim.models.blocks.MLP` as plain tensors (no module calls per step); GELU after `activated` layers."""

    layers: tuple[_Linear, ...]
    activated: tuple[bool, ...]

    @classmethod
    def of(cls, mlp: nn.Sequential, first: _Linear | None = None) -> "_MLP":
        """`mlp`, its first Linear replaced by `first` when given (a block of it, its bias passed per call)."""
        linears = [k for k, module in enumerate(mlp) if isinstance(module, nn.Linear)]
        layers = tuple(first if k == 0 and first is not None else _Linear.of(mlp[k]) for k in linears)
        activated = tuple(k + 1 < len(mlp) and not isinstance(mlp[k + 1], nn.Linear) for k in linears)
        return cls(layers, activated)

    def __call__(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        for k, (linear, activated) in enumerate(zip(self.layers, self.activated)):
            x = linear(x, bias if k == 0 else None)
            if activated:
                x = ops.gelu(x)
        return x


class _Layer(NamedTuple):
    """One graph-network layer's weights split by input block (see `GraphNetworkLayer`)."""

    w_src: _Linear  # edge MLP, first Linear: source and destination blocks ...
    w_dst: _Linear
    w_edge: Tensor  # ... its edge block (H, e), projected inside the fused op ...
    w2: Tensor
    b2: Tensor
    node_update: _MLP  # its first Linear acts on [node, aggregated] only ...
    glob_update: _MLP | None  # likewise: first Linear on [min node, min aggregated]; None in the last layer
    glob_terms: _Linear  # ... and the global blocks of the three first Linears with their biases, side by side:
    glob_widths: tuple[int, ...]  # the edge-MLP graph term, the node-update bias, the global-update bias

    @classmethod
    def of(cls, layer: nn.Module, last: bool) -> "_Layer":
        """The layer's weights; `last`: the final layer, whose global update nobody reads (left out)."""
        edge = layer.per_edge_update
        n, _, e, _ = edge.dims
        node_first, glob_first = layer.per_node_update[0], layer.glob_update[0]
        blocks = [(edge.first, 2 * n + e), (node_first, n + e)] + ([] if last else [(glob_first, n + e)])
        glob_terms = _Linear(
            torch.cat([linear.weight[:, start:] for linear, start in blocks]).t().contiguous(),
            torch.cat([linear.bias for linear, _ in blocks]),
        )
        return cls(
            _Linear.of(edge.first, slice(0, n), bias=False),
            _Linear.of(edge.first, slice(n, 2 * n), bias=False),
            edge.first.weight[:, 2 * n : 2 * n + e].contiguous(),
            edge.second.weight.contiguous(),
            edge.second.bias.contiguous(),
            _MLP.of(layer.per_node_update, _Linear.of(node_first, slice(0, n + e), bias=False)),
            None if last else _MLP.of(layer.glob_update, _Linear.of(glob_first, slice(0, n + e), bias=False)),
            glob_terms,
            tuple(linear.out_features for linear, _ in blocks),
        )

    def flat_terms(self, glob: Tensor) -> Tensor:
        """The per-graph terms `(*, B, W)` for globals `(*, B, g)`, from one product: side by side, the edge-MLP
        graph term with its bias, the node-update bias and (not in the last layer) the global-update bias."""
        return self.glob_terms(glob.reshape(-1, glob.shape[-1])).view(*glob.shape[:-1], -1)

    def split_terms(self, flat: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """`flat_terms` as (graph term, node bias, global bias or None in the last layer)."""
        graph_term, node_bias, *glob_bias = flat.split(self.glob_widths, dim=-1)
        return graph_term.contiguous(), node_bias, glob_bias[0] if glob_bias else None


class RolloutPlan:
    """A rollout's constant work, done once; `step(s, graph, state)` advances by the s-th step.

    Args:
        model: a `NeuralGraphSimulator` (its weights are read as the steps run: do not train it while the plan is in
            use).
        graph: the rollout's graph (for a phase system, the node partition; edges are rebuilt per step).
        coefficients: `model.encode_coefficients(graph, ...)`.
        dts: `(S, B)` steps.
    """

    def __init__(self, model: nn.Module, graph: Graph, coefficients: NamedTuple, dts: Tensor) -> None:
        self.model = model
        self.layout = model.layout
        self.batch = graph.batch if graph.num_graphs > 1 else None  # one graph: per-graph terms broadcast
        self.node_coefficients = coefficients.node
        dtype = model.decoder[0].weight.dtype
        glob = model.dt_encoder(dts.to(dtype).unsqueeze(-1))  # (S, B, d): layer 0's globals for every step
        if coefficients.glob is not None:
            glob = torch.cat([glob, coefficients.glob.expand(dts.shape[0], -1, -1)], dim=-1)
        self.glob0 = glob.contiguous()
        self.edge = coefficients.edge  # (E, e), or (e,) shared by every edge
        self._gn = _backend.op("gn_edge_aggregate", graph.device)
        self._segment = _backend.op("segment_reduce", graph.device)

    @functools.cached_property
    def layers(self) -> list[_Layer]:
        """The graph-network layers' weights split by input block (for `step`)."""
        depth = len(self.model.gn_layers)
        return [_Layer.of(layer, k == depth - 1) for k, layer in enumerate(self.model.gn_layers)]

    @functools.cached_property
    def codec(self) -> tuple[_MLP, _MLP]:
        """The state encoder and the decoder as plain tensors (for `step`)."""
        return _MLP.of(self.model.state_encoder), _MLP.of(self.model.decoder)

    @functools.cached_property
    def inputs0(self) -> list[tuple[Tensor, Tensor, Tensor, Tensor | None]]:
        """Layer 0's inputs of every step for `step`, from one product for all S steps: (globals, graph term,
        node bias, global bias); edge features shared by every edge are folded into the graph term."""
        first = self.layers[0]
        terms0 = first.flat_terms(self.glob0)  # (S, B, W)
        if self.edge.dim() == 1:
            terms0[..., : first.glob_widths[0]] += self.edge @ first.w_edge.T
        graph_term, node_bias, glob_bias = first.split_terms(terms0)
        glob_biases = [None] * len(self.glob0) if glob_bias is None else glob_bias.unbind(0)
        return list(zip(self.glob0.unbind(0), graph_term.unbind(0), node_bias.unbind(0), glob_biases))

    def _per_node(self, term: Tensor) -> Tensor:
        """A per-graph `(B, F)` term for every node: `(N, F)`, or `(F,)` broadcast when there is one graph."""
        return term[0] if self.batch is None else term.index_select(0, self.batch)

    def step(self, s: int, graph: Graph, state: Tensor) -> Tensor:
        """`S(t + Δt_s)` from `state = S(t)` on `graph` (the step's message-passing graph)."""
        layout = self.layout
        glob, graph_term, node_bias, glob_bias = self.inputs0[s]
        state_encoder, decoder = self.codec
        x = state.reshape(graph.num_nodes, layout.state_dim).to(glob.dtype)
        if layout.phase:
            x = torch.cat([x.cos(), x.sin()], dim=1)
        node = state_encoder(x)
        if self.node_coefficients is not None:
            node = torch.cat([node, self.node_coefficients], dim=1)
        edge = self.edge if self.edge.dim() == 2 else None  # shared features are in the graph term
        five = (graph.indptr, graph.src, graph.rev_indptr, graph.rev_dst, graph.rev_perm)
        for k, layer in enumerate(self.layers):
            last = k == len(self.layers) - 1
            if k:  # the edge features are now the previous layer's messages, per edge
                graph_term, node_bias, glob_bias = layer.split_terms(layer.flat_terms(glob))
            aggregated, edge = self._gn(
                *five, layer.w_src(node), layer.w_dst(node), edge, None if edge is None else layer.w_edge,
                graph_term, graph.batch, layer.w2, layer.b2, not last,
            )  # fmt: skip
            local = torch.cat([node, aggregated], dim=1)
            node = layer.node_update(local, self._per_node(node_bias))
            if last:
                break
            node_min = self._segment(node, graph.ptr, "min")[0]
            edge_min = self._segment(aggregated, graph.ptr, "min")[0]
            local = torch.cat([node_min, edge_min], dim=1)
            glob = layer.glob_update(local, glob_bias)
        delta = decoder(node)
        return state + delta.reshape(state.shape).to(state.dtype)


def compiled_rollout_applies(model: nn.Module, graph: Graph, state: Tensor) -> bool:
    """Whether `compiled_rollout` can run `model`'s rollout: on the CPU, for a fixed graph (not a phase system,
    whose edges follow the state), nodes without coefficients and per-edge coefficients (heat, Rössler), with
    `state` in the model's dtype."""
    layout = model.layout
    fixed_graph = not layout.phase and not layout.node_coefficients and layout.edge_coefficients > 0
    return graph.device.type == "cpu" and fixed_graph and state.dtype == model.decoder[0].weight.dtype


def compiled_rollout_args(
    model: nn.Module, graph: Graph, state: Tensor, dts: Tensor, edge: Tensor, glob: Tensor | None
) -> tuple:
    """The arguments of `torch.ops.fastsim.ngs_rollout` for the rollout from `state` over `dts (S, B)` with the
    checked coefficients `edge (E, k_e)` and `glob (B, k_g)` or None: the weights are the model's Linear layers as
    they are, in the order csrc/message_passing/ngs_rollout_cpu.cpp lists."""
    modules = model._modules
    weights = [t for name in ("state_encoder", "dt_encoder", "edge_encoder") for t in _linear_params(modules[name])]
    layers = list(modules["gn_layers"]._modules.values())
    for k, layer in enumerate(layers):
        weights += _linear_params(layer._modules["per_edge_update"])
        weights += _linear_params(layer._modules["per_node_update"])
        if k < len(layers) - 1:  # the last layer's global update is never read
            weights += _linear_params(layer._modules["glob_update"])
    weights += _linear_params(modules["decoder"])
    dtype = model.decoder[0].weight.dtype
    glob_embedding = state.new_empty(graph.num_graphs, 0) if glob is None else model.glob_encoder(glob)
    x = state.reshape(graph.num_nodes, model.layout.state_dim).contiguous()
    return x, graph.indptr, graph.src, graph.ptr, edge.contiguous(), dts.to(dtype).contiguous(), glob_embedding, weights


def compiled_rollout(
    model: nn.Module, graph: Graph, state: Tensor, dts: Tensor, edge: Tensor, glob: Tensor | None
) -> Tensor:
    """The `(S+1, N, *F)` states of the rollout from `state` over `dts (S, B)` (initial state first) in one call of
    the compiled op, where `compiled_rollout_applies`; arguments as `compiled_rollout_args`."""
    states = torch.ops.fastsim.ngs_rollout.default(*compiled_rollout_args(model, graph, state, dts, edge, glob))
    return states.view(-1, *state.shape)


def _linear_params(module: nn.Module) -> list[Tensor]:
    """`weight, bias` of every Linear child of `module`, in registration order. Read from the modules' own
    dictionaries, each call afresh: `nn.Module` attribute access costs ≈ 0.5 µs a name, and the ≈ 100 names of a
    rollout's weights were a quarter of a small rollout's Python time."""
    linears = (child._parameters for child in module._modules.values() if isinstance(child, nn.Linear))
    return [t for params in linears for t in (params["weight"], params["bias"])]


@torch.library.register_fake("fastsim::ngs_rollout")
def _ngs_rollout_fake(state, indptr, src, ptr, edge_coefficients, dts, glob_embedding, weights):
    return state.new_empty((dts.shape[0] + 1, *state.shape))
