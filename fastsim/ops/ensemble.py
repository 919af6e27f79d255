"""Fused ensemble integrators: the whole adaptive loop of each trajectory, compiled.

`ensemble_rodas5` does the same for small stiff systems (the stiff test problems and NGS's thresholded
Kuramoto) with the Rosenbrock method Rodas5(4), exact Jacobians and a dense LU per step; CPU only.

`ensemble_dopri5` integrates one of the built-in graph dynamics on a batched, block-diagonal graph: graph
`b` of the batch is an independent trajectory with its own step sizes, accept/reject decisions, statistics
and status. The CPU kernel runs one OpenMP task per trajectory, the CUDA kernel one thread block per
trajectory; neither returns to Python or synchronises with the host inside the loop. The contract is in
docs/ops.md. Users normally call `fastsim.solvers.fused.solve_ensemble`, which reads the system's graph and
coefficients from a dynamics module.

No autograd: the outputs carry no gradient (use `fastsim.solvers.odeint` / `odeint_adjoint` for gradients).
"""

import math

import torch
from torch import Tensor

from fastsim import _backend
from fastsim.graph import Graph

__all__ = ["ENSEMBLE_SYSTEMS", "ENSEMBLE_STATUS", "STIFF_SYSTEMS", "ensemble_dopri5", "ensemble_rodas5"]

# system name → (state width: None for heat's free F, the required coefficient tensors and their widths)
ENSEMBLE_SYSTEMS: dict[str, tuple[int | None, dict[str, int]]] = {
    "heat": (None, {"edge_coeff": 1}),
    "kuramoto": (1, {"node_coeff": 1, "edge_coeff": 1}),
    "kuramoto_mean_field": (1, {"node_coeff": 1, "graph_coeff": 1}),
    "rossler": (3, {"edge_coeff": 1, "graph_coeff": 3}),
    "sis": (1, {"node_coeff": 1, "edge_coeff": 1}),
    "sir": (3, {"node_coeff": 1, "edge_coeff": 1}),
}
# The op's status codes, in order: 0 ok, 1 max steps exceeded, 2 non-finite state, 3 step size underflow.
ENSEMBLE_STATUS = ("success", "max_num_steps", "non_finite", "step_size_underflow")
# ensemble_rodas5: system name → (unknowns n, None for any; parameters per trajectory, None for 2 + n). Its status
# codes are ENSEMBLE_STATUS followed by 4 = "singular_matrix".
STIFF_SYSTEMS: dict[str, tuple[int | None, int | None]] = {
    "rober": (3, 3),  # (k1, k2, k3)
    "hires": (8, 0),
    "orego": (3, 0),
    "vdpol": (2, 1),  # (ε,)
    "thresholded_kuramoto": (None, None),  # (K, θ_th, ω_1 … ω_n)
}


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"{str(x.dtype).removeprefix('torch.')} {tuple(x.shape)} on {x.device}"
    return type(x).__name__


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number; got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value}")
    return float(value)


def _check_state(system: str, y0: object, graph: Graph) -> Tensor:
    width = ENSEMBLE_SYSTEMS[system][0]
    expected = {None: "(N,) or (N, F)", 1: "(N,)", 3: "(N, 3)"}[width]
    expected = expected.replace("N", str(graph.num_nodes))
    if not isinstance(y0, Tensor) or y0.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"y0 must be a float32 or float64 tensor of shape {expected}; got {_describe(y0)}")
    ok_shape = (
        y0.dim() >= 1
        and y0.shape[0] == graph.num_nodes
        and {
            None: y0.dim() == 1 or (y0.dim() == 2 and y0.shape[1] >= 1),
            1: y0.dim() == 1,
            3: y0.dim() == 2 and y0.shape[1] == 3,
        }[width]
    )
    if not ok_shape:
        raise ValueError(f"y0 must have shape {expected} for system {system!r}; got {tuple(y0.shape)}")
    if y0.device != graph.device:
        raise ValueError(f"y0 must be on the graph's device {graph.device}; got {y0.device}")
    return y0.detach().contiguous()


def check_t_eval(t_eval: object, num_graphs: int, device: torch.device) -> Tensor:
    """`t_eval` as a contiguous float64 `(T,)` or `(B, T)` tensor; finite and strictly increasing per row.

    Raises:
        TypeError: not a floating tensor.
        ValueError: wrong shape or device, NaN/inf, or not strictly increasing.
    """
    if not isinstance(t_eval, Tensor) or not t_eval.is_floating_point():
        raise TypeError(f"t_eval must be a floating tensor of shape (T,) or (B, T); got {_describe(t_eval)}")
    if not (t_eval.dim() == 1 or (t_eval.dim() == 2 and t_eval.shape[0] == num_graphs)) or t_eval.shape[-1] < 1:
        shape = tuple(t_eval.shape)
        raise ValueError(f"t_eval must have shape (T,) or (B, T) = ({num_graphs}, T) with T >= 1; got {shape}")
    if t_eval.device != device:
        raise ValueError(f"t_eval must be on the graph's device {device}; got {t_eval.device}")
    t = t_eval.detach().to(torch.float64).contiguous()
    if torch.compiler.is_compiling():  # data checks need a host sync; compiled callers pass checked times
        return t
    if not bool(torch.isfinite(t).all()):
        raise ValueError("t_eval must be finite; it contains NaN or inf")
    if t.shape[-1] > 1 and not bool((torch.diff(t, dim=-1) > 0).all()):
        raise ValueError("t_eval must be strictly increasing (t_eval[..., 0] is the initial time)")
    return t


def _check_coeff(name: str, value: object, rows: int, width: int, y0: Tensor, system: str) -> Tensor | None:
    if width == 0:
        if value is not None:
            raise ValueError(f"{name} must be None for system {system!r}")
        return None
    shape = (rows,) if width == 1 else (rows, width)
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor of shape {shape} for {system!r}; got {_describe(value)}")
    if tuple(value.shape) != shape or value.device != y0.device:
        raise ValueError(f"{name} must have shape {shape} on {y0.device} for {system!r}; got {_describe(value)}")
    return value.detach().to(y0.dtype).contiguous()


def ensemble_dopri5(
    graph: Graph,
    system: str,
    y0: Tensor,
    t_eval: Tensor,
    *,
    node_coeff: Tensor | None = None,
    edge_coeff: Tensor | None = None,
    graph_coeff: Tensor | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    first_step: float | None = None,
    max_steps: int = 100_000,
) -> tuple[Tensor, Tensor, Tensor]:
    """Adaptive Dormand–Prince 5(4) for each graph of a batched graph, fused into one compiled call.

    Each trajectory (graph `b`, nodes `ptr[b]:ptr[b+1]`) runs its own loop: FSAL stages, the error norm
    `|h| · RMS_i(err_i / (atol + rtol · max(|y_i|, |y_new_i|)))` over that trajectory's state only, the PI
    controller of `fastsim.solvers.PIController` (safety 0.9, factors in [0.2, 10], β = 0.04), Hairer's first
    step unless `first_step` is given, and the quartic dense output at the output times (steps never stop at
    output times; the last step lands on `t_eval[..., -1]`).

    Args:
        graph: batched graph (`Graph.batch_graphs`); edges must not cross graphs.
        system: one of `ENSEMBLE_SYSTEMS`: "heat", "kuramoto", "kuramoto_mean_field", "rossler", "sis", "sir".
        y0: `(N,)`, or `(N, 3)` for "rossler"/"sir", or `(N, F)` for "heat"; float32 or float64.
        t_eval: `(T,)` shared or `(B, T)` per-trajectory output times, strictly increasing;
            `t_eval[..., 0]` is the initial time.
        node_coeff, edge_coeff, graph_coeff: the system's coefficients (docs/ops.md): heat `edge=D (E,)`;
            kuramoto `node=ω (N,)`, `edge=K (E,)`; kuramoto_mean_field `node=ω`, `graph=K (B,)`; rossler
            `edge=K`, `graph=(a, b, c) (B, 3)`; sis/sir `node=γ (N,)`, `edge=β (E,)`. Edge values in CSR
            order.
        rtol, atol: tolerances (> 0). first_step: initial step (> 0) or None for the heuristic.
        max_steps: attempted steps per trajectory before it stops with status 1.

    Returns:
        `ys (T, *y0.shape)` (NaN at the output times a stopped trajectory did not reach), `stats (B, 4)` int64
        `[nfev, accepted, rejected, status]` with status codes `ENSEMBLE_STATUS`, and `t_final (B,)` float64.

    Raises:
        TypeError, ValueError: a bad argument (named in the message).
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a fastsim.Graph; got {type(graph).__name__}")
    if system not in ENSEMBLE_SYSTEMS:
        raise ValueError(f"system must be one of {tuple(ENSEMBLE_SYSTEMS)}; got {system!r}")
    y0 = _check_state(system, y0, graph)
    t = check_t_eval(t_eval, graph.num_graphs, graph.device)
    rtol, atol = _positive("rtol", rtol), _positive("atol", atol)
    step = 0.0 if first_step is None else _positive("first_step", first_step)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int; got {max_steps!r}")
    widths = ENSEMBLE_SYSTEMS[system][1]
    rows = {"node_coeff": graph.num_nodes, "edge_coeff": graph.num_edges, "graph_coeff": graph.num_graphs}
    given = {"node_coeff": node_coeff, "edge_coeff": edge_coeff, "graph_coeff": graph_coeff}
    coeffs = {k: _check_coeff(k, v, rows[k], widths.get(k, 0), y0, system) for k, v in given.items()}
    if (
        not torch.compiler.is_compiling()
        and graph.num_edges > 0
        and bool((graph.batch[graph.src] != graph.batch[graph.dst]).any())
    ):
        raise ValueError(
            "graph has edges between different graphs of the batch; ensemble graphs must be block-diagonal"
        )
    return _backend.op("ensemble_dopri5", y0.device)(
        graph.ptr, graph.indptr, graph.src, coeffs["node_coeff"], coeffs["edge_coeff"], coeffs["graph_coeff"],
        y0, t, system, rtol, atol, step, max_steps,
    )  # fmt: skip


@torch.library.register_fake("fastsim::ensemble_dopri5")
def _ensemble_dopri5_fake(
    ptr,
    indptr,
    src,
    node_coeff,
    edge_coeff,
    graph_coeff,
    y0,
    t_eval,
    system,
    rtol,
    atol,
    first_step,
    max_steps,
):
    B, T = ptr.shape[0] - 1, t_eval.shape[-1]
    ys = y0.new_empty((T, *y0.shape))
    stats = torch.empty((B, 4), dtype=torch.int64, device=y0.device)
    return ys, stats, torch.empty((B,), dtype=torch.float64, device=y0.device)


def ensemble_rodas5(
    system: str,
    y0: Tensor,
    params: Tensor,
    t_eval: Tensor,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    first_step: float | None = None,
    max_steps: int = 100_000,
) -> tuple[Tensor, Tensor, Tensor]:
    """Adaptive Rodas5(4) for B independent trajectories of a small stiff system, fused into one compiled call.

    Each trajectory runs the algorithm of `fastsim.solvers.implicit.solve_implicit(method="rodas5")` with the
    system's exact Jacobian: one dense LU of `I/(hγ) − J` per attempted step, the error norm
    `RMS_i(err_i / (atol + rtol · max(|y_i|, |y_new_i|)))`, Gustafsson's controller and the order-4 dense output.
    One OpenMP task per trajectory; the kernel never returns to Python inside the loop.

    Args:
        system: a key of `STIFF_SYSTEMS`: "rober", "hires", "orego", "vdpol" (formulas of
            `fastsim.dynamics.stiff`) or "thresholded_kuramoto" (NGS's all-to-all form).
        y0: `(B, n)` float64 initial states on the CPU.
        params: `(B, P)` float64 per-trajectory parameters, laid out as `STIFF_SYSTEMS` notes.
        t_eval: `(T,)` shared or `(B, T)` per-trajectory output times, strictly increasing; `t_eval[..., 0]` is
            the initial time.
        rtol, atol: tolerances (> 0). first_step: initial step (> 0) or None for Hairer's heuristic.
        max_steps: attempted steps per trajectory before it stops with status 1.

    Returns:
        `ys (T, B, n)` (NaN at output times a stopped trajectory did not reach), `stats (B, 5)` int64
        `[nfev, accepted, rejected, status, njev]` (status: `ENSEMBLE_STATUS` codes, then 4 = singular matrix),
        and `t_final (B,)` float64.

    Raises:
        TypeError, ValueError: a bad argument (named in the message), or tensors not on the CPU.
    """
    if system not in STIFF_SYSTEMS:
        raise ValueError(f"system must be one of {tuple(STIFF_SYSTEMS)}; got {system!r}")
    if not isinstance(y0, Tensor) or y0.dtype != torch.float64 or y0.dim() != 2:
        raise TypeError(f"y0 must be a float64 tensor of shape (B, n); got {_describe(y0)}")
    if y0.device.type != "cpu":
        raise ValueError(f"ensemble_rodas5 has a CPU kernel only; y0 is on {y0.device}")
    B, n = y0.shape
    want_n, want_p = STIFF_SYSTEMS[system]
    want_p = 2 + n if want_p is None else want_p
    if want_n is not None and n != want_n:
        raise ValueError(f"system {system!r} has {want_n} unknowns; y0 has shape {tuple(y0.shape)}")
    if not isinstance(params, Tensor) or params.dtype != torch.float64:
        raise TypeError(f"params must be a float64 tensor of shape ({B}, {want_p}); got {_describe(params)}")
    if tuple(params.shape) != (B, want_p) or params.device != y0.device:
        raise ValueError(f"params must have shape ({B}, {want_p}) on the CPU for {system!r}; got {_describe(params)}")
    if not torch.compiler.is_compiling() and not bool(torch.isfinite(params).all()):
        raise ValueError("params must be finite")
    t = check_t_eval(t_eval, B, y0.device)
    rtol, atol = _positive("rtol", rtol), _positive("atol", atol)
    step = 0.0 if first_step is None else _positive("first_step", first_step)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int; got {max_steps!r}")
    return torch.ops.fastsim.ensemble_rodas5.default(
        y0.detach().contiguous(), params.detach().contiguous(), t, system, rtol, atol, step, max_steps
    )


@torch.library.register_fake("fastsim::ensemble_rodas5")
def _ensemble_rodas5_fake(y0, params, t_eval, system, rtol, atol, first_step, max_steps):
    B, T = y0.shape[0], t_eval.shape[-1]
    stats = torch.empty((B, 5), dtype=torch.int64, device=y0.device)
    return y0.new_empty((T, *y0.shape)), stats, torch.empty((B,), dtype=torch.float64, device=y0.device)
