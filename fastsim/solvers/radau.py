"""Radau IIA of order 5 with the step-size and Newton strategy of Hairer & Wanner's RADAU5.

The 3-stage collocation method at the Radau points `c = ((4−√6)/10, (4+√6)/10, 1)` solves, for the stage increments
`Z_i = Y_i − y_n`,

    Z = h (A ⊗ I) F(Z),     F(Z)_i = f(t_n + c_i h, y_n + Z_i),     y_{n+1} = y_n + Z_3,

by a simplified Newton iteration with the Jacobian `J` frozen. With `A⁻¹ = T Λ T⁻¹`, `Λ = γ ⊕ [[α, β], [−β, α]]`, the
`3n × 3n` Newton matrix splits into one real system `(γ/h − J) ΔW₁ = r₁` and one complex system
`((α − iβ)/h − J)(ΔW₂ + iΔW₃) = r₂ + i r₃` for `W = (T⁻¹ ⊗ I) Z` (Hairer & Wanner, Solving ODEs II, §IV.8).

- Error estimate (§IV.8, eq. 8.19–8.20): `err = (γ/h − J)⁻¹ [f(t_n, y_n) + (1/h) Σ DD_i Z_i]`, an embedded
  order-3 formula passed through the `(I − hγ₀J)⁻¹` filter (γ₀ = 1/γ) that keeps it bounded for stiff components;
  after a rejected (or the first) step with `‖err‖ ≥ 1` it is refined once with `f(t_n, y_n + err)`.
- Step size: `h_new = h / clip(err^{1/4} / fac, 1/8, 5)`, `fac = 0.9·(2·7 + 1)/(newt + 2·7)` shrinking with the
  Newton iteration count `newt`, and after the first accepted step Gustafsson's predictive controller
  `h_new = 0.9 h (h/h_acc)(err_acc/err²)^{1/4}`, the smaller of the two being taken.
- Newton: stopped when `η·‖ΔW‖ ≤ κ` with `η = θ/(1−θ)` from the observed contraction `θ`, `κ = max(10·eps/rtol,
  min(0.03, √rtol))`; aborted early (with a smaller `h`) when it cannot converge within 7 iterations.
  Starting values are the previous step's collocation polynomial extrapolated.
- Jacobian reuse: `J` is recomputed after an accepted step only if Newton contracted slowly (`θ > 0.001`); when
  it is kept and `1 ≤ h_new/h ≤ 1.2`, the step size and the LU factors are kept as well.
- Dense output: the collocation polynomial of degree 3 through `y_n` and the three stage values.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from fastsim.solvers.implicit import EPS, DenseOutput, initial_step
from fastsim.solvers.stiff_linalg import IntegrationStop, System

__all__ = ["integrate", "C", "A", "GAMMA", "ALPHA", "BETA", "T", "TI"]

_S6 = math.sqrt(6.0)
C = np.array([(4 - _S6) / 10, (4 + _S6) / 10, 1.0])
A = np.array(
    [
        [(88 - 7 * _S6) / 360, (296 - 169 * _S6) / 1800, (-2 + 3 * _S6) / 225],
        [(296 + 169 * _S6) / 1800, (88 + 7 * _S6) / 360, (-2 - 3 * _S6) / 225],
        [(16 - _S6) / 36, (16 + _S6) / 36, 1 / 9],
    ]
)
# Eigenvalues of A⁻¹: one real (γ) and a complex pair (α ± iβ), in closed form.
GAMMA = 3 + 3 ** (2 / 3) - 3 ** (1 / 3)
ALPHA = 3 + 0.5 * (3 ** (1 / 3) - 3 ** (2 / 3))
BETA = 0.5 * (3 ** (5 / 6) + 3 ** (7 / 6))
# Error-estimate weights DD_i = e_i/γ₀ of Hairer & Wanner (8.19), γ₀ = 1/γ (the embedded formula of order 3).
DD = np.array([-(13 + 7 * _S6) / 3, (-13 + 7 * _S6) / 3, -1 / 3])


def _eigenvector(lam: complex) -> np.ndarray:
    """The eigenvector `v` of `A⁻¹` for `lam`, normalised to `v[2] = 1`."""
    M = np.linalg.inv(A).astype(complex) - lam * np.eye(3)
    head = np.linalg.solve(M[:2, :2], -M[:2, 2])
    return np.array([head[0], head[1], 1.0])


def _transformation() -> tuple[np.ndarray, np.ndarray]:
    """`T` with `T⁻¹ A⁻¹ T = [[γ,0,0],[0,α,β],[0,−β,α]]`: columns `v_γ`, `Re v`, `Im v` for `v` of `α + iβ`."""
    vr, vc = _eigenvector(GAMMA).real, _eigenvector(complex(ALPHA, BETA))
    T = np.column_stack([vr, vc.real, vc.imag])
    return T, np.linalg.inv(T)


T, TI = _transformation()
_LAMBDA = np.array([[GAMMA, 0.0, 0.0], [0.0, ALPHA, BETA], [0.0, -BETA, ALPHA]])  # = T⁻¹ A⁻¹ T
_C1M1, _C2M1, _C1MC2 = C[0] - 1, C[1] - 1, C[0] - C[1]

NIT = 7  # Newton iterations per step, at most
THET = 1e-3  # recompute J after a step whose Newton contraction rate exceeded this
SAFE, FACL, FACR = 0.9, 5.0, 1 / 8  # safety factor; bounds of h/h_new (so 1/5 ≤ h_new/h ≤ 8)
QUOT1, QUOT2 = 1.0, 1.2  # keep h (and the LU factors) if h_new/h falls in this range


def _dense_coefficients(Z: Any) -> tuple[Any, Any, Any]:
    """Divided differences of the collocation polynomial at `s = 0, c₂−1, c₁−1, −1` (values `Z₃, Z₂, Z₁, 0`)."""
    cont1 = (Z[1] - Z[2]) * (1 / _C2M1)
    ak = (Z[0] - Z[1]) * (1 / _C1MC2)
    acont3 = (ak - Z[0] * (1 / C[0])) * (1 / C[1])
    cont2 = (ak - cont1) * (1 / _C1M1)
    return cont1, cont2, cont2 - acont3


def _poly(cont: tuple[Any, Any, Any], s: Any) -> Any:
    """`p(s) − y_{n+1} = s (c₁ + (s − c₂ + 1)(c₂' + (s − c₁ + 1) c₃'))` for `s (m,)` in units of h; `(m, n)`."""
    s = s[:, None]
    return s * (cont[0] + (s - _C2M1) * (cont[1] + (s - _C1M1) * cont[2]))


def integrate(
    sys: System,
    y: Any,
    t_eval: list[float],
    rtol: float,
    atol: Any,
    options: dict,
    out: DenseOutput,
    stats: dict,
) -> None:
    """Run Radau IIA(5) from `t_eval[0]` to `t_eval[-1]`, filling `out`; raise `IntegrationStop` on failure.

    `y (n,)` and `atol (n,)` are backend arrays of `sys.be` (numpy on the CPU, torch elsewhere).
    """
    be, n = sys.be, sys.n
    t, t_end = t_eval[0], t_eval[-1]
    if options.get("radau5_tolerances"):
        ratio = atol / rtol
        rtol = 0.1 * rtol ** (2 / 3)
        atol = rtol * ratio
    Tm, TIm, Lam, ch, dd = (be.asarray(m) for m in (T, TI, _LAMBDA, C, DD))
    fixed = options.get("step_size")
    max_step = min(options.get("max_step") or math.inf, t_end - t)
    max_num_steps = options["max_num_steps"]
    fnewt = max(10 * EPS / rtol, min(0.03, rtol**0.5))
    cfac = SAFE * (1 + 2 * NIT)
    nit = 3 * NIT if fixed else NIT
    rms = 1.0 / math.sqrt(n)

    f0 = sys.f(t, y)
    _check_finite(be, f0, t)
    inv_scale = 1.0 / (atol + rtol * abs(y))
    if fixed:
        h = min(fixed, t_end - t)
    else:
        h = options.get("first_step") or initial_step(sys, t, y, f0, t_end, 3, rtol, atol, max_step)
        h = min(h, max_step)
    last = t + h * 1.0001 >= t_end
    if last:
        h = t_end - t

    J = fr = fc = None
    need_jac = need_lu = True
    jac_current = first = True
    reject = nonfinite = False
    faccon, theta = 1.0, THET
    h_acc = err_acc = None
    cont, h_old = None, h
    nstep = nsing = 0

    while True:
        if need_jac:
            J = sys.jacobian(t, y)
            jac_current, need_jac, need_lu = True, False, True
        if need_lu:
            fr, fc = sys.factorize(J, GAMMA / h), sys.factorize(J, complex(ALPHA, -BETA) / h)
            need_lu = False
            if fr is None or fc is None:
                nsing += 1
                if nsing >= 5:
                    raise IntegrationStop("singular_matrix", f"At t = {t:.6g}, h = {h:.3g}.")
                h, reject, last, need_lu, need_jac = 0.5 * h, True, False, True, not jac_current
                continue
            nsing = 0
        nstep += 1
        if nstep > max_num_steps:
            raise IntegrationStop("max_num_steps", f"{max_num_steps} steps reached at t = {t:.6g}.")
        if 0.1 * h <= abs(t) * EPS or h <= 0:
            status = "non_finite" if nonfinite else "step_size_underflow"
            raise IntegrationStop(status, f"At t = {t:.6g}, h = {h:.3g}.")
        t_new = t_end if last else t + h
        ts = [t + float(C[0]) * h, t + float(C[1]) * h, t_new]
        lam_h = Lam * (1.0 / h)

        # Starting values: the last collocation polynomial extrapolated to the new stages.
        if first or cont is None:
            Z = W = be.zeros(3, n)
        else:
            Z = _poly(cont, ch * (h / h_old))
            W = TIm @ Z

        # Simplified Newton iteration in the transformed variables W = T⁻¹Z:
        # (Λ/h ⊗ I − I ⊗ J) ΔW = T⁻¹F(Z) − (Λ/h) W, one real and one complex n × n system.
        newt, converged, restart = 0, False, False
        faccon, theta = max(faccon, EPS) ** 0.8, THET
        dynold = thqold = 1.0
        while newt < nit:
            F = sys.f_many(ts, y + Z)
            r = TIm @ F - lam_h @ W
            dW = be.zeros(3, n)
            dW[0], dW[1:] = fr.solve(r[0]), fc.solve_pair(r[1:])
            newt += 1
            dyno = be.norm(dW * inv_scale) * rms / math.sqrt(3)
            if not math.isfinite(dyno):
                nonfinite = True
                break
            if newt > 1:
                thq = dyno / dynold
                theta = thq if newt == 2 or fixed else math.sqrt(thq * thqold)
                thqold = thq
                if fixed:
                    faccon = theta / (1 - theta) if theta < 0.99 else 1.0
                elif newt < NIT:
                    if theta >= 0.99:
                        break
                    faccon = theta / (1 - theta)
                    dyth = faccon * dyno * theta ** (NIT - 1 - newt) / fnewt
                    if dyth >= 1:  # cannot converge in time: restart with a smaller step
                        qnewt = max(1e-4, min(20.0, dyth))
                        h *= 0.8 * qnewt ** (-1 / (4 + NIT - 1 - newt))
                        restart = True
                        break
            dynold = max(dyno, EPS)
            W = W + dW
            Z = Tm @ W
            if faccon * dyno <= fnewt:
                converged = True
                break
        if restart or not converged:
            if fixed:
                if not jac_current:
                    need_jac = True
                    continue
                raise IntegrationStop("non_finite" if nonfinite else "newton_failure", f"At t = {t:.6g}.")
            if not restart:
                h *= 0.5
            reject, last, need_lu, need_jac = True, False, True, not jac_current
            continue
        nonfinite = False

        # Error estimate, filtered by (γ/h − J)⁻¹.
        f2 = (dd @ Z) * (1.0 / h)
        err_vec = fr.solve(f0 + f2)
        err = max(be.norm(err_vec * inv_scale) * rms, 1e-10)
        if err >= 1 and (first or reject) and not fixed and math.isfinite(err):
            err_vec = fr.solve(sys.f(t, y + err_vec) + f2)
            err = max(be.norm(err_vec * inv_scale) * rms, 1e-10)
        if not math.isfinite(err):
            if fixed:
                raise IntegrationStop("non_finite", f"At t = {t:.6g}.")
            nonfinite = True
            h, reject, last, need_lu, need_jac = 0.5 * h, True, False, True, not jac_current
            continue

        fac = min(SAFE, cfac / (newt + 2 * NIT))
        quot = max(FACR, min(FACL, err**0.25 / fac))
        h_new = h / quot
        if err < 1 or fixed:
            first = False
            stats["accepted"] += 1
            if h_acc is not None:  # Gustafsson's predictive controller
                facgus = max(FACR, min(FACL, (h_acc / h) * (err**2 / err_acc) ** 0.25 / SAFE))
                quot = max(quot, facgus)
                h_new = h / quot
            h_acc, err_acc = h, max(1e-2, err)
            y_new = y + Z[2]
            cont = _dense_coefficients(Z)
            if out.due(t_new):
                out.fill(t_new, partial(_interpolate, y_new, cont, t_new, h))
            t, y, h_old = t_new, y_new, h
            if last:
                return
            inv_scale = 1.0 / (atol + rtol * abs(y))
            jac_current = False
            f0 = sys.f(t, y)
            _check_finite(be, f0, t)
            if fixed:
                last = t + h * (1 + 1e-9) >= t_end
                h = t_end - t if last else h
                need_jac = True
                continue
            h_new = min(h_new, max_step)
            if reject:
                h_new = min(h_new, h)
            reject = False
            if t + h_new / QUOT1 >= t_end:
                h, last = t_end - t, True
            else:
                qt = h_new / h
                if theta <= THET and QUOT1 <= qt <= QUOT2:
                    continue  # same h: keep J and the LU factors
                h = h_new
            need_lu, need_jac = True, theta > THET
        else:
            stats["rejected"] += 1
            reject, last = True, False
            h = 0.1 * h if first else h_new
            need_lu, need_jac = True, not jac_current


def _interpolate(y_new: Any, cont: tuple[Any, Any, Any], t_new: float, h: float, times: Any) -> Any:
    """Dense output of the step ending at `(t_new, y_new)`: the collocation polynomial at `times (m,)`; `(m, n)`."""
    return y_new + _poly(cont, (times - t_new) * (1.0 / h))


def _check_finite(be: Any, f0: Any, t: float) -> None:
    """Stop with "non_finite" if `f0` has NaN or infinite entries."""
    if not be.all_finite(f0):
        raise IntegrationStop("non_finite", f"f(t, y) is not finite at t = {t:.6g}.")
