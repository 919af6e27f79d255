"""Matrix-based Rényi α-entropy and mutual information (Giraldo, Rao & Príncipe 2015; Yu et al.'s joint).

For samples `x (..., N, d)` the normalised Gaussian Gram matrix is `A = K/N` with
`K_ij = exp(−‖x_i − x_j‖² / (2σ²))` (trace 1), and

    S_α(A) = log(Σ_i λ_i(A)^α) / (1 − α),         S_1(A) = −Σ_i λ_i log λ_i (the α → 1 limit),
    S_α(X, Y) = S_α(A_X ∘ A_Y / tr(A_X ∘ A_Y)),   I(X; Y) = S(X) + S(Y) − S(X, Y),   S(X | Y) = S(X, Y) − S(Y).

Everything is batched over the leading dimensions of `x` (layers × checkpoints), computed in float64 and
differentiable. Spectra come from `fastsim.ops.symmetric_eigvalsh` (the batch split across threads; its gradient
is stable at repeated eigenvalues, unlike `eigh`'s vectors).
Eigenvalues are clamped at 0 and renormalised to sum to 1. Fast and large-N paths:

- α = 2: `Σλ² = ‖A‖_F²`, no eigendecomposition (O(N²));
- N ≥ 16384 (or ``method="lanczos"``): stochastic Lanczos quadrature for `tr(A^α)` (Hutchinson probes × Gauss
  quadrature from a Lanczos tridiagonalisation), O(N²·m) per probe instead of O(N³). With the defaults
  (32 probes, 64 Lanczos steps) the estimate's standard deviation on a 600-point Gaussian-cloud Gram matrix
  (Scott width, S ≈ 7.6 bits) is ≈ 0.15 bits for α ≈ 1 and ≈ 0.075 bits for α = 2, with a bias under a third of
  that; it shrinks as 1/√probes.

``compat="iprl"`` reproduces the "Information Flows of Diverse Autoencoders" code (information.md §1.2) exactly:
squared distances from differences (scipy's `pdist`), the spectrum as singular values (|λ|, not renormalised),
`log2(Σ s^α + 1e-8) / (1 − α)`, bits only.

The kernel width `sigma` is a number, a `(...)` tensor (one per batch index) or a rule name of
`fastsim.info.bandwidth` (default ``"iprl"``, the paper's σ = 2·N^(−1/(4+d))); two-variable functions take one
value for both or a pair `(sigma_x, sigma_y)`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fastsim.info.bandwidth import RULES, kernel_width
from fastsim.ops import gaussian_gram, symmetric_eigvalsh
from fastsim.ops.mi import all_finite

__all__ = [
    "conditional_entropy",
    "gram_matrix",
    "joint_entropy",
    "matrix_entropy",
    "mutual_information",
    "plane_mutual_information",
    "renyi_entropy",
]

Sigma = float | Tensor | str
# "auto" switches to stochastic Lanczos quadrature from this N. Measured (bench/RESULTS.md, "info", 2 cores): at
# N = 4096 the exact spectrum takes 7.3 s per MI against Lanczos's 17.8 s; at 16384 Lanczos takes 235 s against
# an estimated ≈ 420 s exact (64× the N = 4096 time), so only from there is the estimate worth its error.
LANCZOS_MIN_N = 16384
_IPRL_EPS = 1e-8
# How far from 1 the trace of a Gram matrix, and how far below 0 its eigenvalues, may lie from rounding: Grams
# computed in float32 are off by ≈ 1e-7; an unnormalised Gram (trace N) or an indefinite matrix is far off.
_GRAM_TOLERANCE = 1e-4


def _check_samples(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a floating tensor of samples (..., N, d); got {got}")
    if x.shape[-2] < 2:
        raise ValueError(f"{name} needs at least two samples (N >= 2); got N = {x.shape[-2]}")
    if not all_finite(x):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x.to(torch.float64)


def _check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (alpha > 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a positive finite number (1 for the Shannon limit); got {alpha!r}")
    return float(alpha)


def _check_compat(compat: object) -> None:
    if compat not in (None, "iprl"):
        raise ValueError(f"compat must be None or 'iprl'; got {compat!r}")


def _log(unit: str, compat: str | None) -> float:
    """1 / log(base) for `unit`."""
    _check_compat(compat)
    if unit not in ("bits", "nats"):
        raise ValueError(f"unit must be 'bits' or 'nats'; got {unit!r}")
    if compat == "iprl" and unit != "bits":
        raise ValueError("compat='iprl' reproduces the authors' numbers, which are in bits: use unit='bits'")
    return 1.0 / math.log(2.0) if unit == "bits" else 1.0


def _width(x: Tensor, sigma: Sigma) -> Tensor:
    if isinstance(sigma, str):
        if sigma not in RULES:
            raise ValueError(f"sigma must be a positive number, a tensor or one of the rules {RULES}; got {sigma!r}")
        width = kernel_width(x, sigma)
    else:
        width = torch.as_tensor(sigma, dtype=torch.float64, device=x.device)
        try:
            width = torch.broadcast_to(width, x.shape[:-2])
        except RuntimeError as err:
            raise ValueError(
                f"sigma of shape {tuple(width.shape)} does not match the batch {tuple(x.shape[:-2])}"
            ) from err
    if not bool((width > 0).all()) or not bool(torch.isfinite(width).all()):
        raise ValueError(
            "the kernel width sigma must be positive and finite (identical samples give σ = 0 under a data rule)"
        )
    return width.to(torch.float64)


def gram_matrix(x: Tensor, sigma: Sigma = "iprl", *, compat: str | None = None) -> Tensor:
    """`A = K/N` (trace 1) with `K_ij = exp(−‖x_i − x_j‖²/(2σ²))` for samples `x (..., N, d)`; float64.

    One fused kernel (`fastsim.ops.gaussian_gram`: distance → exp → normalisation); with ``compat="iprl"`` the
    authors' path, squared distances from differences (scipy's `pdist`) in plain torch.
    """
    _check_compat(compat)
    x = _check_samples(x, "x")
    width = _width(x, sigma)
    if compat != "iprl":
        return gaussian_gram(x, width)
    d2 = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist").square()
    return torch.exp(-d2 / (2.0 * width[..., None, None] ** 2)) / x.shape[-2]


def _lanczos_quadrature(a: Tensor, probes: int, steps: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Stochastic Lanczos quadrature for symmetric `a (N, N)`: nodes `θ ≥ 0` and weights `w`, each `(probes, m)`,
    with `tr f(A) ≈ N · mean_p Σ_k w_pk f(θ_pk)`.

    All Rademacher probes run together, so each Lanczos step is one `(N, N) @ (N, probes)` product.
    """
    n = a.shape[-1]
    steps = min(steps, n)
    signs = torch.randint(0, 2, (n, probes), generator=generator, dtype=torch.float64) * 2 - 1
    basis = [signs.to(a.device) / math.sqrt(n)]  # each (N, probes), unit columns
    alphas, betas = [], []
    for k in range(steps):
        w = a @ basis[-1]
        alphas.append((w * basis[-1]).sum(0))
        w = w - alphas[-1] * basis[-1] - (betas[-1] * basis[-2] if k > 0 else 0)
        stacked = torch.stack(basis)  # full reorthogonalisation: Ritz values stay honest
        w = w - torch.einsum("knp,kp->np", stacked, torch.einsum("knp,np->kp", stacked, w))
        if k == steps - 1:
            break
        beta = w.norm(dim=0)
        # An exhausted Krylov space decouples the tridiagonal matrix; the rest carries no weight of e_1.
        betas.append(torch.where(beta > 1e-12, beta, torch.zeros_like(beta)))
        basis.append(torch.where(beta > 1e-12, w / beta.clamp_min(1e-12), torch.zeros_like(w)))
    t = torch.diag_embed(torch.stack(alphas, -1))
    if betas:
        off = torch.stack(betas, -1)
        t = t + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
    theta, vecs = torch.linalg.eigh(t)
    return theta.clamp_min(0.0), vecs[:, 0].square()


def _check_gram(a: object) -> Tensor:
    """`a` in float64, after the checks that cost O(N²) at most: square, finite, trace 1."""
    if not isinstance(a, Tensor) or not a.is_floating_point() or a.dim() < 2 or a.shape[-1] != a.shape[-2]:
        got = f"{a.dtype} {tuple(a.shape)}" if isinstance(a, Tensor) else type(a).__name__
        raise ValueError(f"a must be a floating tensor of square matrices (..., N, N); got {got}")
    if not all_finite(a):
        raise ValueError("a contains NaN or infinite values")
    a = a.to(torch.float64)
    trace = a.diagonal(dim1=-2, dim2=-1).sum(-1)
    off = (trace - 1.0).abs() > _GRAM_TOLERANCE
    if bool(off.any()):
        raise ValueError(
            f"a must have trace 1 (a normalised Gram matrix, see gram_matrix); got {float(trace[off][0]):.6g}"
        )
    return a


def matrix_entropy(
    a: Tensor,
    *,
    alpha: float = 1.01,
    unit: str = "bits",
    compat: str | None = None,
    method: str = "auto",
    probes: int = 32,
    lanczos_steps: int = 64,
    generator: torch.Generator | None = None,
) -> Tensor:
    """`S_α(A)` of trace-1 positive semi-definite matrices `a (..., N, N)`, one per batch index.

    Args:
        a: normalised Gram matrices (`gram_matrix`, or a normalised Hadamard product of them).
        alpha: order α > 0 (1: the Shannon/von Neumann limit).
        unit: ``"bits"`` or ``"nats"``.
        compat: None, or ``"iprl"`` (singular values, no renormalisation, ε = 1e-8 inside the log).
        method: ``"auto"`` (exact below N = 16384, α = 2 through the Frobenius norm), ``"exact"`` or
            ``"lanczos"`` (stochastic Lanczos quadrature; not differentiable in a useful sense, not with compat).
        probes, lanczos_steps, generator: of the Lanczos estimator (probes and steps >= 1).

    Raises:
        ValueError: `a` not finite square matrices of trace 1 (±1e-4), or, where the exact spectrum is computed
            (without compat), with an eigenvalue below −1e-4; a bad alpha, unit, compat, method, probes or steps.
    """
    alpha, scale = _check_alpha(alpha), _log(unit, compat)
    if method not in ("auto", "exact", "lanczos"):
        raise ValueError(f"method must be 'auto', 'exact' or 'lanczos'; got {method!r}")
    for name, value in (("probes", probes), ("lanczos_steps", lanczos_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    a = _check_gram(a)
    n = a.shape[-1]
    if compat == "iprl":
        if method == "lanczos":
            raise ValueError("compat='iprl' computes the full spectrum; method='lanczos' is not available with it")
        s = symmetric_eigvalsh(a).abs()  # the singular values of a symmetric matrix
        return torch.log((s**alpha).sum(-1) + _IPRL_EPS) * scale / (1.0 - alpha)
    if alpha == 2.0 and method != "lanczos":
        return -torch.log(a.square().sum((-2, -1))) * scale
    if method == "lanczos" or (method == "auto" and n >= LANCZOS_MIN_N):
        if a.numel() == 0:  # an empty batch: no matrices to probe
            return a.new_zeros(a.shape[:-2])
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        quadratures = [_lanczos_quadrature(m, probes, lanczos_steps, gen) for m in a.reshape(-1, n, n)]
        theta, weight = (torch.stack(v).reshape(*a.shape[:-2], probes, -1) for v in zip(*quadratures))

        def trace(f) -> Tensor:  # tr f(A), one per batch index
            return n * (weight * f(theta)).sum((-2, -1)) / probes

        # Near α = 1, log(tr A^α)/(1 − α) multiplies the estimate's error by 1/(α − 1); as tr A = 1 exactly, estimate
        # tr(A^α − A) there instead (tr(A log A) at α = 1), whose relative error carries over to S_α unamplified.
        if alpha == 1.0:
            return -trace(lambda lam: torch.special.xlogy(lam, lam)) * scale
        if abs(alpha - 1.0) < 0.5:
            return torch.log1p(trace(lambda lam: lam**alpha - lam)) * scale / (1.0 - alpha)
        # log tr A^α as a log-sum-exp of log w + α log θ: θ^α itself underflows for large α.
        log_trace = torch.logsumexp(weight.log() + alpha * theta.log(), (-2, -1)) + math.log(n / probes)
        return log_trace * scale / (1.0 - alpha)
    lam = symmetric_eigvalsh(a)
    if not bool((lam[..., 0] >= -_GRAM_TOLERANCE).all()):  # ascending: the smallest first
        raise ValueError(f"a must be positive semi-definite; got an eigenvalue {float(lam[..., 0].min()):.6g}")
    lam = lam.clamp_min(0.0)
    lam = lam / lam.sum(-1, keepdim=True)
    if alpha == 1.0:
        return -torch.special.xlogy(lam, lam).sum(-1) * scale
    # log Σ λ^α = α log λ_max + log Σ (λ/λ_max)^α: λ^α underflows for large α (0.2^500 ≈ 1e-350), the ratios
    # do not all (the largest is 1).
    top = lam[..., -1:]  # ascending: the largest last
    log_power_sum = alpha * torch.log(top[..., 0]) + torch.log(((lam / top) ** alpha).sum(-1))
    return log_power_sum * scale / (1.0 - alpha)


def _widths(sigma: Sigma | tuple[Sigma, ...], names: tuple[str, ...]) -> tuple[Sigma, ...]:
    """One width per variable: `sigma` for each, or a tuple of as many."""
    if not isinstance(sigma, tuple):
        return (sigma,) * len(names)
    if len(sigma) != len(names):
        raise ValueError(
            f"sigma must be one width for all or a tuple ({', '.join(names)}) of {len(names)}; got {len(sigma)} values"
        )
    return sigma


def _check_pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    x, y = _check_samples(x, "x"), _check_samples(y, "y")
    if x.shape[:-1] != y.shape[:-1]:
        raise ValueError(
            f"x and y must hold the same samples: batch and N must match; got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return x, y


def _normalised(h: Tensor) -> Tensor:
    return h / h.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None]


def _joint_gram(x: Tensor, y: Tensor, sigma, compat: str | None) -> tuple[Tensor, Tensor]:
    """`(A_Y, A_XY)`: the Gram of `y` and the normalised Hadamard product `A_X ∘ A_Y / tr(A_X ∘ A_Y)`."""
    x, y = _check_pair(x, y)
    sx, sy = _widths(sigma, ("sigma_x", "sigma_y"))
    ay = gram_matrix(y, sy, compat=compat)
    if compat != "iprl":
        return ay, gaussian_gram(x, _width(x, sx), ay)  # fused: A_X is never stored
    return ay, _normalised(gram_matrix(x, sx, compat=compat) * ay)


def renyi_entropy(
    x: Tensor, *, alpha: float = 1.01, sigma: Sigma = "iprl", unit: str = "bits", compat: str | None = None, **kw
) -> Tensor:
    """`S_α(X)` of samples `x (..., N, d)`: `(...)` float64. Extra keywords go to `matrix_entropy`."""
    return matrix_entropy(gram_matrix(x, sigma, compat=compat), alpha=alpha, unit=unit, compat=compat, **kw)


def joint_entropy(
    x: Tensor,
    y: Tensor,
    *,
    alpha: float = 1.01,
    sigma: Sigma | tuple[Sigma, Sigma] = "iprl",
    unit: str = "bits",
    compat: str | None = None,
    **kw,
) -> Tensor:
    """`S_α(X, Y)` through the normalised Hadamard product of the two Gram matrices; `x (..., N, d_x)`,
    `y (..., N, d_y)` hold the same N samples."""
    return matrix_entropy(_joint_gram(x, y, sigma, compat)[1], alpha=alpha, unit=unit, compat=compat, **kw)


def conditional_entropy(
    x: Tensor,
    y: Tensor,
    *,
    alpha: float = 1.01,
    sigma: Sigma | tuple[Sigma, Sigma] = "iprl",
    unit: str = "bits",
    compat: str | None = None,
    **kw,
) -> Tensor:
    """`S_α(X | Y) = S_α(X, Y) − S_α(Y)`."""
    ay, axy = _joint_gram(x, y, sigma, compat)
    s_xy, s_y = (matrix_entropy(a, alpha=alpha, unit=unit, compat=compat, **kw) for a in (axy, ay))
    return s_xy - s_y


def mutual_information(
    x: Tensor,
    y: Tensor,
    *,
    alpha: float = 1.01,
    sigma: Sigma | tuple[Sigma, Sigma] = "iprl",
    unit: str = "bits",
    compat: str | None = None,
    **kw,
) -> Tensor:
    """`I_α(X; Y) = S_α(X) + S_α(Y) − S_α(X, Y)` of samples `x (..., N, d_x)`, `y (..., N, d_y)`: `(...)` float64.

    Bounded by `log N` in the chosen unit (the estimator's ceiling: report σ's rule and N with the numbers). Extra
    keywords go to `matrix_entropy`.
    """
    x, y = _check_pair(x, y)
    sx, sy = _widths(sigma, ("sigma_x", "sigma_y"))
    ax, ay = gram_matrix(x, sx, compat=compat), gram_matrix(y, sy, compat=compat)
    axy = _normalised(ax * ay)
    # Three calls, not one on a stack: at large N a stacked copy would double the memory of three N×N matrices.
    s_x, s_y, s_xy = (matrix_entropy(a, alpha=alpha, unit=unit, compat=compat, **kw) for a in (ax, ay, axy))
    return s_x + s_y - s_xy


def plane_mutual_information(
    x: Tensor,
    t: Tensor,
    y: Tensor,
    *,
    alpha: float = 1.01,
    sigma: tuple[Sigma, Sigma, Sigma] | Sigma = "iprl",
    unit: str = "bits",
    compat: str | None = None,
    **kw,
) -> tuple[Tensor, Tensor]:
    """`(I(X; T_l), I(T_l; Y))` for every layer `l` of an information plane: `(..., L)` float64 each.

    `x (..., N, d_x)` is the input, `t (..., L, N, d_t)` the L layers' representations of the same N samples
    (zero-pad layers of different widths to one `d_t`: padding leaves every distance unchanged) and `y (..., N, d_y)`
    the output. Equal to `mutual_information(x, t_l)` and `mutual_information(t_l, y)` per layer, but each variable's
    entropy is computed once: `3L + 2` spectra instead of `6L`, all from one batched eigenvalue call.

    Args:
        sigma: one width (number, tensor or rule name) for all three, or a triple `(sigma_x, sigma_t, sigma_y)`;
            a tensor `sigma_t` has shape `(..., L)`.
        alpha, unit, compat, kw: as for `mutual_information`.
    """
    sx, st, sy = _widths(sigma, ("sigma_x", "sigma_t", "sigma_y"))
    x, t, y = _check_samples(x, "x"), _check_samples(t, "t"), _check_samples(y, "y")
    if t.dim() < 3 or x.shape[:-1] != y.shape[:-1] or t.shape[:-3] + t.shape[-2:-1] != x.shape[:-1]:
        raise ValueError(
            "x (..., N, d_x), t (..., L, N, d_t) and y (..., N, d_y) must hold the same batch and N samples; got "
            f"{tuple(x.shape)}, {tuple(t.shape)} and {tuple(y.shape)}"
        )
    layers = t.shape[-3]
    ax, ay = gram_matrix(x, sx, compat=compat).unsqueeze(-3), gram_matrix(y, sy, compat=compat).unsqueeze(-3)
    at = gram_matrix(t, st, compat=compat)
    joints = _normalised(torch.cat([ax * at, at * ay], dim=-3))
    s = matrix_entropy(torch.cat([ax, ay, at, joints], dim=-3), alpha=alpha, unit=unit, compat=compat, **kw)
    s_x, s_y, s_t = s[..., :1], s[..., 1:2], s[..., 2 : 2 + layers]
    s_xt, s_ty = s[..., 2 + layers : 2 + 2 * layers], s[..., 2 + 2 * layers :]
    return s_x + s_t - s_xt, s_t + s_y - s_ty
