"""NGS robustness to corrupted training data: rollout MAE over a grid of missing fraction p × noise σ (the paper's
Figs S1/S2, ngs_gnrk.md §1.3).

Every cell trains the same model on the same training file with the same schedule and seed, corrupted with its own
(p, σ) (`fastsim.experiments.ngs.corrupt`), and is scored by rollout MAE on one shared test file. Results go to
`<out>/grid.json` after each cell, and each cell's run lives in `<out>/cells/<cell>/`, so a killed grid resumes
where it stopped: finished cells are read back, a half-trained cell continues from its `last.pt`. A grid may be
extended later with more p or σ values under the same settings; other settings are refused.

    python -m fastsim.experiments.ngs_grid --train train.npz --test test_G_int_T_int.npz --out runs/grid \\
        --missing 0 0.1 0.2 --noise 0 1e-3 1e-2 --epochs 15
"""

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastsim.experiments.ngs import NGSConfig, corrupt, evaluate, load_trajectories, train
from fastsim.training import TrainConfig, data_digest

__all__ = ["GRID_SCHEDULE", "cell_name", "plot_grid", "robustness_grid"]

# The reduced schedule of the docs' grid: one cosine cycle of 15 epochs at peak 1e-2 (the heat row's, shortened).
GRID_SCHEDULE = TrainConfig(epochs=15, lr=1e-2, warmup_epochs=1, period_epochs=14)


def cell_name(missing: float, noise: float) -> str:
    """Key of a cell in the results and name of its run folder: "p0.1_s0.001"."""
    return f"p{missing:g}_s{noise:g}"


def _settings(config: NGSConfig, train_config: TrainConfig, train_file: Path, test_file: Path) -> dict[str, Any]:
    """What every cell shares; a resumed grid must match it (its p and σ lists may differ)."""
    ngs = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("noise", "missing")}
    schedule = {k: v for k, v in dataclasses.asdict(train_config).items() if k not in ("out", "quiet")}
    return {"train": str(train_file), "test": str(test_file), "ngs": ngs, "train_config": schedule}


def robustness_grid(
    train_file: str | os.PathLike,
    test_file: str | os.PathLike,
    out: str | os.PathLike,
    missing: tuple[float, ...] = (0.0, 0.1, 0.2),
    noise: tuple[float, ...] = (0.0, 1e-3, 1e-2),
    *,
    config: NGSConfig | None = None,
    train_config: TrainConfig = GRID_SCHEDULE,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Train and score one NGS per (p, σ) cell, resuming a partly done grid in `out`.

    Args:
        train_file, test_file: `fastsim simulate` files of `config.system` (training, with its validation tail;
            the shared test split, e.g. G_int/T_int).
        out: folder of `grid.json` and the per-cell runs `cells/<cell_name>/`.
        missing, noise: the p and σ values; cells run p-major in the given order.
        config: model and validation settings (None: heat at the paper's width); its `noise` and `missing` are
            replaced per cell.
        train_config: schedule of every cell; its `out` is replaced per cell.
        device: where to train.

    Returns:
        the contents of `grid.json`: `{"settings": ..., "cells": {cell_name: {"missing", "noise", "mae",
        "mae_ci95", "samples", "best_epoch", "best_val_mae", "loss_node_fraction", "train_s"}}}`;
        `loss_node_fraction` is the share of training nodes left in the loss after the missing mask is grown.

    Raises:
        ValueError: `grid.json` in `out` was written with other settings.
    """
    config = config or NGSConfig()
    train_file, test_file, out = Path(train_file), Path(test_file), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "grid.json"
    settings = _settings(config, train_config, train_file, test_file)
    results = json.loads(results_path.read_text()) if results_path.is_file() else {"settings": settings, "cells": {}}
    if results["settings"] != settings:
        raise ValueError(f"{results_path} holds a grid with other settings; use another out folder")
    data, digest = load_trajectories(train_file, config.system), data_digest(train_file)
    test = load_trajectories(test_file, config.system)
    for p in missing:
        for sigma in noise:
            name = cell_name(p, sigma)
            if name in results["cells"]:
                continue
            cell_config = dataclasses.replace(config, missing=p, noise=sigma)
            run = out / "cells" / name
            started = time.perf_counter()
            model, result = train(
                cell_config,
                dataclasses.replace(train_config, out=str(run)),
                data,
                device=device,
                resume=(run / "last.pt").is_file(),
                digest=digest,
            )
            metrics, _, _ = evaluate(model, test, train_config.batch_size)
            results["cells"][name] = {
                "missing": p,
                "noise": sigma,
                "mae": metrics["mae"],
                "mae_ci95": metrics["mae_ci95"],
                "samples": metrics["samples"],
                "best_epoch": result.best_epoch,
                "best_val_mae": result.best_metric,
                "loss_node_fraction": _loss_node_fraction(data, cell_config, train_config.seed),
                "train_s": sum(h["time_s"] for h in result.history),
                "wall_s": time.perf_counter() - started,
            }
            staged = results_path.with_suffix(".json.tmp")
            staged.write_text(json.dumps(results, indent=1))
            os.replace(staged, results_path)
    return results


def _loss_node_fraction(data, config: NGSConfig, seed: int) -> float:
    """Share of training nodes in the loss: the masks `train` draws (same split, noise draws and seed)."""
    num_train = len(data) - max(1, round(len(data) * config.val_fraction))
    masks = corrupt(data.subset(range(num_train)), config.noise, config.missing, config.depth, seed).missing
    if masks is None:
        return 1.0
    return 1.0 - float(torch.cat(masks).float().mean())


def plot_grid(results: dict[str, Any], out: str | os.PathLike, title: str = "") -> Path:
    """Heat map of log10 rollout MAE over p (rows) × σ (columns), each cell annotated with its MAE."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cells = results["cells"].values()
    ps = sorted({c["missing"] for c in cells})
    sigmas = sorted({c["noise"] for c in cells})
    mae = np.full((len(ps), len(sigmas)), np.nan)
    for c in cells:
        mae[ps.index(c["missing"]), sigmas.index(c["noise"])] = c["mae"]
    fig = Figure(figsize=(1.4 * len(sigmas) + 2.2, 1.0 * len(ps) + 1.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(np.log10(mae), origin="lower", cmap="viridis", aspect="auto")
    for i, j in np.ndindex(mae.shape):
        if np.isfinite(mae[i, j]):
            ax.text(j, i, f"{mae[i, j]:.2e}", ha="center", va="center", color="white", fontsize=9)
    ax.set_xticks(range(len(sigmas)), [f"{s:g}" for s in sigmas])
    ax.set_yticks(range(len(ps)), [f"{p:g}" for p in ps])
    ax.set_xlabel("noise σ")
    ax.set_ylabel("missing fraction p")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="log10 rollout MAE")
    fig.savefig(out, format="png", dpi=110)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    """`python -m fastsim.experiments.ngs_grid`: run (or resume) a grid, then write `<out>/grid.png`."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="training file (.npz of `fastsim simulate`)")
    parser.add_argument("--test", required=True, help="the test file every cell is scored on")
    parser.add_argument("--out", required=True, help="folder of grid.json, grid.png and the cell runs")
    parser.add_argument("--system", default="heat")
    parser.add_argument("--missing", type=float, nargs="+", default=[0.0, 0.1, 0.2])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 1e-3, 1e-2])
    parser.add_argument("--emb-dim", type=int, default=None)
    parser.add_argument("--val-samples", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=GRID_SCHEDULE.epochs)
    parser.add_argument("--lr", type=float, default=GRID_SCHEDULE.lr)
    parser.add_argument("--warmup-epochs", type=int, default=GRID_SCHEDULE.warmup_epochs)
    parser.add_argument("--period-epochs", type=int, default=GRID_SCHEDULE.period_epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    config = NGSConfig(args.system, args.emb_dim, val_samples=args.val_samples)
    train_config = TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        warmup_epochs=args.warmup_epochs,
        period_epochs=args.period_epochs,
        seed=args.seed,
        quiet=args.quiet,
    )
    results = robustness_grid(
        args.train,
        args.test,
        args.out,
        tuple(args.missing),
        tuple(args.noise),
        config=config,
        train_config=train_config,
    )
    plot_grid(results, Path(args.out) / "grid.png", f"{args.system}: rollout MAE on {Path(args.test).stem}")
    for name, cell in results["cells"].items():
        print(f"{name}: MAE {cell['mae']:.3e} ± {cell['mae_ci95']:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
