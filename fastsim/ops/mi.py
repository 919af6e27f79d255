"""Fused kernels of the information estimators (fastsim.info): Gaussian Gram matrices and KDE log-sum-exps.

- `gaussian_gram(x, sigma, other=None)`: `A = exp(−‖x_i − x_j‖²/(2σ²))/N` (trace 1) for a stack `x (..., N, d)`
  in one pass (distance → exp → normalisation), or, given trace-1 Grams `other`, the normalised Hadamard
  product `A ∘ other / tr(A ∘ other)` of the matrix-based joint entropy, without materialising `A` first.
- `kde_logsumexp(t, scale)`: `log Σ_j exp(−scale·‖t_i − t_j‖²)` per sample, streamed over `j`: O(N) memory
  where the plain version holds the N×N matrix.
- `symmetric_eigvalsh(a)`: the eigenvalues of a stack of symmetric matrices (the spectra of the matrix-based
  Rényi entropy), with the batch split across threads (CPU) or one thread block per matrix (CUDA).

The first two depend on differences of samples only, so the wrappers shift (and scale) the samples before the
compiled kernels take squared distances in the GEMM form `‖a‖² + ‖b‖² − 2a·b`: that form loses ≈ ε·‖a‖² to
cancellation, more than the distances themselves under a common offset of 1e3 (float32) or 1e8 (float64), and
`‖a‖²` overflows for huge samples (`centred_in_units`).

All are differentiable (in `x`, `sigma`, `other`; in `t`; in `a`) and dispatch through fastsim._backend like every
op.
"""

import math

import torch

from fastsim import _backend

__all__ = ["gaussian_gram", "kde_logsumexp", "symmetric_eigvalsh"]

_BACKWARD_BLOCK = 1024  # rows per block of the KDE backward: O(block · N) memory
# Largest order the CUDA kernel takes: it keeps one N×N float64 matrix per thread block in shared memory (128 KiB).
_MAX_CUDA_EIGVALSH_ORDER = 128


def all_finite(t: torch.Tensor) -> bool:
    """Whether every entry of `t` is finite: one sum in the common case (a finite sum of finite entries), the
    entry-wise test only when the sum is not finite (NaN/inf present, or an overflow of huge finite values)."""
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def _check_points(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a floating tensor of samples (..., N, d); got {got}")
    if not torch.compiler.is_compiling() and not all_finite(x):  # value checks: eager only
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def centred_in_units(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(u, unit)`: samples `x (..., N, d)` shifted and scaled, `u = (x − c) / unit`, so that squared distances
    neither cancel against a common offset nor overflow or underflow; distances between the `u` are those of `x`
    over `unit (...)`.

    `c` is each batch's per-coordinate midpoint and `unit` its largest half-range (a constant to autograd), so
    `|u| <= 1`. Both are applied only where needed, i.e. some batch's offset exceeds four spreads, or its values are
    huge or its spread tiny for the dtype: otherwise `u` is `x` itself and `unit` 1, and a large batch (10,000
    MIs at N = 100, d = 784 is 6 GB in float64) is not copied. Deciding costs one pass (`aminmax`).
    """
    if x.numel() == 0:
        return x, x.new_ones(x.shape[:-2])
    lo, hi = torch.aminmax(x.detach(), dim=-2)  # (..., d)
    mid, half = (hi + lo) / 2, (hi - lo) / 2
    spread = half.amax(-1)
    if not torch.compiler.is_compiling():
        info = torch.finfo(x.dtype)
        safe = (info.max / x.shape[-1]) ** 0.5 / 4  # d·|x|² stays finite below it
        peak = torch.maximum(hi.abs(), lo.abs()).amax(-1)
        # The GEMM form's relative error in a squared distance is ≈ 2ε(1 + (offset / spread)²): at most 34ε while
        # the offset is within four spreads (samples in [0, 1] have offset ≈ spread).
        needed = (mid.abs().amax(-1) > 4 * spread) | (peak > safe) | (spread < info.tiny**0.5)
        if not bool(needed.any()):
            return x, x.new_ones(x.shape[:-2])
    unit = spread.clamp_min(torch.finfo(x.dtype).tiny)  # identical samples: any unit
    return (x - mid[..., None, :]).mul_(unit.reciprocal()[..., None, None]), unit


def gaussian_gram(x: torch.Tensor, sigma: torch.Tensor | float, other: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised Gaussian Gram matrices `(..., N, N)` of samples `x (..., N, d)`, in `x`'s dtype.

    Args:
        x: samples, any leading batch dimensions.
        sigma: kernel widths, a number or a tensor broadcastable to the batch shape `x.shape[:-2]`; positive.
        other: optional trace-1 Gram matrices `(..., N, N)` (same batch shape) to join by Hadamard product.

    Raises:
        ValueError: bad shapes, NaN, non-positive widths, a mismatched `other`, or one with NaN or a trace <= 0.
    """
    x = _check_points(x, "x")
    batch, n, d = x.shape[:-2], x.shape[-2], x.shape[-1]
    width = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    try:
        width = torch.broadcast_to(width, batch)
    except RuntimeError as err:
        raise ValueError(f"sigma of shape {tuple(width.shape)} does not broadcast to the batch {tuple(batch)}") from err
    if not torch.compiler.is_compiling() and not bool(((width > 0) & torch.isfinite(width)).all()):
        raise ValueError("sigma must be positive and finite")
    flat_other = None
    if other is not None:
        if not isinstance(other, torch.Tensor) or other.shape != (*batch, n, n):
            raise ValueError(f"other must be a tensor of shape {(*batch, n, n)}")
        if other.dtype != x.dtype or other.device != x.device:
            raise ValueError(f"other must have x's dtype and device ({x.dtype}, {x.device})")
        if not torch.compiler.is_compiling():  # value checks: eager only
            if not all_finite(other):
                raise ValueError("other contains NaN or infinite values")
            if not bool((other.diagonal(dim1=-2, dim2=-1).sum(-1) > 0).all()):
                raise ValueError("other must be Gram matrices with a positive trace (trace 1: normalised Grams)")
        flat_other = other.reshape(math.prod(batch), n, n).contiguous()
    u, unit = centred_in_units(x)
    # The width in the same units, kept where 2σ² and 1/(2σ²) are finite. A narrower one (≈ 1e-154 of the samples'
    # spread in float64, 1e-19 in float32) tells apart only samples that close: the floor keeps duplicates at
    # exp(0) = 1 rather than exp(−∞ · 0) = NaN. A wider one sees every kernel value as 1 (|u| <= 1), as does the cap.
    limit = torch.finfo(x.dtype).max ** 0.5 / 2
    width = (width / unit).clamp(1.0 / limit, limit)
    flat_x = u.reshape(math.prod(batch), n, d).contiguous()
    out = _backend.op("gaussian_gram", x.device)(flat_x, width.reshape(-1).contiguous(), flat_other)
    return out.reshape(*batch, n, n)


def kde_logsumexp(t: torch.Tensor, scale: float) -> torch.Tensor:
    """`log Σ_j exp(−scale·‖t_i − t_j‖²)` for samples `t (..., N, d)`: `(..., N)`, in `t`'s dtype.

    Raises:
        ValueError: bad shapes, NaN, a non-positive or non-finite scale, or samples so far apart for the scale that
            `scale·‖t_i − t_j‖²` overflows.
    """
    t = _check_points(t, "t")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (0 < scale < float("inf")):
        raise ValueError(f"scale must be a positive finite number; got {scale!r}")
    batch, n, d = t.shape[:-2], t.shape[-2], t.shape[-1]
    # Centred (for gaussian_gram's reason; always, as the samples are rescaled anyway) and in units of the kernel's
    # length 1/√scale: the op takes the scale as a number, so the unit cannot follow the data as there, and samples
    # ≈ 1e154 lengths from their mean (float64; 1e19 in float32) are refused rather than overflowing ‖u‖² into NaN.
    u = (t - t.mean(-2, keepdim=True)).mul_(math.sqrt(scale))
    if not torch.compiler.is_compiling() and not bool((u.square().sum(-1) <= torch.finfo(t.dtype).max / 4).all()):
        raise ValueError(f"t is too spread out for scale = {scale!r}: scale·‖t_i − t_j‖² overflows {t.dtype}")
    out = _backend.op("kde_logsumexp", t.device)(u.reshape(math.prod(batch), n, d).contiguous(), 1.0)
    return out.reshape(*batch, n)


def symmetric_eigvalsh(a: torch.Tensor) -> torch.Tensor:
    """Eigenvalues, ascending, of symmetric matrices `a (..., N, N)`: `(..., N)`, in `a`'s dtype.

    The drop-in for `torch.linalg.eigvalsh` on many small matrices: like it, only the lower triangle is read,
    and the result agrees with it to a few ulps of the spectral norm (computed in float64 for float32 input too).
    The gradient of `Σ_k g_k λ_k` is `V diag(g) Vᵀ` (V the eigenvectors), well defined at repeated eigenvalues.
    On CUDA, matrices larger than 128×128 go to `torch.linalg.eigvalsh`.

    Args:
        a: float32 or float64 symmetric matrices, any leading batch dimensions.

    Raises:
        ValueError: not a float32/float64 tensor of square matrices, or NaN/infinite entries.
    """
    if not isinstance(a, torch.Tensor) or a.dtype not in (torch.float32, torch.float64) or a.dim() < 2:
        got = f"{a.dtype} {tuple(a.shape)}" if isinstance(a, torch.Tensor) else type(a).__name__
        raise ValueError(f"a must be a float32 or float64 tensor of square matrices (..., N, N); got {got}")
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"a must hold square matrices (..., N, N); got shape {tuple(a.shape)}")
    if not torch.compiler.is_compiling() and not all_finite(a):  # value checks: eager only
        raise ValueError("a contains NaN or infinite values")
    batch, n = a.shape[:-2], a.shape[-1]
    if a.device.type == "cuda" and n > _MAX_CUDA_EIGVALSH_ORDER:
        return torch.linalg.eigvalsh(a)
    out = _backend.op("symmetric_eigvalsh", a.device)(a.reshape(math.prod(batch), n, n).contiguous())
    return out.reshape(*batch, n)


# ------------------------------------------------------------------------------------- fake kernels, autograd
def _gram_fake(x, sigma, other):
    return x.new_empty(x.shape[0], x.shape[1], x.shape[1])


def _kde_fake(t, scale):
    return t.new_empty(t.shape[0], t.shape[1])


def _squared_distances(x: torch.Tensor) -> torch.Tensor:
    sq = x.square().sum(-1)
    return (sq[:, :, None] + sq[:, None, :] - 2.0 * x @ x.transpose(1, 2)).clamp_min(0.0)


def _gram_setup(ctx, inputs, output):
    x, sigma, other = inputs
    ctx.has_other = other is not None
    ctx.save_for_backward(x, sigma, output, *([other] if other is not None else []))


def _gram_backward(ctx, grad):
    x, sigma, output, *rest = ctx.saved_tensors
    n = x.shape[1]
    grad_other = None
    if ctx.has_other:
        (other,) = rest
        trace = other.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None]
        kernel = _backend.op("gaussian_gram", x.device)(x, sigma, None) * n  # K_ij = exp(−d²/(2σ²))
        grad_kernel = grad * other / trace
        if ctx.needs_input_grad[2]:
            shift = (grad * output).sum((1, 2))[:, None, None] / trace
            grad_other = grad * kernel / trace - shift * torch.eye(n, dtype=x.dtype, device=x.device)
    else:
        kernel = output * n
        grad_kernel = grad / n
    weight = grad_kernel * kernel  # ∂L/∂(−d²/(2σ²)) per entry
    grad_x = grad_sigma = None
    if ctx.needs_input_grad[0]:
        sym = weight + weight.transpose(1, 2)
        grad_x = -(sym.sum(-1, keepdim=True) * x - sym @ x) / sigma[:, None, None] ** 2
    if ctx.needs_input_grad[1]:
        grad_sigma = (weight * _squared_distances(x)).sum((1, 2)) / sigma**3
    return grad_x, grad_sigma, grad_other


def _kde_setup(ctx, inputs, output):
    t, scale = inputs
    ctx.scale = scale
    ctx.save_for_backward(t, output)


def _kde_backward(ctx, grad):
    t, lse = ctx.saved_tensors
    c, n = ctx.scale, t.shape[1]
    grad_t = torch.zeros_like(t)
    sq = t.square().sum(-1)
    for start in range(0, n, _BACKWARD_BLOCK):
        rows = slice(start, min(start + _BACKWARD_BLOCK, n))
        d2 = (sq[:, rows, None] + sq[:, None, :] - 2.0 * t[:, rows] @ t.transpose(1, 2)).clamp_min(0.0)
        weight = grad[:, rows, None] * torch.exp(-c * d2 - lse[:, rows, None])  # G_i · softmax_ij
        t_rows = t[:, rows]
        grad_t[:, rows] += weight.sum(-1, keepdim=True) * t_rows - weight @ t
        grad_t += weight.sum(1)[:, :, None] * t - weight.transpose(1, 2) @ t_rows
    return -2.0 * c * grad_t, None


def _eigvalsh_fake(a):
    return a.new_empty(a.shape[0], a.shape[1])


def _eigvalsh_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


def _eigvalsh_backward(ctx, grad):
    # dλ_k = v_kᵀ dA v_k, and Σ_k g_k v_k v_kᵀ over an eigenspace of equal g_k does not depend on the basis chosen
    # in it; the vectors are recomputed here because the forward never forms them.
    (a,) = ctx.saved_tensors
    vectors = torch.linalg.eigh(a).eigenvectors
    return (vectors * grad[:, None, :]) @ vectors.transpose(1, 2)


def register(suffix: str = "") -> None:
    """Fake kernels (C++ ops only; Triton ops derive theirs) and autograd for fastsim::{gaussian_gram,
    kde_logsumexp}<suffix> and fastsim::symmetric_eigvalsh (C++/CUDA only)."""
    if not suffix:
        torch.library.register_fake("fastsim::gaussian_gram")(_gram_fake)
        torch.library.register_fake("fastsim::kde_logsumexp")(_kde_fake)
        torch.library.register_fake("fastsim::symmetric_eigvalsh")(_eigvalsh_fake)
        torch.library.register_autograd(
            "fastsim::symmetric_eigvalsh", _eigvalsh_backward, setup_context=_eigvalsh_setup
        )
    torch.library.register_autograd(f"fastsim::gaussian_gram{suffix}", _gram_backward, setup_context=_gram_setup)
    torch.library.register_autograd(f"fastsim::kde_logsumexp{suffix}", _kde_backward, setup_context=_kde_setup)


register()
