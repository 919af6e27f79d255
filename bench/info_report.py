"""Time fastsim.info's estimators against the authors' numpy/scipy code and plain torch; write a Markdown table.

    python -m bench.info_report [--smoke] [--reps 3] [--workloads plane,n2000,n8192,kde8192] [--skip-slow]

Peers, in one process, interleaved: the autoencoder code's path (scipy `pdist` + numpy `svd`, ε = 1e-8, base 2;
information.md §1.2), plain torch (`cdist` + `exp` + batched `eigvalsh`), and for KDE a plain torch `logsumexp`
over the full N×N matrix. Every peer's number is checked against fastsim's (|Δ| in bits, reported). KDE peak
memory is the resident-set growth of one call in a fresh process. `--smoke` (tiny sizes, one rep) only prints;
a full run rewrites the "info" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial.distance import pdist, squareform

import fastsim
import fastsim.info as fi

SMOKE = os.environ.get("FASTSIM_BENCH_SMOKE", "") not in ("", "0")
FASTSIM = "fastsim"


# ------------------------------------------------------------------------------------------------ implementations
def authors_mi(x: np.ndarray, y: np.ndarray, sigma_x: float, sigma_y: float) -> float:
    """The autoencoder code's `MI` (pdist + svd, ε = 1e-8, base 2, α = 1.01), at given widths."""

    def gram(z, s):
        return np.exp(-(squareform(pdist(z, "euclidean")) ** 2) / (2 * s**2)) / z.shape[0]

    def ent(a):
        sv = np.linalg.svd(a, compute_uv=False)
        return np.log2(np.sum(sv**1.01) + 1e-8) / (1 - 1.01)

    ax, ay = gram(x, sigma_x), gram(y, sigma_y)
    axy = ax * ay / np.trace(ax * ay)
    return ent(ax) + ent(ay) - ent(axy)


def authors_stack(x: torch.Tensor, y: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor) -> np.ndarray:
    xs, ys = x.reshape(-1, *x.shape[-2:]).numpy(), y.reshape(-1, *y.shape[-2:]).numpy()
    return np.array([authors_mi(a, b, float(s), float(t)) for a, b, s, t in zip(xs, ys, sx.flatten(), sy.flatten())])


def plain_torch_mi(x: torch.Tensor, y: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """cdist + exp + eigvalsh, batched, float64, clamped and renormalised spectra."""

    def gram(z, s):
        return torch.exp(-torch.cdist(z, z).square() / (2 * s[..., None, None] ** 2)) / z.shape[-2]

    def ent(a):
        lam = torch.linalg.eigvalsh(a).clamp_min(0)
        lam = lam / lam.sum(-1, keepdim=True)
        return torch.log2((lam**1.01).sum(-1)) / (1 - 1.01)

    ax, ay = gram(x, sx), gram(y, sy)
    h = ax * ay
    return ent(ax) + ent(ay) - ent(h / h.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None])


def fastsim_mi(x, y, sx, sy, method="auto"):
    return fi.mutual_information(x, y, alpha=1.01, sigma=(sx, sy), method=method)


def plain_torch_kde(t: torch.Tensor, variance: float) -> torch.Tensor:
    d2 = torch.cdist(t, t).square()
    return -(torch.logsumexp(-d2 / (2 * variance), dim=-1) - math.log(t.shape[-2])).mean(-1) / math.log(2)


def fastsim_kde(t: torch.Tensor, variance: float) -> torch.Tensor:
    return fi.kde_mutual_information(t, noise_variance=variance).upper


# ------------------------------------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    make: Callable[[], tuple]
    impls: dict[str, Callable]
    too_slow: tuple[str, ...] = ()  # skipped by the pytest-benchmark file at full size
    note: str = ""
    kde: bool = False
    extra: dict = field(default_factory=dict)


def _pair(batch: tuple[int, ...], n: int, d_x: int, d_y: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(*batch, n, d_x, generator=gen, dtype=torch.float64)
    y = torch.tanh(x[..., :d_y] @ torch.randn(d_y, d_y, generator=gen, dtype=torch.float64))
    return x, y, fi.kernel_width(x, "median"), fi.kernel_width(y, "median")


def _mi_impls(lanczos: bool = False) -> dict[str, Callable]:
    return {
        FASTSIM: (lambda *a: fastsim_mi(*a, method="lanczos")) if lanczos else fastsim_mi,
        "fastsim exact": lambda *a: fastsim_mi(*a, method="exact"),
        "authors numpy/scipy (pdist + svd)": authors_stack,
        "plain torch (cdist + exp + eigvalsh)": plain_torch_mi,
    }


def _sizes():
    if SMOKE:
        return {"plane": ((2, 3), 20), "n2000": 60, "n8192": 120, "kde": 200}
    return {"plane": ((5, 40), 100), "n2000": 2000, "n8192": 8192, "kde": 8192}


_S = _sizes()
WORKLOADS: dict[str, Workload] = {
    "plane": Workload(
        make=lambda: _pair(_S["plane"][0], _S["plane"][1], 128, 32),
        impls={k: v for k, v in _mi_impls().items() if k != "fastsim exact"},
        note=f"{math.prod(_S['plane'][0])} MIs (layers × checkpoints) of N = {_S['plane'][1]}, d = 128 / 32",
    ),
    "n2000": Workload(
        make=lambda: _pair((), _S["n2000"], 64, 16),
        impls={k: v for k, v in _mi_impls().items() if k != "fastsim exact"},
        note=f"one MI at N = {_S['n2000']}, d = 64 / 16",
    ),
    "n8192": Workload(
        make=lambda: _pair((), _S["n8192"], 64, 16),
        impls=_mi_impls(lanczos=True),
        too_slow=("fastsim exact", "authors numpy/scipy (pdist + svd)", "plain torch (cdist + exp + eigvalsh)"),
        note=f"one MI at N = {_S['n8192']}, d = 64 / 16; fastsim: stochastic Lanczos quadrature (32 probes)",
    ),
    "kde8192": Workload(
        make=lambda: (torch.randn(_S["kde"], 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64), 0.5),
        impls={FASTSIM: fastsim_kde, "plain torch logsumexp (full N×N)": plain_torch_kde},
        note=f"KDE upper bound I(X;T), N = {_S['kde']}, d = 32, v = 0.5",
        kde=True,
    ),
}


# ------------------------------------------------------------------------------------------------------ measuring
def _value(out) -> np.ndarray:
    return np.asarray(out.detach().numpy() if isinstance(out, torch.Tensor) else out, dtype=np.float64).ravel()


def measure(spec: Workload, reps: int, skip_slow: bool = False) -> list[dict]:
    inputs = spec.make()
    impls = {k: v for k, v in spec.impls.items() if not (skip_slow and k in spec.too_slow)}
    rows = {}
    reference = None
    for name, fn in impls.items():
        start = time.perf_counter()
        out = _value(fn(*inputs))
        first = time.perf_counter() - start
        reference = out if reference is None else reference
        rows[name] = {"impl": name, "max_diff": float(np.abs(out - reference).max()), "times": [first]}
    names = list(impls)
    for r in range(reps - 1):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if rows[name]["times"][0] > 60:  # once is enough for the minutes-long exact peers
                continue
            start = time.perf_counter()
            impls[name](*inputs)
            rows[name]["times"].append(time.perf_counter() - start)
    base = statistics.median(rows[FASTSIM]["times"])
    for row in rows.values():
        row["median"] = statistics.median(row["times"])
        row["ratio"] = row["median"] / base
    if spec.kde:
        for name, row in rows.items():
            row["peak_mib"] = peak_memory(name, len(inputs[0]))
    return list(rows.values())


def peak_memory(impl: str, n: int) -> float:
    """Resident-set growth (MiB) of one KDE call in a fresh process."""
    cmd = [sys.executable, "-m", "bench.info_report", "--peak", impl, "--peak-n", str(n)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]


def _peak_child(impl: str, n: int) -> None:
    def hwm_kib() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

    fn = WORKLOADS["kde8192"].impls[impl]
    fn(torch.randn(16, 32, dtype=torch.float64), 0.5)  # warm-up: libraries loaded, op registered
    t = torch.randn(n, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current resident set
    base = hwm_kib()
    fn(t, 0.5)
    print(json.dumps({"peak_mib": (hwm_kib() - base) / 1024}))


def render(results: dict[str, list[dict]], reps: int) -> str:
    info = fastsim.build_info()
    lines = [
        "# Information estimators (fastsim.info)",
        "",
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {info['torch']}, {info['num_threads']} threads, float64, median of {reps} interleaved runs "
        "(minutes-long exact peers at N = 8192: one run). ratio = t_peer / t_fastsim; |Δ| = largest difference "
        "from fastsim's value (bits). Widths: the median-distance rule, the same for every implementation.",
        "",
        "Reproduce: `python -m bench.info_report`.",
        "",
    ]
    for name, rows in results.items():
        spec = WORKLOADS[name]
        peak = spec.kde
        lines += [f"## {name}: {spec.note}", ""]
        header = "| implementation | median (s) | ratio | |Δ| (bits) |" + (" peak memory (MiB) |" if peak else "")
        lines += [header, "|---|---:|---:|---:|" + ("---:|" if peak else "")]
        for row in rows:
            cells = f"| {row['impl']} | {row['median']:.4g} | {row['ratio']:.2f} | {row['max_diff']:.2e} |"
            lines.append(cells + (f" {row['peak_mib']:.1f} |" if peak else ""))
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one rep, print only")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--skip-slow", action="store_true", help="leave out the exact peers at N = 8192")
    parser.add_argument("--peak", help=argparse.SUPPRESS)
    parser.add_argument("--peak-n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak:
        _peak_child(args.peak, args.peak_n)
        return
    if args.smoke and not SMOKE:
        os.environ["FASTSIM_BENCH_SMOKE"] = "1"
        subprocess.run(
            [sys.executable, "-m", "bench.info_report", "--reps", "1", "--workloads", args.workloads], check=True
        )
        return
    names = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    results = {name: measure(WORKLOADS[name], args.reps, args.skip_slow) for name in names}
    text = render(results, args.reps)
    print(text)
    if not SMOKE:
        from bench.results_file import write_section

        write_section("info", text)


if __name__ == "__main__":
    main()
