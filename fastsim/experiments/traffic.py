"""NGS traffic forecasting (ngs_gnrk.md §1.7): sensor-graph data, training, evaluation against baselines, plots.

Data. The paper trains on PEMS-BAY (325 sensors), whose speeds are not shipped; `read_sensor_graph` reads its
graph (and METR-LA's). Real speeds exist for METR-LA's first week (`../shared/data/los-loop`: 2016 rows × 207
sensors, 5-minute steps, row 0 = Thursday 2012-03-01 00:00); `read_los_loop` pairs them with the directed METR-LA
adjacency. `prepare` makes windows of `in_steps` → `out_steps` rows, split chronologically by window start
70 / 10 / 20 % (DCRNN), z-scores speeds with one mean/std from the training part's rows, and derives time-of-day
slots and days of the week from the row index. Zero speeds mean "missing" (the METR-LA convention): they are left
out of the normalisation statistics, the loss and every metric.

Training (`train`): the shared `fastsim.training.Trainer`; random batches of training windows, masked L1 loss on
normalised speeds, AdamW (weight decay 0.5), cyclic cosine schedule, EMA weights, validation by masked MAE (speed
units) on the validation windows. `PAPER_SCHEDULE` is the paper's 275 epochs; the CLI default is reduced.

Evaluation (`evaluate`): masked MAE / RMSE / MAPE per horizon on the test windows (DCRNN's protocol: entries whose
true speed is 0 are excluded), next to two baselines on the same windows: the last observed value, and the
historical average (per-sensor mean of the training part at the same time of the week, or of the day where the
week slot never occurs in training). CLI: `fastsim train ngs --system traffic ...`, `fastsim rollout` (docs/ngs.md).
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

from fastsim.graph import Graph
from fastsim.models.ngs_traffic import DAYS_PER_WEEK, FEATURES, SLOTS_PER_DAY, TrafficNGS
from fastsim.training import TrainConfig, Trainer, TrainResult, data_digest

__all__ = [
    "HORIZONS",
    "PAPER_SCHEDULE",
    "TrafficConfig",
    "TrafficData",
    "evaluate",
    "historical_average",
    "last_value",
    "load_data",
    "masked_metrics",
    "predict",
    "prepare",
    "read_los_loop",
    "read_sensor_graph",
    "sensor_graph",
    "train",
    "truth",
    "write_results",
]

PAPER_SCHEDULE = {"epochs": 275, "warmup_epochs": 5, "period_epochs": 50, "lr": 8e-4, "weight_decay": 0.5}
HORIZONS = {"15 min": 3, "30 min": 6, "60 min": 12}
THURSDAY = 3  # Monday = 0; METR-LA row 0 is Thursday 2012-03-01 00:00


@dataclasses.dataclass(frozen=True)
class TrafficConfig:
    """Settings of a traffic run: model widths and the data windows / split.

    Attributes:
        emb_dim: the base width d (paper 64). depth: GN layers (paper 2). dropout: in [0, 1) (paper 0.2).
        in_steps, out_steps: observed / predicted rows per window (paper 12 / 12).
        train_fraction, val_fraction: chronological shares of the windows (DCRNN 0.7 / 0.1; the rest tests).
    """

    emb_dim: int = 64
    depth: int = 2
    dropout: float = 0.2
    in_steps: int = 12
    out_steps: int = 12
    train_fraction: float = 0.7
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        for name in ("emb_dim", "depth", "in_steps", "out_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1); got {self.dropout}")
        if not (
            0 < self.train_fraction < 1 and 0 < self.val_fraction < 1 and self.train_fraction + self.val_fraction < 1
        ):
            raise ValueError(
                f"train_fraction and val_fraction must be in (0, 1) with a sum < 1; got "
                f"{self.train_fraction}, {self.val_fraction}"
            )


# ---------------------------------------------------------------------------------------------------------- data
def read_sensor_graph(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Sensor ids `(N,)` and the directed weighted adjacency `(N, N)` of a DCRNN sensor-graph folder
    (`adj_mx.npz` of METR-LA or `adj_mx_bay.npz` of PEMS-BAY; ../shared/data/*-sensor-graph)."""
    folder = Path(folder)
    files = sorted(folder.glob("adj_mx*.npz")) if folder.is_dir() else []
    if len(files) != 1:
        raise FileNotFoundError(f"{folder}: expected one adj_mx*.npz (a DCRNN sensor-graph folder); found {files}")
    with np.load(files[0]) as z:
        ids, adj = z["sensor_ids"].astype(np.int64), z["adj"].astype(np.float32)
    if adj.shape != (len(ids), len(ids)):
        raise ValueError(f"{files[0]}: adjacency {adj.shape} does not match {len(ids)} sensor ids")
    return ids, adj


def read_los_loop(
    folder: str | os.PathLike, graph_folder: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Speeds `(T, N)` of los-loop (METR-LA's first week) and the directed METR-LA adjacency `(N, N)`.

    Args:
        folder: the los-loop folder (`los_speed.csv`: a header of sensor ids, then one row per 5 minutes).
        graph_folder: the METR-LA sensor-graph folder (default: `metr-la-sensor-graph` next to `folder`); its
            sensor ids must equal the speed file's header, in order.
    """
    folder = Path(folder)
    path = folder / "los_speed.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no los_speed.csv (the los-loop folder, ../shared/data/los-loop)")
    header = path.open().readline().strip().split(",")
    speeds = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
    ids, adj = read_sensor_graph(folder.parent / "metr-la-sensor-graph" if graph_folder is None else graph_folder)
    if [int(h) for h in header] != ids.tolist() or speeds.shape[1] != len(ids):
        raise ValueError(f"{path}: the sensor ids of the speeds and of the graph differ")
    return speeds, adj


def sensor_graph(adj: np.ndarray | Tensor) -> tuple[Graph, Tensor]:
    """The sensor graph of a weighted adjacency (an edge i → j per non-zero `adj[i, j]`, self-loops dropped, as the
    reference does) and its edge feature `1 − w_ij` `(E,)` in the graph's CSR order."""
    adj = torch.as_tensor(adj, dtype=torch.float32)
    if adj.dim() != 2 or adj.shape[0] != adj.shape[1] or not bool(torch.isfinite(adj).all()):
        raise ValueError(f"adj must be a finite square matrix; got shape {tuple(adj.shape)}")
    adj = adj.clone().fill_diagonal_(0)
    edge_index = adj.nonzero().T
    graph = Graph.from_edge_index(edge_index, adj.shape[0])
    return graph, graph.to_csr_order(1 - adj[edge_index[0], edge_index[1]])


@dataclasses.dataclass
class TrafficData:
    """Windows of a speed matrix on a sensor graph, normalised and split (`prepare` builds it).

    Attributes:
        graph: the sensor graph. edge: `(E,)` `1 − w_ij`, CSR order. speed: `(T, N)` raw speeds (0 = missing).
        normalised: `(T, N)` `(speed − mean) / std`. slot, day: `(T,)` int64 time-of-day slot and day of week.
        mean, std: the training part's statistics. train_rows: rows of that part (`[0, train_rows)`).
        starts: window start rows of each split ("train", "val", "test"). in_steps, out_steps: window lengths.
    """

    graph: Graph
    edge: Tensor
    speed: Tensor
    normalised: Tensor
    slot: Tensor
    day: Tensor
    mean: float
    std: float
    train_rows: int
    starts: dict[str, Tensor]
    in_steps: int
    out_steps: int

    @property
    def num_sensors(self) -> int:
        return self.speed.shape[1]

    def batch(self, starts: Tensor, device: torch.device | str = "cpu") -> dict[str, Any]:
        """Model inputs and targets of the windows starting at rows `starts (B,)`: `graph` (B copies), `window`
        `(B·N, in, 5)`, `edge`, `sensor`, `time` `(B, 2)`, `target` `(B·N, out)` normalised, `speed` raw targets."""
        b, n, t_in = len(starts), self.num_sensors, self.in_steps
        rows_in = starts[:, None] + torch.arange(t_in)
        rows_out = starts[:, None] + t_in + torch.arange(self.out_steps)
        angle_day = 2 * math.pi * self.slot[rows_in] / SLOTS_PER_DAY
        angle_week = 2 * math.pi * self.day[rows_in] / DAYS_PER_WEEK
        time_features = torch.stack([angle_day.cos(), angle_day.sin(), angle_week.cos(), angle_week.sin()], -1)
        window = torch.cat(
            [self.normalised[rows_in][..., None], time_features[:, :, None, :].expand(b, t_in, n, 4)], dim=-1
        ).transpose(1, 2)  # (B, N, in, 5)
        last = rows_in[:, -1]
        return {
            "graph": Graph.batch_graphs([self.graph] * b).to(device),
            "window": window.reshape(b * n, t_in, FEATURES).to(device),
            "edge": self.edge.repeat(b).to(device),
            "sensor": torch.arange(n).repeat(b).to(device),
            "time": torch.stack([self.slot[last], self.day[last]], dim=1).to(device),
            "target": self.normalised[rows_out].transpose(1, 2).reshape(b * n, -1).to(device),
            "speed": self.speed[rows_out].transpose(1, 2).reshape(b * n, -1).to(device),
        }


def prepare(
    speed: np.ndarray | Tensor, adj: np.ndarray | Tensor, config: TrafficConfig, first_day: int = THURSDAY
) -> TrafficData:
    """Normalise, time-stamp and split a speed matrix `(T, N)` (0 = missing) on the adjacency `(N, N)`.

    Row r is slot `r mod 288` of day `(first_day + r // 288) mod 7` (Monday = 0). Windows start at every row
    that leaves `in_steps + out_steps` rows; the first `train_fraction` of the starts train, the next
    `val_fraction` validate, the rest test. Mean and std are those of the non-zero speeds in the rows the
    training windows observe (`[0, num_train + in_steps − 1)`, as the reference's scaler).

    Raises:
        ValueError: NaN / inf / negative speeds, a sensor count that differs from the adjacency, too few rows.
    """
    speed = torch.as_tensor(speed, dtype=torch.float32)
    if speed.dim() != 2:
        raise ValueError(f"speed must be a (T, N) matrix; got shape {tuple(speed.shape)}")
    if not bool(torch.isfinite(speed).all()) or bool((speed < 0).any()):
        raise ValueError("speed must be finite and >= 0 (mark missing readings with 0, not NaN)")
    graph, edge = sensor_graph(adj)
    if graph.num_nodes != speed.shape[1]:
        raise ValueError(f"speed has {speed.shape[1]} sensors but the adjacency {graph.num_nodes}")
    num_windows = speed.shape[0] - config.in_steps - config.out_steps + 1
    num_train, num_val = round(num_windows * config.train_fraction), round(num_windows * config.val_fraction)
    if min(num_train, num_val, num_windows - num_train - num_val) < 1:
        raise ValueError(f"{speed.shape[0]} rows give {num_windows} windows: too few for a train/val/test split")
    train_rows = num_train + config.in_steps - 1
    observed = speed[:train_rows][speed[:train_rows] > 0].double()
    if observed.numel() < 2:
        raise ValueError("the training part holds fewer than two non-zero speeds")
    mean, std = float(observed.mean()), float(observed.std(correction=0))
    rows = torch.arange(speed.shape[0])
    starts = torch.arange(num_windows)
    return TrafficData(
        graph,
        edge,
        speed,
        (speed - mean) / (std if std > 0 else 1.0),
        rows % SLOTS_PER_DAY,
        (first_day + rows // SLOTS_PER_DAY) % DAYS_PER_WEEK,
        mean,
        std if std > 0 else 1.0,
        train_rows,
        {
            "train": starts[:num_train],
            "val": starts[num_train : num_train + num_val],
            "test": starts[num_train + num_val :],
        },
        config.in_steps,
        config.out_steps,
    )


# ---------------------------------------------------------------------------------------------------------- metrics
def masked_metrics(pred: Tensor, true: Tensor) -> dict[str, list[float]]:
    """Masked MAE, RMSE and MAPE (%) per horizon over entries whose true value is not 0 (DCRNN's protocol).

    Args:
        pred, true: `(..., H)` speeds; the last dimension is the horizon.

    Returns:
        `{"mae": [H values], "rmse": [...], "mape": [...]}` (NaN at a horizon without any non-zero truth).
    """
    if pred.shape != true.shape:
        raise ValueError(f"pred and true must have one shape; got {tuple(pred.shape)} vs {tuple(true.shape)}")
    pred, true = pred.double().reshape(-1, pred.shape[-1]), true.double().reshape(-1, true.shape[-1])
    keep = true != 0
    count = keep.sum(0).double()
    error = torch.where(keep, pred - true, 0)
    ratio = torch.where(keep, error.abs() / true.abs().clamp(min=1e-12), 0)
    return {
        "mae": (error.abs().sum(0) / count).tolist(),
        "rmse": (error.square().sum(0) / count).sqrt().tolist(),
        "mape": (100 * ratio.sum(0) / count).tolist(),
    }


def _masked_l1(pred: Tensor, target: Tensor, speed: Tensor) -> Tensor:
    keep = speed != 0
    return torch.where(keep, (pred - target).abs(), 0).sum() / keep.sum().clamp(min=1)


# ---------------------------------------------------------------------------------------------------------- training
def predict(model: TrafficNGS, data: TrafficData, split: str, batch_size: int = 32) -> Tensor:
    """The model's speed forecasts `(W, N, out_steps)` for the windows of `split`, in speed units, in eval mode."""
    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch.inference_mode():
        for chunk in data.starts[split].split(batch_size):
            b = data.batch(chunk, device)
            pred = model(b["graph"], b["window"], b["edge"], b["sensor"], b["time"]).cpu()
            out.append(pred.reshape(len(chunk), data.num_sensors, -1) * data.std + data.mean)
    return torch.cat(out)


def truth(data: TrafficData, split: str) -> Tensor:
    """True speeds `(W, N, out_steps)` of the windows of `split`."""
    rows = data.starts[split][:, None] + data.in_steps + torch.arange(data.out_steps)
    return data.speed[rows].transpose(1, 2)


def last_value(data: TrafficData, split: str) -> Tensor:
    """Baseline: the last observed speed, repeated over the horizon `(W, N, out_steps)`."""
    last = data.speed[data.starts[split] + data.in_steps - 1]
    return last[:, :, None].expand(-1, -1, data.out_steps)


def historical_average(data: TrafficData, split: str) -> Tensor:
    """Baseline: per sensor, the mean non-zero training-part speed at the target's time of the week; where that
    week slot never occurs in the training part (a one-week series), the mean at the same time of the day."""
    speed, rows = data.speed[: data.train_rows].double(), torch.arange(data.train_rows)
    observed = (speed > 0).double()

    def means(key: Tensor, size: int) -> tuple[Tensor, Tensor]:
        total = torch.zeros(size, data.num_sensors, dtype=torch.float64).index_add_(0, key, speed * observed)
        count = torch.zeros(size, data.num_sensors, dtype=torch.float64).index_add_(0, key, observed)
        return total / count.clamp(min=1), count > 0

    week_key = lambda r: data.day[r] * SLOTS_PER_DAY + data.slot[r]  # noqa: E731
    week, in_week = means(week_key(rows), DAYS_PER_WEEK * SLOTS_PER_DAY)
    day, in_day = means(data.slot[rows], SLOTS_PER_DAY)
    target = data.starts[split][:, None] + data.in_steps + torch.arange(data.out_steps)  # (W, H)
    fallback = torch.where(in_day[data.slot[target]], day[data.slot[target]], data.mean)
    estimate = torch.where(in_week[week_key(target)], week[week_key(target)], fallback)  # (W, H, N)
    return estimate.transpose(1, 2).float()


def _batches(data: TrafficData, batch_size: int):
    def batches(epoch: int, generator: torch.Generator):
        order = data.starts["train"][torch.randperm(len(data.starts["train"]), generator=generator)]
        yield from order.split(batch_size)

    return batches


def _loss(data: TrafficData):
    def loss(module: nn.Module, starts: Tensor) -> Tensor:
        b = data.batch(starts, next(module.parameters()).device)
        return _masked_l1(module(b["graph"], b["window"], b["edge"], b["sensor"], b["time"]), b["target"], b["speed"])

    return loss


def _validate(data: TrafficData, batch_size: int):
    def validate(model: nn.Module) -> dict[str, float]:
        errors = masked_metrics(predict(model, data, "val", batch_size), truth(data, "val"))["mae"]
        return {"mae": float(np.nanmean(errors))}

    return validate


def build_model(config: TrafficConfig, num_sensors: int) -> TrafficNGS:
    """The model a config describes, for `num_sensors` sensors."""
    return TrafficNGS(num_sensors, config.emb_dim, config.depth, config.dropout, config.in_steps, config.out_steps)


def train(
    config: TrafficConfig,
    train_config: TrainConfig,
    data: TrafficData,
    *,
    device: torch.device | str = "cpu",
    resume: bool = False,
    digest: str | None = None,
) -> tuple[TrafficNGS, TrainResult]:
    """Train on `data`'s training windows, validate on its validation windows; returns the model with its best
    (EMA) weights and the trainer's result (files in `train_config.out`). `digest`: `fastsim.training.data_digest`
    of the data folder, stored in checkpoints so that a resumed run refuses other data."""
    torch.manual_seed(train_config.seed)
    model = build_model(config, data.num_sensors).to(device)
    extra = {
        "model_kind": "ngs_traffic",
        "model_args": model.model_args(),
        "traffic_config": dataclasses.asdict(config),
        "scaler": {"mean": data.mean, "std": data.std},
        "data_digest": digest,
    }
    trainer = Trainer(
        model,
        train_config,
        loss=_loss(data),
        validate=_validate(data, 2 * train_config.batch_size),
        metric="mae",
        extra=extra,
    )
    result = trainer.fit(_batches(data, train_config.batch_size), resume=resume)
    model.load_state_dict(torch.load(result.best_path, map_location=device, weights_only=True)["model"])
    return model.eval(), result


# ---------------------------------------------------------------------------------------------------------- results
def evaluate(
    model: TrafficNGS, data: TrafficData, split: str = "test", batch_size: int = 32
) -> tuple[dict, dict[str, Tensor]]:
    """Masked metrics per horizon of the model and both baselines on `split`, the table at `HORIZONS`, and the
    forecasts `{"true", "ngs", "last_value", "historical_average"}` `(W, N, out_steps)` (for plots)."""
    forecasts = {
        "true": truth(data, split),
        "ngs": predict(model, data, split, batch_size),
        "last_value": last_value(data, split),
        "historical_average": historical_average(data, split),
    }
    per_horizon = {name: masked_metrics(f, forecasts["true"]) for name, f in forecasts.items() if name != "true"}
    table = {
        name: {label: {k: m[k][h - 1] for k in m} for label, h in HORIZONS.items() if h <= data.out_steps}
        for name, m in per_horizon.items()
    }
    result = {"split": split, "windows": len(data.starts[split]), "per_horizon": per_horizon, "table": table}
    return result, forecasts


def plot_forecasts(
    forecasts: dict[str, Tensor],
    result: dict,
    data: TrafficData,
    out: str | os.PathLike,
    split: str = "test",
    sensors: tuple[int, ...] = (0, 1, 2),
) -> Path:
    """Predicted (15 and 60 min ahead) vs true speed of a few sensors over `split`, and MAE per horizon."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 2.2 * (len(sensors) + 1)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(sensors) + 1, 1)
    hours = (data.starts[split][:, None] + data.in_steps + torch.arange(data.out_steps)).numpy() / 12.0
    for ax, s in zip(axes, sensors):
        ax.plot(hours[:, 0], forecasts["true"][:, s, 0], color="k", linewidth=1.0, label="true")
        for h, style in ((3, "-"), (12, "--")):
            if h <= data.out_steps:
                ax.plot(
                    hours[:, h - 1], forecasts["ngs"][:, s, h - 1], style, linewidth=0.9, label=f"NGS {5 * h} min ahead"
                )
        ax.set_ylabel(f"sensor {s} speed")
    axes[0].legend(fontsize=7, ncols=3)
    axes[len(sensors) - 1].set_xlabel("hours since the first row")
    steps = np.arange(1, data.out_steps + 1)
    for name, m in result["per_horizon"].items():
        axes[-1].plot(5 * steps, m["mae"], marker=".", label=name)
    axes[-1].set_xlabel("horizon (min)")
    axes[-1].set_ylabel(f"masked MAE ({split})")
    axes[-1].legend(fontsize=7)
    fig.savefig(out, format="png", dpi=110)
    return Path(out)


def write_results(model: TrafficNGS, data: TrafficData, out: str | os.PathLike, info: dict | None = None) -> dict:
    """Evaluate on the test windows; write `<out>/traffic_results.json` and `<out>/traffic_forecast.png`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result, forecasts = evaluate(model, data)
    result = (info or {}) | {"model_args": model.model_args(), "scaler": {"mean": data.mean, "std": data.std}} | result
    (out / "traffic_results.json").write_text(json.dumps(result, indent=1))
    plot_forecasts(forecasts, result, data, out / "traffic_forecast.png")
    return result


def format_table(result: dict) -> str:
    """The results table (Markdown): MAE / RMSE / MAPE at each horizon of `HORIZONS`, one row per forecaster."""
    labels = list(next(iter(result["table"].values())))
    lines = ["| forecaster | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for name, row in result["table"].items():
        cells = [f"{row[label]['mae']:.2f} / {row[label]['rmse']:.2f} / {row[label]['mape']:.2f} %" for label in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- CLI
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `fastsim train ngs --system traffic` (the common ones plus model and schedule settings)."""
    from fastsim.cli.arguments import number
    from fastsim.cli.train import add_common_train_arguments

    add_common_train_arguments(parser, epochs=30, batch_size=16, lr=2e-3)
    parser.add_argument("--system", choices=["traffic"], required=True)
    parser.add_argument("--emb-dim", type=number(int, "--emb-dim", 1), default=64, help="(default: the paper's 64)")
    parser.add_argument("--depth", type=number(int, "--depth", 1), default=2)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--weight-decay", type=float, default=0.5)
    parser.add_argument("--warmup-epochs", type=number(int, "--warmup-epochs", 0), default=2)
    parser.add_argument("--period-epochs", type=number(int, "--period-epochs", 1), default=28)
    parser.add_argument("--paper-schedule", action="store_true", help="275 epochs, warmup 5, period 50, lr 8e-4")


def load_data(folder: str | os.PathLike, config: TrafficConfig) -> TrafficData:
    """`prepare` on the los-loop folder (speeds + the METR-LA graph next to it)."""
    return prepare(*read_los_loop(folder), config)


def train_command(args: argparse.Namespace) -> int:
    """`fastsim train ngs --system traffic`: train, then write the loss curve and the test results."""
    from fastsim.cli.train import common_config_fields, resolve_device

    device = resolve_device(args.device)
    config = TrafficConfig(args.emb_dim, args.depth, args.dropout)
    data = load_data(args.data, config)
    fields = common_config_fields(args) | {"weight_decay": args.weight_decay}
    schedule = {"warmup_epochs": args.warmup_epochs, "period_epochs": args.period_epochs}
    if args.paper_schedule:
        fields |= {k: PAPER_SCHEDULE[k] for k in ("epochs", "lr", "weight_decay")}
        schedule = {k: PAPER_SCHEDULE[k] for k in schedule}
    digest = data_digest(args.data)
    model, result = train(
        config, TrainConfig(**fields, **schedule), data, device=device, resume=args.resume, digest=digest
    )
    info = {"data": str(args.data), "best_epoch": result.best_epoch, "best_val_mae": result.best_metric}
    summary = write_results(model, data, args.out, info)
    if not args.quiet:
        print(format_table(summary))
    return 0


def rollout_command(checkpoint: dict, args: argparse.Namespace) -> int:
    """`fastsim rollout` of a traffic checkpoint on a los-loop folder: results JSON and forecast PNG in --out."""
    extra = checkpoint["extra"]
    if not {"traffic_config", "scaler", "model_args"} <= set(extra):
        raise ValueError("not a traffic checkpoint: extra lacks traffic_config, scaler or model_args")
    config = TrafficConfig(**extra["traffic_config"])
    data = load_data(args.data, config)
    if not np.allclose([data.mean, data.std], [extra["scaler"]["mean"], extra["scaler"]["std"]], rtol=1e-6):
        raise ValueError(f"{args.data} is not the data the checkpoint was trained on (other normalisation statistics)")
    model = TrafficNGS(**extra["model_args"])
    model.load_state_dict(checkpoint["model"])
    result = write_results(model.to(args.device), data, args.out, {"data": str(args.data)})
    if not args.quiet:
        print(format_table(result))
    return 0
