"""Information flows of diverse autoencoders (Lee & Jo, Entropy 23, 862 (2021); arXiv 2102.07402).

Six autoencoder species trained on MNIST with the authors' settings (sigmoid units, Adam lr 5e-3, minibatch 100,
30,000 iterations) while `fastsim.info.InformationPlane` records I(X;T) and I(T;X') for every layer on the first 100
test images, X' being the reconstruction. The paper's reading: all species fit (both informations rise); vanilla
autoencoders then compress (I(X;Z) falls), more so with sparsity; tied, variational and label autoencoders do not,
nor does the deep autoencoder trained on 10% of the data — yet all generalise alike.

Species (`FlowConfig.model`):
    shallow     784-50-784, MSE.
    deep        784-256-128-50-128-256-784, MSE.
    sae         784-50-784, MSE + 1e-3·Σ_j KL(0.05 ‖ ρ̂_j), ρ̂_j the minibatch mean of unit j of Z.
    tae         784-50-784 with one weight matrix W: Z = σ(X Wᵀ + b), X' = σ(Z W + c); MSE.
    vae         784-256-128-(μ, log σ² ∈ R^50)-128-256-784; BCE + KL per sample; MI on the sampled Z.
    lae         784-256-128-50(softmax)-128-256-784; MSE + 0.01·cross-entropy of the 50 logits with the labels.
    deep_small  deep, trained on the first 10% (6,000) of the training images for the same number of iterations.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fastsim.experiments.digits import Digits, load_digits
from fastsim.info.bandwidth import RULES
from fastsim.info.information_plane import InformationPlane, plot_information_plane
from fastsim.training.checkpoint import load_checkpoint, save_checkpoint

SPECIES = ("shallow", "deep", "sae", "tae", "vae", "lae", "deep_small")
DEEP_LAYERS = ("E1", "E2", "Z", "D1", "D2")
PAPER_COMPRESSION = {  # the paper's reading of each species (§1.4 of the notes; abstract of arXiv 2102.07402)
    "shallow": True,
    "deep": True,
    "sae": True,
    "tae": False,
    "vae": False,
    "lae": False,
    "deep_small": False,
}
COMPRESSION_DROP_BITS = 0.1
RESULTS_VERSION = 1
_SPARSITY_TARGET, _SPARSITY_WEIGHT, _LABEL_WEIGHT = 0.05, 1e-3, 0.01


@dataclass(frozen=True)
class FlowConfig:
    """One run. The defaults are the authors' schedule except where noted; `FlowConfig.quick` is a reduced one.

    Attributes:
        model: one of `SPECIES`.
        iterations: optimiser steps (authors: 30,000 = 50 epochs of 600 minibatches; 500 epochs for deep_small).
        batch_size: minibatch size (authors: 100). learning_rate: Adam step (authors: 5e-3).
        mi_every: iterations between information-plane evaluations (authors: 1).
        probe_size: the first `probe_size` test images are the probe batch X (authors: 100).
        test_every: iterations between test-loss evaluations on the whole test set (authors: 1).
        bandwidth: kernel-width rule ("iprl" is the authors' σ = 2·N^(−1/(4+d))). alpha: Rényi order (1.01).
        checkpoint_every: iterations between checkpoints. seed: weight initialisation, data order, VAE noise.
    """

    model: str = "deep"
    iterations: int = 30_000
    batch_size: int = 100
    learning_rate: float = 5e-3
    mi_every: int = 1
    probe_size: int = 100
    test_every: int = 1
    bandwidth: str = "iprl"
    alpha: float = 1.01
    checkpoint_every: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in SPECIES:
            raise ValueError(f"model must be one of {SPECIES}; got {self.model!r}")
        for name, low in [("iterations", 1), ("batch_size", 1), ("mi_every", 1), ("probe_size", 2)]:
            _check_int(name, getattr(self, name), low)
        for name in ("test_every", "checkpoint_every"):
            _check_int(name, getattr(self, name), 1)
        _check_int("seed", self.seed, 0)
        if not isinstance(self.learning_rate, (int, float)) or not 0 < self.learning_rate < math.inf:
            raise ValueError(f"learning_rate must be a finite number > 0; got {self.learning_rate!r}")
        if self.bandwidth not in RULES:
            raise ValueError(f"bandwidth must be one of {RULES}; got {self.bandwidth!r}")
        if not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < math.inf or self.alpha == 1:
            raise ValueError(f"alpha must be a finite number > 0 and != 1; got {self.alpha!r}")

    @classmethod
    def quick(cls, model: str, **changes) -> FlowConfig:
        """A reduced schedule that runs in minutes on one CPU core: 10,000 iterations (a third of the authors'),
        the plane every 20 iterations, the test loss every 200."""
        return cls(**{"model": model, "iterations": 10_000, "mi_every": 20, "test_every": 200, **changes})

    @property
    def train_size(self) -> int:
        """Training images used: all 60,000, or the first 6,000 for deep_small."""
        return 6000 if self.model == "deep_small" else 60_000


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}")


class _Pass(dict):
    """One forward pass: "output" (X'), "layers" (name -> activation) and species-specific extras."""


class StackedAutoencoder(nn.Module):
    """Sigmoid encoder → bottleneck → sigmoid decoder. `bottleneck` is "sigmoid", "softmax" (label AE: Z is the
    softmax of 50 logits) or "gaussian" (VAE: Z = μ + ε·exp(log σ²/2), ε given to `forward`)."""

    def __init__(self, widths: tuple[int, ...], bottleneck: str = "sigmoid") -> None:
        super().__init__()
        *hidden, code = widths[: len(widths) // 2 + 1]
        self.bottleneck = bottleneck
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(hidden[:-1], hidden[1:]))
        self.code = nn.Linear(hidden[-1], code)
        self.log_variance = nn.Linear(hidden[-1], code) if bottleneck == "gaussian" else None
        tail = widths[len(widths) // 2 :]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(tail[:-1], tail[1:]))
        depth = len(self.encoder)
        self.layer_names = (*(f"E{k + 1}" for k in range(depth)), "Z", *(f"D{k + 1}" for k in range(depth)))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> _Pass:
        layers, h = {}, x
        for k, linear in enumerate(self.encoder):
            h = layers[f"E{k + 1}"] = torch.sigmoid(linear(h))
        result = _Pass()
        if self.bottleneck == "gaussian":
            mean, log_variance = self.code(h), self.log_variance(h)
            if noise is None:
                raise ValueError("the VAE needs noise of shape (batch, code width)")
            z = mean + noise * torch.exp(0.5 * log_variance)
            result.update(mean=mean, log_variance=log_variance)
        elif self.bottleneck == "softmax":
            logits = self.code(h)
            z = torch.softmax(logits, dim=1)
            result.update(logits=logits)
        else:
            z = torch.sigmoid(self.code(h))
        h = layers["Z"] = z
        for k, linear in enumerate(self.decoder):
            h = torch.sigmoid(linear(h))
            if k < len(self.decoder) - 1:
                layers[f"D{k + 1}"] = h
        result.update(output=h, layers=layers)
        return result


class TiedAutoencoder(nn.Module):
    """784-50-784 with a single weight matrix `weight` (code × input): Z = σ(X Wᵀ + b), X' = σ(Z W + c)."""

    layer_names = ("Z",)

    def __init__(self, inputs: int = 784, code: int = 50) -> None:
        super().__init__()
        reference = nn.Linear(inputs, code)  # the default Linear initialisation, as in the authors' code
        self.weight = nn.Parameter(reference.weight.detach().clone())
        self.encoder_bias = nn.Parameter(reference.bias.detach().clone())
        self.decoder_bias = nn.Parameter(torch.zeros(inputs))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> _Pass:
        z = torch.sigmoid(F.linear(x, self.weight, self.encoder_bias))
        output = torch.sigmoid(F.linear(z, self.weight.t(), self.decoder_bias))
        return _Pass(output=output, layers={"Z": z})


def build_model(model: str) -> nn.Module:
    """The network of a species (see the module docstring), with PyTorch's default initialisation."""
    if model not in SPECIES:
        raise ValueError(f"model must be one of {SPECIES}; got {model!r}")
    if model == "tae":
        return TiedAutoencoder()
    deep = (784, 256, 128, 50, 128, 256, 784)
    widths = (784, 50, 784) if model in ("shallow", "sae") else deep
    return StackedAutoencoder(widths, {"vae": "gaussian", "lae": "softmax"}.get(model, "sigmoid"))


def species_loss(model: str, result: _Pass, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training objective of a species on one minibatch (see the module docstring)."""
    output = result["output"]
    if model == "vae":
        bce = F.binary_cross_entropy(output, x, reduction="sum")
        mean, log_variance = result["mean"], result["log_variance"]
        kl = -0.5 * torch.sum(1 + log_variance - mean.pow(2) - log_variance.exp())
        return (bce + kl) / len(x)  # the authors sum over the batch too; Adam is blind to that constant factor
    loss = F.mse_loss(output, x)
    if model == "sae":
        rho, rho_hat = _SPARSITY_TARGET, result["layers"]["Z"].mean(dim=0).clamp(1e-6, 1 - 1e-6)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        loss = loss + _SPARSITY_WEIGHT * kl.sum()
    elif model == "lae":
        loss = loss + _LABEL_WEIGHT * F.cross_entropy(result["logits"], labels)
    return loss


class _Run:
    """The mutable state of one run: network, optimiser, information plane and loss logs (all checkpointed)."""

    def __init__(self, config: FlowConfig, digits: Digits) -> None:
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = build_model(config.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.train_x = digits.train_images[: config.train_size]
        self.train_y = digits.train_labels[: config.train_size]
        self.test_x, self.test_y = digits.test_images, digits.test_labels
        self.probe_x = digits.test_images[: config.probe_size]
        self.plane = InformationPlane(
            self.probe_x,
            self.model.layer_names,
            every=config.mi_every,
            alpha=config.alpha,
            bandwidth=config.bandwidth,
        )
        self.iteration = 0
        self.logs: dict[str, list[float]] = {key: [] for key in ("test_iteration", "test_loss", "test_mse")}
        self.logs.update(train_iteration=[], train_loss=[])
        self.window = [0.0, 0]  # sum and count of minibatch losses since the last train-loss entry
        self.seconds = 0.0

    def _noise(self, rows: int, iteration: int, stream: int) -> torch.Tensor | None:
        # VAE noise from a generator keyed by (seed, iteration, stream): a resumed run draws the same numbers.
        if self.config.model != "vae":
            return None
        generator = torch.Generator().manual_seed((self.config.seed * 1_000_003 + iteration) * 4 + stream)
        return torch.randn(rows, 50, generator=generator)

    def step(self) -> None:
        """One optimiser step on minibatch number `iteration` of the epoch's shuffled order."""
        per_epoch = len(self.train_x) // self.config.batch_size
        epoch, index = divmod(self.iteration, per_epoch)
        order = torch.randperm(len(self.train_x), generator=torch.Generator().manual_seed(self.config.seed + epoch))
        rows = order[index * self.config.batch_size : (index + 1) * self.config.batch_size]
        x, labels = self.train_x[rows], self.train_y[rows]
        self.model.train()
        loss = species_loss(self.config.model, self.model(x, self._noise(len(x), self.iteration, 0)), x, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.iteration += 1
        self.window[0] += float(loss.detach())
        self.window[1] += 1

    @torch.no_grad()
    def evaluate(self, final: bool = False) -> None:
        """Test loss and information plane where due at the current iteration (both at the last one)."""
        t = self.iteration
        self.model.eval()
        if t % self.config.test_every == 0 or final:
            result = self.model(self.test_x, self._noise(len(self.test_x), t, 1))
            loss = species_loss(self.config.model, result, self.test_x, self.test_y)
            self.logs["test_iteration"].append(t)
            self.logs["test_loss"].append(float(loss))
            self.logs["test_mse"].append(float(F.mse_loss(result["output"], self.test_x)))
            if self.window[1]:
                self.logs["train_iteration"].append(t)
                self.logs["train_loss"].append(self.window[0] / self.window[1])
                self.window = [0.0, 0]
        if self.plane.due(t) or final:
            result = self.model(self.probe_x, self._noise(len(self.probe_x), t, 2))
            self.plane.update(t, result["layers"], result["output"])

    def state(self) -> dict:
        return {
            "version": RESULTS_VERSION,
            "config": dataclasses.asdict(self.config),
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "plane": self.plane.state_dict(),
            "logs": self.logs,
            "window": self.window,
            "seconds": self.seconds,
        }

    def restore(self, state: dict) -> None:
        if state.get("config") != dataclasses.asdict(self.config):
            raise ValueError(f"the checkpoint is of another configuration: {state.get('config')}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.plane.load_state_dict(state["plane"])
        self.iteration, self.logs = int(state["iteration"]), state["logs"]
        self.window, self.seconds = list(state["window"]), float(state["seconds"])


def run(
    config: FlowConfig,
    out: str | os.PathLike,
    *,
    data: str | os.PathLike | Digits = "../shared/data/mnist",
    resume: bool = False,
    progress: bool = False,
) -> dict:
    """Train one species with the information plane recorded online; write `results.json` and the figure.

    Every `config.checkpoint_every` iterations the run state is saved to `<out>/checkpoint.pt`; an interrupted run
    (killed, or stopped with Ctrl-C) continues from the last checkpoint with `resume=True` and produces the
    same numbers as an uninterrupted run. The checkpoint is kept at the end: it holds the final weights.

    Args:
        config: the run. out: output folder (created if missing; its parent must exist).
        data: the MNIST folder (see `fastsim.experiments.digits`), or the loaded `Digits`.
        progress: show a tqdm bar on stderr.

    Returns:
        The results dictionary also written to `<out>/results.json`.

    Raises:
        FileNotFoundError: the data folder or the parent of `out` is missing.
        ValueError: a checkpoint exists without `resume`, or belongs to another configuration.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the parent folder of out does not exist: {out.parent}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder; {out} is a file")
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists() and not resume:
        raise ValueError(f"{checkpoint} exists: pass resume=True (--resume) to continue that run, or delete it")
    state = _Run(config, data if isinstance(data, Digits) else load_digits(data))
    if resume and checkpoint.exists():
        state.restore(load_checkpoint(checkpoint))
    else:
        state.evaluate()
    out.mkdir(exist_ok=True)
    bar = tqdm(total=config.iterations, initial=state.iteration, disable=not progress, unit="it", desc=config.model)
    start = time.perf_counter()
    try:
        while state.iteration < config.iterations:
            state.step()
            state.evaluate(final=state.iteration == config.iterations)
            bar.update(1)
            if state.iteration % config.checkpoint_every == 0 or state.iteration == config.iterations:
                state.seconds += time.perf_counter() - start
                start = time.perf_counter()
                save_checkpoint(checkpoint, state.state())
    finally:
        bar.close()
    results = _results(state)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(out)
    return results


def compression_summary(iterations: np.ndarray, mi_code: np.ndarray) -> dict:
    """Peak and final I(X;Z) and whether a compression phase occurs.

    The curve is first smoothed by a centred running mean over 2% of its points (at least 1). Criterion: a
    compression phase occurs when the final smoothed I(X;Z) lies more than `COMPRESSION_DROP_BITS` (0.1 bit) below
    its smoothed peak.
    """
    mi_code = np.asarray(mi_code, dtype=np.float64)
    window = max(1, len(mi_code) // 50)
    padded = np.pad(mi_code, (window // 2, window - 1 - window // 2), mode="edge")
    smooth = np.convolve(padded, np.ones(window) / window, mode="valid")
    peak = int(np.argmax(smooth))
    drop = float(smooth[peak] - smooth[-1])
    return {
        "peak_mi_code": float(smooth[peak]),
        "peak_iteration": int(iterations[peak]),
        "final_mi_code": float(smooth[-1]),
        "drop_bits": drop,
        "compression": drop > COMPRESSION_DROP_BITS,
    }


def _results(state: _Run) -> dict:
    history = state.plane.history
    layers = list(state.model.layer_names)
    summary = compression_summary(history["iteration"], history["mi_input"][:, layers.index("Z")])
    summary.update(
        paper_compression=PAPER_COMPRESSION[state.config.model],
        final_train_loss=state.logs["train_loss"][-1] if state.logs["train_loss"] else None,
        final_test_loss=state.logs["test_loss"][-1],
        final_test_mse=state.logs["test_mse"][-1],
    )
    return {
        "version": RESULTS_VERSION,
        "config": dataclasses.asdict(state.config),
        "layers": layers,
        "estimator": {"name": "matrix Renyi", "alpha": state.config.alpha, "bandwidth": state.config.bandwidth},
        "unit": "bits",
        "seconds": state.seconds,
        "summary": summary,
        "history": {key: value.tolist() for key, value in history.items()},
        "logs": state.logs,
    }


def plot(out: str | os.PathLike) -> Path:
    """Draw `<out>/information_plane.png` from `<out>/results.json` (see `plot_information_plane`)."""
    out = Path(out)
    results = json.loads((out / "results.json").read_text())
    layers, logs, config = results["layers"], results["logs"], results["config"]
    history = {key: np.asarray(value) for key, value in results["history"].items()}
    split = layers.index("Z")
    losses = {
        "train": (logs["train_iteration"], logs["train_loss"]),
        "test": (logs["test_iteration"], logs["test_loss"]),
    }
    title = (
        f"{config['model']}: σ rule {config['bandwidth']}, N={config['probe_size']}, {config['iterations']} iterations"
    )
    return plot_information_plane(
        history,
        layers,
        out / "information_plane.png",
        probe_size=config["probe_size"],
        encoder=layers[: split + 1],
        decoder=layers[split:],
        losses=losses,
        title=title,
    )


def results_table(folders: list[str | os.PathLike]) -> str:
    """A Markdown table of finished runs: peak and final I(X;Z), compression by `compression_summary`'s criterion,
    the paper's reading, agreement, and the final test reconstruction MSE."""
    lines = [
        "| species | σ rule | iterations | peak I(X;Z) (bits) | at iteration | final I(X;Z) | drop | compression "
        "| paper | agrees | test MSE |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|---:|",
    ]
    for folder in folders:
        results = json.loads((Path(folder) / "results.json").read_text())
        config, summary = results["config"], results["summary"]
        lines.append(
            f"| {config['model']} | {config['bandwidth']} | {config['iterations']} | {summary['peak_mi_code']:.3f} "
            f"| {summary['peak_iteration']} | {summary['final_mi_code']:.3f} | {summary['drop_bits']:.3f} "
            f"| {'yes' if summary['compression'] else 'no'} | {'yes' if summary['paper_compression'] else 'no'} "
            f"| {'yes' if summary['compression'] == summary['paper_compression'] else 'NO'} "
            f"| {summary['final_test_mse']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def plot_comparison(folders: list[str | os.PathLike], path: str | os.PathLike) -> Path:
    """One panel of I(X;Z) against iteration for several finished runs (one line per run), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder of the figure does not exist: {path.parent}")
    figure, ax = plt.subplots(figsize=(7, 4.2))
    ceiling = 0.0
    for folder in folders:
        results = json.loads((Path(folder) / "results.json").read_text())
        config, history = results["config"], results["history"]
        code = np.asarray(history["mi_input"])[:, results["layers"].index("Z")]
        ax.plot(history["iteration"], code, lw=1, label=f"{config['model']} ({config['bandwidth']})")
        ceiling = max(ceiling, math.log2(config["probe_size"]))
    ax.axhline(ceiling, color="k", ls=":", lw=0.8, label="log2 N")
    ax.set(xlabel="iteration", ylabel="I(X;Z) (bits)", ylim=(0, ceiling + 0.4), title="bottleneck information")
    ax.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
