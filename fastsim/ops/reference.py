"""Pure-torch references for every compiled op: the plainest correct version, used by the tests.

Arguments mirror the op schemas in docs/ops.md (graph tensors in CSR order); only what the forward needs.
These are never a silent fallback for the compiled kernels.
"""

import torch
import torch.nn.functional as F


def _segment_ids(indptr: torch.Tensor, num_items: int) -> torch.Tensor:
    counts = indptr[1:] - indptr[:-1]
    ids = torch.arange(counts.numel(), device=indptr.device)
    return torch.repeat_interleave(ids, counts, output_size=num_items)


def segment_reduce(src: torch.Tensor, indptr: torch.Tensor, reduce: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduce `src (E, *F)` over the CSR segments `indptr (N+1,)`; returns `(out (N, *F), arg)`."""
    num_segments = indptr.numel() - 1
    seg = _segment_ids(indptr, src.shape[0])
    out = src.new_zeros((num_segments, *src.shape[1:]))
    no_arg = torch.empty(0, dtype=torch.long, device=src.device)
    if reduce in ("sum", "mean"):
        out.index_add_(0, seg, src)
        if reduce == "mean":
            counts = (indptr[1:] - indptr[:-1]).clamp(min=1).to(src.dtype)
            out = out / counts.view(-1, *([1] * (src.dim() - 1)))
        return out, no_arg
    arg = torch.full(out.shape, -1, dtype=torch.long, device=src.device)
    better = torch.gt if reduce == "max" else torch.lt
    # Plain loop over segments: slow, obviously right (first extreme wins, NaN wins and sticks).
    for i in range(num_segments):
        lo, hi = int(indptr[i]), int(indptr[i + 1])
        if lo == hi:
            continue
        best = src[lo].clone()
        best_arg = torch.full_like(best, lo, dtype=torch.long)
        for e in range(lo + 1, hi):
            take = ~torch.isnan(best) & (torch.isnan(src[e]) | better(src[e], best))
            best = torch.where(take, src[e], best)
            best_arg = torch.where(take, torch.full_like(best_arg, e), best_arg)
        out[i], arg[i] = best, best_arg
    return out, arg


def spmm(
    indptr: torch.Tensor, src: torch.Tensor, weight: torch.Tensor | None, x: torch.Tensor, reduce: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """`out[i] = reduce_{e into i} w_e * x[src[e]]`; arg holds CSR edge positions for min/max."""
    messages = x[src]
    if weight is not None:
        messages = messages * weight.unsqueeze(-1)
    return segment_reduce(messages, indptr, reduce)


def sddmm(indptr: torch.Tensor, src: torch.Tensor, u: torch.Tensor, v: torch.Tensor, op: str) -> torch.Tensor:
    """Per-edge values from source features `u` and destination features `v`: dot, add or mul."""
    dst = _segment_ids(indptr, src.numel())
    if op == "dot":
        return (u[src] * v[dst]).sum(-1)
    if op == "add":
        return u[src] + v[dst]
    return u[src] * v[dst]


def gn_edge_aggregate(
    indptr: torch.Tensor,
    src: torch.Tensor,
    p_src: torch.Tensor,
    p_dst: torch.Tensor,
    edge_term: torch.Tensor | None,
    w_edge: torch.Tensor | None,
    graph_term: torch.Tensor | None,
    batch: torch.Tensor | None,
    w2: torch.Tensor,
    b2: torch.Tensor,
    return_edges: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The graph-network edge step, materialised: GELU(GELU(z1) W2ᵀ + b2) summed into destinations."""
    dst = _segment_ids(indptr, src.numel())
    z1 = p_src[src] + p_dst[dst]
    if edge_term is not None:
        z1 = z1 + (edge_term if w_edge is None else edge_term @ w_edge.T)
    if graph_term is not None:
        z1 = z1 + graph_term[batch[dst]]
    m = F.gelu(F.gelu(z1) @ w2.T + b2)
    node_out = m.new_zeros((p_dst.shape[0], w2.shape[0])).index_add_(0, dst, m)
    edge_out = m if return_edges else m.new_empty((0, w2.shape[0]))
    return node_out, edge_out


def rk_stage(y: torch.Tensor, dt: torch.Tensor, ks: list[torch.Tensor], coeffs: list[float]) -> torch.Tensor:
    """`y + dt[:, None] · Σ_s coeffs[s] · ks[s]` for `y (B, N)`."""
    return y + dt[:, None] * sum((c * k for c, k in zip(coeffs, ks)), torch.zeros_like(y))


def rk_error_norm(
    y0: torch.Tensor,
    y1: torch.Tensor,
    dt: torch.Tensor,
    ks: list[torch.Tensor],
    b_err: list[float],
    rtol: float,
    atol: float,
    b_err_aux: list[float] | None = None,
) -> torch.Tensor:
    """Per-trajectory weighted RMS norm of `Σ_s b_err[s] ks[s]` (Hairer's DOP853 form with `b_err_aux`)."""
    scale = atol + rtol * torch.maximum(y0.abs(), y1.abs())
    e = sum((c * k for c, k in zip(b_err, ks)), torch.zeros_like(y0)) / scale
    if b_err_aux is None:
        return dt.abs() * e.square().mean(1).sqrt()
    e3 = sum((c * k for c, k in zip(b_err_aux, ks)), torch.zeros_like(y0)) / scale
    n5, n3 = e.square().sum(1), e3.square().sum(1)
    return dt.abs() * n5 / (y0.shape[1] * (n5 + 0.01 * n3)).sqrt()


def gaussian_gram(x: torch.Tensor, sigma: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
    """`exp(−‖x_i − x_j‖²/(2σ²))/N` for `x (B, N, d)`, `sigma (B,)`; with trace-1 `other (B, N, N)` the
    normalised Hadamard product `A ∘ other / tr(A ∘ other)`."""
    sq = x.square().sum(-1)
    d2 = (sq[:, :, None] + sq[:, None, :] - 2.0 * x @ x.transpose(1, 2)).clamp_min(0.0)
    gram = torch.exp(-d2 / (2.0 * sigma[:, None, None] ** 2)) / x.shape[1]
    if other is None:
        return gram
    joint = gram * other
    return joint / joint.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None]


def kde_logsumexp(t: torch.Tensor, scale: float) -> torch.Tensor:
    """`log Σ_j exp(−scale · ‖t_i − t_j‖²)` per row of `t (B, N, d)`, through the full (B, N, N) matrix."""
    return torch.logsumexp(-scale * torch.cdist(t, t).square(), dim=-1)
