"""Stiff test problems: ROBER, HIRES, OREGO, VDPOL (and VDPOLM), and NGS's thresholded Kuramoto model.

The four small systems and their reference values at `t_end` are those of the *Test Set for IVP Solvers*
(F. Mazzia & C. Magherini, University of Bari, release 2.4, 2008; problem files `rober.f`, `hires.f`, `orego.f`,
`vdpol.f`, `vdpolm.f`, revision 1.2 of 2006-10-02), also distributed in the R package deTestSet (Mazzia, Cash &
Soetaert, J. Comput. Appl. Math. 2012, doi:10.1016/j.cam.2012.03.014; `R/ex_reference.R`, v1.1.7.4). The test set
computed them with RADAU5 in extended precision (uround = 1.01e-19, rtol = h0 = 1.1e-18). Each problem also
records the absolute tolerance the test set pairs with `rtol` (`atol = atol_ratio · rtol`): 1e-4·rtol for ROBER
(deTestSet's `rober()` defaults, rtol = 1e-10 with atol = 1e-14), `atol = rtol` for the others.

Accuracy is reported as the test set's "scd": `−log10(max_i |y_i − y_ref,i| / |y_ref,i|)`, the number of correct
significant digits of the worst component (`StiffProblem.scd`).

The thresholded Kuramoto model is the stiff problem of the NGS paper (Choi, Lee, Kahng, Jo, arXiv:2411.09120,
§1.6 of ../shared/research/ngs_gnrk.md): all-to-all Kuramoto oscillators whose pair (i, j) interacts only while
its phase difference is within `θ_th` of π/2 or 3π/2, so the coupling graph switches with the state.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from fastsim import ops
from fastsim.dynamics.jacobian import sparse_csr
from fastsim.graph import Graph

__all__ = [
    "StiffProblem",
    "Rober",
    "Hires",
    "Orego",
    "Vdpol",
    "Vdpolm",
    "TEST_SET",
    "thresholded_kuramoto",
    "thresholded_kuramoto_jacobian",
    "ThresholdedKuramoto",
]


class StiffProblem(ABC):
    """A small stiff test problem `dy/dt = rhs(t, y)`, `y(0) = y0`, with its reference value at `t_end`.

    Subclasses set `name`, `y0`, `t_end`, `reference`, `atol_ratio`, `source` and define `rhs` and `jac`.
    `rhs` accepts `y (..., n)` (a batch of states); `jac` takes `y (n,)` and returns the dense `(n, n)` `∂f/∂y`.
    """

    name: str
    y0: tuple[float, ...]
    t_end: float
    reference: tuple[float, ...]
    atol_ratio: float = 1.0
    source: str

    @property
    def n(self) -> int:
        return len(self.y0)

    def initial_state(self, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> Tensor:
        """`(n,)` initial value."""
        return torch.tensor(self.y0, dtype=dtype, device=device)

    def reference_state(self, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> Tensor:
        """`(n,)` reference solution at `t_end`."""
        return torch.tensor(self.reference, dtype=dtype, device=device)

    def atol(self, rtol: float) -> float:
        """The absolute tolerance the test set pairs with `rtol`."""
        return self.atol_ratio * rtol

    def scd(self, y_end: Tensor) -> float:
        """Correct significant digits: `−log10 max_i |y_i − ref_i| / |ref_i|` (inf if exact)."""
        ref = self.reference_state(device=y_end.device)
        rel = ((y_end.to(torch.float64) - ref).abs() / ref.abs()).max().item()
        return math.inf if rel == 0 else -math.log10(rel)

    @abstractmethod
    def rhs(self, t: Tensor | float, y: Tensor) -> Tensor: ...

    @abstractmethod
    def jac(self, t: Tensor | float, y: Tensor) -> Tensor: ...

    def __call__(self, t: Tensor | float, y: Tensor) -> Tensor:
        return self.rhs(t, y)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, t_end={self.t_end})"


def _dense(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    return torch.stack(
        [torch.stack([torch.as_tensor(v, dtype=like.dtype, device=like.device) for v in r]) for r in rows]
    )


class Rober(StiffProblem):
    """Robertson's chemical kinetics (ROBER), n = 3, t ∈ [0, 1e11]:

    `y1' = −k1 y1 + k3 y2 y3`, `y2' = k1 y1 − k2 y2² − k3 y2 y3`, `y3' = k2 y2²`, `k = (0.04, 3e7, 1e4)`,
    `y(0) = (1, 0, 0)`.
    """

    name = "rober"
    y0, t_end = (1.0, 0.0, 0.0), 1e11
    reference = (0.2083340149701255e-7, 0.8333360770334713e-13, 0.9999999791665050)
    atol_ratio = 1e-4
    source = "Bari test set rober.f (RADAU, uround 1.01e-19, rtol = atol = h0 = 1.1e-18); deTestSet rober()"
    k1, k2, k3 = 0.04, 3e7, 1e4

    def rhs(self, t: Tensor | float, y: Tensor) -> Tensor:
        y1, y2, y3 = y.unbind(-1)
        r1, r2, r3 = self.k1 * y1, self.k2 * y2 * y2, self.k3 * y2 * y3
        # (r1 − r3) − r2 as in rober.f: late in the run r1 ≈ r3 to 1e-10, so r1 − r3 is exact (Sterbenz) while
        # (r1 − r2) − r3 loses ~7 digits of y2' and with them the slow decay of y1.
        return torch.stack([r3 - r1, (r1 - r3) - r2, r2], dim=-1)

    def jac(self, t: Tensor | float, y: Tensor) -> Tensor:
        y1, y2, y3 = y.unbind(-1)
        k1, k2, k3 = self.k1, self.k2, self.k3
        return _dense([[-k1, k3 * y3, k3 * y2], [k1, -2 * k2 * y2 - k3 * y3, -k3 * y2], [0.0, 2 * k2 * y2, 0.0]], y)


class Hires(StiffProblem):
    """High Irradiance RESponse (HIRES, Schäfer 1975), n = 8, t ∈ [0, 321.8122]: `y' = L y + oks·e₁ + k7 y6 y8 v`.

    `L` is the linear reaction matrix of hires.f, `v = −e₆ + e₇ − e₈`; `k = (1.71, 0.43, 8.32, 0.69, 0.035, 8.32,
    280, 0.69, 0.69)`, `oks = 0.0007`, `y(0) = (1, 0, 0, 0, 0, 0, 0, 0.0057)`.
    """

    name = "hires"
    y0, t_end = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057), 321.8122
    reference = (
        0.7371312573325668e-3, 0.1442485726316185e-3, 0.5888729740967575e-4, 0.1175651343283149e-2,
        0.2386356198831331e-2, 0.6238968252742796e-2, 0.2849998395185769e-2, 0.2850001604814231e-2,
    )  # fmt: skip
    source = "Bari test set hires.f (RADAU5 on Cray C90, uround 1.01e-19, rtol = atol = h0 = 1.1e-18)"
    k = (1.71, 0.43, 8.32, 0.69, 0.035, 8.32, 280.0, 0.69, 0.69)
    oks = 0.0007

    def __init__(self) -> None:
        k1, k2, k3, k4, k5, k6, k7, k8, k9 = self.k
        L = torch.zeros(8, 8, dtype=torch.float64)
        L[0, 0], L[0, 1], L[0, 2] = -k1, k2, k6
        L[1, 0], L[1, 1] = k1, -(k2 + k3)
        L[2, 2], L[2, 3], L[2, 4] = -(k6 + k1), k2, k5
        L[3, 1], L[3, 2], L[3, 3] = k3, k1, -(k4 + k2)
        L[4, 4], L[4, 5], L[4, 6] = -(k5 + k1), k2, k2
        L[5, 3], L[5, 4], L[5, 5], L[5, 6] = k8, k1, -k2, k8
        L[6, 6] = -(k2 + k8 + k9)
        L[7, 6] = k2 + k8 + k9
        self._lin_t = L.t().contiguous()
        self._source = torch.tensor([self.oks, 0, 0, 0, 0, 0, 0, 0], dtype=torch.float64)
        self._v = torch.tensor([0, 0, 0, 0, 0, -1.0, 1.0, -1.0], dtype=torch.float64)

    def rhs(self, t: Tensor | float, y: Tensor) -> Tensor:
        lin = torch.addmm(self._source.to(y), y.reshape(-1, 8), self._lin_t.to(y)).reshape(y.shape)
        r7 = (y[..., 5] * y[..., 7] * self.k[6]).unsqueeze(-1)
        return torch.addcmul(lin, r7, self._v.to(y))

    def jac(self, t: Tensor | float, y: Tensor) -> Tensor:
        J = self._lin_t.t().to(y).clone()
        J[:, 5] += self._v.to(y) * (self.k[6] * y[7])
        J[:, 7] += self._v.to(y) * (self.k[6] * y[5])
        return J


class Orego(StiffProblem):
    """The Oregonator (OREGO, Belousov–Zhabotinskii reaction), n = 3, t ∈ [0, 360]:

    `y1' = k1 (y2 + y1 (1 − k2 y1 − y2))`, `y2' = (y3 − (1 + y1) y2) / k3`, `y3' = k4 (y1 − y3)`,
    `k = (77.27, 8.375e-6, 77.27, 0.161)`, `y(0) = (1, 2, 3)`.
    """

    name = "orego"
    y0, t_end = (1.0, 2.0, 3.0), 360.0
    reference = (0.1000814870318523e1, 0.1228178521549917e4, 0.1320554942846706e3)
    source = "Bari test set orego.f (RADAU, uround 1.01e-19, rtol = h0 = 1.1e-18, atol = 1.1e-40)"
    k1, k2, k3, k4 = 77.27, 8.375e-6, 77.27, 0.161

    def rhs(self, t: Tensor | float, y: Tensor) -> Tensor:
        y1, y2, y3 = y.unbind(-1)
        f1 = (y2 + y1 - y1 * (self.k2 * y1 + y2)) * self.k1  # k1 (y2 + y1 (1 − k2 y1 − y2)), no scalar − tensor
        return torch.stack([f1, (y3 - (y1 + 1) * y2) * (1 / self.k3), (y1 - y3) * self.k4], dim=-1)

    def jac(self, t: Tensor | float, y: Tensor) -> Tensor:
        y1, y2, _ = y.unbind(-1)
        k1, k2, k3, k4 = self.k1, self.k2, self.k3, self.k4
        return _dense(
            [
                [k1 * (1 - 2 * k2 * y1 - y2), k1 * (1 - y1), 0.0],
                [-y2 / k3, -(1 + y1) / k3, 1 / k3],
                [k4, 0.0, -k4],
            ],
            y,
        )


class Vdpol(StiffProblem):
    """Van der Pol with μ = 1000 in Hairer's scaling (VDPOL), n = 2, t ∈ [0, 2]:

    `y1' = y2`, `y2' = ((1 − y1²) y2 − y1) / ε`, `ε = 1/μ² = 1e-6`, `y(0) = (2, 0)`. It is the unscaled
    `x'' = μ (1 − x²) x' − x` on [0, 2000] (`Vdpolm`) with `t = μ τ`, `y1 = x`, `y2 = μ x'`.
    """

    name = "vdpol"
    y0, t_end = (2.0, 0.0), 2.0
    reference = (0.1706167732170483e1, -0.8928097010247975e0)
    source = "Bari test set vdpol.f (RADAU, uround 1.01e-19, rtol = atol = h0 = 1.1e-18)"
    eps = 1e-6

    def rhs(self, t: Tensor | float, y: Tensor) -> Tensor:
        y1, y2 = y.unbind(-1)
        return torch.stack([y2, ((y2 - y1 * y1 * y2) - y1) * (1 / self.eps)], dim=-1)

    def jac(self, t: Tensor | float, y: Tensor) -> Tensor:
        y1, y2 = y.unbind(-1)
        return _dense([[0.0, 1.0], [(-2 * y1 * y2 - 1) / self.eps, (1 - y1 * y1) / self.eps]], y)


class Vdpolm(StiffProblem):
    """Van der Pol with μ = 1000 unscaled (the test set's VDPOLM, deTestSet's `vdpol()`), n = 2, t ∈ [0, 2000]:

    `y1' = y2`, `y2' = μ (1 − y1²) y2 − y1`, `y(0) = (2, 0)`.
    """

    name = "vdpolm"
    y0, t_end = (2.0, 0.0), 2000.0
    reference = (0.1706167732170469e1, -0.8928097010248125e-3)
    source = "Bari test set vdpolm.f (RADAU, uround 1.01e-19, rtol = atol = h0 = 1.1e-18); deTestSet vdpol()"
    mu = 1000.0

    def rhs(self, t: Tensor | float, y: Tensor) -> Tensor:
        y1, y2 = y.unbind(-1)
        return torch.stack([y2, (y2 - y1 * y1 * y2) * self.mu - y1], dim=-1)

    def jac(self, t: Tensor | float, y: Tensor) -> Tensor:
        y1, y2 = y.unbind(-1)
        return _dense([[0.0, 1.0], [-2 * self.mu * y1 * y2 - 1, self.mu * (1 - y1 * y1)]], y)


TEST_SET: dict[str, StiffProblem] = {p.name: p for p in (Rober(), Hires(), Orego(), Vdpol(), Vdpolm())}


# ----------------------------------------------------------------------------------------- NGS thresholded Kuramoto
def _kept(diff: Tensor, threshold: float) -> Tensor:
    """NGS's rule for pair (i, j) with `Δθ = (θ_j − θ_i) mod 2π`: `|Δθ − π/2| < θ_th` or `|Δθ − 3π/2| < θ_th`.

    For `θ_th ≤ π/2` this is `|sin Δθ| > cos θ_th`; for `θ_th > π/2` every pair is kept.
    """
    d = torch.remainder(diff, 2 * math.pi)
    return ((d - math.pi / 2).abs() < threshold) | ((d - 1.5 * math.pi).abs() < threshold)


def _edge_terms(theta: Tensor, coupling: float | Tensor, threshold: float, graph: Graph) -> tuple[Tensor, Tensor]:
    """Per edge `e = j → i` (CSR order): `w_e = (K_b/N_b) a_e 1[kept]` and `Δθ_e = θ_j − θ_i`."""
    diff = theta[graph.src] - theta[graph.dst]
    sizes = graph.ptr.diff().to(theta.dtype).clamp(min=1)
    k = torch.as_tensor(coupling, dtype=theta.dtype, device=theta.device).expand(graph.num_graphs) / sizes
    w = k[graph.batch[graph.dst]] * _kept(diff, threshold).to(theta.dtype)
    if graph.edge_weight is not None:
        w = w * graph.edge_weight.to(theta.dtype)
    return w, diff


def _check(theta: Tensor, omega: Tensor | None, threshold: float, graph: Graph | None) -> None:
    if not isinstance(theta, Tensor) or not theta.is_floating_point() or theta.dim() != 1:
        raise ValueError(f"theta must be a 1-D floating tensor of phases (N,); got {getattr(theta, 'shape', theta)}")
    if omega is not None and (not isinstance(omega, Tensor) or omega.shape != theta.shape):
        raise ValueError(f"omega must be a tensor of the shape of theta {tuple(theta.shape)}")
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ValueError(f"threshold must be a positive angle in radians; got {threshold!r}")
    if graph is not None and graph.num_nodes != theta.numel():
        raise ValueError(f"theta must have graph.num_nodes = {graph.num_nodes} entries; got {theta.numel()}")


def thresholded_kuramoto(
    theta: Tensor, omega: Tensor, coupling: float | Tensor, threshold: float, graph: Graph | None = None
) -> Tensor:
    r"""NGS's thresholded (sparsified) Kuramoto right-hand side.

    `dθ_i/dt = ω_i + (K/N) Σ_{j ≠ i} a_ij 1[pair kept] sin(θ_j − θ_i)`, a pair being kept while
    `Δθ = (θ_j − θ_i) mod 2π` lies within `threshold` of π/2 or 3π/2 (NGS `kuramoto/simulation.py::get_adjacency`).
    The right-hand side is discontinuous in `θ`; `threshold ≥ π/2` keeps every pair (the ordinary model).

    Args:
        theta: `(N,)` phases.
        omega: `(N,)` natural frequencies.
        coupling: `K`, a number or a `(B,)` tensor (one per graph of a batch); divided by the graph's size `N_b`.
        threshold: `θ_th` in radians (NGS: π/2, π/3, π/4, π/6).
        graph: None for NGS's all-to-all population (O(N²)); else the pairs are the edges `j → i` of `graph`,
            weighted by `graph.edge_weight` (`a_ij`, default 1).

    Returns:
        `(N,)` `dθ/dt`.
    """
    _check(theta, omega, threshold, graph)
    if graph is None:
        diff = theta[None, :] - theta[:, None]  # diff[i, j] = θ_j − θ_i
        k = torch.as_tensor(coupling, dtype=theta.dtype, device=theta.device) / theta.numel()
        return omega + k * (_kept(diff, threshold).to(theta.dtype) * torch.sin(diff)).sum(dim=1)
    w, diff = _edge_terms(theta, coupling, threshold, graph)
    return omega + ops.segment_reduce(w * torch.sin(diff), graph.indptr, "sum")


def thresholded_kuramoto_jacobian(
    theta: Tensor, coupling: float | Tensor, threshold: float, graph: Graph | None = None
) -> Tensor:
    """`∂f/∂θ` of `thresholded_kuramoto` away from the switching surfaces (where the indicator is constant).

    `J_ij = (K/N) a_ij 1[kept] cos(θ_j − θ_i)` for `i ≠ j`, `J_ii = −Σ_{j≠i} J_ij`. Dense `(N, N)` for the
    all-to-all population, sparse CSR (pattern: the edges plus the diagonal) on a graph.
    """
    _check(theta, None, threshold, graph)
    if graph is None:
        diff = theta[None, :] - theta[:, None]
        k = torch.as_tensor(coupling, dtype=theta.dtype, device=theta.device) / theta.numel()
        J = k * _kept(diff, threshold).to(theta.dtype) * torch.cos(diff)
        J.diagonal().zero_()
        return J - torch.diag(J.sum(dim=1))
    w, diff = _edge_terms(theta, coupling, threshold, graph)
    off = w * torch.cos(diff)
    n = graph.num_nodes
    diag = -ops.segment_reduce(off, graph.indptr, "sum")
    nodes = torch.arange(n, device=theta.device)
    return sparse_csr(torch.cat([graph.dst, nodes]), torch.cat([graph.src, nodes]), torch.cat([off, diag]), n)


class ThresholdedKuramoto(nn.Module):
    """`thresholded_kuramoto` bound to its coefficients, as `forward(t, θ)` and `jacobian(t, θ)` for the solvers.

    Args:
        omega: `(N,)` natural frequencies.
        coupling: `K` (number or `(B,)` tensor).
        threshold: `θ_th` in radians.
        graph: None (all-to-all, NGS) or a `fastsim.Graph`.
    """

    def __init__(self, omega: Tensor, coupling: float | Tensor, threshold: float, graph: Graph | None = None) -> None:
        super().__init__()
        _check(omega, omega, threshold, graph)
        for name, value in (("omega", omega), ("coupling", torch.as_tensor(coupling))):
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"{name} must be finite; it contains NaN or inf")
        self.register_buffer("omega", omega)
        self.coupling, self.threshold, self.graph = coupling, float(threshold), graph

    def forward(self, t: Tensor | float, theta: Tensor) -> Tensor:
        return thresholded_kuramoto(theta, self.omega.to(theta.dtype), self.coupling, self.threshold, self.graph)

    def jacobian(self, t: Tensor | float, theta: Tensor) -> Tensor:
        return thresholded_kuramoto_jacobian(theta, self.coupling, self.threshold, self.graph)
