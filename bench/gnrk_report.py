"""Time the GNRK Burgers model, fastsim vs plain PyG/torch, and its rollout vs the solver; write a Markdown table.

    python -m bench.gnrk_report [--smoke] [--grid 100] [--steps 50] [--reps 5]

The workload is `bench.bench_gnrk.workload` (a periodic grid, the 10,882-parameter model, RK4, float32). For each
group (training step; rollout) every implementation runs once as a warm-up (the plain rollout is checked against
fastsim's), then `--reps` times interleaved; the table reports medians and t_impl / t_fastsim. Times are the CPU
time of the (single) compute thread, `time.thread_time`: on a shared machine wall time mostly measures how long
the process waited for a core. `--smoke` (16×16, one rep) only prints; a full run rewrites the "gnrk" section of
bench/RESULTS.md. Target (issue 7): fastsim ≥ 2× the plain version.

The numerical solver (finite differences + RK4 on the same grid and steps) is the ground truth GNRK learns, so at
equal grid and steps it is exact where GNRK is not. The equal-accuracy table (`equal_accuracy`) solves the same
initial condition on coarser grids (every k-th point of the fine one) and reports each one's MAE against the fine
solution at its own points and its time, next to the GNRK rollout's time on the fine grid: the coarsest solver
grid whose MAE is below a GNRK model's MAE is what that model has to beat.
"""

from __future__ import annotations

import argparse
import datetime
import math
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
                start = time.thread_time()
                impls[name](w)
                times[name].append(time.thread_time() - start)
        base = statistics.median(times["fastsim"])
        for name in names:
            median = statistics.median(times[name])
            rows.append({"group": group, "impl": name, "median_s": median, "ratio": median / base})
    return rows


def equal_accuracy(grid: int, steps: int, factors: tuple[int, ...]) -> list[dict]:
    """The numerical solver on the fine `grid`×`grid` and on grids of every k-th point (k in `factors`), `steps`
    RK4 steps of Δt = 1e-3 from the fine grid's initial condition (sample 0 of `workload`): CPU seconds and the
    MAE over nodes, u, v and all times after t0 against the fine solution at the coarse points (the fine row's
    MAE is 0 by definition); the last row is the GNRK rollout on the fine grid (CPU seconds only)."""
    from fastsim.dynamics.burgers2d import Burgers2D
    from fastsim.graphs.grid import periodic_grid
    from fastsim.solvers import odeint

    cases.STEPS = steps
    w = cases.workload(grid)
    x0, nu = w[4].double(), w[7].double()
    times = torch.arange(steps + 1, dtype=torch.float64) * cases.DT
    rows, truth = [], None
    for k in (1, *factors):
        n = grid // k
        graph = periodic_grid(n, n).graph()
        start = time.thread_time()
        traj = odeint(Burgers2D(graph, nu), x0.view(grid, grid, 2)[::k, ::k].reshape(-1, 2), times, method="rk4")
        seconds = time.thread_time() - start
        truth = traj if truth is None else truth
        fine = truth.view(-1, grid, grid, 2)[:, ::k, ::k].reshape(traj.shape)
        rows.append({"impl": f"solver {n}×{n}", "seconds": seconds, "mae": float((traj - fine)[1:].abs().mean())})
    cases.fastsim_rollout(w)  # warm-up
    start = time.thread_time()
    cases.fastsim_rollout(w)
    rows.append({"impl": f"GNRK rollout (fastsim) {grid}×{grid}", "seconds": time.thread_time() - start, "mae": None})
    return rows


def accuracy_table(rows: list[dict], grid: int, steps: int) -> str:
    lines = [
        f"Equal accuracy: the solver (FD + RK4) on coarser grids vs its own {grid}×{grid} solution, {steps} steps "
        f"of Δt = 1e-3 (t ≤ {steps * cases.DT:g}), one initial condition of dataset I (ν = 0.01). CPU seconds.",
        "",
        "| implementation | CPU time (s) | MAE vs the fine solution |",
        "|---|---|---|",
    ]
    for r in rows:
        mae = "—" if r["mae"] is None else "diverged" if math.isnan(r["mae"]) else format(r["mae"], ".3g")
        lines.append(f"| {r['impl']} | {r['seconds']:.4g} | {mae} |")
    return "\n".join(lines)


def table(rows: list[dict], grid: int, steps: int) -> str:
    lines = [
        f"GNRK Burgers model (10,882 parameters, RK4, float32) on a {grid}×{grid} periodic grid; "
        f"rollout = {steps} steps of Δt = 1e-3. Ratio = t_impl / t_fastsim (> 1: fastsim faster). "
        f"Target: ≥ {TARGET:g}× over plain PyG/torch.",
        "",
        "| group | implementation | median CPU time (s) | ratio |",
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
    parser.add_argument("--accuracy-grid", type=int, default=48, help="fine grid of the equal-accuracy table")
    parser.add_argument("--accuracy-steps", type=int, default=200, help="steps of the equal-accuracy table")
    args = parser.parse_args(argv)
    grid, steps, reps = (16, 5, 1) if args.smoke else (args.grid, args.steps, args.reps)
    markdown = table(measure(grid, steps, reps), grid, steps)
    fine, accuracy_steps = (12, 5) if args.smoke else (args.accuracy_grid, args.accuracy_steps)
    factors = tuple(k for k in (2, 3, 4, 6, 8, 12) if fine % k == 0 and fine // k >= 3)
    markdown += "\n\n" + accuracy_table(equal_accuracy(fine, accuracy_steps, factors), fine, accuracy_steps)
    print(markdown)
    if not args.smoke:
        write_section("gnrk", "## GNRK (issue 7)\n\n" + markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
