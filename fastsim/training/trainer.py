"""`Trainer`: the shared training loop of fastsim's learned simulators (docs/training.md).

One epoch: the caller's `batches(epoch, generator)` yields batches, `loss(model, batch)` gives a scalar to
minimise, AdamW steps with the epoch's learning rate, the EMA follows; then `validate(model)` runs with the EMA
weights swapped in and the best validation metric's weights go to `best.pt`. `last.pt` holds everything needed to
continue a killed run to the same weights. Under `torch.distributed` the model is wrapped in
DistributedDataParallel, each rank takes every world_size-th batch, metrics are averaged over ranks and only rank 0
writes files or shows progress.
"""

import contextlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from fastsim.training.checkpoint import check_plain, load_checkpoint, save_checkpoint
from fastsim.training.config import TrainConfig
from fastsim.training.ema import EMA

CHECKPOINT_FORMAT = "fastsim.training/1"
# Fields a resumed run may change: they do not alter the weights it reaches.
RESUMABLE_CHANGES = frozenset({"epochs", "validate_every", "checkpoint_every", "out", "quiet"})


@dataclass(frozen=True)
class TrainResult:
    """What `Trainer.fit` returns.

    Attributes:
        history: one dict per epoch: epoch, lr, train_loss, time_s, and the validation metrics when validated.
        best_metric: lowest value of the selection metric (validation `metric`, or train_loss without `validate`).
        best_epoch: the epoch (0-based) that reached it.
        last_path, best_path, history_path: the files written in `config.out`.
    """

    history: list[dict[str, float]]
    best_metric: float
    best_epoch: int
    last_path: Path
    best_path: Path
    history_path: Path


def _epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 63-bit seed for (run seed, epoch, rank), decorrelated by numpy's SeedSequence."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class Trainer:
    """Trains `model` with AdamW, the configured LR schedule, EMA, AMP on CUDA, checkpoints and resume.

    Args:
        model: the module to train, already on its device (the device of its first parameter is used).
        config: the run's settings.
        loss: `loss(module, batch) -> 0-d Tensor`. It must call `module(...)` (its forward): under DDP the module
            passed is the DistributedDataParallel wrapper, whose forward synchronises gradients. Moving the batch to
            the model's device is its job.
        validate: `validate(model) -> {name: value}` run under `torch.no_grad()` in eval mode with the EMA weights
            (when `config.ema`); without it the epoch's training loss selects the best checkpoint.
        metric: the key of `validate`'s result to minimise.
        extra: plain data stored in every checkpoint (e.g. `{"model_kind": "ngs", "model_args": {...}}`), so a
            checkpoint can rebuild its model; a resumed run must pass the same (its model and, with a
            `data_digest` entry, its data).

    Raises:
        TypeError / ValueError: bad argument types, a model without parameters, or `extra` holding non-plain data.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        *,
        loss: Callable[[nn.Module, Any], Tensor],
        validate: Callable[[nn.Module], dict[str, float]] | None = None,
        metric: str = "mae",
        extra: dict | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}")
        if not callable(loss) or (validate is not None and not callable(validate)):
            raise TypeError("loss must be callable, and validate callable or None")
        if not isinstance(metric, str) or not metric:
            raise TypeError(f"metric must be a non-empty string; got {metric!r}")
        if extra is not None and not isinstance(extra, dict):
            raise TypeError(f"extra must be a dict or None; got {type(extra).__name__}")
        check_plain(extra or {}, "extra")
        parameters = list(model.parameters())
        if not parameters:
            raise ValueError("model has no parameters to train")
        self.model, self.config, self.loss, self.validate = model, config, loss, validate
        self.metric = metric if validate is not None else "train_loss"
        self.extra = dict(extra or {})
        self.device = parameters[0].device
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1
        self.is_main = self.rank == 0
        self.amp = config.amp and self.device.type == "cuda"
        if self.distributed:
            device_ids = [self.device] if self.device.type == "cuda" else None
            self.train_module: nn.Module = DistributedDataParallel(model, device_ids=device_ids)
        else:
            self.train_module = model
        self.schedule = config.lr_schedule()
        # The fused kernel updates every parameter in one pass: 4–6× faster than the per-tensor loop on the CPU
        # for these models (NGS heat 0.15 vs 0.94 ms per step), the same update up to rounding.
        self.optimizer = torch.optim.AdamW(
            parameters, lr=self.schedule(0), weight_decay=config.weight_decay, fused=True
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.ema = (
            EMA(
                model,
                warmup_steps=config.ema_warmup_steps,
                power=config.ema_power,
                max_decay=config.ema_max_decay,
            )
            if config.ema
            else None
        )
        self.out = Path(config.out)
        self.last_path, self.best_path = self.out / "last.pt", self.out / "best.pt"
        self.history_path = self.out / "history.json"
        self.history: list[dict[str, float]] = []
        self.best_metric, self.best_epoch = math.inf, -1

    # ------------------------------------------------------------------ public
    def fit(self, batches: Callable[[int, torch.Generator], Iterable[Any]], *, resume: bool = False) -> TrainResult:
        """Train for `config.epochs` epochs (from the last checkpoint's next epoch when `resume`).

        Args:
            batches: `batches(epoch, generator)` yields the batches of one epoch; shuffle with `generator` (a CPU
                generator seeded from (config.seed, epoch), identical on every rank), so a resumed epoch sees the
                same batches. Under DDP each rank keeps batches rank, rank + W, ...; a last incomplete group of
                fewer than W batches is dropped so every rank takes the same number of steps.
            resume: continue from `config.out/last.pt` (weights, EMA, optimizer, scaler, history, best) instead of
                starting fresh.

        Returns:
            a `TrainResult`.

        Raises:
            FileNotFoundError: `resume` without `last.pt`.
            FileExistsError: a fresh start where `last.pt` already exists (resume or choose another `out`).
            ValueError: a resumed checkpoint of different settings, model or data (`extra`), an epoch without
                batches, a non-finite loss, or `validate` not returning `metric`.
        """
        start = self._resume() if resume else self._fresh_start()
        config = self.config
        bar = tqdm(
            range(start, config.epochs),
            initial=start,
            total=config.epochs,
            desc="train",
            unit="epoch",
            disable=config.quiet or not self.is_main,
            dynamic_ncols=True,
        )
        for epoch in bar:
            record = self._run_epoch(epoch, batches)
            last = epoch == config.epochs - 1
            if (epoch + 1) % config.validate_every == 0 or last or self.validate is None:
                self._validate_epoch(epoch, record)
            self.history.append(record)
            if self.is_main:
                staged = self.history_path.with_suffix(".json.tmp")
                staged.write_text(json.dumps(self.history, indent=1))
                os.replace(staged, self.history_path)
                if (epoch + 1) % config.checkpoint_every == 0 or last:
                    save_checkpoint(self.last_path, self._last_state(epoch))
            bar.set_postfix(
                {"loss": f"{record['train_loss']:.3g}", self.metric: f"{record.get(self.metric, math.nan):.3g}"}
            )
        bar.close()
        return TrainResult(
            history=list(self.history),
            best_metric=self.best_metric,
            best_epoch=self.best_epoch,
            last_path=self.last_path,
            best_path=self.best_path,
            history_path=self.history_path,
        )

    # ------------------------------------------------------------------ epochs
    def _run_epoch(self, epoch: int, batches: Callable[[int, torch.Generator], Iterable[Any]]) -> dict[str, float]:
        seed = _epoch_seed(self.config.seed, epoch, self.rank)
        # Every epoch starts its RNGs from (seed, epoch, rank): dropout and any sampling inside `loss` replay
        # exactly on resume, and ranks draw independent noise.
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        generator = torch.Generator().manual_seed(_epoch_seed(self.config.seed, epoch))
        lr = self.schedule(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.train_module.train()
        started = time.perf_counter()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        steps = 0
        for batch in self._rank_share(batches(epoch, generator)):
            with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp):
                loss = self.loss(self.train_module, batch)
            if not isinstance(loss, Tensor) or loss.dim() != 0:
                raise ValueError(f"loss must return a 0-d tensor; got {loss!r:.80}")
            self.scaler.scale(loss).backward()
            if self.config.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            if self.ema is not None:
                self.ema.update(self.model)
            total += loss.detach().to(torch.float64)
            steps += 1
        if steps == 0:
            raise ValueError(f"batches({epoch}, generator) yielded no batches (or fewer than world_size ranks)")
        train_loss = self._mean_over_ranks({"train_loss": total.item() / steps})["train_loss"]
        if not math.isfinite(train_loss) and not self.amp:  # under AMP the scaler skips non-finite steps
            raise ValueError(f"training loss is not finite at epoch {epoch}: {train_loss}")
        return {"epoch": epoch, "lr": lr, "train_loss": train_loss, "time_s": time.perf_counter() - started}

    def _rank_share(self, batches: Iterable[Any]) -> Iterator[Any]:
        if self.world_size == 1:
            yield from batches
            return
        group: list[Any] = []
        for batch in batches:
            group.append(batch)
            if len(group) == self.world_size:
                yield group[self.rank]
                group = []

    def _validate_epoch(self, epoch: int, record: dict[str, float]) -> None:
        if self.validate is not None:
            self.model.eval()
            with torch.no_grad(), self._ema_weights():
                metrics = self.validate(self.model)
            if not isinstance(metrics, dict) or self.metric not in metrics:
                raise ValueError(f"validate must return a dict with the key {self.metric!r}; got {metrics!r:.200}")
            record.update(self._mean_over_ranks({name: float(value) for name, value in metrics.items()}))
        value = record[self.metric]
        if value < self.best_metric:  # NaN never improves
            self.best_metric, self.best_epoch = value, epoch
            if self.is_main:
                with self._ema_weights():
                    weights = {name: t.detach().clone() for name, t in self.model.state_dict().items()}
                save_checkpoint(self.best_path, self._common_state(epoch) | {"model": weights, self.metric: value})

    def _ema_weights(self):
        return self.ema.swapped_in(self.model) if self.ema is not None else contextlib.nullcontext()

    def _mean_over_ranks(self, metrics: dict[str, float]) -> dict[str, float]:
        if not self.distributed:
            return metrics
        names = sorted(metrics)
        values = torch.tensor([metrics[name] for name in names], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(values)
        return dict(zip(names, (values / self.world_size).tolist(), strict=True))

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    # ------------------------------------------------------------------ checkpoints
    def _common_state(self, epoch: int) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "metric": self.metric,
            "config": self.config.to_dict(),
            "extra": self.extra,
        }

    def _last_state(self, epoch: int) -> dict:
        return self._common_state(epoch) | {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
        }

    def _fresh_start(self) -> int:
        if self.last_path.exists():
            raise FileExistsError(f"{self.last_path} exists: resume that run or choose another output folder")
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.config.amp and not self.amp and not self.config.quiet:
                print(f"note: amp applies on CUDA only; training in full precision on {self.device}", file=sys.stderr)
        return 0

    def _resume(self) -> int:
        state = load_checkpoint(self.last_path, map_location=self.device)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{self.last_path} is not a {CHECKPOINT_FORMAT} checkpoint (format {state.get('format')!r})"
            )
        saved = state["config"]
        changed = sorted(
            name
            for name, value in self.config.to_dict().items()
            if name not in RESUMABLE_CHANGES and saved.get(name) != value
        )
        if changed:
            raise ValueError(f"cannot resume {self.last_path} with different settings: {changed}")
        saved_extra = state.get("extra") or {}
        differ = sorted(k for k in {*saved_extra, *self.extra} if saved_extra.get(k) != self.extra.get(k))
        if differ:
            unrecorded = [str(k) for k in differ if k not in saved_extra]
            raise ValueError(
                f"cannot resume {self.last_path}: this run's model or data differ from the checkpoint's "
                f"(extra: {', '.join(map(str, differ))})"
                + (f"; the checkpoint does not record {', '.join(unrecorded)}" if unrecorded else "")
            )
        if (state["ema"] is None) != (self.ema is None):
            raise ValueError(f"{self.last_path} and this run disagree on EMA")
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        self.best_metric, self.best_epoch = float(state["best_metric"]), int(state["best_epoch"])
        return int(state["epoch"]) + 1
