"""GNRK reproduction (ngs_gnrk.md §2): Burgers datasets I–IV, graph systems, training, rollouts, plots; docs/gnrk.md.

Data. Graph systems (heat, kuramoto, rossler) come from `fastsim simulate` (GNRK: `--method euler` for train/val,
`rk4` for test). The Burgers datasets do not fit that file format (a grid with spacing vectors instead of a
random graph), so `simulate_burgers` (`fastsim simulate burgers --dataset I ...`) writes its own versioned `.npz`:

| key | shape, dtype | content |
|---|---|---|
| `format_version` | `()` int64 | `1` |
| `format` | `()` str | `"fastsim.gnrk.burgers"` |
| `metadata` | `()` str | JSON: `config` (every setting of `BurgersConfig`), `provenance` |
| `nx`, `ny` | `(S,)` int64 | grid points per axis |
| `dx`, `dy` | `(ΣNx,)`, `(ΣNy,)` float64 | spacings (`PeriodicGrid`), concatenated over samples |
| `nu` | `(S,)` float64 | viscosity |
| `times` | `(S, T)` float64 | output times, one RK step between neighbours |
| `node_offsets` | `(S+1,)` int64 | sample s owns trajectory rows `node_offsets[s]:node_offsets[s+1]` |
| `trajectories` | `(ΣN, T, 2)` float32 | `(u, v)` per node (node `y · nx + x`) and time |

Training (`fastsim train gnrk`): single-step pairs `(x_t, x_{t+1}, Δt_t)` with the slope target
`y = (x_{t+1} − x_t)/Δt`, MSE loss, and the best checkpoint chosen by the rollout MAE on validation trajectories,
all through `fastsim.training.Trainer`. `fastsim rollout` rolls a checkpoint out on a dataset (any tableau with
`--tableau`) and writes `results.json`, the error-vs-time PNG and, for Burgers, PNGs of the u, v fields
(prediction, truth, error).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from fastsim.dynamics.burgers2d import Burgers2D, BurgersRanges
from fastsim.experiments.plots import plot_error_vs_time
from fastsim.graph import Graph
from fastsim.graphs.grid import PeriodicGrid, periodic_grid
from fastsim.graphs.time import time_grid
from fastsim.models.fno import FNO2d
from fastsim.models.gnrk import GNRK, SYSTEM_NAMES
from fastsim.training import TrainConfig, Trainer, data_digest, load_checkpoint, mean_interval, mse

FORMAT, FORMAT_VERSION = "fastsim.gnrk.burgers", 1
DATASETS = ("I", "II", "III", "IV")
# Table 1 of the paper, GNRK row (ngs_gnrk.md §2.6).
PAPER_MAE = {"I": 1.04e-3, "II": 1.13e-3, "III": 4.56e-3, "IV": 1.44e-3}
_COEFFICIENT_KIND = {
    "burgers": {"nu": "graph"},
    "heat": {"diffusivity": "edge"},
    "kuramoto": {"omega": "node", "coupling": "edge"},
    "rossler": {"a": "graph", "b": "graph", "c": "graph", "coupling": "edge"},
}


# ----------------------------------------------------------------------------------------------- Burgers data
@dataclasses.dataclass(frozen=True)
class BurgersConfig:
    """Every setting that determines a Burgers dataset (GNRK §2.4; the paper's sizes are the defaults but
    `num_steps` 1000).

    Attributes:
        dataset: "I" (random phases/offsets, ν = 0.01), "II" (ν ~ U[0.005, 0.02]), "III" (N_x, N_y ~
            U{grid_range}, spacings ±10 %), "IV" (Δt ±10 %; solve with `method="euler"` for train/val as GNRK).
        num_samples: trajectories. grid: (N_x, N_y) for I, II, IV. grid_range: (min, max) points per axis for III.
        num_steps: steps per trajectory. dt: mean step. method: "rk4" or "euler" (fixed steps, one per output).
        seed: sample s is drawn from a generator seeded by (seed, s).
    """

    dataset: str
    num_samples: int = 4
    grid: tuple[int, int] = (100, 100)
    grid_range: tuple[int, int] = (50, 150)
    num_steps: int = 200
    dt: float = 1e-3
    method: str = "rk4"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {self.dataset!r}")
        if self.method not in ("rk4", "euler"):
            raise ValueError(f"method must be rk4 or euler; got {self.method!r}")
        for name in ("num_samples", "num_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1; got {getattr(self, name)!r}")
        object.__setattr__(self, "grid", tuple(int(v) for v in self.grid))
        object.__setattr__(self, "grid_range", tuple(int(v) for v in self.grid_range))
        if len(self.grid) != 2 or min(self.grid) < 3 or len(self.grid_range) != 2 or self.grid_range[0] < 3:
            raise ValueError(f"grid sizes must be pairs of ints >= 3; got {self.grid}, {self.grid_range}")
        if self.grid_range[0] > self.grid_range[1]:
            raise ValueError(f"grid_range must satisfy min <= max; got {self.grid_range}")
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be a finite number > 0; got {self.dt}")


def _draw_burgers(config: BurgersConfig, index: int) -> tuple[PeriodicGrid, float, Tensor, Tensor]:
    from fastsim.simulate import sample_generator

    gen = sample_generator(config.seed, index)
    if config.dataset == "III":
        low, high = config.grid_range
        nx, ny = (int(torch.randint(low, high + 1, (1,), generator=gen)) for _ in range(2))
        grid = periodic_grid(nx, ny, spacing_delta=0.1, generator=gen)
    else:
        grid = periodic_grid(*config.grid)
    ranges = BurgersRanges(nu=(0.005, 0.02) if config.dataset == "II" else (0.01, 0.01))
    graph = grid.graph()
    nu = Burgers2D.sample_coefficients(graph, gen, ranges)["nu"]
    y0 = Burgers2D.initial_state(graph, gen, ranges, positions=grid.positions(), lengths=grid.lengths)
    span = config.dt * config.num_steps
    delta = 0.1 if config.dataset == "IV" else 0.0
    times = time_grid(span, config.num_steps, delta, gen)
    return grid, float(nu[0]), y0, times


def simulate_burgers(config: BurgersConfig, out: str | os.PathLike, *, progress: bool = True) -> Path:
    """Simulate `config.num_samples` Burgers trajectories (float64, fixed RK steps through `fastsim.odeint`) and
    write them to `out` in the format of the module docstring.

    Raises:
        FileNotFoundError: the folder of `out` does not exist. ValueError: `out` is not a `.npz` path, or a
        trajectory diverges (non-finite or |u|, |v| > 20, which GNRK drops).
    """
    from tqdm.auto import tqdm

    from fastsim.solvers import odeint

    out = Path(out)
    if out.suffix != ".npz":
        raise ValueError(f"out must be a .npz file; got {str(out)!r}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the folder of out does not exist: {out.parent}")
    records = []
    for s in tqdm(range(config.num_samples), disable=not progress, desc=f"burgers {config.dataset}"):
        grid, nu, y0, times = _draw_burgers(config, s)
        system = Burgers2D(grid.graph(), torch.tensor([nu], dtype=torch.float64))
        ys = odeint(system, y0, times, method=config.method)
        if not bool(torch.isfinite(ys).all()) or float(ys.abs().max()) > 20:
            raise ValueError(f"sample {s} diverges; choose a smaller dt or another seed")
        records.append((grid, nu, times, ys))
    arrays = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "format": np.array(FORMAT),
        "nx": np.array([r[0].nx for r in records], dtype=np.int64),
        "ny": np.array([r[0].ny for r in records], dtype=np.int64),
        "dx": np.concatenate([r[0].dx.numpy() for r in records]),
        "dy": np.concatenate([r[0].dy.numpy() for r in records]),
        "nu": np.array([r[1] for r in records]),
        "times": np.stack([r[2].numpy() for r in records]),
        "node_offsets": np.cumsum([0] + [r[0].num_nodes for r in records]).astype(np.int64),
        "trajectories": np.concatenate([np.swapaxes(r[3].numpy(), 0, 1) for r in records]).astype(np.float32),
    }
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta = {"config": dataclasses.asdict(config), "provenance": {"created": created, "torch": torch.__version__}}
    arrays["metadata"] = np.array(json.dumps(meta))
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, out)
    return out


# ----------------------------------------------------------------------------------------------- trajectories
@dataclasses.dataclass(frozen=True)
class Trajectory:
    """One trajectory for training or evaluation.

    Attributes:
        graph: the graph (grid graphs carry spacing `edge_attr`). coefficients: name → tensor (edge ones in CSR
        order). times: `(T,)`. states: `(T, N, F)` float32. grid: the `PeriodicGrid` of a Burgers sample, or None.
    """

    graph: Graph
    coefficients: dict[str, Tensor]
    times: Tensor
    states: Tensor
    grid: PeriodicGrid | None = None


def load_trajectories(path: str | os.PathLike) -> tuple[str, list[Trajectory]]:
    """`(system, trajectories)` of a Burgers file (`simulate_burgers`) or a `fastsim simulate` dataset.

    Raises:
        FileNotFoundError: no file. ValueError: not a readable dataset, or a system GNRK does not model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a dataset: not an .npz archive")
    with np.load(path, allow_pickle=False) as archive:
        is_burgers = "format" in archive.files and str(archive["format"]) == FORMAT
        arrays = {k: archive[k] for k in archive.files} if is_burgers else None
    if not is_burgers:
        from fastsim.datasets import load_dataset

        dataset = load_dataset(path)
        if dataset.system_name not in _COEFFICIENT_KIND:
            raise ValueError(f"{path} holds {dataset.system_name}; GNRK models {', '.join(SYSTEM_NAMES)}")
        out = []
        for sample in dataset:
            states = sample.trajectory.to(torch.float32)
            states = states.unsqueeze(-1) if states.dim() == 2 else states
            out.append(Trajectory(sample.graph, dict(sample.coefficients), sample.times, states))
        return dataset.system_name, out
    if int(arrays["format_version"]) != FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {int(arrays['format_version'])}; this reads {FORMAT_VERSION}")
    out, x_off, y_off = [], np.cumsum([0, *arrays["nx"]]), np.cumsum([0, *arrays["ny"]])
    for s in range(len(arrays["nx"])):
        dx = torch.from_numpy(arrays["dx"][x_off[s] : x_off[s + 1]].copy())
        dy = torch.from_numpy(arrays["dy"][y_off[s] : y_off[s + 1]].copy())
        grid = PeriodicGrid(dx, dy)
        rows = slice(arrays["node_offsets"][s], arrays["node_offsets"][s + 1])
        states = torch.from_numpy(np.ascontiguousarray(np.swapaxes(arrays["trajectories"][rows], 0, 1)))
        graph = grid.graph()
        graph = dataclasses.replace(graph, edge_attr=graph.edge_attr.float())
        nu = torch.tensor([float(arrays["nu"][s])])
        out.append(Trajectory(graph, {"nu": nu}, torch.from_numpy(arrays["times"][s].copy()), states, grid))
    return "burgers", out


def _batch(system: str, items: list[Trajectory]) -> tuple[Graph, dict[str, Tensor]]:
    graph = Graph.batch_graphs([t.graph for t in items])
    coefficients = {
        name: torch.cat([t.coefficients[name] for t in items]).float() for name in _COEFFICIENT_KIND[system]
    }
    return graph, coefficients


@dataclasses.dataclass(frozen=True)
class StepBatch:
    """Single-step pairs of several trajectories on one batched graph: inputs `x (N, F)`, steps `dt (N,)`,
    slope targets `y (N, F)`."""

    graph: Graph
    coefficients: dict[str, Tensor]
    x: Tensor
    dt: Tensor
    y: Tensor

    def to(self, device: torch.device) -> StepBatch:
        return StepBatch(
            self.graph.to(device),
            {k: v.to(device) for k, v in self.coefficients.items()},
            self.x.to(device),
            self.dt.to(device),
            self.y.to(device),
        )


def step_batches(
    system: str, data: list[Trajectory], batch_size: int, steps_per_epoch: int, generator: torch.Generator
) -> Iterator[StepBatch]:
    """`steps_per_epoch` batches of `batch_size` random (trajectory, time) pairs with the slope target."""
    for _ in range(steps_per_epoch):
        picks = torch.randint(len(data), (batch_size,), generator=generator).tolist()
        items = [data[k] for k in picks]
        graph, coefficients = _batch(system, items)
        xs, ys, dts = [], [], []
        for item in items:
            t = int(torch.randint(item.states.shape[0] - 1, (1,), generator=generator))
            dt = float(item.times[t + 1] - item.times[t])
            xs.append(item.states[t])
            ys.append((item.states[t + 1] - item.states[t]) / dt)
            dts.append(torch.full((item.graph.num_nodes,), dt))
        yield StepBatch(graph, coefficients, torch.cat(xs), torch.cat(dts), torch.cat(ys))


# ----------------------------------------------------------------------------------------------- FNO baseline
class FNOStepper(nn.Module):
    """`FNO2d` behind GNRK's interface (`forward(x, dt, graph, nu=...)` → slope, `rollout`) on uniform grids of
    one shape: the fields `(u, v, ν)` in, the slope `(∂u/∂t, ∂v/∂t)` out, Euler steps in the rollout.

    Args: nx, ny: the grid every input must have. width, modes, layers: `FNO2d` settings.
    """

    def __init__(self, nx: int, ny: int, *, width: int = 16, modes: int = 8, layers: int = 4) -> None:
        super().__init__()
        self.nx, self.ny = nx, ny
        self.fno = FNO2d(3, 2, width=width, modes=modes, layers=layers)
        self.tableau = None

    def _fields(self, x: Tensor, graph: Graph, nu: Tensor) -> Tensor:
        if graph.num_nodes != graph.num_graphs * self.nx * self.ny or x.shape != (graph.num_nodes, 2):
            raise ValueError(f"the FNO baseline runs on uniform {self.nx} x {self.ny} grids only")
        b = graph.num_graphs
        u = x.view(b, self.ny, self.nx, 2).permute(0, 3, 1, 2)
        return torch.cat([u, nu.to(x.dtype)[:, None, None, None].expand(b, 1, self.ny, self.nx)], dim=1)

    def forward(self, x: Tensor, dt: Tensor | float, graph: Graph, nu: Tensor) -> Tensor:
        out = self.fno(self._fields(x, graph, nu))
        return out.permute(0, 2, 3, 1).reshape(-1, 2)

    @torch.no_grad()
    def rollout(self, x0: Tensor, dts: Tensor, graph: Graph, nu: Tensor) -> Tensor:
        node_dts = dts.to(x0)[graph.batch]
        states = [x0]
        for s in range(dts.shape[1]):
            states.append(states[-1] + node_dts[:, s, None] * self(states[-1], None, graph, nu))
        return torch.stack(states)


def build_model(model_args: dict) -> nn.Module:
    """The model a checkpoint's `extra["model_args"]` describes: `{"architecture": "gnrk", "system", "tableau",
    "options"}` or `{"architecture": "fno", "nx", "ny", "options"}`."""
    if model_args.get("architecture") == "fno":
        return FNOStepper(model_args["nx"], model_args["ny"], **model_args.get("options", {}))
    return GNRK.for_system(model_args["system"], model_args.get("tableau", "rk4"), **model_args.get("options", {}))


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------------------------- evaluation
def rollout_errors(
    model: nn.Module, system: str, data: list[Trajectory], *, max_steps: int | None = None, batch_size: int = 4
) -> tuple[list[Tensor], np.ndarray]:
    """Roll `model` out from every trajectory's first state with its stored steps.

    Returns:
        predictions `(S+1, N, F)` per trajectory and the MAE over nodes and fields per time, `(len(data), S+1)`.
        An entry's error counts at most max(1, the trajectory's largest |state|) (1 for the Burgers fields),
        and a non-finite (diverged) prediction counts as that: one diverged rollout cannot swamp the mean, while
        systems whose states exceed 1 (Rössler) keep their true errors.
    """
    device = next(model.parameters()).device
    lengths = {t.states.shape[0] for t in data}
    if len(lengths) != 1:
        raise ValueError(f"trajectories must share one length; got {sorted(lengths)}")
    steps = lengths.pop() - 1 if max_steps is None else min(max_steps, lengths.pop() - 1)
    preds, errors = [], []
    for start in range(0, len(data), batch_size):
        items = data[start : start + batch_size]
        graph, coefficients = _batch(system, items)
        dts = torch.stack([t.times[1 : steps + 1] - t.times[:steps] for t in items]).float()
        x0 = torch.cat([t.states[0] for t in items]).to(device)
        coefficients = {k: v.to(device) for k, v in coefficients.items()}
        pred = model.rollout(x0, dts.to(device), graph.to(device), **coefficients).cpu()
        truth = torch.cat([t.states[: steps + 1] for t in items], dim=1)
        err = (pred - truth).abs()
        ptr = graph.ptr.tolist()
        for b in range(len(items)):
            cap = max(1.0, float(truth[:, ptr[b] : ptr[b + 1]].abs().max()))
            preds.append(pred[:, ptr[b] : ptr[b + 1]])
            errors.append(err[:, ptr[b] : ptr[b + 1]].nan_to_num(nan=cap).clamp(max=cap).mean(dim=(1, 2)).numpy())
    return preds, np.stack(errors)


def slope_error(pred: Tensor, item: Trajectory) -> float:
    """MAE of a rollout's slopes `(x_{t+1} − x_t)/Δt` against the trajectory's, over nodes, fields and steps: the
    metric GNRK's reference code validates with. Entries count at most max(1, the largest true |slope|), and a
    non-finite (diverged) one counts as that, as in `rollout_errors`."""
    steps = pred.shape[0] - 1
    dt = (item.times[1 : steps + 1] - item.times[:steps]).to(pred.dtype).view(-1, *[1] * (pred.dim() - 1))
    truth = item.states[: steps + 1].to(pred.dtype).diff(dim=0) / dt
    cap = max(1.0, float(truth.abs().max())) if truth.numel() else 1.0
    return float((pred.diff(dim=0) / dt - truth).abs().nan_to_num(nan=cap, posinf=cap).clamp(max=cap).mean())


def plot_fields(pred: Tensor, item: Trajectory, out: str | os.PathLike, time_index: int = -1) -> Path:
    """PNG of u and v at one time: prediction, truth and |error| (rows u, v) on the sample's grid coordinates."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    grid = item.grid
    positions = grid.positions().numpy()
    shape = (grid.ny, grid.nx)
    xs, ys = positions[:, 0].reshape(shape), positions[:, 1].reshape(shape)
    fig = Figure(figsize=(11, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    truth = item.states[time_index]
    t = float(item.times[time_index])
    for row, name in enumerate(("u", "v")):
        p, q = pred[time_index][:, row].numpy(), truth[:, row].numpy()
        lim = float(np.abs(q).max())
        for col, (title, values, cmap, vmin) in enumerate(
            (("prediction", p, "RdBu_r", -lim), ("truth", q, "RdBu_r", -lim), ("|error|", np.abs(p - q), "magma", 0))
        ):
            ax = axes[row, col]
            vmax = lim if col < 2 else None
            image = ax.pcolormesh(xs, ys, values.reshape(shape), cmap=cmap, vmin=vmin, vmax=vmax, shading="auto")
            fig.colorbar(image, ax=ax)
            ax.set_title(f"{name}: {title}, t = {t:.3g}")
            ax.set_aspect("equal")
    out = Path(out)
    fig.savefig(out, format="png", dpi=90)
    return out


# ----------------------------------------------------------------------------------------------- training
def train(
    system: str,
    train_data: list[Trajectory],
    val_data: list[Trajectory],
    config,
    *,
    model_args: dict,
    steps_per_epoch: int,
    val_steps: int | None,
    device: torch.device | str = "cpu",
    resume: bool = False,
    digest: str | None = None,
):
    """Train the model `model_args` describes on single steps of `train_data` (slope target, MSE), selecting the
    checkpoint with the lowest rollout MAE over the first `val_steps` steps of `val_data`. `digest`:
    `fastsim.training.data_digest` of the data files, stored in checkpoints so that a resumed run refuses other data.

    Returns:
        `(model, TrainResult)`; `model` holds the final weights (best ones: `result.best_path`).
    """
    torch.manual_seed(config.seed)  # the initial weights follow the run's seed (a resumed run loads its own)
    model = build_model(model_args).to(device)

    def loss(module: nn.Module, batch: StepBatch) -> Tensor:
        batch = batch.to(device)
        return mse(module(batch.x, batch.dt, batch.graph, **batch.coefficients), batch.y)

    def validate(module: nn.Module) -> dict[str, float]:
        _, errors = rollout_errors(module, system, val_data, max_steps=val_steps)
        return {"mae": float(errors[:, 1:].mean())}

    def batches(epoch: int, generator: torch.Generator) -> Iterator[StepBatch]:
        return step_batches(system, train_data, config.batch_size, steps_per_epoch, generator)

    extra = {"model_kind": "gnrk", "model_args": model_args, "system": system, "data_digest": digest}
    trainer = Trainer(model, config, loss=loss, validate=validate, metric="mae", extra=extra)
    return model, trainer.fit(batches, resume=resume)


def evaluate(
    model: nn.Module,
    system: str,
    data: list[Trajectory],
    out: str | os.PathLike,
    *,
    batch_size: int = 4,
    label: str = "",
    plots: bool = True,
) -> dict:
    """Roll out on every trajectory of `data`; write the error-vs-time PNG (and, for Burgers, the u, v fields of
    the first trajectory) into `out`; return the metrics (MAE over nodes, fields and all times after t0)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    preds, errors = rollout_errors(model, system, data, batch_size=batch_size)
    times = data[0].times.numpy()
    tableau = getattr(model, "tableau", None)
    label = label or (tableau.name if tableau is not None else "model")
    files = []
    if plots:
        curve = {label: {"times": times, "mae_vs_time": errors.mean(0)}}
        files.append(str(plot_error_vs_time(curve, out / f"error_vs_time_{label}.png")))
        if system == "burgers":
            files.append(str(plot_fields(preds[0], data[0], out / f"fields_{label}.png")))
    per_sample = errors[:, 1:].mean(1)
    mean, ci = mean_interval(per_sample)
    return {
        "label": label,
        "mae": mean,
        "mae_ci95": ci,
        "slope_mae": float(np.mean([slope_error(pred, item) for pred, item in zip(preds, data)])),
        "mae_final": float(errors[:, -1].mean()),
        "mae_per_sample": per_sample.tolist(),
        "mae_vs_time": errors.mean(0).tolist(),
        "times": times.tolist(),
        "num_samples": len(data),
        "files": files,
    }


def model_from_checkpoint(checkpoint: dict, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild a trained model from a `fastsim train gnrk` checkpoint (`best.pt` or `last.pt`).

    Raises:
        ValueError: not a GNRK checkpoint.
    """
    extra = checkpoint.get("extra") or {}
    if extra.get("model_kind") != "gnrk" or "model_args" not in extra:
        raise ValueError("not a GNRK checkpoint (extra['model_kind'] != 'gnrk')")
    model = build_model(extra["model_args"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


# ----------------------------------------------------------------------------------------------- CLI
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `fastsim train gnrk` (the shared ones from `fastsim.cli.train`)."""
    from fastsim.cli.arguments import number
    from fastsim.cli.train import add_common_train_arguments

    add_common_train_arguments(parser, epochs=20, batch_size=4, lr=4e-3)
    parser.add_argument("--system", choices=SYSTEM_NAMES, required=True, help="the system the data holds")
    parser.add_argument("--val-data", help="validation dataset (default: the last trajectory of --data)")
    parser.add_argument("--architecture", choices=("gnrk", "fno"), default="gnrk", help="fno: the FNO baseline")
    parser.add_argument("--tableau", default="rk4", help="RK method in training: rk1/euler, rk2/heun, rk4 (default)")
    parser.add_argument(
        "--steps-per-epoch", type=number(int, "--steps-per-epoch", 1), default=50, help="optimizer steps per epoch"
    )
    parser.add_argument(
        "--val-steps", type=number(int, "--val-steps", 1), default=None, help="rollout steps in validation (all)"
    )
    parser.add_argument(
        "--schedule", choices=("step", "cosine", "constant"), default="step", help="GNRK: step (halving per cycle)"
    )
    parser.add_argument("--period", type=number(int, "--period", 1), default=5, help="first LR cycle, epochs")
    parser.add_argument(
        "--lr-min", type=number(float, "--lr-min"), default=None, help="LR floor (default min(1e-4, --lr))"
    )
    parser.add_argument("--dim", type=number(int, "--dim", 1), help="embedding width (burgers 8, graphs 16)")
    parser.add_argument("--hidden", type=number(int, "--hidden", 1), help="hidden width (burgers 32, graphs 64)")
    parser.add_argument("--nu-copies", type=int, choices=(1, 2), default=1, help="2: the released code's 11,138")


def _model_args(args: argparse.Namespace, system: str, train_data: list[Trajectory]) -> dict:
    if args.architecture == "fno":
        grid = train_data[0].grid
        if system != "burgers" or grid is None or len({(t.grid.nx, t.grid.ny) for t in train_data}) != 1:
            raise ValueError("--architecture fno needs Burgers data on one uniform grid (datasets I, II)")
        return {"architecture": "fno", "nx": grid.nx, "ny": grid.ny, "options": {}}
    options: dict = {}
    if system == "burgers":
        options["nu_copies"] = args.nu_copies
        options.update({k: v for k, v in (("dim", args.dim), ("hidden", args.hidden)) if v is not None})
    else:
        if args.dim is not None:
            options["dim"] = args.dim
        if args.hidden is not None:
            options.update(edge_hidden=args.hidden, node_hidden=args.hidden)
    GNRK.for_system(system, args.tableau, **options)  # validates the tableau name and options now
    return {"architecture": "gnrk", "system": system, "tableau": args.tableau, "options": options}


def train_command(args: argparse.Namespace) -> int:
    """`fastsim train gnrk`: train, then evaluate the best checkpoint on the validation data (results.json)."""
    from fastsim.cli.train import common_config_fields, resolve_device

    system, train_data = load_trajectories(args.data)
    if system != args.system:
        raise ValueError(f"--data holds {system} trajectories, not {args.system}")
    if args.val_data:
        val_system, val_data = load_trajectories(args.val_data)
        if val_system != system:
            raise ValueError(f"--val-data holds {val_system} trajectories, not {system}")
    elif len(train_data) > 1:
        train_data, val_data = train_data[:-1], train_data[-1:]
    else:
        raise ValueError("--data holds one trajectory: give --val-data")
    device = resolve_device(args.device)
    model_args = _model_args(args, system, train_data)
    schedule = {"schedule": args.schedule, "warmup_epochs": 0, "period_epochs": args.period, "period_mult": 1.5}
    lr_min = min(1e-4, args.lr) if args.lr_min is None else args.lr_min
    schedule.update(lr_min=lr_min, weight_decay=0.0, ema=False)
    config = TrainConfig(**common_config_fields(args), **schedule)
    _, result = train(
        system,
        train_data,
        val_data,
        config,
        model_args=model_args,
        steps_per_epoch=args.steps_per_epoch,
        val_steps=args.val_steps,
        device=device,
        resume=args.resume,
        digest=data_digest(args.data, args.val_data),
    )
    best = model_from_checkpoint(load_checkpoint(result.best_path, map_location=device), device)
    metrics = evaluate(best, system, val_data, args.out, label="validation")
    summary = {
        "system": system,
        "model_args": model_args,
        "parameters": parameter_count(best),
        "best_epoch": result.best_epoch,
        "best_val_rollout_mae": result.best_metric,
        "validation": metrics,
        "train_seconds": sum(r["time_s"] for r in result.history),
    }
    Path(args.out, "results.json").write_text(json.dumps(summary, indent=1))
    if not args.quiet:
        print(f"{system}: best epoch {result.best_epoch}, validation rollout MAE {metrics['mae']:.3g} ({args.out})")
    return 0


def rollout_command(checkpoint: dict, args: argparse.Namespace) -> int:
    """`fastsim rollout` of a GNRK checkpoint: MAE, error-vs-time and field PNGs and `results.json` in --out,
    for every tableau in `--tableaux` (default: the trained one) — the RK-order switch of the paper, whose
    tableaux are also drawn together in `error_vs_time.png`."""
    model = model_from_checkpoint(checkpoint, args.device)
    system, data = load_trajectories(args.data)
    if system != checkpoint["extra"].get("system"):
        raise ValueError(f"{args.data} holds {system}; the checkpoint was trained on {checkpoint['extra']['system']}")
    tableaux = getattr(args, "tableaux", None) or ([model.tableau.name] if isinstance(model, GNRK) else ["fno"])
    results = {"system": system, "data": str(args.data), "parameters": parameter_count(model), "runs": []}
    for name in tableaux:
        if isinstance(model, GNRK):
            model.tableau = name
        run = evaluate(model, system, data, args.out, batch_size=args.batch_size, label=name)
        results["runs"].append(run)
        if not args.quiet:
            print(
                f"{system} {name}: rollout MAE {run['mae']:.4g} ± {run['mae_ci95']:.2g} over {len(data)} samples "
                f"(slopes: {run['slope_mae']:.4g})"
            )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if len(results["runs"]) > 1:
        plot_error_vs_time({run["label"]: run for run in results["runs"]}, Path(args.out, "error_vs_time.png"))
        last = results["runs"][-1]
        for key, what in (("mae", "MAE"), ("slope_mae", "slope MAE")):
            if not args.quiet and last[key] > 0:  # the RK-order switch: each tableau's error over the last one's
                ratios = ", ".join(f"{run['label']} {run[key] / last[key]:.3g}×" for run in results["runs"][:-1])
                print(f"{what} relative to {last['label']}: {ratios}")
    Path(args.out, "results.json").write_text(json.dumps(results, indent=1))
    return 0
