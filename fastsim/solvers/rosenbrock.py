"""Rodas5(4): an 8-stage, stiffly accurate, L-stable Rosenbrock method of order 5 with an order-4 embedding.

A Rosenbrock method replaces Newton's iteration by one linear solve per stage with the same matrix. In the
transformed form of Hairer & Wanner (Solving ODEs II, §IV.7, eq. 7.25 as used in RODAS), with `M = I/(hγ) − J`,

    M k_i = f(t + c_i h, y + Σ_{j<i} a_ij k_j) + Σ_{j<i} (C_ij / h) k_j + h d_i ∂f/∂t,    i = 1..8,

    y_{n+1} = y_n + Σ_j a_8j k_j + k_8,   error estimate  y_{n+1} − ŷ_{n+1} = k_8,

where the last three stages sit at `c = 1` (rows 6–8 of `A` chain `k_6`, `k_7` into the stage inputs), so the
method is stiffly accurate and the embedded solution `ŷ` (order 4) is the input of stage 8. Coefficients (γ = 0.19)
are Di Marzo's (Rodas5(4), Univ. Geneva 1993) as tabulated in OrdinaryDiffEq.jl (`RODAS5A/C/c/d/H`), which also
supplies the order-4 dense output

    y(t_n + θh) = (1 − θ) y_n + θ (y_{n+1} + (1 − θ)(K_1 + θ (K_2 + θ K_3))),   K_r = Σ_j H_rj k_j.

The exact Jacobian is needed every step (one `J`, one `∂f/∂t` by a forward difference and one LU per attempted
step; a rejected step reuses `J`). Step size: `h_new = h / clip(err^{1/5} / 0.9, 1/6, 5)` with Gustafsson's
predictive controller, as in Hairer's RODAS.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from fastsim.solvers.implicit import DenseOutput, initial_step
from fastsim.solvers.stiff_linalg import IntegrationStop, System

__all__ = ["integrate", "GAMMA", "A", "C", "c", "d", "H"]

GAMMA = 0.19
A = np.zeros((8, 8))
A[1, 0] = 2.0
A[2, :2] = [3.040894194418781, 1.041747909077569]
A[3, :3] = [2.576417536461461, 1.62208306077664, -0.9089668560264532]
A[4, :4] = [2.760842080225597, 1.446624659844071, -0.3036980084553738, 0.2877498600325443]
A[5, :5] = [-14.09640773051259, 6.925207756232704, -41.47510893210728, 2.343771018586405, 24.13215229196062]
A[6, :6] = [*A[5, :5], 1.0]
A[7, :7] = [*A[5, :5], 1.0, 1.0]
C = np.zeros((8, 8))
C[1, 0] = -10.31323885133993
C[2, :2] = [-21.04823117650003, -7.234992135176716]
C[3, :3] = [32.22751541853323, -4.943732386540191, 19.44922031041879]
C[4, :4] = [-20.69865579590063, -8.816374604402768, 1.260436877740897, -0.7495647613787146]
C[5, :5] = [-46.22004352711257, -17.49534862857472, -289.6389582892057, 93.60855400400906, 318.3822534212147]
C[6, :6] = [34.20013733472935, -14.1553540271769, 57.823356409884, 25.83362985412365, 1.408950972071624,
            -6.551835421242162]  # fmt: skip
C[7, :7] = [42.57076742291101, -13.80770672017997, 93.98938432427124, 18.77919633714503, -31.5835918722337,
            -6.685968952921985, -5.810979938412932]  # fmt: skip
c = np.array([0.0, 0.38, 0.3878509998321533, 0.483971893787384, 0.457047700881958, 1.0, 1.0, 1.0])
d = np.array([0.19, -0.1823079225333714636, -0.319231832186874912, 0.3449828624725343, -0.377417564392089818,
              0.0, 0.0, 0.0])  # fmt: skip
H = np.array(
    [
        [27.354592673333357, -6.925207756232857, 26.40037733258859, 0.5635230501052979, -4.699151156849391,
         -1.6008677469422725, -1.5306074446748028, -1.3929872940716344],
        [44.19024239501722, 1.3677947663381929e-13, 202.93261852171622, -35.5669339789154, -181.91095152160645,
         3.4116351403665033, 2.5793540257308067, 2.2435122582734066],
        [-44.0988150021747, -5.755396159656812e-13, -181.26175034586677, 56.99302194811676, 183.21182741427398,
         -7.480257918273637, -5.792426076169686, -5.32503859794143],
    ]
)  # fmt: skip
B = np.append(A[7, :7], 1.0)  # y_{n+1} = y_n + Σ B_j k_j

SAFE, FACL, FACR = 0.9, 5.0, 1 / 6  # h/h_new within [1/6, 5]
ORDER = 5


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
    """Run Rodas5(4) from `t_eval[0]` to `t_eval[-1]`, filling `out`; raise `IntegrationStop` on failure.

    `y (n,)` and `atol (n,)` are backend arrays of `sys.be` (numpy on the CPU, torch elsewhere).
    """
    be, n = sys.be, sys.n
    t, t_end = t_eval[0], t_eval[-1]
    Hb = be.asarray(H)
    a_rows = [be.asarray(A[i, :i]) for i in range(8)]
    c_rows = [be.asarray(C[i, :i]) for i in range(8)]
    fixed = options.get("step_size")
    max_step = min(options.get("max_step") or math.inf, t_end - t)
    max_num_steps = options["max_num_steps"]
    rms = 1.0 / math.sqrt(n)
    eps = float(np.finfo(np.float64).eps)

    f0 = sys.f(t, y)
    if not be.all_finite(f0):
        raise IntegrationStop("non_finite", f"f(t0, y0) is not finite at t = {t:.6g}.")
    if fixed:
        h = min(fixed, t_end - t)
    else:
        h = options.get("first_step") or initial_step(sys, t, y, f0, t_end, ORDER - 1, rtol, atol, max_step)
        h = min(h, max_step)
    J = ft = None
    reject = nonfinite = False
    h_acc = err_acc = None
    nstep = nsing = 0
    K = be.zeros(8, n)

    while True:
        if J is None:  # a new point: Jacobian and ∂f/∂t (a rejected step keeps both)
            J = sys.jacobian(t, y)
            ft = sys.time_derivative(t, y, f0)
        nstep += 1
        if nstep > max_num_steps:
            raise IntegrationStop("max_num_steps", f"{max_num_steps} steps reached at t = {t:.6g}.")
        if 0.1 * h <= abs(t) * eps or h <= 0:
            status = "non_finite" if nonfinite else "step_size_underflow"
            raise IntegrationStop(status, f"At t = {t:.6g}, h = {h:.3g}.")
        last = t + h * (1 + 1e-9) >= t_end
        if last:
            h = t_end - t
        t_new = t_end if last else t + h
        lu = sys.factorize(J, 1.0 / (h * GAMMA))
        if lu is None:
            nsing += 1
            if nsing >= 5:
                raise IntegrationStop("singular_matrix", f"At t = {t:.6g}, h = {h:.3g}.")
            h *= 0.5
            continue
        nsing = 0

        # The 8 stages: M k_i = f(t + c_i h, y + Σ a_ij k_j) + Σ (C_ij/h) k_j + h d_i f_t.
        inv_h = 1.0 / h
        for i in range(8):
            if i == 0:
                fi = f0
            else:
                u = y + a_rows[i] @ K[:i]
                fi = sys.f(t_new if c[i] == 1.0 else t + c[i] * h, u) + (c_rows[i] @ K[:i]) * inv_h
            if d[i] != 0.0:
                fi = fi + (h * d[i]) * ft
            K[i] = lu.solve(fi)
        y_new = u + K[7]
        scale = atol + rtol * be.maximum(abs(y), abs(y_new))
        err = be.norm(K[7] / scale) * rms
        finite = math.isfinite(err)
        f_new = sys.f(t_new, y_new) if (finite and (err <= 1 or fixed)) else None
        if f_new is not None and not be.all_finite(f_new):
            finite, f_new = False, None
        if not finite:
            if fixed:
                raise IntegrationStop("non_finite", f"At t = {t:.6g}.")
            h, reject, nonfinite = 0.5 * h, True, True
            continue
        nonfinite = False

        fac = max(FACR, min(FACL, err ** (1 / ORDER) / SAFE))
        h_new = h / fac
        if err <= 1 or fixed:
            stats["accepted"] += 1
            if h_acc is not None:  # Gustafsson's predictive controller
                facgus = max(FACR, min(FACL, (h_acc / h) * (err**2 / err_acc) ** (1 / ORDER) / SAFE))
                h_new = h / max(fac, facgus)
            h_acc, err_acc = h, max(1e-2, err)
            if out.due(t_new):
                out.fill(t_new, partial(_interpolate, t, h, y, y_new, Hb @ K))
            t, y, f0, J = t_new, y_new, f_new, None
            if last:
                return
            if fixed:
                continue
            h = min(h_new, max_step, h) if reject else min(h_new, max_step)
            reject = False
        else:
            stats["rejected"] += 1
            h, reject = h_new, True


def _interpolate(t0: float, h: float, y0: Any, y1: Any, dense: Any, times: Any) -> Any:
    """`(1 − θ) y0 + θ (y1 + (1 − θ)(K1 + θ (K2 + θ K3)))` at `θ = (times − t0)/h`, `times (m,)`; `(m, n)`."""
    th = ((times - t0) * (1.0 / h))[:, None]
    th1 = 1.0 - th
    return th1 * y0 + th * (y1 + th1 * (dense[0] + th * (dense[1] + th * dense[2])))
