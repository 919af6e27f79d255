"""Time fastsim's NGS against the same architecture in plain PyG and in plain torch; write a Markdown table.

    python -m bench.ngs_report [--smoke] [--reps 5] [--clock wall|cpu] [--no-memory] [--device cpu|cuda]

Workloads (issue 6): the heat (d = 8) and coupled-Rössler (d = 32) models on a batch of 16 Erdős–Rényi graphs of
100–200 nodes (mean degree 2–4) and on one G_ext graph of 3000 nodes. Per workload: one training step (forward,
backward, AdamW) and a 40-step rollout (inference mode), each implementation checked against fastsim's output first.
The peers share fastsim's parameters: `PyG` is the authors' formulation (concatenated edge inputs,
`torch_geometric.utils.scatter` sum and min); `torch` uses `index_add_` and `scatter_reduce`. Also the paper's
efficiency comparison: one 100–200-node heat trajectory, 40 non-uniform steps to T = 2, NGS rollout vs scipy DOP853
at rtol = atol = 1e-8 (medians of 50 interleaved runs each). Times are medians of `--reps` runs in one process,
the implementations interleaved; ratios are peer / fastsim. `--clock cpu` times with the process's CPU time instead
of the wall clock: with one thread that is the work done, unaffected by other jobs on a shared machine.
Peak memory: each implementation's training step and rollout run again in a fresh process (`--peak`), after one
warm-up run on the same inputs, and the growth of the resident-set high-water mark (VmHWM, reset through
/proc/self/clear_refs) over the baseline is reported; glibc's mmap threshold is pinned so that freed large
buffers go back to the system and are not silently reused. A full run rewrites the "ngs" section of
bench/RESULTS.md; `--smoke` (tiny sizes, one rep) only prints.

`--device cuda` builds the same inputs and model (on the CPU, same seeds) and moves them to the GPU; every timed
region then starts and ends with `torch.cuda.synchronize()` and is read off the wall clock (`--clock cpu` is
refused), the peak is `torch.cuda.max_memory_allocated` above the allocated baseline (still in a fresh process),
the DOP853 comparison runs NGS on the GPU and scipy on the CPU, and a full run writes the "ngs-cuda" section.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

import fastsim
from bench.devices import check_device, command_line, describe_device, rotating_order, synced_clock
from bench.flops import count_flops
from bench.peak_memory import reset_high_water_mark, status_kib
from bench.plain import aten_ops
from fastsim.dynamics import HeatDiffusion
from fastsim.graph import Graph
from fastsim.graphs import erdos_renyi, time_grid
from fastsim.models import NGS
from fastsim.solvers import odeint

TARGETS = {"train step": 3.0, "rollout": 10.0}  # required speed-up over PyG


@dataclass
class Workload:
    name: str
    model: NGS
    graph: Graph
    state: torch.Tensor
    dts: torch.Tensor  # (S, B)
    coefficients: dict[str, torch.Tensor | None]


def workload(system: str, sizes: list[int], steps: int, seed: int = 0, device: str = "cpu") -> Workload:
    """Random graphs, states and coefficients of `system` ("heat" or "rossler") with the paper's model width, built
    on the CPU (the same numbers on every device) and then moved to `device`."""
    gen = torch.Generator().manual_seed(seed)
    degrees = 2 + 2 * torch.rand(len(sizes), generator=gen)
    graph = Graph.batch_graphs([erdos_renyi(n, k.item(), generator=gen) for n, k in zip(sizes, degrees)])
    torch.manual_seed(seed)
    model = NGS.for_system(system)
    n, e, b = graph.num_nodes, graph.num_edges, graph.num_graphs
    dts = torch.rand(steps, b, generator=gen) * 0.08 + 0.01
    if system == "heat":
        state, coefficients = (torch.rand(n, generator=gen) < 0.5).float(), {"edge": torch.rand(e, generator=gen) + 0.1}
    else:
        state = torch.randn(n, 3, generator=gen)
        coefficients = {"edge": 0.05 * torch.rand(e, generator=gen), "glob": torch.rand(b, 3, generator=gen)}
    coefficients = {k: v.to(device) for k, v in coefficients.items()}
    name = f"{system}, {len(sizes)}×{min(sizes)}-{max(sizes)} nodes"
    return Workload(name, model.to(device), graph.to(device), state.to(device), dts.to(device), coefficients)


# ------------------------------------------------------------------------------------------------ peers
def _pyg_sum(x, index, size):
    from torch_geometric.utils import scatter

    return scatter(x, index, dim=0, dim_size=size, reduce="sum")


def _pyg_min(x, index, size):
    from torch_geometric.utils import scatter

    return scatter(x, index, dim=0, dim_size=size, reduce="min")


def _torch_sum(x, index, size):
    return x.new_zeros(size, x.shape[1]).index_add_(0, index, x)


def _torch_min(x, index, size):
    out = x.new_zeros(size, x.shape[1])
    return out.scatter_reduce(0, index[:, None].expand_as(x), x, "amin", include_self=False)


def peer_step(model: NGS, w: Workload, tensors: dict, state, dt, emb, scatter_sum, scatter_min):
    """One NGS step written the reference way (per-edge concatenation), with the given scatter functions."""
    src, dst, batch, num_graphs = tensors["src"], tensors["dst"], tensors["batch"], w.graph.num_graphs
    x = state.reshape(state.shape[0], -1)
    node = model.state_encoder(x)
    glob = model.dt_encoder(dt[:, None])
    if emb["glob"] is not None:
        glob = torch.cat([glob, emb["glob"]], 1)
    edge = emb["edge"]
    for layer in model.gn_layers:
        mlp = layer.per_edge_update
        edge = F.gelu(mlp.second(F.gelu(mlp.first(torch.cat([node[src], node[dst], edge, glob[batch][src]], 1)))))
        agg = scatter_sum(edge, dst, node.shape[0])
        node = layer.per_node_update(torch.cat([node, agg, glob[batch]], 1))
        pooled = torch.cat([scatter_min(node, batch, num_graphs), scatter_min(agg, batch, num_graphs)], 1)
        glob = layer.glob_update(torch.cat([pooled, glob], 1))
    return state + model.decoder(node).reshape(state.shape)


def optimizer(w: Workload) -> torch.optim.Optimizer:
    """The training step's optimizer, the same for every implementation: AdamW with its fused kernel, as
    fastsim's trainer runs it (the per-tensor loop would add ≈ 0.5 ms to every heat step, on both sides)."""
    return torch.optim.AdamW(w.model.parameters(), lr=1e-6, fused=True)


def _optimize(out: torch.Tensor, optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """One optimizer step on the loss mean(out²) of a training step's output; returns `out` detached."""
    loss = out.square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return out.detach()


def peer(scatter_sum, scatter_min) -> dict[str, Callable]:
    def encode(w: Workload) -> dict:
        edge = w.coefficients["edge"][:, None]
        glob = w.coefficients.get("glob")
        return {"edge": w.model.edge_encoder(edge), "glob": None if glob is None else w.model.glob_encoder(glob)}

    def tensors(w):
        return {"src": w.graph.src, "dst": w.graph.dst, "batch": w.graph.batch}

    def train_step(w: Workload, optimizer) -> torch.Tensor:
        with aten_ops():
            out = peer_step(w.model, w, tensors(w), w.state, w.dts[0], encode(w), scatter_sum, scatter_min)
            return _optimize(out, optimizer)

    def rollout(w: Workload) -> torch.Tensor:
        with torch.inference_mode(), aten_ops():
            t, emb, x = tensors(w), encode(w), w.state
            for dt in w.dts:
                x = peer_step(w.model, w, t, x, dt, emb, scatter_sum, scatter_min)
        return x

    return {"train": train_step, "rollout": rollout}


def fastsim_impl() -> dict[str, Callable]:
    def train_step(w: Workload, optimizer) -> torch.Tensor:
        return _optimize(w.model(w.graph, w.state, w.dts[0], **w.coefficients), optimizer)

    def rollout(w: Workload) -> torch.Tensor:
        return w.model.rollout(w.graph, w.state, w.dts, **w.coefficients)[-1]

    return {"train": train_step, "rollout": rollout}


IMPLEMENTATIONS = {"fastsim": fastsim_impl(), "PyG": peer(_pyg_sum, _pyg_min), "torch": peer(_torch_sum, _torch_min)}


# ------------------------------------------------------------------------------------------------ timing
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


# csrc/message_passing/ngs_rollout_cpu.cpp forms layer 0's edge projection once per rollout up to this many
# (E, H) elements (kEdgeTermElements, H padded to whole float32 SIMD vectors), in every step beyond.
EDGE_TERM_ELEMENTS = 1 << 16


def hoists_edge_term(edges: int, hidden: int) -> bool:
    """Whether the float32 rollout op forms layer 0's `(E, H)` edge projection once per rollout."""
    width = fastsim._C.simd_floats
    return edges * -(-hidden // width) * width <= EDGE_TERM_ELEMENTS


def _ngs_rollout_flops(state, indptr, src, ptr, edge_coefficients, dts, glob_embedding, weights, *_, **__):
    """FLOPs of the compiled rollout op's products (its inputs arrive as shapes): 2·rows·in·out for every block of
    every Linear (nn.Linear weights (out, in) in the op's order, each followed by its bias), with rows = N for
    node-level blocks, E for the edge MLP's edge block and second Linear, and B for the per-graph blocks (the
    global columns of the first Linears, and the global update); the Δt encoder (S·B rows), the edge encoder
    (E rows) and, where the op hoists it, layer 0's edge projection run once per rollout."""
    nodes, edges, graphs = indptr[0] - 1, src[0], ptr[0] - 1
    steps = dts[0]
    mats = [shape for shape in weights if len(shape) == 2]
    codec, dt_encoder, edge_encoder, layer_mats = mats[:2] + mats[-2:], mats[2:4], mats[4:6], mats[6:-2]
    n, e, g = mats[1][0], mats[5][0], mats[3][0] + glob_embedding[1]
    dt_encoding = steps * graphs * sum(out * inp for out, inp in dt_encoder)
    once = dt_encoding + edges * sum(out * inp for out, inp in edge_encoder)
    per_step = sum(nodes * out * inp for out, inp in codec)
    layers = (len(layer_mats) + 2) // 6
    for k in range(layers):
        edge1, edge2, node1, node2, *glob = layer_mats[6 * k : 6 * k + (4 if k == layers - 1 else 6)]
        hidden, out = edge1[0], edge2[0]
        projection = hidden * e * edges
        if k == 0 and hoists_edge_term(edges, hidden):
            once, projection = once + projection, 0
        per_step += projection + hidden * (2 * n * nodes + g * graphs) + edges * out * hidden
        per_step += node1[0] * ((n + out) * nodes + g * graphs) + nodes * node2[0] * node2[1]
        if glob:
            per_step += graphs * (glob[0][0] * glob[0][1] + glob[1][0] * glob[1][1])
            g = glob[1][0]
        e = out
    return 2 * (once + steps * per_step)


def step_flops(w: Workload, impl: str) -> float:
    """Matrix-product FLOPs of one rollout step of `impl`.

    Both sides evaluate the same GELUs; the products are where the formulations differ (fastsim projects node
    features per node, the peers concatenate per edge), so the peer/fastsim ratio of these counts is the rollout
    speed-up at equal arithmetic speed per FLOP."""
    two_steps = dataclasses.replace(w, dts=w.dts[:2])
    rollout = IMPLEMENTATIONS[impl]["rollout"]
    return (
        count_flops(lambda: rollout(two_steps), w.graph.device, {torch.ops.fastsim.ngs_rollout: _ngs_rollout_flops}) / 2
    )


def train_flops(w: Workload, impl: str) -> float:
    """Matrix-product FLOPs of one training step of `impl` (forward and backward; fastsim's fused backward
    recomputes the edge MLP's products, which count). The peer/fastsim ratio is the training speed-up at equal
    arithmetic speed per FLOP."""
    # Plain SGD at lr 0: its step has no products and leaves the weights as they are.
    optimizer = torch.optim.SGD(w.model.parameters(), lr=0.0)
    return count_flops(lambda: IMPLEMENTATIONS[impl]["train"](w, optimizer), w.graph.device)


def measure(w: Workload, reps: int, clock: Callable[[], float] = time.perf_counter) -> list[dict]:
    """Check each implementation against fastsim, then time a training step and the rollout of each, the
    implementations interleaved (`rotating_order`); medians."""
    rows, runs = {}, {}
    reference = IMPLEMENTATIONS["fastsim"]["rollout"](w)
    state = {k: v.detach().clone() for k, v in w.model.state_dict().items()}
    for name, impl in IMPLEMENTATIONS.items():
        w.model.load_state_dict(state)
        diff = (impl["rollout"](w) - reference).abs().max().item()
        opt = optimizer(w)
        impl["train"](w, opt)  # warm-up
        runs[name] = {
            "train": functools.partial(impl["train"], w, opt),
            "rollout": functools.partial(impl["rollout"], w),
        }
        rows[name] = {"impl": name, "max_diff": diff, "flops": step_flops(w, name), "train_flops": train_flops(w, name)}
    for task in ("train", "rollout"):
        times: dict[str, list[float]] = {name: [] for name in runs}
        for name in rotating_order(list(runs), reps):
            start = clock()
            runs[name][task]()
            times[name].append(clock() - start)
        for name, row in rows.items():
            row[task] = statistics.median(times[name])
    w.model.load_state_dict(state)
    return list(rows.values())


TRAJECTORY_ROUNDS = 50  # interleaved runs of each side in the single-trajectory comparison (a few ms each)


def solver_comparison(
    reps: int, smoke: bool, clock: Callable[[], float] = time.perf_counter, device: str = "cpu"
) -> dict:
    """One heat trajectory (N ∈ [100, 200], 40 non-uniform steps to T = 2): NGS rollout on `device` vs scipy DOP853
    (always on the CPU), medians of `reps` interleaved runs each. On CUDA pass a `synced_clock`."""
    from scipy.integrate import solve_ivp

    gen = torch.Generator().manual_seed(1)
    n = 30 if smoke else int(torch.randint(100, 201, (1,), generator=gen))
    graph = erdos_renyi(n, 3.0, generator=gen)
    coefficients = HeatDiffusion.sample_coefficients(graph, gen)
    y0 = HeatDiffusion.initial_state(graph, gen)
    times = time_grid(2.0, 40, 0.8, gen)
    # The heat equation is linear, dy/dt = J y with J = −(weighted Laplacian): its Jacobian, dense.
    jacobian = HeatDiffusion(graph, **coefficients).jacobian(0.0, y0).to_dense().numpy()

    def scipy_run():
        return solve_ivp(
            lambda t, y: jacobian @ y, (0.0, 2.0), y0.numpy(), "DOP853", t_eval=times.numpy(), rtol=1e-8, atol=1e-8
        )

    # The reference really solves this trajectory: it agrees with fastsim's own dopri5.
    reference = scipy_run()
    check = odeint(HeatDiffusion(graph, **coefficients), y0, times, method="dopri5", rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(reference.y.T, check.numpy(), rtol=1e-6, atol=1e-6)

    model = NGS.for_system("heat").eval().to(device)
    state, dts, edge = (t.float().to(device) for t in (y0, times.diff(), coefficients["diffusivity"]))
    ngs_graph = graph.to(device)

    def ngs_run():
        return model.rollout(ngs_graph, state, dts, edge=edge)

    ngs_run()
    # Interleaved, in alternating order: a run takes a few ms, so a slow minute on the shared machine would
    # otherwise fall on one side only.
    elapsed: dict[str, list[float]] = {"scipy": [], "ngs": []}
    for name, fn in rotating_order([("scipy", scipy_run), ("ngs", ngs_run)], reps):
        start = clock()
        fn()
        elapsed[name].append(clock() - start)
    medians = {name: statistics.median(t) for name, t in elapsed.items()}
    return {"nodes": n, "scipy_nfev": int(reference.nfev), **medians}


def workload_specs(smoke: bool) -> list[tuple[str, list[int]]]:
    """(system, graph sizes) of the report's workloads."""
    sizes = [20, 30] if smoke else [int(n) for n in np.random.default_rng(0).integers(100, 201, 16)]
    large = [200 if smoke else 3000]
    return [("heat", sizes), ("rossler", sizes), ("heat", large), ("rossler", large)]


# ------------------------------------------------------------------------------------------------ peak memory
def peak_growth(spec: int, impl: str, task: str, smoke: bool, device: str = "cpu") -> int:
    """In this process: bytes by which one run of `impl`'s `task` ("train" or "rollout") on workload `spec` raises
    the resident-set high-water mark above the resident set before it (after a warm-up run); on CUDA, by which
    it raises `torch.cuda.max_memory_allocated` above the memory allocated before it."""
    system, sizes = workload_specs(smoke)[spec]
    w = workload(system, sizes, 40, device=device)
    fn = IMPLEMENTATIONS[impl][task]
    args = (w, optimizer(w)) if task == "train" else (w,)
    fn(*args)  # warm-up: thread pools, lazy initialisation, the optimizer's state
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn(*args)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    if not reset_high_water_mark():
        raise OSError("cannot reset the resident-set high-water mark (/proc/self/clear_refs)")
    base = status_kib("VmRSS")
    fn(*args)
    return 1024 * (status_kib("VmHWM") - base)


def measure_peak(spec: int, impl: str, task: str, smoke: bool, device: str = "cpu") -> int | None:
    """`peak_growth` in a fresh process; None where the high-water mark cannot be reset (not Linux)."""
    cmd = [sys.executable, "-m", "bench.ngs_report", "--peak", str(spec), impl, task, "--device", device]
    cmd += ["--smoke"] if smoke else []
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}  # a fixed threshold: large frees are unmapped
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        print(f"peak memory of {impl} {task} not measured: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return int(json.loads(proc.stdout.strip().splitlines()[-1])["peak_bytes"])


def _mib(n: int | None) -> str:
    return "–" if n is None else f"{n / 2**20:.1f}"


def report(
    smoke: bool,
    reps: int,
    memory: bool = True,
    clock: str = "wall",
    device: str = "cpu",
    command: str = "python -m bench.ngs_report",
) -> str:
    cuda = torch.device(device).type == "cuda"
    timer = synced_clock(device, CLOCKS[clock])
    specs = workload_specs(smoke)
    workloads = [workload(system, sizes, 40, device=device) for system, sizes in specs]
    clock_note = "wall clock, `torch.cuda.synchronize()` at both ends" if cuda else f"{clock} clock"
    peak_note = (
        "growth of `torch.cuda.max_memory_allocated` above the allocated baseline during one run"
        if cuda
        else "growth of the resident-set high-water mark during one run"
    )
    lines = [
        "## NGS: fastsim vs the same architecture in PyG and plain torch" + (f" ({device})" if cuda else ""),
        "",
        f"{datetime.date.today()}, {describe_device(device)}, fastsim {fastsim.__version__}; `{command}`. "
        f"Medians of interleaved runs ({clock_note}); training step = forward + backward + fused AdamW on one batch; "
        "rollout = 40 steps (inference mode). Ratio = peer time / fastsim time (targets vs PyG: train ≥ 3×, "
        f"rollout ≥ 10×). Peak = {peak_note}, in a fresh process "
        "(MiB). GFLOP = matrix-product FLOPs of one training step (forward and backward, `train_flops`) and of "
        "one rollout step (`step_flops`); both formulations evaluate the same GELUs, so a FLOP ratio is the "
        "speed-up at equal arithmetic speed per FLOP.",
        "",
        "| workload | implementation | max abs diff vs fastsim | train step (ms) | ratio | train GFLOP | FLOP ratio "
        "| 40-step rollout (ms) | ratio | GFLOP/step | FLOP ratio | train peak (MiB) | rollout peak (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, w in enumerate(workloads):
        rows = measure(w, 1 if smoke else reps, timer)
        base = rows[0]
        for r in rows:
            tasks = ("train", "rollout")
            peaks = [measure_peak(spec, r["impl"], task, smoke, device) if memory else None for task in tasks]
            lines.append(
                f"| {w.name} | {r['impl']} | {r['max_diff']:.1e} | {1e3 * r['train']:.2f} | "
                f"{r['train'] / base['train']:.2f} | {r['train_flops'] / 1e9:.3g} | "
                f"{r['train_flops'] / base['train_flops']:.2f} | {1e3 * r['rollout']:.2f} | "
                f"{r['rollout'] / base['rollout']:.2f} "
                f"| {r['flops'] / 1e9:.3g} | {r['flops'] / base['flops']:.2f} | {_mib(peaks[0])} | {_mib(peaks[1])} |"
            )
    s = solver_comparison(1 if smoke else TRAJECTORY_ROUNDS, smoke, timer, device)
    lines += [
        "",
        "Single heat trajectory"
        + (f" (NGS on {device} vs scipy DOP853 on the CPU)" if cuda else "")
        + f", N = {s['nodes']}, 40 non-uniform steps to T = 2: scipy DOP853 (rtol = atol = 1e-8, "
        f"dense Laplacian, {s['scipy_nfev']} evaluations) {1e3 * s['scipy']:.2f} ms; NGS rollout (heat model, "
        f"40 evaluations) {1e3 * s['ngs']:.2f} ms; ratio DOP853 / NGS = {s['scipy'] / s['ngs']:.2f}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall clock or process CPU time")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the models run")
    parser.add_argument("--peak", nargs=3, metavar=("SPEC", "IMPL", "TASK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == "cuda" and args.clock == "cpu":
        parser.error("--clock cpu does not measure GPU work; use the wall clock (the default) with --device cuda")
    check_device(parser, args.device)
    if args.peak:  # the child process of measure_peak
        spec, impl, task = args.peak
        print(json.dumps({"peak_bytes": peak_growth(int(spec), impl, task, args.smoke, args.device)}))
        return
    command = command_line("bench.ngs_report", argv)
    text = report(args.smoke, args.reps, not args.no_memory, args.clock, args.device, command)
    print(text)
    if not args.smoke:
        from bench.results_file import write_section

        write_section("ngs" if args.device == "cpu" else f"ngs-{args.device}", text)


if __name__ == "__main__":
    main()
