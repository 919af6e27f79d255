"""The peers fastsim is compared with: plain torch scatter/gather paths, torch.sparse and PyG.

Each function takes a `bench.message_passing_inputs.Inputs` and reads only its prebuilt tensors, so the timed
region holds the peer's own work (the gather of messages included, the CSR construction not).
PyG is imported on first use, so this module loads without torch_geometric.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

import fastsim

if TYPE_CHECKING:
    from bench.message_passing_inputs import Inputs


def csr_tensor(graph: fastsim.Graph, values: torch.Tensor) -> torch.Tensor:
    """The `(N, N)` torch CSR tensor of `graph`: row i holds the edges into i, columns are their sources."""
    n = graph.num_nodes
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(graph.indptr, graph.src, values, (n, n), check_invariants=False)


def messages(inp: Inputs) -> torch.Tensor:
    """`(E, F)` weighted messages `w_e · x[src_e]`."""
    return inp.x.index_select(0, inp.graph.src) * inp.weight.unsqueeze(-1)


def index_add_messages(inp: Inputs) -> torch.Tensor:
    m = messages(inp)
    return m.new_zeros(inp.graph.num_nodes, m.shape[1]).index_add_(0, inp.graph.dst, m)


def scatter_add_messages(inp: Inputs) -> torch.Tensor:
    m = messages(inp)
    index = inp.graph.dst.unsqueeze(-1).expand_as(m)
    return m.new_zeros(inp.graph.num_nodes, m.shape[1]).scatter_add_(0, index, m)


def _scatter_reduce(values: torch.Tensor, inp: Inputs, reduce: str) -> torch.Tensor:
    index = inp.graph.dst.unsqueeze(-1).expand_as(values)
    out = values.new_zeros(inp.graph.num_nodes, values.shape[1])
    return out.scatter_reduce_(0, index, values, reduce, include_self=False)


def scatter_reduce_messages(reduce: str) -> Callable[[Inputs], torch.Tensor]:
    return lambda inp: _scatter_reduce(messages(inp), inp, reduce)


def scatter_reduce_values(reduce: str) -> Callable[[Inputs], torch.Tensor]:
    return lambda inp: _scatter_reduce(inp.edge_values, inp, reduce)


def sparse_mm(reduce: str | None) -> Callable[[Inputs], torch.Tensor]:
    """`torch.sparse.mm(csr, x)`, or its reduce overload (CPU only in torch) when `reduce` is given."""
    if reduce is None:
        return lambda inp: torch.sparse.mm(inp.csr, inp.x)
    return lambda inp: torch.sparse.mm(inp.csr, inp.x, reduce)


def pyg_scatter(inp: Inputs) -> torch.Tensor:
    from torch_geometric.utils import scatter

    return scatter(messages(inp), inp.graph.dst, dim=0, dim_size=inp.graph.num_nodes, reduce="sum")


@functools.cache
def _weighted_sum_conv() -> torch.nn.Module:
    from torch_geometric.nn import MessagePassing

    class WeightedSumConv(MessagePassing):
        """`y[i] = Σ_{j→i} w_ji · x[j]`: the smallest MessagePassing layer doing the spmm."""

        def __init__(self) -> None:
            super().__init__(aggr="add")

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
            return self.propagate(edge_index, x=x, edge_weight=edge_weight)

        def message(self, x_j: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
            return edge_weight.unsqueeze(-1) * x_j

    return WeightedSumConv()


def pyg_message_passing(inp: Inputs) -> torch.Tensor:
    return _weighted_sum_conv()(inp.x, inp.edge_index, inp.weight)


def gather(inp: Inputs) -> torch.Tensor:
    """The gather floor: read the E source rows (and write them out; there is no way to read without it)."""
    return torch.index_select(inp.x, 0, inp.graph.src)


def stream_read(inp: Inputs) -> torch.Tensor:
    """A contiguous read of E×F floats: the memory-bandwidth ceiling without random access."""
    return inp.edge_values.sum(0)


def gather_mul_sum(inp: Inputs) -> torch.Tensor:
    g = inp.graph
    return (inp.u.index_select(0, g.src) * inp.v.index_select(0, g.dst)).sum(-1)


def sampled_addmm(inp: Inputs) -> torch.Tensor:
    """`(v uᵀ)` sampled at the CSR pattern: entry (i, src_e) = <v[i], u[src_e]>, values in CSR order."""
    return torch.sparse.sampled_addmm(inp.csr_pattern, inp.v, inp.u.T, beta=0.0).values()


def torch_segment_reduce(reduce: str) -> Callable[[Inputs], torch.Tensor]:
    return lambda inp: torch.segment_reduce(inp.edge_values, reduce, offsets=inp.graph.indptr)
