"""Learning-rate schedules, as pure functions of the epoch (so a resumed run needs no scheduler state).

`CyclicSchedule` covers the three schedules the learned simulators use:

- "cosine": cosine annealing with warm restarts and a decaying peak (NGS, docs/training.md). Cycle k lasts
  `warmup_epochs + period_k` epochs with `period_k = int(period_k-1 · period_mult)`, `period_0 = period_epochs`, and
  peak `lr_k = lr · lr_max_mult^k`. At epoch t of the cycle:
      warmup (t < W):  lr_min + (lr_k − lr_min)⁺ · t / W
      cosine (t ≥ W):  lr_min + ½ (lr_k − lr_min)⁺ · (1 + cos(π (t − W) / period_k))
- "step": the same cycles, constant at max(lr_k, lr_min) after the warmup (GNRK's halving step schedule).
- "constant": `lr` at every epoch.
"""

import math
from dataclasses import dataclass

SCHEDULES = ("cosine", "step", "constant")


@dataclass(frozen=True)
class CyclicSchedule:
    """The learning rate of every epoch (see the module docstring for the formulas).

    Attributes:
        kind: "cosine", "step" or "constant".
        lr: peak learning rate of the first cycle (> 0).
        lr_min: floor and warmup start (0 <= lr_min <= lr).
        warmup_epochs: linear warmup epochs at the start of each cycle (>= 0).
        period_epochs: epochs after the warmup in the first cycle (>= 1).
        lr_max_mult: factor applied to the peak at each restart (> 0).
        period_mult: factor applied to the period at each restart, rounded down (>= 1).
    """

    kind: str = "cosine"
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup_epochs: int = 20
    period_epochs: int = 200
    lr_max_mult: float = 0.5
    period_mult: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule kind must be one of {SCHEDULES}; got {self.kind!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0; got {self.lr}")
        if not (math.isfinite(self.lr_min) and 0 <= self.lr_min <= self.lr):
            raise ValueError(f"lr_min must be in [0, lr = {self.lr}]; got {self.lr_min}")
        if isinstance(self.warmup_epochs, bool) or not isinstance(self.warmup_epochs, int) or self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be an int >= 0; got {self.warmup_epochs!r}")
        if isinstance(self.period_epochs, bool) or not isinstance(self.period_epochs, int) or self.period_epochs < 1:
            raise ValueError(f"period_epochs must be an int >= 1; got {self.period_epochs!r}")
        if not (math.isfinite(self.lr_max_mult) and self.lr_max_mult > 0):
            raise ValueError(f"lr_max_mult must be a finite number > 0; got {self.lr_max_mult}")
        if not (math.isfinite(self.period_mult) and self.period_mult >= 1):
            raise ValueError(f"period_mult must be a finite number >= 1; got {self.period_mult}")

    def cycle(self, epoch: int) -> tuple[int, int, int]:
        """(cycle index k, epoch within the cycle t, cosine/constant period of that cycle) for a 0-based epoch."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0; got {epoch!r}")
        k, start, period = 0, 0, self.period_epochs
        while epoch >= start + self.warmup_epochs + period:
            start += self.warmup_epochs + period
            period = int(period * self.period_mult)
            k += 1
        return k, epoch - start, period

    def __call__(self, epoch: int) -> float:
        """The learning rate of a 0-based epoch."""
        k, t, period = self.cycle(epoch)
        if self.kind == "constant":
            return self.lr
        rise = max(self.lr * self.lr_max_mult**k - self.lr_min, 0.0)
        if t < self.warmup_epochs:
            return self.lr_min + rise * t / self.warmup_epochs
        if self.kind == "step":
            return self.lr_min + rise
        return self.lr_min + 0.5 * rise * (1.0 + math.cos(math.pi * (t - self.warmup_epochs) / period))
