"""Workloads and implementations for the fused-ensemble solver benchmark (bench_solvers.py, solvers_report.py).

Workload (a) of issue 4: heat diffusion on `B` Erdős–Rényi graphs with `N ~ U{100..200}` nodes and mean degree
`k ~ U[2, 4]` (NGS's heat setting: `D ~ U[0.1, 2]` per undirected edge, hot spots), integrated to T = 2 at
rtol = atol = 1e-8 with output at NGS's 41 non-uniform test times (`time_grid((1, 2), (20, 20), 0.8)`).
Workload (b): all-to-all Kuramoto (NGS's global coupling K/N) with N = 1000 oscillators per trajectory, `B`
trajectories to T = 5 with NGS's 21 non-uniform times; the O(N) mean-field form everywhere (scipy: numpy).
Workload (c): coupled Rössler (NGS ranges) on `B` such graphs to T = 40, same tolerances.

Every implementation integrates the same trajectories with the same tolerances and returns `(T, N_total, ...)`
outputs, which the harness compares with fastsim's before timing:

- fastsim: `solve_ensemble` (fused dopri5, one OpenMP task per trajectory, torch's thread count);
- scipy `solve_ivp` DOP853 / RK45, looped per trajectory, right-hand side a scipy.sparse matvec (heat) or
  vectorised numpy (Rössler) — the fastest plain-scipy form;
- torchdiffeq dopri5 on the block-diagonal batch (one trajectory whose error norm spans all graphs), the
  right-hand side being fastsim's own module (its compiled SpMM);
- torchode dopri5, batched with per-sample step sizes: graphs zero-padded to the largest size, the RMS error
  norm taken over each sample's real nodes (the padding has zero derivative and zero error).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable

import numpy as np
import scipy.sparse
import torch
from scipy.integrate import solve_ivp

from fastsim import Graph
from fastsim.dynamics import CoupledRossler, HeatDiffusion, KuramotoMeanField
from fastsim.graphs import erdos_renyi, time_grid
from fastsim.solvers.fused import solve_ensemble

RTOL = ATOL = 1e-8


@dataclasses.dataclass
class Workload:
    """One benchmark problem: a batched module, its initial state and output times, plus per-graph views."""

    name: str
    system: torch.nn.Module
    y0: torch.Tensor  # (N,) or (N, 3)
    t: torch.Tensor  # (T,)
    ptr: list[int]
    scipy_rhs: list[Callable]  # per graph: f(t, y_flat) for solve_ivp

    @property
    def num_graphs(self) -> int:
        return len(self.ptr) - 1


def _graphs(num_graphs: int, seed: int) -> Graph:
    gen = torch.Generator().manual_seed(seed)
    sizes = torch.randint(100, 201, (num_graphs,), generator=gen).tolist()
    degrees = (2.0 + 2.0 * torch.rand(num_graphs, generator=gen, dtype=torch.float64)).tolist()
    return Graph.batch_graphs(
        [erdos_renyi(n, k, generator=seed * 100_003 + b) for b, (n, k) in enumerate(zip(sizes, degrees))]
    )


def heat_workload(num_graphs: int = 1000, seed: int = 0) -> Workload:
    """Workload (a)."""
    graph = _graphs(num_graphs, seed)
    system = HeatDiffusion(graph, **HeatDiffusion.sample_coefficients(graph, seed + 1))
    y0 = HeatDiffusion.initial_state(graph, seed + 2)
    t = time_grid((1.0, 2.0), (20, 20), 0.8, generator=seed + 3)
    ptr = graph.ptr.tolist()
    # -L_D as one scipy CSR matrix, sliced into its diagonal blocks
    n = graph.num_nodes
    d = system.diffusivity.numpy()
    w = scipy.sparse.csr_matrix((d, (graph.dst.numpy(), graph.src.numpy())), shape=(n, n))
    minus_l = (w - scipy.sparse.diags(np.asarray(w.sum(axis=1)).ravel())).tocsr()
    rhs = []
    for b in range(num_graphs):
        block = minus_l[ptr[b] : ptr[b + 1], ptr[b] : ptr[b + 1]].tocsr()
        rhs.append(lambda t, y, a=block: a @ y)
    return Workload("heat", system, y0, t, ptr, rhs)


def kuramoto_workload(num_graphs: int = 100, num_nodes: int = 1000, seed: int = 0) -> Workload:
    """Workload (b): B all-to-all populations of `num_nodes` oscillators (edgeless graphs: the mean field needs
    only the node partition)."""
    empty = torch.empty(2, 0, dtype=torch.int64)
    graph = Graph.batch_graphs([Graph.from_edge_index(empty, num_nodes) for _ in range(num_graphs)])
    system = KuramotoMeanField(graph, **KuramotoMeanField.sample_coefficients(graph, seed + 1))
    y0 = KuramotoMeanField.initial_state(graph, seed + 2)
    t = time_grid((5.0,), (20,), 0.6, generator=seed + 3)
    ptr = graph.ptr.tolist()
    rhs = []
    for b in range(num_graphs):
        omega = system.omega[ptr[b] : ptr[b + 1]].numpy()
        k_over_n = float(system.coupling[b]) / num_nodes

        def f(t, th, omega=omega, k_over_n=k_over_n):
            sin, cos = np.sin(th), np.cos(th)
            return omega + k_over_n * (cos * sin.sum() - sin * cos.sum())

        rhs.append(f)
    return Workload("kuramoto", system, y0, t, ptr, rhs)


def rossler_workload(num_graphs: int = 200, seed: int = 0, horizon: float = 40.0) -> Workload:
    """Workload (c): coupled Rössler, output at 41 uniform times on [0, horizon]."""
    graph = _graphs(num_graphs, seed)
    system = CoupledRossler(graph, **CoupledRossler.sample_coefficients(graph, seed + 1))
    y0 = CoupledRossler.initial_state(graph, seed + 2)
    t = torch.linspace(0.0, horizon, 41, dtype=torch.float64)
    ptr = graph.ptr.tolist()
    n = graph.num_nodes
    k = scipy.sparse.csr_matrix((system.coupling.numpy(), (graph.dst.numpy(), graph.src.numpy())), shape=(n, n))
    rhs = []
    for b in range(num_graphs):
        block = k[ptr[b] : ptr[b + 1], ptr[b] : ptr[b + 1]].tocsr()
        degree = np.asarray(block.sum(axis=1)).ravel()
        a, bb, c = (float(getattr(system, name)[b]) for name in ("a", "b", "c"))

        def f(t, s, block=block, degree=degree, a=a, bb=bb, c=c):
            x, y, z = s.reshape(-1, 3).T
            out = np.empty((x.size, 3))
            out[:, 0] = -y - z
            out[:, 1] = x + a * y + block @ y - degree * y
            out[:, 2] = bb + z * (x - c)
            return out.ravel()

        rhs.append(f)
    return Workload("rossler", system, y0, t, ptr, rhs)


# ------------------------------------------------------------------------------------------ implementations
def run_fastsim(w: Workload) -> torch.Tensor:
    sol = solve_ensemble(w.system, w.y0, w.t, rtol=RTOL, atol=ATOL)
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.ys


def run_scipy(w: Workload, method: str) -> torch.Tensor:
    t = w.t.numpy()
    y0 = w.y0.numpy()
    out = np.empty((t.size, *y0.shape))
    for b in range(w.num_graphs):
        lo, hi = w.ptr[b], w.ptr[b + 1]
        res = solve_ivp(w.scipy_rhs[b], (t[0], t[-1]), y0[lo:hi].ravel(), method=method, t_eval=t, rtol=RTOL, atol=ATOL)
        if not res.success:
            raise RuntimeError(res.message)
        out[:, lo:hi] = res.y.T.reshape(t.size, hi - lo, *y0.shape[1:])
    return torch.from_numpy(out)


def run_torchdiffeq(w: Workload) -> torch.Tensor:
    import torchdiffeq

    return torchdiffeq.odeint(w.system, w.y0, w.t, method="dopri5", rtol=RTOL, atol=ATOL)


class _Padded:
    """Maps the batched state `(N, *S)` to torchode's `(B, max_n · prod(S))` zero-padded layout and back."""

    def __init__(self, w: Workload) -> None:
        sizes = torch.tensor(w.ptr).diff()
        self.batch = w.num_graphs
        self.width = int(np.prod(w.y0.shape[1:], dtype=np.int64))
        self.max_n = int(sizes.max())
        rows = torch.repeat_interleave(torch.arange(self.batch), sizes)
        cols = torch.arange(int(sizes.sum())) - torch.tensor(w.ptr[:-1])[rows]
        self.index = rows * self.max_n + cols  # flat (B·max_n) position of each node
        self.values = (sizes * self.width).to(torch.float64)  # real values per sample, for the error norm
        self.shape = w.y0.shape

    def pad(self, y: torch.Tensor) -> torch.Tensor:
        out = y.new_zeros(self.batch * self.max_n, self.width)
        out[self.index] = y.reshape(-1, self.width)
        return out.reshape(self.batch, -1)

    def unpad(self, y: torch.Tensor) -> torch.Tensor:
        return y.reshape(self.batch * self.max_n, self.width)[self.index].reshape(self.shape)


def run_torchode(w: Workload) -> torch.Tensor:
    import torchode as to

    pad = _Padded(w)

    def f(t, y):
        return pad.pad(w.system(t, pad.unpad(y)))

    def norm(x):  # RMS over each sample's real values (padding contributes exact zeros)
        return torch.sqrt(x.square().sum(dim=1) / pad.values)

    term = to.ODETerm(f)
    controller = to.PIDController(atol=ATOL, rtol=RTOL, pcoeff=0.2, icoeff=0.65, dcoeff=0.0, term=term, norm=norm)
    solver = to.AutoDiffAdjoint(to.Dopri5(term=term), controller)
    y0 = pad.pad(w.y0)
    sol = solver.solve(to.InitialValueProblem(y0=y0, t_eval=w.t.expand(w.num_graphs, -1)))
    if not bool((sol.status == 0).all()):
        raise RuntimeError(f"torchode failed: {sol.status.unique().tolist()}")
    ys = sol.ys.transpose(0, 1)  # (T, B, max_n·width)
    return torch.stack([pad.unpad(y) for y in ys])


IMPLEMENTATIONS: dict[str, Callable[[Workload], torch.Tensor]] = {
    "fastsim fused dopri5": run_fastsim,
    "scipy DOP853 (loop)": lambda w: run_scipy(w, "DOP853"),
    "scipy RK45 (loop)": lambda w: run_scipy(w, "RK45"),
    "torchdiffeq dopri5 (block-diag batch)": run_torchdiffeq,
    "torchode dopri5 (batched)": run_torchode,
}
_NEEDS = {"torchdiffeq dopri5 (block-diag batch)": "torchdiffeq", "torchode dopri5 (batched)": "torchode"}


def available() -> dict[str, Callable[[Workload], torch.Tensor]]:
    """The implementations whose packages are installed (torchdiffeq/torchode are optional peers)."""
    return {k: f for k, f in IMPLEMENTATIONS.items() if k not in _NEEDS or importlib.util.find_spec(_NEEDS[k])}
