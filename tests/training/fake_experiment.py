"""A minimal experiment module for the `fastsim train` / `fastsim rollout` dispatch tests: the toy regression."""

import argparse
import json
from pathlib import Path

import torch

from fastsim.cli.train import add_common_train_arguments, common_config_fields, resolve_device
from fastsim.training import TrainConfig, Trainer
from tests.training import fit_helpers as toy


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_train_arguments(parser, epochs=3, batch_size=8, lr=2e-2)
    parser.add_argument("--width", type=int, default=32)


def train_command(args: argparse.Namespace) -> int:
    if not Path(args.data).is_file():
        raise FileNotFoundError(f"--data: no such file {args.data}")
    resolve_device(args.device)
    config = TrainConfig(**common_config_fields(args), warmup_epochs=0, period_epochs=5)
    extra = {"model_kind": "fake", "width": args.width}
    trainer = Trainer(toy.make_model(), config, loss=toy.loss, validate=toy.validate, extra=extra)
    result = trainer.fit(lambda epoch, gen: toy.batches(epoch, gen, args.batch_size), resume=args.resume)
    return 0 if result.best_epoch >= 0 else 1


def rollout_command(checkpoint: dict, args: argparse.Namespace) -> int:
    model = toy.make_model().eval()
    model.load_state_dict(checkpoint["model"])
    with torch.no_grad():
        metrics = toy.validate(model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = metrics | {"width": checkpoint["extra"]["width"], "device": str(args.device), "batch": args.batch_size}
    (out / "rollout.json").write_text(json.dumps(summary))
    return 0
