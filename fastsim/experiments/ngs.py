"""Neural Graph Simulator (Choi, Lee, Kahng, Jo, arXiv 2411.09120): data, training, rollout evaluation, plots.

Data (`dataset_configs`, `generate_data`): `fastsim simulate` with the paper's settings (ngs_gnrk.md §1.4): a
training file (Erdős–Rényi graphs, N ∈ [100, 200], mean degree ∈ [2, 4]) and four test files, G_int/G_ext
(N ∈ [100, 200] / [2000, 3000]) × T_int/T_ext (the training horizon / extra steps beyond it).

Training (`train`): teacher-forced single steps (S(t_m), Δt_m) → S(t_{m+1}) drawn from every step of every training
trajectory, MSE; Gaussian noise σ added once to the training trajectories; a missing-node fraction p per
trajectory, its mask grown `depth` hops and excluded from the loss; AdamW, cosine warm restarts with a decaying
peak, EMA weights, validation by full-rollout MAE on the last `val_fraction` of the file (`fastsim.training`).
The default schedule is a reduced one (`NGSConfig`); `PAPER_SCHEDULE` is the paper's 1540 epochs.

Evaluation (`evaluate`): autoregressive rollout from the initial state over each sample's own non-uniform steps,
MAE over all predicted times (t = 0 excluded), per sample, with the 95% interval of the mean (1.96·std/√n) as in
the paper's Table 1; `plot_*` write PNGs. CLI: `fastsim train ngs ...` and `fastsim rollout ...` (docs/ngs.md).
"""

import argparse
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fastsim.datasets import Dataset, load_dataset
from fastsim.experiments.plots import figure, plot_error_vs_time
from fastsim.graph import Graph
from fastsim.models.ngs import LAYOUTS, NeuralGraphSimulator
from fastsim.simulate import SimulationConfig, generate
from fastsim.training import (
    TrainConfig,
    Trainer,
    TrainResult,
    add_gaussian_noise,
    data_digest,
    mean_interval,
    missing_node_mask,
    mse,
)

__all__ = [
    "DATASET_SYSTEMS",
    "PAPER_SCHEDULE",
    "PAPER_TABLE1",
    "NGSConfig",
    "Trajectories",
    "add_train_arguments",
    "dataset_configs",
    "evaluate",
    "generate_data",
    "load_trajectories",
    "rollout_command",
    "train",
    "train_command",
]

# The `fastsim simulate` system of each NGS system (NGS's Kuramoto is the all-to-all, global-coupling model).
DATASET_SYSTEMS = {"heat": "heat", "rossler": "rossler", "kuramoto": "kuramoto_mean_field"}
# Paper horizons: training grid (T, steps, δ) and the extra interval of T_ext (ngs_gnrk.md §1.4).
_TIME = {"heat": (1.0, 20, 0.8, 2.0, 20), "rossler": (40.0, 40, 0.5, 50.0, 10), "kuramoto": (5.0, 20, 0.6, 10.0, 20)}
SPLITS = ("G_int,T_int", "G_ext,T_int", "G_int,T_ext", "G_ext,T_ext")
PAPER_SCHEDULE = {"epochs": 1540, "warmup_epochs": 20, "period_epochs": 200}
# Table 1 of the paper (p = 0.1, σ = 1e-3): MAE mean and 95% interval per split.
PAPER_TABLE1 = {
    "heat": {
        "G_int,T_int": (3.98e-4, 0.24e-4),
        "G_ext,T_int": (4.46e-4, 0.33e-4),
        "G_int,T_ext": (5.39e-4, 0.54e-4),
        "G_ext,T_ext": (5.73e-4, 0.52e-4),
    },
    "rossler": {
        "G_int,T_int": (0.025, 0.008),
        "G_ext,T_int": (0.034, 0.008),
        "G_int,T_ext": (0.155, 0.072),
        "G_ext,T_ext": (0.220, 0.068),
    },
}


@dataclasses.dataclass(frozen=True)
class NGSConfig:
    """Settings of one NGS training run (model, data corruption, split); the optimiser's are a `TrainConfig`.

    Attributes:
        system: "heat", "rossler" or "kuramoto". emb_dim: None for the paper's width. depth: GN layers.
        threshold: Kuramoto's θ_th (None: the all-to-all model). noise: σ of the Gaussian noise on the training
        trajectories (>= 0). missing: fraction p of missing nodes per training trajectory, in [0, 1).
        val_fraction: the last fraction of the training file used for validation (the paper's 0.2).
        val_samples: at most this many validation trajectories are rolled out each validation (None: all).
    """

    system: str = "heat"
    emb_dim: int | None = None
    depth: int = 2
    threshold: float | None = None
    noise: float = 0.0
    missing: float = 0.0
    val_fraction: float = 0.2
    val_samples: int | None = None

    def __post_init__(self) -> None:
        if self.system not in LAYOUTS:
            raise ValueError(f"system must be one of {', '.join(LAYOUTS)}; got {self.system!r}")
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"noise must be a finite number >= 0; got {self.noise}")
        if not 0 <= self.missing < 1:
            raise ValueError(f"missing must lie in [0, 1); got {self.missing}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must lie in (0, 1); got {self.val_fraction}")
        if self.val_samples is not None and (not isinstance(self.val_samples, int) or self.val_samples < 1):
            raise ValueError(f"val_samples must be None or an int >= 1; got {self.val_samples!r}")


# ---------------------------------------------------------------------------------------------------------- data
def dataset_configs(
    system: str, num_train: int = 1000, num_test: int = 50, seed: int = 0, **overrides: Any
) -> dict[str, SimulationConfig]:
    """`SimulationConfig`s of the paper's training file ("train") and test splits (`SPLITS`).

    Each file has its own seed (`seed`, `seed + 1`, ...), so test graphs differ from training graphs. Kuramoto is
    all-to-all, so its G_ext is N ∈ [2000, 3000] oscillators. `overrides` go to every config (e.g. `rtol`).
    """
    if system not in DATASET_SYSTEMS:
        raise ValueError(f"system must be one of {', '.join(DATASET_SYSTEMS)}; got {system!r}")
    horizon, steps, delta, ext_horizon, ext_steps = _TIME[system]
    common = {"system": DATASET_SYSTEMS[system], "delta": delta, "mean_degree": (2.0, 4.0)} | overrides
    intervals = {"T_int": ((horizon,), (steps,)), "T_ext": ((horizon, ext_horizon), (steps, ext_steps))}
    sizes = {"G_int": (100, 200), "G_ext": (2000, 3000)}
    configs = {
        "train": SimulationConfig(
            **common,
            num_samples=num_train,
            num_nodes=sizes["G_int"],
            max_time=intervals["T_int"][0],
            num_steps=intervals["T_int"][1],
            seed=seed,
        )
    }
    for k, split in enumerate(SPLITS, start=1):
        g, t = split.split(",")
        configs[split] = SimulationConfig(
            **common,
            num_samples=num_test,
            num_nodes=sizes[g],
            max_time=intervals[t][0],
            num_steps=intervals[t][1],
            seed=seed + k,
        )
    return configs


def split_file(split: str) -> str:
    """File name of a split in a data folder: "train.npz", "test_G_int_T_int.npz", ..."""
    return "train.npz" if split == "train" else f"test_{split.replace(',', '_')}.npz"


def generate_data(
    system: str,
    folder: str | os.PathLike,
    num_train: int = 1000,
    num_test: int = 50,
    seed: int = 0,
    splits: tuple[str, ...] = ("train", *SPLITS),
    progress: bool = True,
    **overrides: Any,
) -> dict[str, Path]:
    """Simulate the training file and test splits into `folder` (`split_file` names); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    configs = dataset_configs(system, num_train, num_test, seed, **overrides)
    unknown = set(splits) - set(configs)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; known: {list(configs)}")
    return {s: generate(configs[s], folder / split_file(s), resume=True, progress=progress) for s in splits}


@dataclasses.dataclass
class Trajectories:
    """A dataset's trajectories as NGS inputs (float32, one entry per sample).

    Attributes:
        graphs: per-sample graphs. states: `(T, N_s, *F)`. dts: `(T-1,)` steps. node, edge, glob: per-sample
        coefficients as `encode_coefficients` takes them (None for kinds the system lacks).
        missing: per-sample bool `(N_s,)` nodes excluded from the loss (None: none).
    """

    system: str
    graphs: list[Graph]
    states: list[Tensor]
    dts: list[Tensor]
    node: list[Tensor] | None
    edge: list[Tensor] | None
    glob: list[Tensor] | None
    missing: list[Tensor] | None = None

    def __len__(self) -> int:
        return len(self.graphs)

    def subset(self, indices: list[int] | range) -> "Trajectories":
        """The trajectories at `indices`."""
        pick = lambda xs: None if xs is None else [xs[i] for i in indices]  # noqa: E731
        return Trajectories(
            self.system,
            pick(self.graphs),
            pick(self.states),
            pick(self.dts),
            pick(self.node),
            pick(self.edge),
            pick(self.glob),
            pick(self.missing),
        )

    def batch(self, indices: list[int], device: torch.device) -> tuple[Graph, dict[str, Tensor | None]]:
        """The batched graph of `indices` and their concatenated coefficients (`node`, `edge`, `glob`)."""
        graph = Graph.batch_graphs([self.graphs[i] for i in indices]).to(device)
        cat = lambda xs: None if xs is None else torch.cat([xs[i] for i in indices]).to(device)  # noqa: E731
        return graph, {"node": cat(self.node), "edge": cat(self.edge), "glob": cat(self.glob)}


def load_trajectories(source: str | os.PathLike | Dataset, system: str) -> Trajectories:
    """Read a `fastsim simulate` file of the matching system into NGS inputs.

    Heat: edge = diffusivity. Rössler: edge = coupling, glob = (a, b, c). Kuramoto: node = ω, glob = K/N.

    Raises:
        FileNotFoundError: no such file. ValueError: not a dataset, or a dataset of another system.
    """
    dataset = source if isinstance(source, Dataset) else load_dataset(source)
    if system not in DATASET_SYSTEMS:
        raise ValueError(f"system must be one of {', '.join(DATASET_SYSTEMS)}; got {system!r}")
    if dataset.system_name != DATASET_SYSTEMS[system]:
        raise ValueError(
            f"{dataset.path} holds {dataset.system_name!r} data; the {system} model needs "
            f"{DATASET_SYSTEMS[system]!r} (fastsim simulate {DATASET_SYSTEMS[system]})"
        )
    out = Trajectories(
        system,
        [],
        [],
        [],
        [] if system == "kuramoto" else None,
        [] if system != "kuramoto" else None,
        [] if system != "heat" else None,
    )
    for sample in dataset:
        c = {k: v.float() for k, v in sample.coefficients.items()}
        out.graphs.append(sample.graph)
        out.states.append(sample.trajectory.float())
        out.dts.append(sample.times.diff().float())
        if system == "heat":
            out.edge.append(c["diffusivity"][:, None])
        elif system == "rossler":
            out.edge.append(c["coupling"][:, None])
            out.glob.append(torch.stack([c["a"], c["b"], c["c"]], dim=1))
        else:
            out.node.append(c["omega"][:, None])
            out.glob.append((c["coupling"] / sample.graph.num_nodes)[:, None])
    return out


def corrupt(data: Trajectories, noise: float, missing: float, depth: int, seed: int) -> Trajectories:
    """Training copies with Gaussian noise σ = `noise` on every state and a missing-node mask per trajectory
    (nodes missing with probability `missing`, grown `depth` hops; `fastsim.training.missing_node_mask`)."""
    gen = torch.Generator().manual_seed(seed)
    states = [add_gaussian_noise(s, noise, gen) for s in data.states]
    masks = [missing_node_mask(g, missing, depth, gen) for g in data.graphs] if missing > 0 else None
    return dataclasses.replace(data, states=states, missing=masks)


# ---------------------------------------------------------------------------------------------------------- training
def _single_steps(data: Trajectories, batch_size: int):
    """`batches(epoch, generator)` for the trainer: shuffled (trajectory, step) pairs, `batch_size` per batch."""
    pairs = torch.tensor([(i, m) for i, s in enumerate(data.states) for m in range(s.shape[0] - 1)])

    def batches(epoch: int, generator: torch.Generator):
        order = pairs[torch.randperm(len(pairs), generator=generator)]
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size].tolist()

    return batches


def _single_step_loss(data: Trajectories):
    def loss(module: nn.Module, pairs: list[list[int]]) -> Tensor:
        device = next(module.parameters()).device
        indices = [i for i, _ in pairs]
        graph, coefficients = data.batch(indices, device)
        state = torch.cat([data.states[i][m] for i, m in pairs]).to(device)
        target = torch.cat([data.states[i][m + 1] for i, m in pairs]).to(device)
        dt = torch.stack([data.dts[i][m] for i, m in pairs]).to(device)
        missing = None if data.missing is None else torch.cat([data.missing[i] for i in indices]).to(device)
        return mse(module(graph, state, dt, **coefficients), target, missing)

    return loss


def rollout_batches(
    model: NeuralGraphSimulator, data: Trajectories, batch_size: int = 16, autocast: torch.dtype | None = None
) -> list[Tensor]:
    """Roll every trajectory out from its initial state over its own steps; returns `(T, N_s, *F)` predictions.

    Trajectories of equal length are batched `batch_size` graphs at a time."""
    device = next(model.parameters()).device
    preds: list[Tensor] = [torch.empty(0)] * len(data)
    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(data.states):
        by_length.setdefault(s.shape[0], []).append(i)
    model.eval()
    for group in by_length.values():
        for start in range(0, len(group), batch_size):
            indices = group[start : start + batch_size]
            graph, coefficients = data.batch(indices, device)
            state = torch.cat([data.states[i][0] for i in indices]).to(device)
            dts = torch.stack([data.dts[i] for i in indices], dim=1).to(device)
            out = model.rollout(graph, state, dts, **coefficients, autocast=autocast).cpu()
            ptr = graph.ptr.tolist()
            for b, i in enumerate(indices):
                preds[i] = out[:, ptr[b] : ptr[b + 1]]
    return preds


def rollout_errors(preds: list[Tensor], data: Trajectories) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-sample MAE over all predicted times (t = 0 excluded) and per-sample MAE at each time."""
    per_time = [(p - s).abs().reshape(s.shape[0], -1).mean(dim=1).numpy() for p, s in zip(preds, data.states)]
    return np.array([e[1:].mean() for e in per_time]), per_time


def _validate(data: Trajectories, batch_size: int):
    def validate(model: nn.Module) -> dict[str, float]:
        errors, _ = rollout_errors(rollout_batches(model, data, batch_size), data)
        return {"mae": float(errors.mean())}

    return validate


def build_model(config: NGSConfig) -> NeuralGraphSimulator:
    """The model a config describes."""
    return NeuralGraphSimulator.for_system(config.system, config.emb_dim, config.depth, config.threshold)


def train(
    config: NGSConfig,
    train_config: TrainConfig,
    data: str | os.PathLike | Trajectories,
    *,
    device: torch.device | str = "cpu",
    resume: bool = False,
    digest: str | None = None,
) -> tuple[NeuralGraphSimulator, TrainResult]:
    """Train NGS on a training file (the last `val_fraction` of it validates) and return the model with its
    best (EMA) weights loaded, and the trainer's result (files in `train_config.out`). `digest`:
    `fastsim.training.data_digest` of the data file, stored in checkpoints so that a resumed run refuses other data."""
    data = data if isinstance(data, Trajectories) else load_trajectories(data, config.system)
    num_val = max(1, round(len(data) * config.val_fraction))
    if len(data) - num_val < 1:
        raise ValueError(f"need at least 2 trajectories to split off validation; got {len(data)}")
    train_data = data.subset(range(len(data) - num_val))
    val_data = data.subset(range(len(data) - num_val, len(data))[: config.val_samples])
    train_data = corrupt(train_data, config.noise, config.missing, config.depth, train_config.seed)
    torch.manual_seed(train_config.seed)
    model = build_model(config).to(device)
    extra = {
        "model_kind": "ngs",
        "model_args": model.model_args(),
        "ngs_config": dataclasses.asdict(config),
        "data_digest": digest,
    }
    trainer = Trainer(
        model,
        train_config,
        loss=_single_step_loss(train_data),
        validate=_validate(val_data, train_config.batch_size),
        metric="mae",
        extra=extra,
    )
    result = trainer.fit(_single_steps(train_data, train_config.batch_size), resume=resume)
    best = torch.load(result.best_path, map_location=device, weights_only=True)
    model.load_state_dict(best["model"])
    return model.eval(), result


def model_from_checkpoint(checkpoint: dict, device: torch.device | str = "cpu") -> NeuralGraphSimulator:
    """Rebuild the model of a `fastsim train ngs` checkpoint (`best.pt` holds the EMA weights)."""
    extra = checkpoint.get("extra") or {}
    if extra.get("model_kind") != "ngs" or "model_args" not in extra:
        raise ValueError("not an NGS checkpoint: extra['model_kind'] != 'ngs' or no extra['model_args']")
    args = extra["model_args"]
    model = NeuralGraphSimulator(args["system"], args["emb_dim"], args["depth"], args["threshold"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


# ---------------------------------------------------------------------------------------------------------- results
def evaluate(
    model: NeuralGraphSimulator,
    data: str | os.PathLike | Trajectories,
    batch_size: int = 16,
    autocast: torch.dtype | None = None,
) -> tuple[dict[str, Any], list[Tensor], Trajectories]:
    """Rollout MAE on a dataset: `{"mae", "mae_ci95", "samples", "mae_per_sample", "mae_vs_time", "times"}`,
    plus the predictions and the data (for plots)."""
    data = data if isinstance(data, Trajectories) else load_trajectories(data, model.system)
    preds = rollout_batches(model, data, batch_size, autocast)
    errors, per_time = rollout_errors(preds, data)
    length = min(len(e) for e in per_time)
    mean, ci = mean_interval(errors)
    return (
        {
            "mae": mean,
            "mae_ci95": ci,
            "samples": len(errors),
            "mae_per_sample": errors.tolist(),
            "mae_vs_time": np.mean([e[:length] for e in per_time], axis=0).tolist(),
            "times": torch.cat([torch.zeros(1), torch.cumsum(data.dts[0], 0)])[:length].tolist(),
        },
        preds,
        data,
    )


def plot_history(history: list[dict], out: str | os.PathLike) -> Path:
    """Loss curves: training single-step MSE and validation rollout MAE per epoch (log scale)."""
    fig, (ax,) = figure(3.5)
    epochs = [h["epoch"] for h in history]
    ax.semilogy(epochs, [h["train_loss"] for h in history], label="train MSE (single step)")
    val = [(h["epoch"], h["mae"]) for h in history if "mae" in h]
    if val:
        ax.semilogy(*zip(*val), marker=".", label="validation MAE (rollout, EMA)")
    ax.set_xlabel("epoch")
    ax.legend()
    fig.savefig(out, format="png", dpi=110)
    return Path(out)


def plot_trajectories(pred: Tensor, data: Trajectories, index: int, out: str | os.PathLike, nodes: int = 8) -> Path:
    """Predicted (dashed) vs true (solid) trajectories of the first `nodes` nodes of sample `index`."""
    true = data.states[index].reshape(data.states[index].shape[0], data.states[index].shape[1], -1)
    pred = pred.reshape(true.shape)
    t = torch.cat([torch.zeros(1), torch.cumsum(data.dts[index], 0)]).numpy()
    fig, axes = figure(2.0 + 2.0 * true.shape[2], true.shape[2])
    for k, ax in enumerate(axes):
        for j in range(min(nodes, true.shape[1])):
            line = ax.plot(t, true[:, j, k], linewidth=1.0)[0]
            ax.plot(t, pred[:, j, k], linestyle="--", marker=".", markersize=3, color=line.get_color())
        ax.set_ylabel(f"state[{k}]" if true.shape[2] > 1 else "state")
    axes[0].set_title(f"sample {index}: true (solid) vs NGS rollout (dashed)")
    axes[-1].set_xlabel("t")
    fig.savefig(out, format="png", dpi=110)
    return Path(out)


def write_results(
    model: NeuralGraphSimulator,
    data_path: str | os.PathLike,
    out: str | os.PathLike,
    batch_size: int = 16,
    name: str | None = None,
) -> dict[str, Any]:
    """Evaluate on one dataset and write `<out>/rollout_<name>.json`, trajectory and error-vs-time PNGs."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = name or Path(data_path).stem
    result, preds, data = evaluate(model, data_path, batch_size)
    result = {"data": str(data_path), "system": model.system, "model_args": model.model_args()} | result
    (out / f"rollout_{name}.json").write_text(json.dumps(result, indent=1))
    plot_trajectories(preds[0], data, 0, out / f"trajectories_{name}.png")
    plot_error_vs_time({name: result}, out / f"error_vs_time_{name}.png")
    return result


# ---------------------------------------------------------------------------------------------------------- CLI
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `fastsim train ngs` (the common ones plus the model, corruption and schedule settings)."""
    from fastsim.cli.arguments import number
    from fastsim.cli.train import add_common_train_arguments

    add_common_train_arguments(parser, epochs=40, batch_size=16, lr=1e-2)
    parser.add_argument(
        "--system",
        choices=sorted(LAYOUTS),
        default="heat",
        help="(default heat; traffic is a variant with its own options: `fastsim train ngs --system traffic -h`)",
    )
    parser.add_argument("--emb-dim", type=number(int, "--emb-dim", 1), default=None, help="(default: the paper's)")
    parser.add_argument("--depth", type=number(int, "--depth", 1), default=2)
    parser.add_argument("--threshold", type=float, default=None, help="kuramoto θ_th in radians (default all-to-all)")
    parser.add_argument("--noise", type=float, default=0.0, help="σ of the training noise (paper: 1e-3)")
    parser.add_argument("--missing", type=float, default=0.0, help="missing-node fraction p (paper: 0.1)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--val-samples", type=number(int, "--val-samples", 1), default=None)
    parser.add_argument("--warmup-epochs", type=number(int, "--warmup-epochs", 0), default=2)
    parser.add_argument("--period-epochs", type=number(int, "--period-epochs", 1), default=18)
    parser.add_argument("--paper-schedule", action="store_true", help="1540 epochs, warmup 20, period 200")
    parser.add_argument("--test", nargs="*", default=[], help="datasets to evaluate the best model on after training")


def train_command(args: argparse.Namespace) -> int:
    """`fastsim train ngs`: train, then write loss curves and evaluate on --test files."""
    from fastsim.cli.train import common_config_fields, resolve_device

    if not Path(args.data).is_file():
        raise FileNotFoundError(f"--data: no such file {args.data}")
    device = resolve_device(args.device)
    config = NGSConfig(
        args.system,
        args.emb_dim,
        args.depth,
        args.threshold,
        args.noise,
        args.missing,
        args.val_fraction,
        args.val_samples,
    )
    schedule = {"warmup_epochs": args.warmup_epochs, "period_epochs": args.period_epochs}
    fields = common_config_fields(args)
    if args.paper_schedule:
        schedule = {k: v for k, v in PAPER_SCHEDULE.items() if k != "epochs"}
        fields["epochs"] = PAPER_SCHEDULE["epochs"]
    train_config = TrainConfig(**fields, **schedule)
    digest = data_digest(args.data)
    model, result = train(config, train_config, args.data, device=device, resume=args.resume, digest=digest)
    out = Path(args.out)
    plot_history(result.history, out / "loss.png")
    summary = {"best_epoch": result.best_epoch, "best_val_mae": result.best_metric}
    for path in args.test:
        summary[Path(path).stem] = write_results(model, path, out, args.batch_size)["mae"]
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if not args.quiet:
        print(json.dumps(summary, indent=1))
    return 0


def rollout_command(checkpoint: dict, args: argparse.Namespace) -> int:
    """`fastsim rollout` of an NGS checkpoint: results JSON, trajectory and error-vs-time PNGs in --out."""
    model = model_from_checkpoint(checkpoint, args.device)
    result = write_results(model, args.data, args.out, args.batch_size)
    if not args.quiet:
        print(
            f"{args.data}: rollout MAE {result['mae']:.4g} ± {result['mae_ci95']:.2g} over {result['samples']} "
            f"samples; results in {args.out}"
        )
    return 0
