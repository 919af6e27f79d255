"""Step-size controllers, kept apart from the stepper (torchode's split): they see step sizes and errors only.

Every quantity is a per-trajectory tensor of shape `(B,)`, so a batch of trajectories accepts, rejects and
resizes steps independently, and nothing here reads a value back to the host.

- `FixedStep`: constant step `h` (the last step before an output or end time is shortened to land on it), or,
  with `step_size=None`, steps from one output time to the next (torchdiffeq's fixed-grid behaviour).
- `PIController`: Hairer's PI controller (DOPRI5's "stabilised" step-size control, Gustafsson 1991):

      accept iff  err_n ≤ 1,
      h_new = h · clip(safety · err_n^{−(p+i)/k} · err_{n−1}^{p/k},  min_factor, max_factor),   k = q + 1,

  with `q` the order of the error estimate and `err_{n−1}` the norm of the last accepted step (floored at
  1e-4, as Hairer). After a rejection the factor is `max(min_factor, safety · err_n^{−(p+i)/k})` and the next
  accepted step may not grow. `(pcoeff, icoeff) = (0, 1)` is the plain integral controller of scipy and
  torchdiffeq; Hairer's DOPRI5 default `β = 0.04` is `(0.2, 0.65)` at `k = 5`.
- `initial_step`: Hairer's first-step heuristic (HNW I, II.4), batched.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["FixedStep", "PIController", "initial_step"]

ERR_PREV_FLOOR = 1e-4  # Hairer's floor on the previous error norm in the PI term


def _check_positive(name: str, value: float, allow_inf: bool = False) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    if not (value > 0) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a positive{'' if allow_inf else ' finite'} number; got {value}")


@dataclass(frozen=True)
class FixedStep:
    """Constant step size `step_size` (> 0), or None to step exactly from one output time to the next."""

    step_size: float | None = None

    def __post_init__(self) -> None:
        if self.step_size is not None:
            _check_positive("step_size", self.step_size)


@dataclass(frozen=True)
class PIController:
    """Adaptive PI step-size control for an embedded Runge–Kutta pair (see the module docstring).

    Attributes:
        rtol, atol: relative and absolute tolerance (> 0): the error norm is the RMS of
            `err_i / (atol + rtol · max(|y_i|, |y_new_i|))` over the components of one trajectory.
        safety: safety factor on the predicted optimal step (0 < safety ≤ 1).
        min_factor, max_factor: bounds on the step-size change per step (0 < min_factor < 1 < max_factor).
        pcoeff, icoeff: proportional and integral coefficients (`pcoeff ≥ 0`, `icoeff > 0`).
        first_step: initial step size, or None for Hairer's heuristic.
        min_step: lower bound on the step size; a step of this size is accepted whatever its error
            (torchdiffeq's semantics; 0 disables it). Independently, a rejected step whose successor would be
            shorter than `64·eps·|t|` ends the trajectory with status "step_size_underflow".
        max_step: upper bound on the step size.
    """

    rtol: float = 1e-7
    atol: float = 1e-9
    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0
    pcoeff: float = 0.2
    icoeff: float = 0.65
    first_step: float | None = None
    min_step: float = 0.0
    max_step: float = math.inf

    def __post_init__(self) -> None:
        _check_positive("rtol", self.rtol)
        _check_positive("atol", self.atol)
        _check_positive("safety", self.safety)
        if self.safety > 1:
            raise ValueError(f"safety must be in (0, 1]; got {self.safety}")
        _check_positive("min_factor", self.min_factor)
        _check_positive("max_factor", self.max_factor)
        if not self.min_factor < 1 < self.max_factor:
            raise ValueError(f"need 0 < min_factor < 1 < max_factor; got {self.min_factor}, {self.max_factor}")
        if not (self.pcoeff >= 0 and self.icoeff > 0 and math.isfinite(self.pcoeff + self.icoeff)):
            raise ValueError(f"need pcoeff ≥ 0 and icoeff > 0; got {self.pcoeff}, {self.icoeff}")
        if self.first_step is not None:
            _check_positive("first_step", self.first_step)
        if not (self.min_step >= 0 and math.isfinite(self.min_step)):
            raise ValueError(f"min_step must be a finite number ≥ 0; got {self.min_step}")
        _check_positive("max_step", self.max_step, allow_inf=True)
        if self.min_step > self.max_step:
            raise ValueError(f"min_step ({self.min_step}) exceeds max_step ({self.max_step})")

    def adapt(
        self,
        h: Tensor,
        err: Tensor,
        err_prev: Tensor,
        rejected_before: Tensor,
        error_order: int,
        h_proposed: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One controller decision per trajectory.

        Args:
            h: `(B,)` size `|h|` of the step just attempted.
            err: `(B,)` its error norm (detached; NaN never reaches here, the engine stops such trajectories).
            err_prev: `(B,)` floored norm of the last accepted step (1e-4 initially).
            rejected_before: `(B,)` bool, the previous attempt was rejected.
            error_order: order `q` of the error estimate.
            h_proposed: `(B,)` the step size the controller had proposed (`h` may differ where the step was cut
                to land on an output or end time); a proposal at `min_step` is accepted. Default: `h`.

        Returns:
            `(accept, h_next, err_prev_next)`, each `(B,)`.
        """
        k = error_order + 1.0
        alpha, beta = (self.pcoeff + self.icoeff) / k, self.pcoeff / k
        accept = (err <= 1.0) | ((h if h_proposed is None else h_proposed) <= self.min_step)
        # err = 0 gives err^(−α) = inf: the factor then saturates at max_factor, as in Hairer's code.
        i_term = self.safety * err.pow(-alpha)
        grow = (i_term * err_prev.pow(beta)).clamp(self.min_factor, self.max_factor)
        grow = torch.where(rejected_before, grow.clamp(max=1.0), grow)
        shrink = i_term.clamp(min=self.min_factor, max=1.0)
        h_next = h * torch.where(accept, grow, shrink)
        err_prev_next = torch.where(accept, err.clamp(min=ERR_PREV_FLOOR), err_prev)
        return accept, h_next.clamp(min=self.min_step, max=self.max_step), err_prev_next


def _rms(x: Tensor) -> Tensor:
    """Per-trajectory root mean square over the state components: `(B, N) → (B,)`."""
    return x.square().mean(dim=1).sqrt()


def initial_step(
    func: Callable[[Tensor, Tensor], Tensor],
    t0: Tensor,
    y0: Tensor,
    f0: Tensor,
    direction: Tensor,
    interval: Tensor,
    error_order: int,
    rtol: float,
    atol: float,
    max_step: float = math.inf,
) -> Tensor:
    """Hairer's starting step size (HNW I, II.4; scipy's `select_initial_step`), per trajectory.

    With `sc = atol + rtol·|y0|`, `d0 = ‖y0/sc‖`, `d1 = ‖f0/sc‖` (RMS norms): `h0 = 0.01·d0/d1` (1e-6 if
    either is below 1e-5); one explicit Euler step gives `d2 = ‖(f(t0 + h0, y0 + h0 f0) − f0)/sc‖ / h0`; then
    `h1 = (0.01 / max(d1, d2))^{1/(q+1)}` and `h = min(100·h0, h1, interval, max_step)`. Costs one evaluation
    of `func` (for the whole batch).

    Args:
        func: `func(t (B,), y (B, N)) -> (B, N)`.
        t0, direction, interval: `(B,)` start time, integration direction (±1) and `|t_end − t0|`.
        y0, f0: `(B, N)` initial state and `func(t0, y0)`.
        error_order: order `q` of the method's error estimate.

    Returns:
        `(B,)` positive step sizes in the dtype of `t0`.
    """
    y0, f0 = y0.detach(), f0.detach()
    scale = atol + rtol * y0.abs()
    d0 = _rms(y0 / scale).to(t0.dtype)
    d1 = _rms(f0 / scale).to(t0.dtype)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = torch.where(small, torch.full_like(d0, 1e-6), 0.01 * d0 / d1.clamp(min=1e-300))
    h0 = torch.minimum(h0, interval).clamp(min=1e-300)
    dt0 = (h0 * direction).to(y0.dtype)
    with torch.no_grad():
        f1 = func(t0 + h0 * direction, y0 + dt0[:, None] * f0)
    d2 = _rms((f1 - f0) / scale).to(t0.dtype) / h0
    dmax = torch.maximum(d1, d2)
    h1 = torch.where(
        dmax <= 1e-15,
        torch.maximum(torch.full_like(h0, 1e-6), h0 * 1e-3),
        (0.01 / dmax.clamp(min=1e-300)).pow(1.0 / (error_order + 1)),
    )
    h = torch.minimum(torch.minimum(100 * h0, h1), interval).clamp(max=max_step)
    # A non-finite f1 (the trial step left the domain) gives NaN: fall back to the conservative h0.
    return torch.where(torch.isfinite(h) & (h > 0), h, h0)
