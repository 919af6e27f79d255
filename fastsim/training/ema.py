"""Exponential moving average (EMA) of a model's parameters and floating buffers.

After each optimizer step n the shadow weights move by `w_ema ← d·w_ema + (1 − d)·w` with the decay rule of the
NGS reference trainer:

    d(n) = 0                                         for n <= warmup_steps (the shadow just copies the weights)
    d(n) = clip(1 − (n − warmup_steps)^(−power), 0, max_decay)   afterwards

(warmup_steps 1000, power 2/3, max_decay 0.999 by default). Integer buffers (counters) are copied, not averaged.
"""

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn


def ema_decay(step: int, *, warmup_steps: int = 1000, power: float = 2.0 / 3.0, max_decay: float = 0.999) -> float:
    """The EMA decay after optimizer step `step` (1-based): 0 during the warmup, then clip(1 − s^(−power), 0, max)."""
    shifted = step - warmup_steps
    if shifted <= 0:
        return 0.0
    return min(max(1.0 - shifted ** (-power), 0.0), max_decay)


class EMA:
    """Shadow copy of `model`'s state (parameters and buffers) updated after every optimizer step.

    Args:
        model: the module to follow (the unwrapped module, not a DistributedDataParallel wrapper).
        warmup_steps: steps during which the shadow copies the weights (decay 0).
        power: exponent of the decay rule.
        max_decay: upper clip of the decay, in [0, 1).
    """

    def __init__(
        self, model: nn.Module, *, warmup_steps: int = 1000, power: float = 2.0 / 3.0, max_decay: float = 0.999
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an int >= 0; got {warmup_steps!r}")
        if not (math.isfinite(power) and power > 0):
            raise ValueError(f"power must be a finite number > 0; got {power}")
        if not (0 <= max_decay < 1):
            raise ValueError(f"max_decay must be in [0, 1); got {max_decay}")
        self.warmup_steps, self.power, self.max_decay = warmup_steps, power, max_decay
        self.num_updates = 0
        self.shadow = {name: value.detach().clone() for name, value in model.state_dict().items()}

    def decay(self, step: int) -> float:
        """The decay applied at optimizer step `step` (1-based)."""
        return ema_decay(step, warmup_steps=self.warmup_steps, power=self.power, max_decay=self.max_decay)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold `model`'s current state into the shadow (call once after each optimizer step)."""
        self.num_updates += 1
        decay = self.decay(self.num_updates)
        state = model.state_dict()
        if state.keys() != self.shadow.keys():
            raise ValueError("model's state_dict keys differ from the ones this EMA was built with")
        for name, value in state.items():
            shadow = self.shadow[name]
            if shadow.is_floating_point():
                shadow.lerp_(value.detach().to(shadow.dtype), 1.0 - decay)
            else:
                shadow.copy_(value)

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[nn.Module]:
        """Context in which `model` holds the EMA state; its own state is restored on exit (even on error)."""
        backup = {name: value.detach().clone() for name, value in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(backup)

    def state_dict(self) -> dict:
        """Plain state for a checkpoint: the shadow tensors and the update count."""
        return {"num_updates": self.num_updates, "shadow": {name: t.clone() for name, t in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned (the keys must match the model's)."""
        if not isinstance(state, dict) or {"num_updates", "shadow"} - state.keys():
            raise ValueError("EMA state must be a dict with 'num_updates' and 'shadow'")
        if state["shadow"].keys() != self.shadow.keys():
            raise ValueError("EMA state's tensor names differ from the model's state_dict keys")
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
        self.num_updates = int(state["num_updates"])
