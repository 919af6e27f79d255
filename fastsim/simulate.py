"""Generate NGS-style datasets of graph dynamics (`fastsim simulate`), with checkpoints and exact resume.

Sample `s` is drawn from its own generator, seeded from `(seed, s)` (`sample_generator`), in this order:
`N ~ U{N_min..N_max}`, mean degree `k ~ U[k_min, k_max]`, the graph (`er`: Erdős–Rényi G(N, k/(N-1)), NGS's
choice; `rr`: random `d`-regular with `d = round(k)`, a node added when `N·d` is odd as GNRK does; `ba`:
Barabási–Albert with `m = int(k/2)` as GNRK; with `giant_component`, only the largest connected component is
kept, as GNRK does, so a sample may have fewer than N nodes), the system's coefficients (`sample_coefficients`),
its initial state (`initial_state`), both from the system's ranges or the named paper's (`PAPER_RANGES`), and
the output times (`fastsim.graphs.time_grid`: random steps in `[(1-δ)T/S, (1+δ)T/S]` summing exactly to `T`). A
sample therefore does not depend on the batch it was solved in, or on where a run was interrupted and resumed: a
resumed run writes the arrays of an uninterrupted one.

Integration is in float64. With `method="dopri5"` and a system the fused kernels support, a batch of graphs
(`Graph.batch_graphs`) is solved by `fastsim.solvers.fused.solve_ensemble`, each graph with its own step
sizes ("fused:dopri5"). Otherwise each sample is solved alone by `fastsim.solvers.odeint` (or the stiff
solvers, with the system's sparse Jacobian) ("odeint:<method>"): odeint takes one time grid for an unbatched
state, and a shared error norm over a block-diagonal batch would tie a sample's numbers to its batch.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastsim.datasets import STATUS_CODES, SYSTEMS, load_dataset, pack, unpack, write_dataset
from fastsim.dynamics import GNRK_HEAT, GNRK_ROSSLER, NGS_HEAT, NGS_ROSSLER
from fastsim.graph import Graph
from fastsim.graphs import barabasi_albert, erdos_renyi, random_regular, time_grid

__all__ = [
    "GRAPHS",
    "PAPER_RANGES",
    "DrawnSample",
    "SimulationConfig",
    "checkpoint_dir",
    "draw_sample",
    "generate",
    "sample_generator",
]

GRAPHS = ("er", "rr", "ba")
_STORAGE_DTYPES = {"float64": np.float64, "float32": np.float32}

# Coefficient and initial-state ranges by paper, for the systems that NGS and GNRK both simulate with the same
# equations (ngs_gnrk.md §1.4, §2.4). Kuramoto differs in form, so the system picks the paper: `kuramoto` is
# GNRK's per-edge coupling with its ranges, `kuramoto_mean_field` NGS's all-to-all one with its ranges.
PAPER_RANGES = {"ngs": {"heat": NGS_HEAT, "rossler": NGS_ROSSLER}, "gnrk": {"heat": GNRK_HEAT, "rossler": GNRK_ROSSLER}}


def _int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _number(value: object, name: str, low: float, *, open_low: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if not ok or not math.isfinite(value) or not (value > low if open_low else value >= low):
        raise ValueError(f"{name} must be a finite number {'>' if open_low else '>='} {low}; got {value!r}")
    return float(value)


def _pair(value: object, name: str) -> tuple[Any, Any]:
    values = [value] if not isinstance(value, Sequence) else list(value)
    if len(values) not in (1, 2):
        raise ValueError(f"{name} must be one value or a (min, max) pair; got {value!r}")
    low, high = values[0], values[-1]
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
        raise ValueError(f"{name} must satisfy min <= max; got {value!r}")
    return low, high


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Every parameter that determines a dataset (stored as `metadata["config"]`).

    `max_time`, `num_steps` and `delta` default to the system's NGS grid (`SYSTEMS[system].time_grid`);
    several `max_time`/`num_steps` values give NGS's multi-interval grids (`time_grid((1, 2), (20, 20), δ)`).
    `ranges` names the paper whose coefficient and initial-state ranges to draw from ("ngs" or "gnrk", heat and
    rossler only, `PAPER_RANGES`); None takes the system's defaults (NGS's for heat and rossler).
    `giant_component` keeps only each graph's largest connected component (GNRK's graphs; NGS keeps whole
    graphs, which for small mean degrees have isolated nodes and several components).
    """

    system: str
    num_samples: int = 1000
    num_nodes: tuple[int, int] = (100, 200)
    mean_degree: tuple[float, float] = (2.0, 4.0)
    graph: str = "er"
    max_time: tuple[float, ...] | None = None
    num_steps: tuple[int, ...] | None = None
    delta: float | None = None
    method: str = "dopri5"
    rtol: float = 1e-8
    atol: float = 1e-8
    max_steps: int = 100_000
    seed: int = 0
    solver: str = "auto"
    dtype: str = "float64"
    device: str = "cpu"
    ranges: str | None = None
    giant_component: bool = False

    def __post_init__(self) -> None:
        from fastsim.solvers.api import IMPLICIT_METHODS, METHODS

        if self.system not in SYSTEMS:
            raise ValueError(f"system must be one of {', '.join(SYSTEMS)}; got {self.system!r}")
        default_time, default_steps, default_delta = SYSTEMS[self.system].time_grid
        set_ = object.__setattr__  # normalising a frozen dataclass's own fields
        nodes = tuple(_int(v, "num_nodes", 2 if self.graph == "ba" else 1) for v in _pair(self.num_nodes, "num_nodes"))
        degree = tuple(_number(v, "mean_degree", 0.0) for v in _pair(self.mean_degree, "mean_degree"))
        if self.ranges is not None and self.system not in PAPER_RANGES.get(self.ranges, ()):
            papers = ", ".join(PAPER_RANGES)
            raise ValueError(
                f"ranges must be one of {papers} (for {', '.join(PAPER_RANGES['ngs'])}) or None; got "
                f"{self.ranges!r} for system {self.system!r}"
            )
        if self.graph not in GRAPHS:
            raise ValueError(f"graph must be one of {', '.join(GRAPHS)}; got {self.graph!r}")
        if not isinstance(self.giant_component, bool):
            raise ValueError(f"giant_component must be a bool; got {self.giant_component!r}")
        if SYSTEMS[self.system].uses_edges and degree[1] > nodes[0] - 1:
            raise ValueError(
                f"mean_degree must be <= min(num_nodes) - 1 = {nodes[0] - 1} (a simple graph on N nodes has "
                f"degree < N); got max mean_degree {degree[1]:g}"
            )
        if self.graph == "rr" and math.ceil(degree[0]) > math.floor(degree[1]):
            raise ValueError(f"mean_degree must contain an integer degree for graph rr; got {list(degree)}")
        if self.graph == "ba" and degree[0] < 2.0:
            raise ValueError(f"mean_degree must be >= 2 for graph ba (m = int(k/2) >= 1); got {degree[0]:g}")
        times = self.max_time if self.max_time is not None else default_time
        times = tuple(times) if isinstance(times, Sequence) else (times,)
        steps = self.num_steps if self.num_steps is not None else default_steps
        steps = tuple(steps) if isinstance(steps, Sequence) else (steps,)
        times = tuple(_number(v, "max_time", 0.0, open_low=True) for v in times)
        steps = tuple(_int(v, "num_steps", 1) for v in steps)
        if len(times) != len(steps) or any(b <= a for a, b in zip(times, times[1:])):
            raise ValueError(
                f"max_time must be increasing with one num_steps per value; got {list(times)}, {list(steps)}"
            )
        delta = _number(self.delta if self.delta is not None else default_delta, "delta", 0.0)
        if delta >= 1.0:
            raise ValueError(f"delta must lie in [0, 1); got {delta}")
        if self.method not in METHODS and self.method not in IMPLICIT_METHODS:
            raise ValueError(f"method must be one of {', '.join([*METHODS, *IMPLICIT_METHODS])}; got {self.method!r}")
        numbers = {name: _number(getattr(self, name), name, 0.0, open_low=True) for name in ("rtol", "atol")}
        for name, minimum in (("num_samples", 1), ("max_steps", 1), ("seed", 0)):
            numbers[name] = _int(getattr(self, name), name, minimum)
        if self.solver not in ("auto", "fused", "odeint"):
            raise ValueError(f"solver must be auto, fused or odeint; got {self.solver!r}")
        if self.dtype not in _STORAGE_DTYPES:
            raise ValueError(f"dtype must be float64 or float32; got {self.dtype!r}")
        try:
            device = torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"device must be a torch device such as cpu or cuda; got {self.device!r}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device cuda was asked for, but torch sees no CUDA device")
        numbers.update(num_nodes=nodes, mean_degree=degree, max_time=times, num_steps=steps, delta=delta)
        for name, value in {**numbers, "device": str(device)}.items():  # canonical values: equal configs, equal JSON
            set_(self, name, value)

    def to_json(self) -> dict[str, Any]:
        """The config as JSON-ready values (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def resolved_solver(self) -> str:
        """The solver that runs this config: "fused:dopri5" when the fused ensemble integrator can (method
        dopri5, a system with a fused kernel, a build with the op), else "odeint:<method>".

        Raises:
            ValueError: `solver="fused"` for a config the fused integrator cannot run.
        """
        fused = self.method == "dopri5" and _fused_supports(SYSTEMS[self.system].module)
        if self.solver == "fused" and not fused:
            raise ValueError(
                f"solver fused needs method dopri5, a system with a fused kernel and a fastsim build with the "
                f"ensemble op; got method {self.method!r}, system {self.system!r}"
            )
        return "fused:dopri5" if fused and self.solver != "odeint" else f"odeint:{self.method}"


def _fused_supports(module: type) -> bool:
    try:
        from fastsim.solvers.fused import FUSED_SYSTEMS
    except ImportError:
        return False
    return module in FUSED_SYSTEMS and hasattr(torch.ops.fastsim, "ensemble_dopri5")


@dataclasses.dataclass(frozen=True)
class DrawnSample:
    """The random inputs of one sample: graph (CPU), coefficients (edge ones in CSR order), `y0`, times."""

    graph: Graph
    coefficients: dict[str, Tensor]
    y0: Tensor
    times: Tensor
    mean_degree: float


def sample_generator(seed: int, index: int) -> torch.Generator:
    """Sample `index`'s generator, seeded from `(seed, index)` through numpy's `SeedSequence` (independent
    streams for neighbouring indices and seeds)."""
    hi, lo = np.random.SeedSequence([seed, index]).generate_state(2, np.uint32).tolist()
    return torch.Generator().manual_seed(((hi << 32) | lo) & (2**63 - 1))


def _draw_graph(config: SimulationConfig, n: int, k: float, gen: torch.Generator) -> Graph:
    if not SYSTEMS[config.system].uses_edges:
        return Graph.from_edge_index(torch.empty(2, 0, dtype=torch.int64), n)
    giant = config.giant_component
    if config.graph == "er":
        return erdos_renyi(n, min(k, n - 1.0), giant_component=giant, generator=gen)
    if config.graph == "rr":
        d = int(math.floor(k + 0.5))  # GNRK adds a node when N·d is odd
        return random_regular(n + (n * d) % 2, d, giant_component=giant, generator=gen)
    return barabasi_albert(n, int(k) // 2, generator=gen)  # connected by construction


def draw_sample(config: SimulationConfig, index: int) -> DrawnSample:
    """The graph, coefficients, initial state and times of sample `index` (see the module docstring)."""
    gen = sample_generator(config.seed, index)
    low, high = config.num_nodes
    n = int(torch.randint(low, high + 1, (1,), generator=gen))
    k_low, k_high = config.mean_degree
    k = k_low + (k_high - k_low) * float(torch.rand(1, generator=gen, dtype=torch.float64))
    if config.graph == "rr":  # the integer degree nearest to k, kept inside the range
        k = float(min(max(math.floor(k + 0.5), math.ceil(k_low)), math.floor(k_high)))
    elif config.graph == "ba":  # m = int(k/2) edges per new node: mean degree ≈ 2m
        k = 2.0 * int(k / 2)
    graph = _draw_graph(config, n, k, gen)
    spec = SYSTEMS[config.system]
    ranges = () if config.ranges is None else (PAPER_RANGES[config.ranges][config.system],)
    coefficients = spec.module.sample_coefficients(graph, gen, *ranges)
    y0 = spec.module.initial_state(graph, gen, *ranges)
    times = time_grid(config.max_time, config.num_steps, config.delta, gen)
    return DrawnSample(graph, coefficients, y0, times, k)


def _record(config: SimulationConfig, drawn: DrawnSample, ys: Tensor, stats: dict[str, Any]) -> dict[str, Any]:
    """A sample's record for `fastsim.datasets.pack` (trajectory `ys (T, N, *F)` stored node-major)."""
    graph = drawn.graph
    record = {
        "num_nodes": graph.num_nodes,
        "num_edges": graph.num_edges,
        "mean_degree": drawn.mean_degree,
        "edge_index": graph.edge_index().numpy(),
        "times": drawn.times.numpy(),
        "trajectory": np.ascontiguousarray(np.swapaxes(ys.cpu().numpy(), 0, 1), _STORAGE_DTYPES[config.dtype]),
        **stats,
    }
    for name, kind in SYSTEMS[config.system].coefficients.items():
        value = drawn.coefficients[name].cpu()
        if kind == "edge":  # stored in the order of edge_index
            value = graph.to_caller_order(value)
        record[f"{kind}.{name}"] = value.item() if kind == "graph" else value.numpy()
    return record


def _solve_fused(config: SimulationConfig, batch: list[DrawnSample]) -> list[dict[str, Any]]:
    from fastsim.solvers.fused import solve_ensemble

    spec, device = SYSTEMS[config.system], torch.device(config.device)
    graph = Graph.batch_graphs([d.graph for d in batch]).to(device)
    coeffs = {name: torch.cat([d.coefficients[name] for d in batch]).to(device) for name in spec.coefficients}
    system = spec.module(graph, **coeffs)
    y0 = torch.cat([d.y0 for d in batch]).to(device)
    t = torch.stack([d.times for d in batch]).to(device)
    start = time.perf_counter()
    sol = solve_ensemble(system, y0, t, rtol=config.rtol, atol=config.atol, max_steps=config.max_steps)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = (time.perf_counter() - start) / len(batch)
    ptr, s = graph.ptr.tolist(), sol.stats
    names = s.status_names()
    out = []
    for b, drawn in enumerate(batch):
        stats = {k: int(getattr(s, k)[b]) for k in ("nfev", "accepted", "rejected")}
        stats.update(status=STATUS_CODES[names[b]], wall_time=wall)
        out.append(_record(config, drawn, sol.ys[:, ptr[b] : ptr[b + 1]], stats))
    return out


def _solve_one(config: SimulationConfig, drawn: DrawnSample) -> dict[str, Any]:
    from fastsim.solvers import odeint
    from fastsim.solvers.api import IMPLICIT_METHODS

    device = torch.device(config.device)
    coeffs = {k: v.to(device) for k, v in drawn.coefficients.items()}
    system = SYSTEMS[config.system].module(drawn.graph.to(device), **coeffs)
    y0, t = drawn.y0.to(device), drawn.times.to(device)
    start = time.perf_counter()
    if config.method in IMPLICIT_METHODS:
        from fastsim.solvers.implicit import solve_implicit

        options = {"jac": system.jacobian, "max_num_steps": config.max_steps}
        ys, raw = solve_implicit(system, y0, t, config.method, config.rtol, config.atol, options)
        stats = {k: int(raw[k]) for k in ("nfev", "accepted", "rejected")} | {"status": STATUS_CODES[raw["status"]]}
    else:
        options = {"max_num_steps": config.max_steps}
        ys, raw = odeint(
            system, y0, t, method=config.method, rtol=config.rtol, atol=config.atol, options=options, return_stats=True
        )
        stats = {k: int(getattr(raw, k)[0]) for k in ("nfev", "accepted", "rejected")}
        stats["status"] = STATUS_CODES[raw.status_names()[0]]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    stats["wall_time"] = time.perf_counter() - start
    return _record(config, drawn, ys.detach(), stats)


def checkpoint_dir(out: str | os.PathLike) -> Path:
    """The checkpoint folder of a run writing `out`: `data.npz` → `data.partial/`."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".npz") + ".partial")


def _metadata(
    config: SimulationConfig, solver: str, first: int, count: int, provenance: dict[str, Any]
) -> dict[str, Any]:
    spec = SYSTEMS[config.system]
    return {
        "format_version": 1,
        "system": config.system,
        "state_names": list(spec.state_names),
        "coefficients": spec.coefficients,
        "config": config.to_json(),
        "solver": solver,
        "status_names": {str(code): name for name, code in STATUS_CODES.items()},
        "first_sample": first,
        "num_samples": count,
        "complete": first == 0 and count == config.num_samples,
        "provenance": provenance,
    }


def _chunks(folder: Path) -> list[Path]:
    """The checkpoint chunks in a folder, in sample order (temporary files start with a dot)."""
    return sorted(p for p in folder.glob("*.npz") if not p.name.startswith(".")) if folder.is_dir() else []


def _load_checkpoint(config: SimulationConfig, solver: str, folder: Path) -> tuple[list[dict], dict[str, Any]]:
    """The records of a checkpoint folder's chunks, checked against this run's config and solver."""
    records: list[dict[str, Any]] = []
    provenance: dict[str, Any] = {}
    for chunk in _chunks(folder):
        dataset = load_dataset(chunk)
        if dataset.config != config.to_json():
            diff = sorted(k for k, v in config.to_json().items() if dataset.config.get(k) != v)
            raise ValueError(f"cannot resume from {chunk}: it was made with different settings ({', '.join(diff)})")
        if dataset.solver != solver:
            raise ValueError(f"cannot resume from {chunk}: it was solved by {dataset.solver}, this run uses {solver}")
        if dataset.metadata.get("first_sample") != len(records):
            raise ValueError(f"cannot resume from {folder}: {chunk.name} does not start at sample {len(records)}")
        records += unpack(dataset.arrays)
        provenance = dataset.metadata["provenance"]
    return records, provenance


def _is_finished(config: SimulationConfig, solver: str, out: Path) -> bool:
    try:
        dataset = load_dataset(out)
    except (ValueError, OSError):
        return False
    return dataset.complete and dataset.config == config.to_json() and dataset.solver == solver


def generate(
    config: SimulationConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    checkpoint_every: int = 100,
    batch_size: int = 64,
    progress: bool = True,
    command: list[str] | None = None,
) -> Path:
    """Simulate `config.num_samples` samples and write them to `out` (format: `fastsim.datasets`).

    Every `checkpoint_every` samples the new samples are written as one chunk file `<first sample>.npz` (a
    dataset file with `metadata["first_sample"]`, written atomically) into `checkpoint_dir(out)`, so each
    checkpoint costs its own samples only. An interrupted run (killed, or stopped with Ctrl-C, which saves the
    samples since the last checkpoint) continues from there with `resume=True` and writes the same arrays as an
    uninterrupted run; only `wall_time` and `metadata["provenance"]` differ. The folder is removed at the end.

    Args:
        config: the dataset parameters. out: the `.npz` file to write (its folder must exist).
        resume: continue from `checkpoint_dir(out)` when it holds chunks (else start afresh; if `out` is already
            a complete dataset of this config, return at once).
        checkpoint_every: samples between checkpoints (>= 1). batch_size: graphs per fused solve (>= 1).
        progress: show a tqdm progress bar (stderr). command: the command line, stored in the provenance.

    Returns:
        The path written.

    Raises:
        ValueError: bad arguments, a checkpoint of another config, or an existing checkpoint without `resume`.
        FileNotFoundError: the folder of `out` does not exist.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    checkpoint_every = _int(checkpoint_every, "checkpoint_every", 1)
    batch_size = _int(batch_size, "batch_size", 1)
    if out.suffix != ".npz":
        raise ValueError(f"out must be a .npz file; got {str(out)!r}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the folder of out does not exist: {out.parent}")
    if out.is_dir():
        raise ValueError(f"out is a folder, not a file: {out}")
    solver, folder = config.resolved_solver(), checkpoint_dir(out)
    if _chunks(folder) and not resume:
        raise ValueError(f"a checkpoint {folder} exists: pass --resume to continue it, or delete it")
    if resume and not _chunks(folder) and out.is_file() and _is_finished(config, solver, out):
        return out  # the run finished before: nothing to resume
    records, provenance = _load_checkpoint(config, solver, folder) if resume else ([], {})
    if records:
        provenance["resumed_at"] = [*provenance.get("resumed_at", []), len(records)]
    provenance.update(
        command=command,
        fastsim_version=_version(),
        torch_version=torch.__version__,
        num_threads=torch.get_num_threads(),
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    start, saved = time.perf_counter(), len(records)

    def save(path: Path, first: int) -> None:
        provenance["seconds"] = provenance.get("seconds", 0.0) + time.perf_counter() - start
        meta = _metadata(config, solver, first, len(records) - first, provenance)
        write_dataset(path, pack(records[first:]), meta)

    bar = tqdm(total=config.num_samples, initial=len(records), unit="sample", disable=not progress, desc=config.system)
    try:
        while len(records) < config.num_samples:
            low = len(records)
            high = min(config.num_samples, low + batch_size, saved + checkpoint_every)
            batch = [draw_sample(config, i) for i in range(low, high)]
            if solver.startswith("fused"):
                records += _solve_fused(config, batch)
            else:
                records += [_solve_one(config, drawn) for drawn in batch]
            bar.update(high - low)
            if len(records) - saved >= checkpoint_every and len(records) < config.num_samples:
                folder.mkdir(exist_ok=True)
                save(folder / f"{saved:09d}.npz", saved)
                saved, start = len(records), time.perf_counter()
    except KeyboardInterrupt:
        if len(records) > saved:
            folder.mkdir(exist_ok=True)
            save(folder / f"{saved:09d}.npz", saved)
        raise
    finally:
        bar.close()
    save(out, 0)
    for chunk in _chunks(folder):
        chunk.unlink()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    return out


def _version() -> str:
    import fastsim

    return fastsim.__version__
