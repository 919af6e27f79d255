"""NGS's stiff-Kuramoto speed-up (paper Fig. 4): LSODA and fastsim's Rodas5 vs an NGS rollout; write a table.

    python -m bench.ngs_stiff_report --checkpoint runs/stiff-kuramoto/ngs/best.pt \
        --data runs/stiff-kuramoto/data/test.npz --samples 0 1 2 --tolerances 1e-11 1e-6 --time-limit 60

For every θ_th in {π/2, π/3, π/4, π/6} and (rtol = atol) tolerance, `fastsim.experiments.ngs_stiff` integrates
the thresholded system of each all-to-all trajectory with scipy LSODA (capped at --time-limit seconds of wall time
per trajectory) and fastsim's fused Rodas5, and rolls the trained NGS out with the same threshold; everything is
scored against the exact all-to-all trajectory (NGS runs once per θ_th: it has no tolerance). After each
(θ_th, tolerance) the rows go to --rows (JSON, reused by --resume) and the "ngs-stiff" section of bench/RESULTS.md
is rewritten, so a killed run keeps what it measured.

The paper trains one model per θ_th; pass them as `--checkpoint π/2=.../best.pt π/3=... π/4=... π/6=...` (models
trained with `fastsim train ngs --system kuramoto --threshold θ_th`). One plain path instead thresholds a single
model's message passing at every θ_th.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
from pathlib import Path

import torch

from bench.results_file import write_section
from fastsim.experiments.ngs import model_from_checkpoint
from fastsim.experiments.ngs_stiff import (
    METHODS,
    PAPER_FIG4,
    THRESHOLDS,
    compare_at_threshold,
    load_cases,
    summarize,
)


def _num(x: float, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def _guess(summary: dict, key: str) -> str:
    """` (≈ x)`, the extrapolated value, for a method with stopped runs; empty otherwise."""
    return f" (≈ {_num(summary[key])})" if summary["finished"] < summary["runs"] else ""


def markdown(rows: list[dict], args: argparse.Namespace, params: int | None, per_threshold: bool) -> str:
    """The section: the setup, one table line per (θ_th, tolerance, method), the paper's Fig. 4 beside it.
    `per_threshold`: the NGS rows come from one model per θ_th (`θ=path` checkpoints)."""
    sizes = sorted({r["N"] for r in rows})
    model = "none yet (solver rows only)"
    if params is not None and not per_threshold:
        model = (
            f"`{args.checkpoint[0]}` ({params:,} parameters, trained on the all-to-all trajectories with all-to-all "
            "message passing; its message-passing graph is thresholded at θ_th for each row)"
        )
    elif params is not None:
        model = (
            f"one model per θ_th ({', '.join(f'`{entry}`' for entry in args.checkpoint)}; {params:,} parameters "
            "each), trained on the all-to-all trajectories with the message-passing graph thresholded at its θ_th, "
            "as the paper's per-threshold models"
        )
    lines = [
        "## NGS stiff Kuramoto (paper Fig. 4) (`python -m bench.ngs_stiff_report`)",
        "",
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, one CPU thread "
        f"(torch {torch.__version__}), shared machine. NGS model: {model}. Trajectories "
        f"{args.samples} of `{args.data}` (N = {', '.join(map(str, sizes))}; 20 non-uniform steps to T = 5). "
        "MAE: against the exact all-to-all trajectory over the 20 output times (– where the run did not finish). "
        f"**scipy LSODA is capped at {args.time_limit:g} s of wall time per trajectory**: a capped run counts as "
        "not finished, its wall time and NFEV are lower bounds, and so is its ratio to NGS; (≈ x) extrapolates a "
        "capped run linearly to T = 5 (wall · 5 / t reached, an estimate). fastsim Rodas5: fused "
        f"`solve_stiff_ensemble`, one trajectory per call, at most {args.max_steps:,} steps. NGS: batch 1, float32 "
        "on the CPU, best of 3 after a warm-up, NFEV = forward passes. Paper columns: Fig. 4 read off its "
        "log-scale bars (LSODA tolerance unknown; NGS on a GPU in fp16).",
        "",
        "| θ_th | rtol = atol | method | finished | NFEV | wall s | t reached | MAE vs exact | wall / NGS "
        "| paper NFEV | paper wall s | paper MAE |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tol in dict.fromkeys(r["tol"] for r in rows if r["tol"] is not None):
        at = [r for r in rows if r["tol"] in (tol, None)]  # the NGS rows (tol None) serve every tolerance
        for s in summarize(at):
            lsoda, ngs = s["method"] == "scipy LSODA", s["method"] == "NGS"
            paper = PAPER_FIG4[s["threshold"]]
            bound = "≥ " if s["finished"] < s["runs"] else ""
            cells = [
                s["threshold"], "–" if ngs else f"{tol:g}", s["method"], f"{s['finished']}/{s['runs']}",
                bound + _num(s["nfev"], 3), bound + _num(s["wall_s"]) + _guess(s, "wall_extrapolated_s"),
                _num(s["t_reached"], 3), _num(s["mae"]),
                "1" if ngs else bound + _num(s["speedup_vs_ngs"]) + _guess(s, "speedup_extrapolated"),
                _num(paper[0]) if lsoda else ("20" if ngs else ""),
                _num(paper[1]) if lsoda else (_num(paper[2]) if ngs else ""),
                _num(paper[3]) if lsoda else (_num(paper[4]) if ngs else ""),
            ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_models(entries: list[str], parser: argparse.ArgumentParser) -> dict[str | None, object]:
    """`{None: model}` for one checkpoint path, `{label: model}` for `θ=path` entries; each model checked to have
    been trained with its θ_th."""
    models = {}
    for entry in entries:
        label, _, path = entry.rpartition("=")
        model = model_from_checkpoint(torch.load(path, map_location="cpu", weights_only=True))
        if label and label not in THRESHOLDS:
            parser.error(f"--checkpoint {entry}: the threshold must be one of {', '.join(THRESHOLDS)}")
        if label and (model.threshold is None or not math.isclose(model.threshold, THRESHOLDS[label])):
            parser.error(f"--checkpoint {entry}: the model was trained with θ_th = {model.threshold}")
        models[label or None] = model
    if None in models and len(models) > 1:
        parser.error("--checkpoint takes one path or θ=path entries, not both")
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint",
        nargs="+",
        default=[],
        help="a `fastsim train ngs --system kuramoto` best.pt, thresholded per row, or one `θ=best.pt` per threshold "
        "(e.g. π/6=runs/ngs_th6/best.pt) of a model trained with that --threshold (needed for NGS)",
    )
    parser.add_argument("--data", required=True, help="a `fastsim simulate kuramoto_mean_field` file (exact truth)")
    parser.add_argument("--samples", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--thresholds", nargs="+", default=list(THRESHOLDS), choices=list(THRESHOLDS))
    parser.add_argument("--tolerances", type=float, nargs="+", default=[1e-11], help="rtol = atol of both solvers")
    parser.add_argument("--time-limit", type=float, default=60.0, help="LSODA wall-time cap per trajectory (s)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--max-steps", type=int, default=10**6, help="Rodas5 attempted steps per trajectory")
    parser.add_argument("--rows", default="runs/stiff-kuramoto/rows.json", help="JSON of all rows")
    parser.add_argument("--resume", action="store_true", help="keep the rows in --rows, run only what they lack")
    parser.add_argument("--no-results", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = load_models(args.checkpoint, parser)  # threshold label (None: every threshold) -> model
    params = next((sum(p.numel() for p in m.parameters()) for m in models.values()), None)
    if "NGS" in args.methods and not all(label in models or None in models for label in args.thresholds):
        parser.error("--checkpoint is needed for the NGS rows (one path, or θ=path for every threshold run)")
    cases = load_cases(args.data, args.samples)
    path = Path(args.rows)
    rows = json.loads(path.read_text()) if args.resume and path.exists() else []
    for tol in args.tolerances:
        for label in args.thresholds:
            done = {r["method"] for r in rows if r["threshold"] == label and r["tol"] in (tol, None)}
            methods = tuple(m for m in args.methods if m not in done)
            if not methods:
                continue
            new = compare_at_threshold(
                models.get(label, models.get(None)), cases, label, THRESHOLDS[label], rtol=tol, atol=tol,
                time_limit=args.time_limit, max_steps=args.max_steps, methods=methods,
            )  # fmt: skip
            rows += [r | {"tol": None if r["method"] == "NGS" else tol} for r in new]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rows, indent=1))
            for s in summarize(new):
                print(f"{label} tol {tol:g} {s['method']:15s} finished {s['finished']}/{s['runs']} "
                      f"nfev {s['nfev']:.3g} wall {s['wall_s']:.3g} s t {s['t_reached']:.3g} mae {s['mae']:.3g} "
                      f"ratio {s['speedup_vs_ngs']:.3g}", flush=True)  # fmt: skip
            if not args.no_results:
                write_section("ngs-stiff", markdown(rows, args, params, per_threshold=None not in models))


if __name__ == "__main__":
    main()
