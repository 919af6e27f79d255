"""Inputs and implementations shared by the message-passing benchmarks (pytest-benchmark and `bench.report`).

A case is (op, graph kind, feature size F). `Inputs` (from bench.message_passing_inputs, re-exported here)
builds every tensor of a case once, seeded; every implementation of an op reads the same tensors and returns
something comparable with the fastsim result (`OPS[name].impls[0]`), which `check` verifies before anything
is timed. Per-edge tensors are in the graph's
CSR order (edges sorted by destination), for fastsim and its peers alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as tnf

import fastsim
from bench import message_passing_peers as peers
from bench.message_passing_inputs import (
    FEATURES,
    GN_HIDDEN,
    GRAPH_KINDS,
    POWER_LAW_GAMMA,
    SMOKE,
    GNParams,
    Inputs,
    Sizes,
    build_graph,
    sizes_for,
    synchronize,
)

__all__ = [
    "FEATURES",
    "GN_HIDDEN",
    "GRAPH_KINDS",
    "OPS",
    "POWER_LAW_GAMMA",
    "SMOKE",
    "GNParams",
    "Impl",
    "Inputs",
    "Op",
    "Sizes",
    "Traffic",
    "Unsupported",
    "build_graph",
    "check",
    "sizes_for",
    "synchronize",
    "timed",
]

Run = Callable[[Inputs], object]


@dataclasses.dataclass(frozen=True)
class Traffic:
    """Bytes an implementation must move, as a formula and as a function of (N, E, F)."""

    formula: str
    count: Callable[[int, int, int], int]

    def gbps(self, sizes: Sizes, features: int, seconds: float) -> float:
        return self.count(sizes.num_nodes, sizes.num_edges, features) / seconds / 1e9


SPMM_TRAFFIC = Traffic(
    "E·F·4 (x rows) + E·8 (src) + E·4 (weight) + N·F·4 (out)", lambda n, e, f: e * (4 * f + 12) + 4 * n * f
)
GATHER_TRAFFIC = Traffic("E·F·4 (x rows) + E·8 (src) + E·F·4 (out)", lambda n, e, f: e * (8 * f + 8))
STREAM_TRAFFIC = Traffic("E·F·4 (contiguous read)", lambda n, e, f: 4 * e * f)


@dataclasses.dataclass(frozen=True)
class Impl:
    """One implementation of an op.

    kind: "fastsim" (the op's first implementation is the reference: every other result is checked against
    it and timed relative to it), "peer" (a torch/PyG path computing the same result) or "floor" (a
    memory-traffic lower bound, not checked).
    """

    name: str
    label: str
    run: Run
    kind: str = "peer"
    requires: str | None = None  # an optional module; the benchmark skips without it
    devices: tuple[str, ...] = ("cpu", "cuda")
    traffic: Traffic | None = None


def on_backend(backend: str, run: Run) -> Run:
    """`run` under `fastsim.set_backend(backend)`, restoring the previous backend afterwards."""

    def wrapped(inputs: Inputs) -> object:
        previous = fastsim.get_backend()
        fastsim.set_backend(backend)
        try:
            return run(inputs)
        finally:
            fastsim.set_backend(previous)

    return wrapped


def with_backends(name: str, run: Run, **kw: object) -> tuple[Impl, ...]:
    """The fastsim implementation under "auto", plus explicit "cpp" and "triton" variants on CUDA."""
    return (
        Impl(name, "fastsim", run, kind="fastsim", **kw),
        Impl(
            f"{name}_cpp",
            'fastsim, set_backend("cpp")',
            on_backend("cpp", run),
            "fastsim",
            devices=("cuda",),
            **kw,
        ),
        Impl(
            f"{name}_triton",
            'fastsim, set_backend("triton")',
            on_backend("triton", run),
            "fastsim",
            requires="triton",
            devices=("cuda",),
            **kw,
        ),
    )


def gn_fastsim(inputs: Inputs) -> tuple[torch.Tensor, ...]:
    """Fused GN edge step, forward + backward.

    `p_src = x W_srcᵀ`, `p_dst = x W_dstᵀ + b1` (W1 = [W_src | W_dst]), then
    `fastsim.ops.gn_edge_aggregate`.
    """
    p, h = inputs.gn, inputs.features
    p_src = p.x @ p.w1[:, :h].T
    p_dst = p.x @ p.w1[:, h:].T + p.b1
    out = fastsim.ops.gn_edge_aggregate(inputs.graph, p_src, p_dst, p.w2, p.b2)
    return (out.detach(), *torch.autograd.grad((out * p.upstream).sum(), p.leaves))


def gn_plain_torch(inputs: Inputs) -> tuple[torch.Tensor, ...]:
    """Unfused GN edge step, forward + backward: gather-concat, two Linear+GELU on E rows, index_add."""
    p, g = inputs.gn, inputs.graph
    h = torch.cat([p.x[g.src], p.x[g.dst]], dim=-1)
    m = tnf.gelu(tnf.linear(tnf.gelu(tnf.linear(h, p.w1, p.b1)), p.w2, p.b2))
    out = m.new_zeros(g.num_nodes, m.shape[1]).index_add(0, g.dst, m)
    return (out.detach(), *torch.autograd.grad((out * p.upstream).sum(), p.leaves))


@dataclasses.dataclass(frozen=True)
class Op:
    """An op to compare: its implementations (fastsim first), the inputs they read, and the feature sizes.

    masked: compare only nodes with incoming edges (peers disagree on empty rows of a max, e.g. -inf vs 0).
    slow: few rounds are enough (fwd+bwd at full size takes seconds).
    """

    name: str
    title: str
    impls: tuple[Impl, ...]
    inputs: tuple[str, ...]
    features: tuple[int, ...] = FEATURES
    masked: bool = False
    slow: bool = False

    def impls_for(self, device: str) -> tuple[Impl, ...]:
        return tuple(i for i in self.impls if torch.device(device).type in i.devices)

    def impl(self, name: str) -> Impl:
        return next(i for i in self.impls if i.name == name)


def _spmm_fastsim(reduce: str) -> Run:
    return lambda inp: fastsim.ops.spmm(inp.graph, inp.x, reduce, weight=inp.weight)


def _segment_fastsim(reduce: str) -> Run:
    def run(inp: Inputs) -> torch.Tensor:
        out = fastsim.ops.segment_reduce(inp.edge_values, inp.graph.indptr, reduce)
        return out if reduce in ("sum", "mean") else out.values

    return run


def _spmm_op(reduce: str, torch_reduce: str, extra: tuple[Impl, ...] = ()) -> Op:
    inputs = ("graph", "x", "weight", "csr", "edge_index") + (("edge_values",) if reduce == "sum" else ())
    return Op(
        f"spmm_{reduce}",
        f"spmm, reduce={reduce!r}, weighted: y[i] = {reduce}_(j→i) w_ji·x[j]",
        with_backends("fastsim", _spmm_fastsim(reduce), traffic=SPMM_TRAFFIC)
        + extra
        + (
            Impl(
                "scatter_reduce",
                f'x[src]·w → scatter_reduce_(reduce="{torch_reduce}", include_self=False)',
                peers.scatter_reduce_messages(torch_reduce),
            ),
            Impl(
                "sparse_mm_reduce",
                f'torch.sparse.mm(csr, x, reduce="{torch_reduce}")',
                peers.sparse_mm(torch_reduce),
            ),
        ),
        inputs,
        masked=reduce == "max",
    )


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        _spmm_op(
            "sum",
            "sum",
            (
                Impl("index_add", "x[src]·w → index_add_", peers.index_add_messages),
                Impl("scatter_add", "x[src]·w → scatter_add_", peers.scatter_add_messages),
                Impl("sparse_mm", "torch.sparse.mm(csr, x)", peers.sparse_mm(None)),
                Impl(
                    "pyg_scatter",
                    "PyG utils.scatter(x[src]·w, dst)",
                    peers.pyg_scatter,
                    requires="torch_geometric",
                ),
                Impl(
                    "pyg_message_passing",
                    'PyG MessagePassing(aggr="add")',
                    peers.pyg_message_passing,
                    requires="torch_geometric",
                ),
                Impl(
                    "gather_floor",
                    "torch.index_select(x, 0, src) (gather floor)",
                    peers.gather,
                    "floor",
                    traffic=GATHER_TRAFFIC,
                ),
                Impl(
                    "stream_read",
                    "edge_values.sum(0) (contiguous E×F read)",
                    peers.stream_read,
                    "floor",
                    traffic=STREAM_TRAFFIC,
                ),
            ),
        ),
        _spmm_op("mean", "mean"),
        _spmm_op("max", "amax"),
        Op(
            "sddmm_dot",
            "sddmm u_dot_v: out[e] = <u[src_e], v[dst_e]>",
            with_backends("fastsim", lambda inp: fastsim.ops.sddmm(inp.graph, inp.u, inp.v, "dot"))
            + (
                Impl("gather_mul_sum", "(u[src] * v[dst]).sum(-1)", peers.gather_mul_sum),
                Impl("sampled_addmm", "torch.sparse.sampled_addmm(pattern, v, uᵀ)", peers.sampled_addmm),
            ),
            ("graph", "u", "v", "csr_pattern"),
        ),
        *(
            Op(
                f"segment_{reduce}",
                f"segment_reduce {reduce} over (E, F) values, CSR offsets",
                with_backends("fastsim", _segment_fastsim(reduce))
                + (
                    Impl(
                        "torch_segment_reduce",
                        f'torch.segment_reduce(data, "{reduce}", offsets=indptr)',
                        peers.torch_segment_reduce(reduce),
                    ),
                    Impl(
                        "scatter_reduce",
                        f'scatter_reduce_(reduce="{torch_reduce}", include_self=False)',
                        peers.scatter_reduce_values(torch_reduce),
                    ),
                ),
                ("graph", "edge_values"),
                masked=reduce == "max",
            )
            for reduce, torch_reduce in (("sum", "sum"), ("max", "amax"))
        ),
        Op(
            "gn_edge_fwd_bwd",
            f"GN edge step forward + backward, H = O = {GN_HIDDEN}",
            with_backends("fastsim", gn_fastsim)
            + (Impl("plain_torch", "gather-concat → Linear → GELU → Linear → GELU → index_add", gn_plain_torch),),
            ("graph", "gn"),
            features=(GN_HIDDEN,),
            slow=True,
        ),
    )
}


class Unsupported(Exception):
    """A peer does not run on these inputs (e.g. an op not implemented on this device)."""


def _flat(result: object) -> tuple[torch.Tensor, ...]:
    return tuple(result) if isinstance(result, tuple) else (result,)


def check(op: Op, impl: Impl, inputs: Inputs, tol: float = 1e-4) -> object:
    """Run `impl` once and compare it with the fastsim result (max |a-b| <= tol·max(1, max |ref|) per tensor).

    Returns the result. Raises `Unsupported` when a peer raises, AssertionError on a mismatch.
    """
    inputs.build(op.inputs)
    if op.name not in inputs.references:
        inputs.references[op.name] = op.impls[0].run(inputs)
    try:
        result = impl.run(inputs)
    except (RuntimeError, NotImplementedError) as err:
        if impl is op.impls[0]:
            raise
        raise Unsupported(f"{impl.label}: {str(err).splitlines()[0]}") from err
    synchronize(inputs.device)
    if impl.kind == "floor":
        return result
    mask = inputs.graph.in_degree() > 0 if op.masked else slice(None)
    for k, (got, ref) in enumerate(zip(_flat(result), _flat(inputs.references[op.name]), strict=True)):
        got, ref = got.detach()[mask], ref.detach()[mask]
        err = (got - ref).abs().max().item() if ref.numel() else 0.0
        scale = max(1.0, ref.abs().max().item() if ref.numel() else 0.0)
        if not err <= tol * scale:
            raise AssertionError(f"{op.name}/{impl.name} output {k} differs from fastsim: max |diff| {err:.3g}")
    return result


def timed(impl: Impl, inputs: Inputs) -> Callable[[], object]:
    """A zero-argument call of `impl` on `inputs` that returns only once the device is done."""

    def call() -> object:
        out = impl.run(inputs)
        synchronize(inputs.device)
        return out

    return call
