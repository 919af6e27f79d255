"""Time the GNRK Burgers model, fastsim vs plain PyG/torch, and its rollout vs the solver; write a Markdown table.

    python -m bench.gnrk_report [--smoke] [--grid 100] [--steps 50] [--reps 5]

The workload is `bench.bench_gnrk.workload` (a periodic grid, the 10,882-parameter model, RK4, float32). For each
group (training step; rollout) every implementation runs once as a warm-up (the plain rollout is checked against
fastsim's), then `--reps` times interleaved; the table reports medians and t_impl / t_fastsim. `--smoke` (16×16,
one rep) only prints; a full run rewrites the "gnrk" section of bench/RESULTS.md. Target (issue 7): fastsim ≥ 2×
the plain version. The numerical solver (finite differences + RK4 on the same grid and steps) is the ground truth
GNRK learns, so at equal grid and steps it is exact where GNRK is not: its row says what the learned model costs.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time

import torch

from bench import bench_gnrk as cases
from bench.results_file import write_section

TARGET = 2.0


def measure(grid: int, steps: int, reps: int) -> list[dict]:
    """Median seconds per implementation and group, interleaved over `reps` rounds."""
    cases.STEPS = steps
    w = cases.workload(grid)
    torch.testing.assert_close(cases.plain_rollout(w), cases.fastsim_rollout(w), rtol=1e-4, atol=1e-4)
    rows = []
    for group, impls in cases.IMPLS.items():
        times: dict[str, list[float]] = {name: [] for name in impls}
        for fn in impls.values():
            fn(w)  # warm-up
        names = list(impls)
        for r in range(reps):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start = time.perf_counter()
                impls[name](w)
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times["fastsim"])
        for name in names:
            median = statistics.median(times[name])
            rows.append({"group": group, "impl": name, "median_s": median, "ratio": median / base})
    return rows


def table(rows: list[dict], grid: int, steps: int) -> str:
    lines = [
        f"GNRK Burgers model (10,882 parameters, RK4, float32) on a {grid}×{grid} periodic grid; "
        f"rollout = {steps} steps of Δt = 1e-3. Ratio = t_impl / t_fastsim (> 1: fastsim faster). "
        f"Target: ≥ {TARGET:g}× over plain PyG/torch.",
        "",
        "| group | implementation | median (s) | ratio |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['group']} | {r['impl']} | {r['median_s']:.4g} | {r['ratio']:.2f} |")
    lines += [
        "",
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{datetime.date.today().isoformat()}. Command: `python -m bench.gnrk_report --grid {grid} --steps {steps}`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="16×16 grid, 5 steps, one rep; print only")
    parser.add_argument("--grid", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    grid, steps, reps = (16, 5, 1) if args.smoke else (args.grid, args.steps, args.reps)
    markdown = table(measure(grid, steps, reps), grid, steps)
    print(markdown)
    if not args.smoke:
        write_section("gnrk", "## GNRK (issue 7)\n\n" + markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
