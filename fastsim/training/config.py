"""`TrainConfig`: the settings of one training run, validated on construction."""

import dataclasses
import math
from dataclasses import dataclass

from fastsim.training.schedules import SCHEDULES, CyclicSchedule


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run (stored in every checkpoint as a dict).

    Attributes:
        epochs: number of epochs (>= 1).
        lr: peak learning rate of the first cycle (> 0).
        weight_decay: AdamW weight decay (>= 0).
        batch_size: samples per batch; read by the caller's `batches` function, recorded here with the run.
        schedule: "cosine" (warm restarts, decaying peak), "step" (constant per cycle, decaying) or "constant";
            see `fastsim.training.schedules`.
        lr_min, warmup_epochs, period_epochs, lr_max_mult, period_mult: the schedule's cycle parameters.
        ema: keep an EMA of the weights and validate / save the best checkpoint with it.
        ema_warmup_steps, ema_power, ema_max_decay: the EMA decay rule (`fastsim.training.ema`).
        amp: fp16 autocast + gradient scaling on CUDA; ignored (with a note) on other devices.
        grad_clip: max global gradient norm, or None for no clipping.
        validate_every: validate every this many epochs (and after the last).
        checkpoint_every: write `last.pt` every this many epochs (and after the last).
        seed: seeds each epoch's batch generator and the global RNGs.
        out: folder for `last.pt`, `best.pt`, `history.json`.
        quiet: no progress bar or notes.
    """

    epochs: int
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 16
    schedule: str = "cosine"
    lr_min: float = 1e-5
    warmup_epochs: int = 20
    period_epochs: int = 200
    lr_max_mult: float = 0.5
    period_mult: float = 1.0
    ema: bool = True
    ema_warmup_steps: int = 1000
    ema_power: float = 2.0 / 3.0
    ema_max_decay: float = 0.999
    amp: bool = True
    grad_clip: float | None = None
    validate_every: int = 1
    checkpoint_every: int = 1
    seed: int = 0
    out: str = "runs/train"
    quiet: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "validate_every", "checkpoint_every"):
            _positive_int(name, getattr(self, name))
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number >= 0; got {self.weight_decay}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}; got {self.schedule!r}")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise ValueError(f"grad_clip must be None or a finite number > 0; got {self.grad_clip}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0; got {self.seed!r}")
        if not isinstance(self.out, str) or not self.out:
            raise ValueError(f"out must be a non-empty folder path string; got {self.out!r}")
        for name in ("ema", "amp", "quiet"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool; got {getattr(self, name)!r}")
        if isinstance(self.ema_warmup_steps, bool) or not isinstance(self.ema_warmup_steps, int):
            raise ValueError(f"ema_warmup_steps must be an int >= 0; got {self.ema_warmup_steps!r}")
        if self.ema_warmup_steps < 0 or not (self.ema_power > 0) or not (0 <= self.ema_max_decay < 1):
            raise ValueError(
                "EMA settings out of range: need ema_warmup_steps >= 0, ema_power > 0, 0 <= ema_max_decay < 1; got "
                f"{self.ema_warmup_steps}, {self.ema_power}, {self.ema_max_decay}"
            )
        self.lr_schedule()  # validates lr and the cycle parameters

    def lr_schedule(self) -> CyclicSchedule:
        """The learning-rate schedule these settings describe."""
        return CyclicSchedule(
            kind=self.schedule,
            lr=self.lr,
            lr_min=self.lr_min,
            warmup_epochs=self.warmup_epochs,
            period_epochs=self.period_epochs,
            lr_max_mult=self.lr_max_mult,
            period_mult=self.period_mult,
        )

    def to_dict(self) -> dict:
        """The settings as a plain dict (for checkpoints and JSON)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict) -> "TrainConfig":
        """Rebuild from `to_dict`'s output (unknown keys are an error)."""
        unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        return cls(**fields)
