"""The arithmetic of one Runge–Kutta step, as pure functions over `(B, N)` batches of trajectories.

`stage_combination` (`y + dt·Σ_j a_ij k_j`), `error_norm` (the weighted RMS norm of the embedded error) and
`dense_combination` (the dense output at several points) are the whole numerical work of the engine besides the
right-hand side; the first two run as compiled kernels (`fastsim.ops.rk`), whose pure-torch references are in
`fastsim.ops.reference`.
"""

from collections.abc import Sequence

import torch
from torch import Tensor

from fastsim import ops
from fastsim.solvers.tableaux import Tableau

__all__ = ["stage_combination", "error_norm", "dense_combination", "interpolation_weights"]


def stage_combination(y: Tensor, dt: Tensor, ks: Sequence[Tensor], a_row: Sequence[float]) -> Tensor:
    """`y + dt · Σ_j a_j k_j` per trajectory: a stage state of a Runge–Kutta step (`y_new` when `a = b`).

    One fused pass (`fastsim.ops.rk_stage`) instead of an axpy per stage.

    Args:
        y: `(B, N)` state at the start of the step.
        dt: `(B,)` signed step sizes (dtype of `y`).
        ks: stages `k_j`, each `(B, N)`; only the first `len(a_row)` are used.
        a_row: coefficients `a_j` (Python floats).

    Returns:
        `(B, N)` tensor, differentiable in `y`, `dt` and the stages; `y` itself when every `a_j` is 0 (the
        first stage), so no kernel runs for it.
    """
    if not any(a_row):
        return y
    return ops.rk_stage(y, dt, ks, a_row)


def error_norm(
    y0: Tensor,
    y1: Tensor,
    dt: Tensor,
    ks: Sequence[Tensor],
    b_err: Sequence[float],
    rtol: float,
    atol: float,
    b_err_aux: Sequence[float] | None = None,
) -> Tensor:
    """Weighted RMS norm of the embedded error estimate, per trajectory (`fastsim.ops.rk_error_norm`).

    With `sc_i = atol + rtol · max(|y0_i|, |y1_i|)` and `e = Σ_j b_err_j k_j / sc` (the error is `dt·e·sc`):

        ‖err‖ = |dt| · sqrt(mean_i e_i²)                          (every pair but DOP853)
        ‖err‖ = |dt| · ‖e5‖² / sqrt(N · (‖e5‖² + 0.01 ‖e3‖²))     (DOP853; `b_err_aux` gives e3)

    The second form is Hairer's DOP853 estimate, which behaves like an 8th-order error `O(h^8)`.

    Args:
        y0, y1: `(B, N)` state at the start and end of the step.
        dt: `(B,)` signed step sizes.
        ks: the step's stages, each `(B, N)`.
        b_err: weights `b − b̂`; b_err_aux: DOP853's 3rd-order weights, or None.
        rtol, atol: tolerances.

    Returns:
        `(B,)` error norms (a step is acceptable when ≤ 1); no gradient.
    """
    return ops.rk_error_norm(y0, y1, dt, ks, b_err, rtol, atol, b_err_aux)


def dense_combination(y: Tensor, weights: Tensor, stages: Sequence[Tensor]) -> Tensor:
    """`y + Σ_s w_s k_s` at `K` points per trajectory: the dense output `y(t + θ dt)` of a step.

    Args:
        y: `(B, N)` state at the start of the step.
        weights: `(B, K, S)` weights `dt · b_s(θ_k)` (zero rows for unused output slots).
        stages: `S` tensors `(B, N)`.

    Returns:
        `(B, K, N)`. A batched GEMM for large problems; elementwise multiply-adds for small ones, where a
        batched GEMM's thread fan-out on the CPU costs more than the arithmetic.
    """
    B, K, _ = weights.shape
    if B * K * y.shape[1] >= 32768:
        return torch.baddbmm(y[:, None, :], weights, torch.stack(list(stages), dim=1))
    out = y[:, None, :].expand(-1, K, -1)
    for s, k in enumerate(stages):
        out = torch.addcmul(out, weights[:, :, s, None], k[:, None, :])
    return out


def interpolation_weights(tableau: Tableau, dtype: torch.dtype, device: torch.device) -> Tensor:
    """`(S_interp, D)` coefficients of θ^1..θ^D (cubic Hermite on the stages and `f_new` if none given)."""
    if tableau.dense is not None:
        return torch.tensor(tableau.dense, dtype=dtype, device=device)
    # y(θ) = y0 + h[(3θ² − 2θ³) Σ b_i k_i + (θ − 2θ² + θ³) f0 + (θ³ − θ²) f_new]
    s = tableau.num_stages
    w = torch.zeros(s + 1, 3, dtype=torch.float64)
    w[:s, 1], w[:s, 2] = 3 * torch.tensor(tableau.b), -2 * torch.tensor(tableau.b)
    w[0] += torch.tensor([1.0, -2.0, 1.0])
    w[s] += torch.tensor([0.0, -1.0, 1.0])
    return w.to(dtype=dtype, device=device)
