"""Matrix-product FLOPs of a benchmarked call, for the reports' "equal arithmetic speed" ratios.

torch's FLOP counter sees every ATen product; the products inside fastsim's fused ops it cannot see, so each fused
op registers a formula here (its inputs arrive as shapes). A peer/fastsim ratio of these counts is the speed-up an
implementation doing the same arithmetic at the same speed per FLOP would show.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fastsim import _backend


def gn_edge_flops(indptr, src, rev_indptr, rev_dst, rev_perm, p_src, p_dst, edge, w_edge, glob, batch, w2, *_, **__):
    """The fused edge op's in-kernel products: the second Linear, 2·E·H·O, and with `w_edge` the edge features'
    projection, 2·E·F·H."""
    edges = src[0]
    return 2 * edges * w2[0] * w2[1] + (0 if w_edge is None else 2 * edges * w_edge[0] * w_edge[1])


def gn_edge_backward_flops(indptr, src, rev_indptr, rev_dst, rev_perm, p_src, p_dst, edge, w_edge, *rest, **__):
    """The fused edge op's backward products: the recomputed second Linear, w2's gradient and the hidden gradient,
    3 · 2·E·H·O; with `w_edge` also the recomputed projection and the gradients of the features and of w_edge,
    3 · 2·E·F·H."""
    w2 = rest[2]
    return 3 * gn_edge_flops(indptr, src, rev_indptr, rev_dst, rev_perm, p_src, p_dst, edge, w_edge, None, None, w2)


def linear_flops(x, weight, bias, *_, **__):
    """The compiled Linear's product, 2·M·K·N (the bias add is not a product)."""
    return 2 * x[0] * x[1] * weight[0]


def linear_backward_flops(grad, x, weight, input_grad, weight_grad, *_, **__):
    """The compiled Linear's backward: 2·M·K·N for each gradient asked for."""
    return (int(input_grad) + int(weight_grad)) * 2 * x[0] * x[1] * weight[0]


def count_flops(run: Callable[[], object], device: torch.device | str, formulas: dict | None = None) -> int:
    """FLOPs of `run()` on `device`: torch's count plus the fused edge op's and the compiled Linear's (forward and
    backward) and `formulas` ({op packet: formula}) for other fused ops."""
    from torch.utils.flop_counter import FlopCounterMode

    device = torch.device(device)
    # FlopCounterMode looks ops up by their packet (`torch.ops.fastsim.gn_edge_aggregate`), not by an overload
    mapping = {
        _backend.op("gn_edge_aggregate", device)._overloadpacket: gn_edge_flops,
        _backend.op("gn_edge_aggregate_backward", device)._overloadpacket: gn_edge_backward_flops,
        torch.ops.fastsim.linear: linear_flops,
        torch.ops.fastsim.linear_backward: linear_backward_flops,
        **(formulas or {}),
    }
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        run()
    return counter.get_total_flops()
