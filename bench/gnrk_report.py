"""Time the GNRK Burgers model, fastsim vs plain PyG/torch, and its rollout vs the solver; write a Markdown table.

    python -m bench.gnrk_report [--smoke] [--grid 100] [--steps 50] [--reps 5] [--device cpu|cuda]

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

`--device cuda` builds the same workload on the CPU and moves the model and tensors to the GPU; both tables then
run there, timed by the wall clock with `torch.cuda.synchronize()` at both ends of each timed call, and a full
run rewrites the "gnrk-cuda" section instead.
"""

from __future__ import annotations

import argparse
import datetime
import math
import statistics
import time

import torch

from bench import bench_gnrk as cases
from bench.devices import check_device, command_line, describe_device, rotating_order, synced_clock
from bench.flops import count_flops
from bench.results_file import write_section
from fastsim.dynamics.burgers2d import Burgers2D
from fastsim.graphs.grid import periodic_grid
from fastsim.solvers import odeint

TARGET = 2.0


def workload(grid: int, device: str = "cpu") -> tuple:
    """`bench_gnrk.workload(grid)`, built on the CPU, with the model (which the plain versions share) and every
    tensor moved to `device`."""
    model, plain, graph, _, x0, target, dt, nu = cases.workload(grid)
    graph = graph.to(device)
    x0, target, dt, nu = (t.to(device) for t in (x0, target, dt, nu))
    return model.to(device), plain, graph, cases.plain_inputs(graph), x0, target, dt, nu


def clock(device: str):
    """The timer: the compute thread's CPU time on the CPU; on CUDA the wall clock, synchronized."""
    return synced_clock(device, time.perf_counter if device == "cuda" else time.thread_time)


def measure(grid: int, steps: int, reps: int, device: str = "cpu") -> list[dict]:
    """Median seconds per implementation and group, interleaved over `reps` rounds."""
    cases.STEPS = steps
    w, timer = workload(grid, device), clock(device)
    torch.testing.assert_close(cases.plain_rollout(w), cases.fastsim_rollout(w), rtol=1e-4, atol=1e-4)
    rows = []
    for group, impls in cases.IMPLS.items():
        times: dict[str, list[float]] = {name: [] for name in impls}
        for fn in impls.values():
            fn(w)  # warm-up
        names = list(impls)
        for name in rotating_order(names, reps):
            start = timer()
            impls[name](w)
            times[name].append(timer() - start)
        base = statistics.median(times["fastsim"])
        # Training FLOPs (forward and backward): the rollout's fused evaluation has no formula of its own.
        flops = (
            {name: count_flops(lambda fn=fn: fn(w), device) for name, fn in impls.items()} if "train" in group else {}
        )
        for name in names:
            median = statistics.median(times[name])
            row = {"group": group, "impl": name, "median_s": median, "ratio": median / base, "flops": flops.get(name)}
            row["flop_ratio"] = row["flops"] / flops["fastsim"] if flops else None
            rows.append(row)
    return rows


def equal_accuracy(grid: int, steps: int, factors: tuple[int, ...], device: str = "cpu") -> list[dict]:
    """The numerical solver on the fine `grid`×`grid` and on grids of every k-th point (k in `factors`), `steps`
    RK4 steps of Δt = 1e-3 from the fine grid's initial condition (sample 0 of `workload`): seconds (`clock`)
    and the MAE over nodes, u, v and all times after t0 against the fine solution at the coarse points (the
    fine row's MAE is 0 by definition); the last row is the GNRK rollout on the fine grid (seconds only)."""
    cases.STEPS = steps
    w, timer = workload(grid, device), clock(device)
    x0, nu = w[4].double(), w[7].double()
    times = torch.arange(steps + 1, dtype=torch.float64, device=device) * cases.DT
    rows, truth = [], None
    for k in (1, *factors):
        n = grid // k
        graph = periodic_grid(n, n).graph().to(device)
        start = timer()
        traj = odeint(Burgers2D(graph, nu), x0.view(grid, grid, 2)[::k, ::k].reshape(-1, 2), times, method="rk4")
        seconds = timer() - start
        truth = traj if truth is None else truth
        fine = truth.view(-1, grid, grid, 2)[:, ::k, ::k].reshape(traj.shape)
        rows.append({"impl": f"solver {n}×{n}", "seconds": seconds, "mae": float((traj - fine)[1:].abs().mean())})
    cases.fastsim_rollout(w)  # warm-up
    start = timer()
    cases.fastsim_rollout(w)
    rows.append({"impl": f"GNRK rollout (fastsim) {grid}×{grid}", "seconds": timer() - start, "mae": None})
    return rows


def _time_label(device: str) -> str:
    """The tables' time column: CPU time on the CPU; on CUDA, the wall clock with both ends synchronized."""
    return "CPU time" if device == "cpu" else "wall time"


def accuracy_table(rows: list[dict], grid: int, steps: int, device: str = "cpu") -> str:
    lines = [
        f"Equal accuracy: the solver (FD + RK4) on coarser grids vs its own {grid}×{grid} solution, {steps} steps "
        f"of Δt = 1e-3 (t ≤ {steps * cases.DT:g}), one initial condition of dataset I (ν = 0.01). "
        + ("CPU seconds." if device == "cpu" else f"Seconds on {device}, wall clock, synchronized at both ends."),
        "",
        f"| implementation | {_time_label(device)} (s) | MAE vs the fine solution |",
        "|---|---|---|",
    ]
    for r in rows:
        mae = "—" if r["mae"] is None else "diverged" if math.isnan(r["mae"]) else format(r["mae"], ".3g")
        lines.append(f"| {r['impl']} | {r['seconds']:.4g} | {mae} |")
    return "\n".join(lines)


def table(
    rows: list[dict], grid: int, steps: int, device: str = "cpu", command: str = "python -m bench.gnrk_report"
) -> str:
    lines = [
        f"GNRK Burgers model (10,882 parameters, RK4, float32) on a {grid}×{grid} periodic grid; "
        f"rollout = {steps} steps of Δt = 1e-3. Ratio = t_impl / t_fastsim (> 1: fastsim faster). "
        f"Target: ≥ {TARGET:g}× over plain PyG/torch. GFLOP = matrix-product FLOPs of a training step (forward "
        "and backward; fastsim's fused backward recomputes the edge MLPs' products, which count): the FLOP ratio "
        "is the speed-up at equal arithmetic speed per FLOP."
        + ("" if device == "cpu" else f" All on {device}; wall clock, `torch.cuda.synchronize()` at both ends."),
        "",
        f"| group | implementation | median {_time_label(device)} (s) | ratio | GFLOP | FLOP ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        flops = "– | –" if r["flops"] is None else f"{r['flops'] / 1e9:.3g} | {r['flop_ratio']:.2f}"
        lines.append(f"| {r['group']} | {r['impl']} | {r['median_s']:.4g} | {r['ratio']:.2f} | {flops} |")
    lines += [
        "",
        f"{describe_device(device)}, {datetime.date.today().isoformat()}. Command: `{command}`.",
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
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the models run")
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    device, command = args.device, command_line("bench.gnrk_report", argv)
    grid, steps, reps = (16, 5, 1) if args.smoke else (args.grid, args.steps, args.reps)
    markdown = table(measure(grid, steps, reps, device), grid, steps, device, command)
    fine, accuracy_steps = (12, 5) if args.smoke else (args.accuracy_grid, args.accuracy_steps)
    factors = tuple(k for k in (2, 3, 4, 6, 8, 12) if fine % k == 0 and fine // k >= 3)
    accuracy = equal_accuracy(fine, accuracy_steps, factors, device)
    markdown += "\n\n" + accuracy_table(accuracy, fine, accuracy_steps, device)
    print(markdown)
    if not args.smoke:
        heading = "## GNRK (issue 7)" + ("" if device == "cpu" else f" ({device})")
        write_section("gnrk" if device == "cpu" else f"gnrk-{device}", heading + "\n\n" + markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
