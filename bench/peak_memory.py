"""Peak memory of one implementation, measured in a fresh process so nothing earlier inflates it.

`measure(...)` starts `python -m bench.peak_memory ...`, which warms the implementation up on a tiny graph,
builds the case's inputs, takes a baseline, runs the implementation once and prints the peak growth above the
baseline as JSON. On CPU the peak is the resident-set high-water mark (VmHWM), reset after the inputs are
built by writing 5 to /proc/self/clear_refs (Linux); where that is not allowed, it falls back to `getrusage`
ru_maxrss, whose high-water mark then includes the input building (so the growth is a lower bound). On CUDA
it is `torch.cuda.max_memory_allocated` above the allocated baseline.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
from pathlib import Path

import torch

from bench import message_passing_cases as cases


def status_kib(field: str) -> int:
    """A `/proc/self/status` field in KiB (VmRSS: resident set, VmHWM: its high-water mark)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def reset_high_water_mark() -> bool:
    """Reset VmHWM to the current resident set; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_growth(op_name: str, impl_name: str, inputs: cases.Inputs) -> tuple[int, str]:
    """Run the implementation once in this process; return (peak bytes above the baseline, method)."""
    op = cases.OPS[op_name]
    impl = op.impl(impl_name)
    warm_up = cases.Inputs(inputs.graph_kind, cases.Sizes(200, 2_000), inputs.features, inputs.device)
    cases.timed(impl, warm_up.build(op.inputs))()  # one-time costs (thread pools, lazy init) stay out of the peak
    del warm_up
    inputs.build(op.inputs)
    gc.collect()
    if torch.device(inputs.device).type == "cuda":
        cases.synchronize(inputs.device)
        torch.cuda.reset_peak_memory_stats(inputs.device)
        base = torch.cuda.memory_allocated(inputs.device)
        cases.timed(impl, inputs)()
        return torch.cuda.max_memory_allocated(inputs.device) - base, "torch.cuda.max_memory_allocated"
    if reset_high_water_mark():
        base = status_kib("VmRSS")
        impl.run(inputs)
        return 1024 * (status_kib("VmHWM") - base), "VmHWM after clear_refs"
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    impl.run(inputs)
    return 1024 * (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base), "ru_maxrss (lower bound)"


def measure(
    op_name: str, impl_name: str, graph_kind: str, sizes: cases.Sizes, features: int, device: str
) -> tuple[int, str]:
    """Peak memory growth (bytes) of one implementation, measured in a fresh subprocess; and the method."""
    cmd = [sys.executable, "-m", "bench.peak_memory", op_name, impl_name, graph_kind]
    cmd += [f"--nodes={sizes.num_nodes}", f"--edges={sizes.num_edges}", f"--features={features}"]
    cmd += [f"--device={device}"]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["peak_bytes"], result["method"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("op", choices=sorted(cases.OPS))
    parser.add_argument("impl")
    parser.add_argument("graph", choices=cases.GRAPH_KINDS)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--edges", type=int, required=True)
    parser.add_argument("--features", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    inputs = cases.Inputs(args.graph, cases.Sizes(args.nodes, args.edges), args.features, args.device)
    peak, method = peak_growth(args.op, args.impl, inputs)
    print(json.dumps({"peak_bytes": peak, "method": method}))


if __name__ == "__main__":
    main()
