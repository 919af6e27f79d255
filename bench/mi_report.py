"""Time fastsim.info's estimators against the authors' numpy/scipy code, plain torch and scikit-learn; write a table.

    python -m bench.mi_report [--smoke] [--reps 3] [--workloads mi-d784,mi-d50,plane,n1000,...] [--skip-slow]

Peers, in one process, interleaved: the autoencoder code's path (scipy `pdist` + numpy `svd`, ε = 1e-8, base 2;
information.md §1.2), plain torch (`cdist` + `exp` + batched `eigvalsh`, as repitl does), scikit-learn's
`mutual_info_regression` (KSG, a different estimator: time only, per evaluation, on as many evaluations as fit in
`KSG_BUDGET_S`), and for KDE a plain torch `logsumexp` over the full N×N matrix. Every peer's number is checked
against fastsim's (|Δ| in bits, reported). KDE peak memory is the resident-set growth of one call in a fresh
process. `--smoke` (tiny sizes, one rep) only prints; a full run rewrites the "info" section of bench/RESULTS.md.
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
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.distance import pdist, squareform

import fastsim
import fastsim.info as fi
from bench.devices import rotating_order
from bench.peak_memory import reset_high_water_mark, status_kib

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


KSG_BUDGET_S = 20.0  # scikit-learn's KSG is timed on the evaluations that fit in this many seconds


def _pair(batch: tuple[int, ...], n: int, d_x: int, d_y: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(*batch, n, d_x, generator=gen, dtype=torch.float64)
    y = torch.tanh(x[..., :d_y] @ torch.randn(d_y, d_y, generator=gen, dtype=torch.float64))
    return x, y, fi.kernel_width(x, "median"), fi.kernel_width(y, "median")


@dataclass
class PerEvaluation:
    """A peer timed on `timed` of the workload's evaluations; `seconds` is scaled to all of them."""

    seconds: float
    timed: int
    values: np.ndarray


def ksg_per_evaluation(x, y, sx, sy):
    """Seconds per evaluation of scikit-learn's KSG `mutual_info_regression(X, T[:, 0])` (one target column: it
    estimates per-feature MI, not I(X;T)), over the evaluations that fit in `KSG_BUDGET_S`; the value is NaN."""
    from sklearn.feature_selection import mutual_info_regression

    xs, ys = x.reshape(-1, *x.shape[-2:]).numpy(), y.reshape(-1, *y.shape[-2:]).numpy()
    start, done = time.perf_counter(), 0
    while done < len(xs) and (done == 0 or time.perf_counter() - start < KSG_BUDGET_S):
        mutual_info_regression(xs[done], ys[done][:, 0], random_state=0)
        done += 1
    per = (time.perf_counter() - start) / done
    return PerEvaluation(per * len(xs), done, np.full(len(xs), np.nan))


def _mi_impls(lanczos: bool = False, ksg: bool = False) -> dict[str, Callable]:
    # With the Lanczos estimator, the exact spectrum goes first: it is the reference of the |Δ| column.
    impls = {
        "fastsim exact": lambda *a: fastsim_mi(*a, method="exact"),
        FASTSIM: (lambda *a: fastsim_mi(*a, method="lanczos")) if lanczos else fastsim_mi,
        "authors numpy/scipy (pdist + svd)": authors_stack,
        "plain torch (cdist + exp + eigvalsh)": plain_torch_mi,
    }
    if not lanczos:
        del impls["fastsim exact"]
    if ksg:
        impls["scikit-learn KSG (time only)"] = ksg_per_evaluation
    return impls


# ------------------------------------------------------------------------------------------- information plane
PLANE_WIDTHS = (256, 128, 64, 128, 256)  # the layers T_1 … T_L of a deep autoencoder on 784-pixel images


def _plane(checkpoints: int, n: int):
    """`checkpoints` evaluations of a plane: X (C, N, 784), layers T (C, L, N, 256, zero-padded), Y (C, N, 784)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(checkpoints, n, 784, generator=gen, dtype=torch.float64)
    layers, h = [], x
    for width in PLANE_WIDTHS:
        h = torch.sigmoid(h @ torch.randn(h.shape[-1], width, generator=gen, dtype=torch.float64) / h.shape[-1] ** 0.5)
        layers.append(torch.nn.functional.pad(h, (0, max(PLANE_WIDTHS) - width)))
    y = torch.sigmoid(h @ torch.randn(h.shape[-1], 784, generator=gen, dtype=torch.float64) / h.shape[-1] ** 0.5)
    t = torch.stack(layers, dim=1)
    return x, t, y, fi.kernel_width(x, "iprl"), fi.kernel_width(t, "iprl"), fi.kernel_width(y, "iprl")


def fastsim_plane(x, t, y, sx, st, sy):
    mi_in, mi_out = fi.plane_mutual_information(x, t, y, alpha=1.01, sigma=(sx, st, sy))
    return torch.cat([mi_in, mi_out], dim=-1)


def _plane_pairs(x, t, y, sx, st, sy):
    """The pairs (X, T_l) and (T_l, Y) of every evaluation, each as (first, second, σ_first, σ_second) stacks."""
    layers = t.shape[1]
    x_l, y_l = x[:, None].expand(-1, layers, -1, -1), y[:, None].expand(-1, layers, -1, -1)
    return (x_l, t, sx[:, None].expand(-1, layers), st), (t, y_l, st, sy[:, None].expand(-1, layers))


def authors_plane(*plane):
    (a, b, sa, sb), (c, d, sc, sd) = _plane_pairs(*plane)
    first, second = authors_stack(a, b, sa, sb), authors_stack(c, d, sc, sd)
    return np.concatenate([first.reshape(sa.shape), second.reshape(sc.shape)], 1)


def plain_torch_plane(*plane):
    (a, b, sa, sb), (c, d, sc, sd) = _plane_pairs(*plane)
    return torch.cat([plain_torch_mi(a, b, sa, sb), plain_torch_mi(c, d, sc, sd)], dim=-1)


def _sizes():
    if SMOKE:
        return {"mi": 4, "plane": (2, 20), "n1000": 60, "n4096": 120, "n16384": 160, "kde": 200}
    return {"mi": 10_000, "plane": (100, 100), "n1000": 1000, "n4096": 4096, "n16384": 16384, "kde": 16384}


_S = _sizes()
_TOO_SLOW_EXACT = ("fastsim exact", "authors numpy/scipy (pdist + svd)", "plain torch (cdist + exp + eigvalsh)")
WORKLOADS: dict[str, Workload] = {
    "mi-d784": Workload(
        make=lambda: _pair((_S["mi"],), 100, 784, 50),
        impls=_mi_impls(ksg=True),
        note=f"{_S['mi']:,} MI evaluations at N = 100, X of d = 784 (images), T of d = 50",
    ),
    "mi-d50": Workload(
        make=lambda: _pair((_S["mi"],), 100, 50, 50),
        impls=_mi_impls(ksg=True),
        note=f"{_S['mi']:,} MI evaluations at N = 100, d = 50 / 50",
    ),
    "plane": Workload(
        make=lambda: _plane(*_S["plane"]),
        impls={
            FASTSIM: fastsim_plane,
            "authors numpy/scipy (pdist + svd), per pair": authors_plane,
            "plain torch (cdist + exp + eigvalsh), 2L pairs batched": plain_torch_plane,
        },
        note=f"information plane: {_S['plane'][0]} evaluations × I(X;T_l), I(T_l;Y) for L = {len(PLANE_WIDTHS)} "
        f"layers (widths {PLANE_WIDTHS}), N = {_S['plane'][1]}, X and Y of d = 784, the paper's σ rule; fastsim "
        "computes each variable's entropy once (3L + 2 spectra per evaluation), the per-pair pipelines 6L",
    ),
    "n1000": Workload(
        make=lambda: _pair((), _S["n1000"], 64, 16),
        impls=_mi_impls(),
        note=f"one MI at N = {_S['n1000']}, d = 64 / 16",
    ),
    "n4096": Workload(
        make=lambda: _pair((), _S["n4096"], 64, 16),
        impls=_mi_impls(lanczos=True),
        too_slow=_TOO_SLOW_EXACT,
        note=f"one MI at N = {_S['n4096']}, d = 64 / 16; fastsim: stochastic Lanczos quadrature (32 probes, 64 steps)",
    ),
    "n16384": Workload(
        make=lambda: _pair((), _S["n16384"], 64, 16),
        impls={FASTSIM: _mi_impls(lanczos=True)[FASTSIM]},
        note=f"one MI at N = {_S['n16384']}, d = 64 / 16; fastsim: stochastic Lanczos quadrature. The exact peers "
        "are not run: three dense 16384² eigendecompositions, O(N³), each ≈ 64× the N = 4096 one (≈ 7 min for fastsim "
        "exact here, the numpy SVD pipeline ≈ 45 min)",
    ),
    "kde16384": Workload(
        make=lambda: (torch.randn(_S["kde"], 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64), 0.5),
        impls={FASTSIM: fastsim_kde, "plain torch logsumexp (full N×N)": plain_torch_kde},
        note=f"KDE upper bound I(X;T), N = {_S['kde']}, d = 32, v = 0.5",
        kde=True,
    ),
}


# ------------------------------------------------------------------------------------------------------ measuring
def _value(out) -> np.ndarray:
    return np.asarray(out.detach().numpy() if isinstance(out, torch.Tensor) else out, dtype=np.float64).ravel()


def _run(fn: Callable, inputs: tuple) -> tuple[np.ndarray, float, int | None]:
    """(values, seconds, evaluations timed if only some were: `PerEvaluation` peers)."""
    start = time.perf_counter()
    out = fn(*inputs)
    elapsed = time.perf_counter() - start
    if isinstance(out, PerEvaluation):
        return out.values, out.seconds, out.timed
    return _value(out), elapsed, None


def measure(spec: Workload, reps: int, skip_slow: bool = False) -> list[dict]:
    inputs = spec.make()
    impls = {k: v for k, v in spec.impls.items() if not (skip_slow and k in spec.too_slow)}
    rows = {}
    reference = None
    for name, fn in impls.items():
        out, seconds, timed = _run(fn, inputs)
        reference = out if reference is None else reference
        rows[name] = {"impl": name, "max_diff": float(np.abs(out - reference).max()), "times": [seconds]}
        rows[name]["timed"] = timed
    names = list(impls)
    for name in rotating_order(names, reps - 1):
        if rows[name]["times"][0] > 60 or rows[name]["timed"] is not None:  # once is enough for these
            continue
        rows[name]["times"].append(_run(impls[name], inputs)[1])
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
    cmd = [sys.executable, "-m", "bench.mi_report", "--peak", impl, "--peak-n", str(n)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]


def _peak_child(impl: str, n: int) -> None:
    fn = WORKLOADS["kde16384"].impls[impl]
    fn(torch.randn(16, 32, dtype=torch.float64), 0.5)  # warm-up: libraries loaded, op registered
    t = torch.randn(n, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if not reset_high_water_mark():
        raise OSError("cannot reset the resident-set high-water mark (/proc/self/clear_refs)")
    base = status_kib("VmHWM")
    fn(t, 0.5)
    print(json.dumps({"peak_mib": (status_kib("VmHWM") - base) / 1024}))


def render(results: dict[str, list[dict]], reps: int) -> str:
    info = fastsim.build_info()
    lines = [
        "# Information estimators (fastsim.info)",
        "",
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {info['torch']}, {info['num_threads']} threads, float64, median of {reps} interleaved runs "
        "(peers over a minute per call: one run). ratio = t_peer / t_fastsim; |Δ| = largest difference from "
        "fastsim's value (bits). Widths: the median-distance rule unless stated, the same for every implementation.",
        "",
        "Reproduce: `python -m bench.mi_report`.",
        "",
    ]
    for name, rows in results.items():
        spec = WORKLOADS[name]
        peak = spec.kde
        lines += [f"## {name}: {spec.note}", ""]
        header = "| implementation | median (s) | ratio | |Δ| (bits) |" + (" peak memory (MiB) |" if peak else "")
        lines += [header, "|---|---:|---:|---:|" + ("---:|" if peak else "")]
        for row in rows:
            diff = "—" if math.isnan(row["max_diff"]) else f"{row['max_diff']:.2e}"
            impl = row["impl"] + (f" ({row['timed']} evaluations timed, scaled)" if row["timed"] is not None else "")
            cells = f"| {impl} | {row['median']:.4g} | {row['ratio']:.2f} | {diff} |"
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
            [sys.executable, "-m", "bench.mi_report", "--reps", "1", "--workloads", args.workloads], check=True
        )
        return
    names = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    results = {}
    for name in names:  # the section is rewritten after every workload: a killed run keeps what it measured
        results[name] = measure(WORKLOADS[name], args.reps, args.skip_slow)
        text = render(results, args.reps)
        if not SMOKE:
            from bench.results_file import write_section

            write_section("info", text)
    print(text)


if __name__ == "__main__":
    main()
