"""Time fastsim's message-passing kernels against their peers and write a Markdown report.

    python -m bench.report [--smoke] [--out bench/RESULTS.md] [--device cpu|cuda] [--reps K] [--ops a,b]

Runs the cases of `bench.message_passing_cases` itself: for each (op, graph, F) every implementation is
checked against fastsim once (which also warms it up), then timed K times, interleaved (the starting
implementation rotates each repetition), all on the same inputs in one process; the table reports medians.
The GN edge step's peak memory is measured per implementation in a fresh subprocess (`bench.peak_memory`).
Without `--out`, a full run rewrites the "message-passing" section of bench/RESULTS.md ("message-passing-cuda" for
`--device cuda`) and a `--smoke` run (N=2e3, E=2e4) only prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import fastsim
from bench import message_passing_cases as cases
from bench import peak_memory
from bench.devices import check_device, rotating_order
from bench.results_file import write_section

FASTEST_PEER = "<fastest peer>"


@dataclasses.dataclass(frozen=True)
class Target:
    """A goal to report against, never asserted: `metric` of `impl` relative to fastsim is >= `at_least`.

    metric "time": t_impl / t_fastsim; "memory": peak_impl / peak_fastsim.
    """

    op: str
    features: int
    impl: str  # an implementation name, or FASTEST_PEER
    metric: str
    at_least: float
    text: str


TARGETS = (
    Target("spmm_sum", 64, FASTEST_PEER, "time", 1.5, "spmm sum F=64 ≥ 1.5× the fastest torch path"),
    Target("spmm_sum", 64, "index_add", "time", 10.0, "spmm sum F=64 ≥ 10× index_add_"),
    Target("spmm_sum", 64, "scatter_add", "time", 10.0, "spmm sum F=64 ≥ 10× scatter_add_"),
    Target("spmm_sum", 64, "gather_floor", "time", 0.6, "spmm sum F=64 ≥ 60% of the gather floor's speed"),
    Target("gn_edge_fwd_bwd", 64, "plain_torch", "time", 3.0, "GN edge fwd+bwd ≥ 3× faster than plain torch"),
    Target("gn_edge_fwd_bwd", 64, "plain_torch", "memory", 5.0, "GN edge fwd+bwd ≥ 5× lower peak memory"),
)


@dataclasses.dataclass
class Row:
    op: str
    graph: str
    features: int
    impl: cases.Impl
    status: str = "ok"  # "ok", or why the implementation was not timed
    times: list[float] = dataclasses.field(default_factory=list)
    peak_bytes: int | None = None
    target: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _first_sentence(err: Exception) -> str:
    """An exception's message up to its first full stop: torch's dispatch errors go on to list every backend."""
    text = str(err).splitlines()[0]
    return text.split(". ", 1)[0]


def measure_case(op: cases.Op, graph: str, features: int, sizes: cases.Sizes, device: str, reps: int) -> list[Row]:
    """Check every implementation of one case, then time them `reps` times, interleaved."""
    inputs = cases.Inputs(graph, sizes, features, device)
    rows, calls = [], []
    for impl in op.impls_for(device):
        row = Row(op.name, graph, features, impl)
        rows.append(row)
        if impl.requires and not _importable(impl.requires):
            row.status = f"skipped: {impl.requires} not installed"
            continue
        try:
            cases.check(op, impl, inputs)
        except cases.Unsupported as err:
            row.status = f"unsupported ({_first_sentence(err)})"
            continue
        except AssertionError as err:
            row.status = f"WRONG RESULT ({err})"
            continue
        calls.append((row, cases.timed(impl, inputs)))
    for row, call in rotating_order(calls, reps):
        t0 = time.perf_counter()
        call()
        row.times.append(time.perf_counter() - t0)
    if op.slow:
        for row in rows:
            if row.status == "ok":
                row.peak_bytes, method = peak_memory.measure(op.name, row.impl.name, graph, sizes, features, device)
                row.status = f"ok (peak memory: {method})"
    return rows


def apply_targets(rows: list[Row]) -> list[tuple[Target, str, str, str]]:
    """Fill `Row.target`; return (target, graph, measured, met/not met) for the summary."""
    summary = []
    for target in TARGETS:
        for graph in cases.GRAPH_KINDS:
            case = [r for r in rows if (r.op, r.graph, r.features) == (target.op, graph, target.features)]
            if not case or case[0].median is None:
                continue
            reference = case[0]
            if target.impl == FASTEST_PEER:
                peers = [r for r in case if r.impl.kind == "peer" and r.median is not None]
                chosen = min(peers, key=lambda r: r.median, default=None)
            else:
                chosen = next((r for r in case if r.impl.name == target.impl and r.median is not None), None)
            if chosen is None:
                continue
            if target.metric == "time":
                value = chosen.median / reference.median
            elif chosen.peak_bytes and reference.peak_bytes:
                value = chosen.peak_bytes / reference.peak_bytes
            else:
                continue
            status = "met" if value >= target.at_least else "not met"
            unit = "× lower peak" if target.metric == "memory" else "×"
            measured = f"{value:.2f}{unit} (vs {chosen.impl.label})"
            note = f"{'memory' if target.metric == 'memory' else 'speed'} ≥ {target.at_least:g}×: {status}"
            chosen.target = f"{chosen.target}; {note}" if chosen.target else note
            summary.append((target, graph, measured, status))
    return summary


def machine_info(device: str, sizes: cases.Sizes) -> list[tuple[str, str]]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        import torch_geometric

        pyg = torch_geometric.__version__
    except ImportError:
        pyg = "not installed"
    info = fastsim.build_info()
    rows = [
        ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("CPU", f"{cpu}, {os.cpu_count()} logical cores"),
        ("threads", f"torch {torch.get_num_threads()}, fastsim OpenMP {info['num_threads']}"),
        ("versions", f"torch {torch.__version__}, fastsim {fastsim.__version__}, torch_geometric {pyg}"),
        ("python", platform.python_version()),
        ("device", device if device == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})"),
        ("sizes", f"N = {sizes.num_nodes:,}, E = {sizes.num_edges:,}, float32"),
    ]
    return rows


def _cell(row: Row, reference: Row, sizes: cases.Sizes) -> list[str]:
    median = row.median
    if median is None:
        return [row.impl.label, "—", "—", "—", "—", row.status]
    ratio = median / reference.median if reference.median else float("nan")
    gbps = f"{row.impl.traffic.gbps(sizes, row.features, median):.1f}" if row.impl.traffic else ""
    peak = f"{row.peak_bytes / 2**20:,.0f}" if row.peak_bytes is not None else ""
    return [row.impl.label, f"{median * 1e3:,.2f}", f"{ratio:.2f}", gbps, peak, row.target]


def render(
    rows: list[Row], summary: list, info: list[tuple[str, str]], command: str, reps: int, sizes: cases.Sizes
) -> str:
    lines = ["# fastsim message-passing benchmarks", "", f"Command: `{command}`", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info]
    lines += [
        "",
        f"Each time is the median of {reps} timed calls (3 for the GN step) after one checked warm-up",
        "call; the implementations of a case run interleaved on the same inputs in one process.",
        "**t / t_fastsim** is an implementation's time over fastsim's (above 1: fastsim is faster).",
        "Every result except the floors is checked against fastsim's first. GB/s = bytes / time with",
        "",
        f"- fastsim spmm: {cases.SPMM_TRAFFIC.formula}",
        f"- gather floor: {cases.GATHER_TRAFFIC.formula} (index_select must also write its E×F output)",
        f"- stream read: {cases.STREAM_TRAFFIC.formula}",
        "",
        "Edges are in CSR order (sorted by destination) for every implementation. Peak memory: growth of the",
        "process's peak above the baseline after building the inputs, in a fresh process per implementation.",
        "",
        "## Targets",
        "",
        "| target | graph | measured | status |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t.text} | {graph} | {measured} | {status} |" for t, graph, measured, status in summary]
    for op in cases.OPS.values():
        op_rows = [r for r in rows if r.op == op.name]
        if not op_rows:
            continue
        lines += ["", f"## {op.name}: {op.title}", ""]
        lines += ["| graph | F | implementation | ms | t / t_fastsim | GB/s | peak MiB | target / note |"]
        lines += ["|---|---|---|---|---|---|---|---|"]
        for graph in cases.GRAPH_KINDS:
            for features in op.features:
                case = [r for r in op_rows if (r.graph, r.features) == (graph, features)]
                for row in case:
                    lines.append("| " + " | ".join([graph, str(features), *_cell(row, case[0], sizes)]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (N=2e3, E=2e4) to check the harness")
    parser.add_argument("--out", type=Path, help="Markdown file (default: a section of bench/RESULTS.md)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per implementation (GN: 3)")
    parser.add_argument("--ops", default=",".join(cases.OPS), help="comma-separated ops to run")
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    unknown = set(args.ops.split(",")) - set(cases.OPS)
    if unknown:
        parser.error(f"--ops: unknown {sorted(unknown)}; choose from {list(cases.OPS)}")
    sizes = cases.sizes_for(args.device, args.smoke)
    command = "python -m bench.report " + " ".join(argv if argv is not None else sys.argv[1:])

    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    for name in args.ops.split(","):
        op = cases.OPS[name]
        for graph in cases.GRAPH_KINDS:
            for features in op.features:
                t0 = time.perf_counter()
                reps = min(args.reps, 3) if op.slow else args.reps
                rows += measure_case(op, graph, features, sizes, args.device, reps)
                print(f"{name} {graph} F={features}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    summary = apply_targets(rows)
    info = machine_info(args.device, sizes)
    info.append(("load average (1 min)", f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after the run"))
    text = render(rows, summary, info, command.strip(), args.reps, sizes)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    elif not args.smoke:
        section = "message-passing" if args.device == "cpu" else f"message-passing-{args.device}"
        write_section(section, text)
        print(f"wrote the {section} section of bench/RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
