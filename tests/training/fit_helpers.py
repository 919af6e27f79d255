"""A tiny regression task shared by the trainer tests (and the torchrun worker)."""

import torch
from torch import nn

from fastsim.training import TrainConfig, Trainer, mse

INPUTS = torch.linspace(-1, 1, 64).unsqueeze(-1)
TARGETS = torch.sin(2 * INPUTS) + 0.5 * INPUTS


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Dropout(0.02), nn.Linear(32, 1))


def batches(epoch: int, generator: torch.Generator, batch_size: int = 8):
    order = torch.randperm(len(INPUTS), generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield INPUTS[index], TARGETS[index]


def loss(module: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return mse(module(x), y)


def validate(model: nn.Module) -> dict[str, float]:
    pred = model(INPUTS)
    return {"mae": (pred - TARGETS).abs().mean().item(), "mse": mse(pred, TARGETS).item()}


def config(out, **fields) -> TrainConfig:
    settings = dict(
        epochs=12,
        lr=2e-2,
        lr_min=1e-4,
        schedule="cosine",
        warmup_epochs=2,
        period_epochs=10,
        ema_warmup_steps=20,
        weight_decay=0.0,
        seed=3,
        out=str(out),
        quiet=True,
    )
    return TrainConfig(**(settings | fields))


def trainer(out, **fields) -> Trainer:
    return Trainer(make_model(), config(out, **fields), loss=loss, validate=validate, extra={"model_kind": "toy"})
