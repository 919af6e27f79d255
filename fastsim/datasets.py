"""Simulated graph-dynamics datasets: the `.npz` file written by `fastsim simulate`, and its loader.

File format, version 1
----------------------
One uncompressed NumPy `.npz` archive, read with `np.load(path)` (no pickled objects; `allow_pickle=False`
works). It holds `S` samples; sample `s` has `N_s` nodes, `E_s` directed edges (an undirected edge is stored
in both directions) and `T` output times (the same count for every sample, each sample with its own times).
Ragged arrays are concatenated over the samples; `node_offsets`/`edge_offsets` (`(S+1,)`, starting at 0)
give sample `s` the rows `offsets[s]:offsets[s+1]`.

| key | shape, dtype | content |
|---|---|---|
| `format_version` | `()` int64 | `1` |
| `metadata` | `()` str | JSON, see below |
| `num_nodes`, `num_edges` | `(S,)` int64 | `N_s`, `E_s` |
| `node_offsets`, `edge_offsets` | `(S+1,)` int64 | cumulative sums of `num_nodes`, `num_edges` |
| `mean_degree` | `(S,)` float64 | mean degree `k_s` (ER: the expected degree; RR: the degree; BA: `2m`) |
| `edge_index` | `(2, ΣE)` int64 | `[source; destination]`, node ids local to the sample (`0..N_s-1`) |
| `times` | `(S, T)` float64 | output times: `0 = t_0 < ... < t_{T-1} = max_time` |
| `trajectories` | `(ΣN, T, *F)` float64/32 | node states at the output times; `F = ()` or `(3,)` (`state_names`) |
| `node.<name>` | `(ΣN,)` float64 | per-node coefficient |
| `edge.<name>` | `(ΣE,)` float64 | per-edge coefficient, in the order of `edge_index` |
| `graph.<name>` | `(S,)` float64 | per-graph coefficient |
| `nfev`, `accepted`, `rejected` | `(S,)` int64 | solver statistics of the sample's trajectory |
| `status` | `(S,)` int8 | `STATUS_CODES`: 1 success, 2 max_num_steps, 3 non_finite, 4 step_size_underflow, ... |
| `wall_time` | `(S,)` float64 | seconds spent solving the sample (fused solver: its batch's solve time / batch size) |

`metadata` keys: `format_version`; `system` (a key of `SYSTEMS`); `state_names`; `coefficients` (name → "node",
"edge" or "graph"); `config` (every parameter that determines the data: `fastsim.simulate.SimulationConfig`);
`solver` ("fused:dopri5" or "odeint:<method>"); `status_names` (code → name); `first_sample` (index of the
file's first sample: 0, or a checkpoint chunk's start); `num_samples` (samples in the file); `complete` (False
in a checkpoint chunk `<out stem>.partial/<first sample>.npz`); `provenance` (command line, versions, threads,
batch size, creation time, resume points: everything that may differ between runs of the same config).

The edge coefficients of `Sample` are in the CSR order of `Sample.graph`, so that
`SYSTEMS[name].module(sample.graph, **sample.coefficients)` rebuilds the right-hand side (`Sample.system()`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fastsim.dynamics import SIR, SIS, CoupledRossler, HeatDiffusion, Kuramoto, KuramotoMeanField
from fastsim.graph import Graph

__all__ = [
    "FORMAT_VERSION",
    "STATUS_CODES",
    "SYSTEMS",
    "Dataset",
    "Sample",
    "SystemSpec",
    "load_dataset",
    "plot_sample",
]

FORMAT_VERSION = 1
# Solver status → stored code; 1-4 are `fastsim.solvers.Status`, 5-6 the stiff solvers' extra statuses.
STATUS_CODES = {
    "success": 1,
    "max_num_steps": 2,
    "non_finite": 3,
    "step_size_underflow": 4,
    "singular_matrix": 5,
    "newton_failure": 6,
}
_KINDS = ("node", "edge", "graph")
_REQUIRED = (
    *("num_nodes", "num_edges", "node_offsets", "edge_offsets", "mean_degree", "edge_index", "times"),
    *("trajectories", "nfev", "accepted", "rejected", "status", "wall_time"),
)


@dataclasses.dataclass(frozen=True)
class SystemSpec:
    """A dynamics module as `fastsim simulate` stores it.

    Attributes:
        module: the `nn.Module` class, built as `module(graph, **coefficients)`.
        coefficients: name → kind ("node" `(N,)`, "edge" `(E,)`, "graph" `(B,)`), as its samplers return them.
        state_names: one name per state component (`(N,)` state for one name, `(N, k)` for k names).
        time_grid: default `(max_time, num_steps, delta)` of the NGS-style output grid.
        uses_edges: False for all-to-all systems, whose samples are stored with no edges.
    """

    module: type[nn.Module]
    coefficients: dict[str, str]
    state_names: tuple[str, ...]
    time_grid: tuple[float, int, float]
    uses_edges: bool = True

    @property
    def state_shape(self) -> tuple[int, ...]:
        """Trailing state shape per node: `()` or `(k,)`."""
        return () if len(self.state_names) == 1 else (len(self.state_names),)


# Time grids: NGS's for heat (T = 2 in 40 steps, δ = 0.8), Kuramoto and Rössler (ngs_gnrk.md §1.4);
# epidemics: fastsim's choice (recovery rates 0.1-0.5 settle within ~20 time units).
SYSTEMS: dict[str, SystemSpec] = {
    "heat": SystemSpec(HeatDiffusion, {"diffusivity": "edge"}, ("T",), (2.0, 40, 0.8)),
    "kuramoto": SystemSpec(Kuramoto, {"omega": "node", "coupling": "edge"}, ("theta",), (5.0, 20, 0.6)),
    "kuramoto_mean_field": SystemSpec(
        KuramotoMeanField, {"omega": "node", "coupling": "graph"}, ("theta",), (5.0, 20, 0.6), uses_edges=False
    ),
    "rossler": SystemSpec(
        CoupledRossler,
        {"a": "graph", "b": "graph", "c": "graph", "coupling": "edge"},
        ("x", "y", "z"),
        (40.0, 40, 0.5),
    ),
    "sis": SystemSpec(SIS, {"infection_rate": "edge", "recovery_rate": "node"}, ("rho",), (20.0, 40, 0.5)),
    "sir": SystemSpec(SIR, {"infection_rate": "edge", "recovery_rate": "node"}, ("S", "I", "R"), (20.0, 40, 0.5)),
}


@dataclasses.dataclass(frozen=True)
class Sample:
    """One sample of a dataset.

    Attributes:
        index: its position in the dataset.
        system_name: a key of `SYSTEMS`.
        graph: the graph (CPU), rebuilt from the stored `edge_index`.
        coefficients: float64 tensors, edge coefficients in `graph`'s CSR order.
        times: `(T,)` float64 output times.
        trajectory: `(T, N, *F)` states at `times` (`trajectory[0]` is the initial state).
        mean_degree: the drawn mean degree.
        stats: `nfev`, `accepted`, `rejected` (ints), `status` (name), `wall_time` (seconds).
    """

    index: int
    system_name: str
    graph: Graph
    coefficients: dict[str, Tensor]
    times: Tensor
    trajectory: Tensor
    mean_degree: float
    stats: dict[str, Any]

    def system(self) -> nn.Module:
        """The right-hand side `f(t, y)` this sample was simulated with."""
        return SYSTEMS[self.system_name].module(self.graph, **self.coefficients)


class Dataset:
    """A loaded dataset file (see the module docstring); `dataset[s]` is a `Sample`.

    Attributes:
        path: the file. metadata: the parsed `metadata` JSON. arrays: every stored array by key.
        system_name, config, solver, complete: shortcuts into `metadata`.
    """

    def __init__(self, path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> None:
        self.path, self.arrays, self.metadata = path, arrays, metadata
        self.system_name: str = metadata["system"]
        self.config: dict[str, Any] = metadata["config"]
        self.solver: str = metadata["solver"]
        self.complete: bool = metadata["complete"]
        self._status_names = {code: name for name, code in STATUS_CODES.items()}

    def __len__(self) -> int:
        return int(self.arrays["num_nodes"].shape[0])

    def __iter__(self):
        return (self[s] for s in range(len(self)))

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, system={self.system_name!r}, samples={len(self)}, solver={self.solver!r})"

    def __getitem__(self, index: int) -> Sample:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int; got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample index must lie in [0, {len(self)}); got {index}")
        s, a = int(index) % len(self), self.arrays
        n0, n1 = int(a["node_offsets"][s]), int(a["node_offsets"][s + 1])
        e0, e1 = int(a["edge_offsets"][s]), int(a["edge_offsets"][s + 1])
        graph = Graph.from_edge_index(torch.from_numpy(a["edge_index"][:, e0:e1].copy()), n1 - n0)
        rows = {"node": slice(n0, n1), "edge": slice(e0, e1), "graph": slice(s, s + 1)}
        coefficients = {}
        for name, kind in self.metadata["coefficients"].items():
            value = torch.from_numpy(a[f"{kind}.{name}"][rows[kind]].copy())
            coefficients[name] = graph.to_csr_order(value) if kind == "edge" else value
        trajectory = torch.from_numpy(np.ascontiguousarray(np.swapaxes(a["trajectories"][n0:n1], 0, 1)))
        code = int(a["status"][s])
        stats = {k: int(a[k][s]) for k in ("nfev", "accepted", "rejected")}
        stats.update(status=self._status_names.get(code, f"unknown({code})"), wall_time=float(a["wall_time"][s]))
        return Sample(
            s,
            self.system_name,
            graph,
            coefficients,
            torch.from_numpy(a["times"][s].copy()),
            trajectory,
            float(a["mean_degree"][s]),
            stats,
        )


def pack(records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Concatenate per-sample records into the file's arrays (without `format_version`/`metadata`).

    A record holds `num_nodes`, `num_edges`, `mean_degree`, `edge_index (2, E)`, `times (T,)`,
    `trajectory (N, T, *F)`, `node.*`/`edge.*` arrays, `graph.*` scalars and the solver statistics.
    """
    if not records:
        raise ValueError("records must hold at least one sample")
    out: dict[str, np.ndarray] = {}
    for key in ("num_nodes", "num_edges", "nfev", "accepted", "rejected"):
        out[key] = np.array([r[key] for r in records], dtype=np.int64)
    out["status"] = np.array([r["status"] for r in records], dtype=np.int8)
    out["mean_degree"] = np.array([r["mean_degree"] for r in records], dtype=np.float64)
    out["wall_time"] = np.array([r["wall_time"] for r in records], dtype=np.float64)
    out["node_offsets"] = np.concatenate([[0], np.cumsum(out["num_nodes"])]).astype(np.int64)
    out["edge_offsets"] = np.concatenate([[0], np.cumsum(out["num_edges"])]).astype(np.int64)
    out["edge_index"] = np.concatenate([r["edge_index"] for r in records], axis=1).astype(np.int64)
    out["times"] = np.stack([r["times"] for r in records])
    out["trajectories"] = np.concatenate([r["trajectory"] for r in records])
    for key in records[0]:
        if key.startswith(("node.", "edge.")):
            out[key] = np.concatenate([r[key] for r in records]).astype(np.float64)
        elif key.startswith("graph."):
            out[key] = np.array([r[key] for r in records], dtype=np.float64)
    return out


def unpack(arrays: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The per-sample records of `pack`'s arrays (its inverse)."""
    records = []
    for s in range(arrays["num_nodes"].shape[0]):
        n0, n1 = arrays["node_offsets"][s], arrays["node_offsets"][s + 1]
        e0, e1 = arrays["edge_offsets"][s], arrays["edge_offsets"][s + 1]
        r: dict[str, Any] = {k: arrays[k][s].item() for k in ("num_nodes", "num_edges", "nfev", "accepted")}
        r.update({k: arrays[k][s].item() for k in ("rejected", "status", "mean_degree", "wall_time")})
        r.update(edge_index=arrays["edge_index"][:, e0:e1], times=arrays["times"][s])
        r["trajectory"] = arrays["trajectories"][n0:n1]
        for key, value in arrays.items():
            kind = key.split(".", 1)[0]
            if kind in _KINDS and "." in key:
                r[key] = {"node": value[n0:n1], "edge": value[e0:e1], "graph": value[s : s + 1]}[kind]
                r[key] = r[key].item() if kind == "graph" else r[key]
        records.append(r)
    return records


def write_dataset(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> None:
    """Write a dataset file atomically (a temporary file in the same folder, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(
            f,
            format_version=np.array(FORMAT_VERSION, dtype=np.int64),
            metadata=np.array(json.dumps(metadata)),
            **arrays,
        )
    os.replace(tmp, path)


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Load a dataset written by `fastsim simulate` (also a checkpoint chunk of `<out stem>.partial/`).

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not an `.npz` archive, not a fastsim dataset, or a `format_version` this fastsim cannot read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a fastsim dataset: not an .npz (zip) archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path} is not a readable .npz dataset: {err}") from None
    if "format_version" not in arrays or "metadata" not in arrays:
        raise ValueError(f"{path} is not a fastsim dataset: it has no format_version/metadata entries")
    version = arrays.pop("format_version")
    if version.shape != () or not np.issubdtype(version.dtype, np.integer) or int(version) != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version.tolist()!r}; this fastsim reads format_version {FORMAT_VERSION}"
        )
    try:
        metadata = json.loads(str(arrays.pop("metadata")))
        absent = [key for key in ("system", "config", "solver", "complete", "coefficients") if key not in metadata]
        if absent:
            raise KeyError(absent)
        coefficients = [f"{kind}.{name}" for name, kind in metadata["coefficients"].items()]
        missing = [k for k in (*_REQUIRED, *coefficients) if k not in arrays]
        if missing or metadata["system"] not in SYSTEMS:
            raise KeyError(missing or metadata["system"])
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a valid fastsim dataset (missing or invalid entry {err})") from None
    return Dataset(path, arrays, metadata)


def plot_sample(sample: Sample, out: str | os.PathLike, *, max_nodes: int = 50) -> Path:
    """Save a PNG of a sample's node trajectories against time (one panel per state component).

    Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch). Markers show the
    non-uniform output times; at most `max_nodes` nodes (the first ones) are drawn.

    Raises:
        ImportError: matplotlib is not installed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = SYSTEMS[sample.system_name].state_names
    y = sample.trajectory.reshape(*sample.trajectory.shape[:2], len(names))[:, :max_nodes].numpy()
    t = sample.times.numpy()
    fig = Figure(figsize=(7.0, 2.2 + 2.0 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for k, (ax, name) in enumerate(zip(axes, names)):
        ax.plot(t, y[:, :, k], marker=".", markersize=3, linewidth=0.8, alpha=0.7)
        ax.set_ylabel(name)
    axes[-1].set_xlabel("t")
    shown = f"{y.shape[1]} of {sample.graph.num_nodes} nodes" if y.shape[1] < sample.graph.num_nodes else "all nodes"
    axes[0].set_title(
        f"{sample.system_name}, sample {sample.index}: N = {sample.graph.num_nodes}, "
        f"E = {sample.graph.num_edges} ({shown}), status {sample.stats['status']}"
    )
    out = Path(out)
    fig.savefig(out, format="png", dpi=110)
    return out
