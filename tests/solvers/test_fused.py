"""Fused ensemble dopri5 (fastsim.solvers.fused, op fastsim::ensemble_dopri5): agreement with the generic
engine and with the exact heat solution, per-trajectory independence (step counts, NaN isolation, statuses),
per-row output times, float32, torch.compile/opcheck, and hostile inputs."""

import dataclasses

import numpy as np
import pytest
import torch

from fastsim import Graph
from fastsim.dynamics import SIR, SIS, Burgers2D, CoupledRossler, HeatDiffusion, Kuramoto, KuramotoMeanField
from fastsim.graphs import divide_randomly, erdos_renyi
from fastsim.ops.ensemble import ensemble_dopri5
from fastsim.solvers import Status, odeint
from fastsim.solvers.fused import FUSED_SYSTEMS, solve_ensemble

F64 = torch.float64
SIZES = (12, 30, 7, 21)  # different sizes, so trajectories need different step sequences
# constructor argument → node / edge / graph coefficient, per module type
ARGS = {
    HeatDiffusion: {"diffusivity": "edge"},
    Kuramoto: {"omega": "node", "coupling": "edge"},
    KuramotoMeanField: {"omega": "node", "coupling": "graph"},
    CoupledRossler: {"a": "graph", "b": "graph", "c": "graph", "coupling": "edge"},
    SIS: {"infection_rate": "edge", "recovery_rate": "node"},
    SIR: {"infection_rate": "edge", "recovery_rate": "node"},
}
HORIZON = {CoupledRossler: 5.0}  # chaotic: a short horizon keeps the comparison well conditioned


def batch(sizes=SIZES, seed=0, mean_degree=3.0):
    graphs = [erdos_renyi(n, mean_degree, generator=seed + 10 * k) for k, n in enumerate(sizes)]
    return Graph.batch_graphs(graphs), graphs


def build(cls, seed=0, sizes=SIZES):
    graph, graphs = batch(sizes, seed)
    system = cls(graph, **cls.sample_coefficients(graph, seed + 1))
    y0 = cls.initial_state(graph, seed + 2)
    if cls in (SIS, SIR):  # a smooth, non-trivial start in the interior
        y0 = y0 * 0.6 + 0.2 if cls is SIS else torch.softmax(torch.randn(y0.shape, dtype=F64), dim=1)
    return system, y0, graphs


def single(system, graphs, b):
    """The module of graph b alone (coefficients sliced out of the batched module)."""
    g = system.graph
    n0, n1 = g.ptr[b].item(), g.ptr[b + 1].item()
    e0, e1 = g.indptr[n0].item(), g.indptr[n1].item()
    cut = {"node": lambda v: v[n0:n1], "edge": lambda v: v[e0:e1], "graph": lambda v: v[b : b + 1]}
    kwargs = {name: cut[kind](getattr(system, name)) for name, kind in ARGS[type(system)].items()}
    return type(system)(graphs[b], **kwargs), slice(n0, n1)


def output_times(horizon, steps=10, seed=3):
    """`steps + 1` non-uniform times from 0 to `horizon` (NGS's divide_randomly, δ = 0.5)."""
    steps = divide_randomly(horizon, steps, 0.5, generator=seed)
    return torch.cat([torch.zeros(1, dtype=F64), steps.cumsum(0)])


@pytest.mark.parametrize("cls", list(ARGS), ids=lambda c: c.__name__)
def test_matches_generic_engine(cls):
    system, y0, graphs = build(cls)
    t = output_times(HORIZON.get(cls, 2.0))
    sol = solve_ensemble(system, y0, t, rtol=1e-10, atol=1e-12)
    assert sol.success and sol.ys.shape == (t.numel(), *y0.shape)
    assert sol.stats.status.tolist() == [Status.success] * len(SIZES)
    torch.testing.assert_close(sol.ys[0], y0, rtol=0, atol=0)
    # the whole batch as one trajectory of the generic engine (a different step sequence): ≤ 1e-7
    whole = odeint(system, y0, t, method="dopri5", rtol=1e-10, atol=1e-12)
    assert (sol.ys - whole).abs().max().item() <= 1e-7
    # each graph alone in the generic engine: the same algorithm, so the same steps and ~the same numbers
    for b in range(len(graphs)):
        alone, rows = single(system, graphs, b)
        ys, stats = odeint(alone, y0[rows], t, method="dopri5", rtol=1e-10, atol=1e-12, return_stats=True)
        assert (sol.ys[:, rows] - ys).abs().max().item() <= 1e-9
        assert sol.stats.accepted[b].item() == stats.accepted.item()
        assert sol.stats.rejected[b].item() == stats.rejected.item()
        assert sol.stats.nfev[b].item() == stats.nfev.item()


def test_heat_matches_exact_solution():
    graph, _ = batch((25, 40, 17), seed=4)
    d = torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(5), dtype=F64) * 1.9 + 0.1
    y0 = torch.rand(graph.num_nodes, generator=torch.Generator().manual_seed(6), dtype=F64)
    t = output_times(2.0, steps=20)
    sol = solve_ensemble(HeatDiffusion(graph, d), y0, t, rtol=1e-10, atol=1e-12)
    w = np.zeros((graph.num_nodes, graph.num_nodes))
    np.add.at(w, (graph.dst.numpy(), graph.src.numpy()), d.numpy())  # dT_i = Σ_{j→i} D (T_j − T_i)
    eigval, eigvec = np.linalg.eig(np.diag(w.sum(1)) - w)
    coef = np.linalg.solve(eigvec, y0.numpy())
    exact = np.real(eigvec @ (np.exp(-eigval[:, None] * t.numpy()[None]) * coef[:, None])).T
    assert np.abs(sol.ys.numpy() - exact).max() <= 1e-8


def test_heat_with_fields_and_per_trajectory_times():
    system, _, graphs = build(HeatDiffusion)
    y0 = torch.rand(system.graph.num_nodes, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    t = torch.stack([output_times(1.0 + 0.5 * b, steps=7, seed=b) + 0.25 * b for b in range(len(graphs))])
    sol = solve_ensemble(system, y0, t, rtol=1e-9, atol=1e-11)
    assert sol.ys.shape == (t.shape[1], system.graph.num_nodes, 3)
    for b in range(len(graphs)):
        alone, rows = single(system, graphs, b)
        ref = odeint(alone, y0[rows], t[b], method="dopri5", rtol=1e-9, atol=1e-11)
        assert (sol.ys[:, rows] - ref).abs().max().item() <= 1e-9
        torch.testing.assert_close(sol.stats.t_final[b], t[b, -1], rtol=0, atol=0)


@pytest.mark.parametrize("cls", [Kuramoto, KuramotoMeanField, CoupledRossler], ids=lambda c: c.__name__)
def test_trajectories_are_independent_of_the_batch(cls):
    """Each trajectory is bitwise what it is alone: same steps, same numbers (on any thread count)."""
    system, y0, graphs = build(cls)
    t = output_times(3.0)
    sol = solve_ensemble(system, y0, t, rtol=1e-8, atol=1e-10)
    assert len(set(sol.stats.accepted.tolist())) > 1  # the trajectories did take different step sequences
    for b in range(len(graphs)):
        alone, rows = single(system, graphs, b)
        one = solve_ensemble(alone, y0[rows], t, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(sol.ys[:, rows], one.ys, rtol=0, atol=0)
        for field in ("nfev", "accepted", "rejected", "status"):
            assert getattr(sol.stats, field)[b].item() == getattr(one.stats, field).item()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = solve_ensemble(system, y0, t, rtol=1e-8, atol=1e-10)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(serial.ys, sol.ys, rtol=0, atol=0)


def test_nan_initial_state_stops_only_that_trajectory():
    system, y0, _ = build(Kuramoto)
    t = output_times(2.0)
    clean = solve_ensemble(system, y0, t, rtol=1e-8, atol=1e-10)
    ptr = system.graph.ptr
    bad = y0.clone()
    bad[ptr[1] + 3] = float("nan")
    sol = solve_ensemble(system, bad, t, rtol=1e-8, atol=1e-10)
    assert sol.stats.status.tolist() == [Status.success, Status.non_finite, Status.success, Status.success]
    assert not sol.success and "non_finite" in sol.message
    assert sol.stats.nfev[1].item() == 1 and sol.stats.accepted[1].item() == 0
    rows = slice(ptr[1].item(), ptr[2].item())
    assert torch.isnan(sol.ys[1:, rows]).all()
    keep = torch.ones(system.graph.num_nodes, dtype=torch.bool)
    keep[rows] = False
    torch.testing.assert_close(sol.ys[:, keep], clean.ys[:, keep], rtol=0, atol=0)


def test_blow_up_during_integration_is_non_finite():
    """A trajectory that overflows mid-run stops with status non_finite; its later outputs are NaN."""
    graph, _ = batch((10, 10), seed=7)
    d = torch.full((graph.num_edges,), 1.0, dtype=F64)
    d[graph.indptr[graph.ptr[1]] :] = -60.0  # anti-diffusion on graph 1: exponential growth ~e^{400 t}
    y0 = torch.rand(graph.num_nodes, generator=torch.Generator().manual_seed(0), dtype=F64)
    t = torch.linspace(0, 10, 21, dtype=F64)
    sol = solve_ensemble(HeatDiffusion(graph, d), y0, t, rtol=1e-6, atol=1e-8)
    assert sol.stats.status.tolist() == [Status.success, Status.non_finite]
    assert 0 < sol.stats.t_final[1].item() < 10
    reached = (t <= sol.stats.t_final[1]).sum().item()
    assert torch.isfinite(sol.ys[:reached, 10:]).all() and torch.isnan(sol.ys[reached:, 10:]).all()
    assert torch.isfinite(sol.ys[:, :10]).all()


def test_max_steps_exceeded():
    system, y0, _ = build(CoupledRossler)
    t = output_times(5.0)
    sol = solve_ensemble(system, y0, t, rtol=1e-10, atol=1e-12, max_steps=7)
    assert sol.stats.status.tolist() == [Status.max_num_steps] * len(SIZES)
    assert ((sol.stats.accepted + sol.stats.rejected) == 7).all()
    assert "max_num_steps" in sol.message and not sol.success
    last = (t <= sol.stats.t_final.min()).sum().item()
    assert torch.isnan(sol.ys[-1]).all() and torch.isfinite(sol.ys[:last]).all()


def test_step_size_underflow_stops_only_that_trajectory():
    """At t ~ 1e10 a rejected step below 64·eps·|t| ≈ 0.14 cannot be taken: graph 1 (stiff, D = 1000) stops
    with status step_size_underflow, as in the generic engine, while graph 0 (D = 1) finishes."""
    graph, _ = batch((10, 12), seed=1)
    d = torch.ones(graph.num_edges, dtype=F64)
    d[graph.indptr[graph.ptr[1]] :] = 1000.0
    y0 = torch.rand(graph.num_nodes, generator=torch.Generator().manual_seed(0), dtype=F64)
    t = torch.tensor([1e10, 1e10 + 1.0], dtype=F64)
    sol = solve_ensemble(HeatDiffusion(graph, d), y0, t, rtol=1e-6, atol=1e-8)
    assert sol.stats.status.tolist() == [Status.success, Status.step_size_underflow]
    assert "step_size_underflow" in sol.message
    assert torch.isfinite(sol.ys[:, :10]).all() and torch.isnan(sol.ys[1, 10:]).all()


def test_first_step_single_time_and_empty_graph():
    system, y0, _ = build(SIS)
    t = output_times(2.0)
    ref = solve_ensemble(system, y0, t, rtol=1e-10, atol=1e-12)
    given = solve_ensemble(system, y0, t, rtol=1e-10, atol=1e-12, first_step=1e-3)
    assert (given.ys - ref.ys).abs().max().item() <= 1e-9
    assert (given.stats.nfev == ref.stats.nfev - 1).any()  # no first-step heuristic evaluation
    only = solve_ensemble(system, y0, t[:1])
    assert only.ys.shape == (1, *y0.shape) and only.success and only.stats.nfev.sum().item() == 0
    torch.testing.assert_close(only.ys[0], y0, rtol=0, atol=0)
    empty = Graph.from_edge_index(torch.empty(2, 0, dtype=torch.long), num_nodes=0)
    g = Graph.batch_graphs([empty, erdos_renyi(6, 2.0, generator=1), empty])
    heat = HeatDiffusion(g, torch.ones(g.num_edges, dtype=F64))
    sol = solve_ensemble(heat, torch.arange(6, dtype=F64), t)
    assert sol.success and sol.ys.shape == (t.numel(), 6)
    assert sol.ys[-1].sum().item() == pytest.approx(15.0, abs=1e-9)  # heat is conserved


def test_float32():
    system, y0, _ = build(Kuramoto)
    t = output_times(2.0)
    ref = solve_ensemble(system, y0, t, rtol=1e-10, atol=1e-12)
    sol = solve_ensemble(system, y0.float(), t, rtol=1e-5, atol=1e-6)
    assert sol.ys.dtype == torch.float32 and sol.success
    assert (sol.ys.double() - ref.ys).abs().max().item() <= 1e-3


def test_opcheck_and_torch_compile():
    system, y0, _ = build(KuramotoMeanField)
    g = system.graph
    t = output_times(1.0)
    args = (g.ptr, g.indptr, g.src, system.omega, None, system.coupling, y0, t, "kuramoto_mean_field",
            1e-8, 1e-10, 0.0, 1000)  # fmt: skip
    torch.library.opcheck(torch.ops.fastsim.ensemble_dopri5.default, args)

    def run(y):
        return ensemble_dopri5(g, "kuramoto_mean_field", y, t, node_coeff=system.omega,
                               graph_coeff=system.coupling, rtol=1e-8, atol=1e-10)[0]  # fmt: skip

    compiled = torch.compile(run, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(y0), run(y0), rtol=0, atol=0)


def test_hostile_inputs():
    system, y0, _ = build(Kuramoto)
    t = output_times(1.0)
    with pytest.raises(TypeError, match="fused kernel"):
        solve_ensemble(torch.nn.Linear(2, 2), y0, t)

    class MyKuramoto(Kuramoto):
        pass

    with pytest.raises(TypeError, match="MyKuramoto"):
        solve_ensemble(MyKuramoto(system.graph, system.omega, system.coupling), y0, t)
    assert Burgers2D not in FUSED_SYSTEMS
    bad_times = {
        "strictly increasing": t.flip(0),
        "finite": torch.tensor([0.0, float("nan"), 1.0], dtype=F64),
        "shape": t[None, None],
    }
    for match, tt in bad_times.items():
        with pytest.raises(ValueError, match=match):
            solve_ensemble(system, y0, tt)
    with pytest.raises(ValueError, match="strictly increasing"):
        solve_ensemble(system, y0, torch.tensor([0.0, 1.0, 1.0], dtype=F64))
    with pytest.raises(TypeError, match="t_eval"):
        solve_ensemble(system, y0, torch.arange(3))
    with pytest.raises(ValueError, match="shape"):
        solve_ensemble(system, y0, torch.zeros(3, 4, dtype=F64))  # (B', T) with B' != B
    nan, inf = float("nan"), float("inf")
    for kw in ({"rtol": 0.0}, {"atol": -1.0}, {"rtol": nan}, {"first_step": -0.1}, {"atol": inf}):
        with pytest.raises(ValueError):
            solve_ensemble(system, y0, t, **kw)
    with pytest.raises(TypeError, match="rtol"):
        solve_ensemble(system, y0, t, rtol="1e-6")
    with pytest.raises(ValueError, match="rtol must be at least 2.22e-16"):  # else: error norm overflow, "non_finite"
        solve_ensemble(system, y0, t, rtol=1e-300, atol=1e-300)
    for steps in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="max_steps"):
            solve_ensemble(system, y0, t, max_steps=steps)
    with pytest.raises(ValueError, match="y0"):
        solve_ensemble(system, y0[:-1], t)
    with pytest.raises(ValueError, match="y0"):
        solve_ensemble(system, y0[:, None], t)
    with pytest.raises(TypeError, match="y0"):
        solve_ensemble(system, y0.long(), t)
    with pytest.raises(TypeError, match="y0"):
        solve_ensemble(system, y0.numpy(), t)
    # a graph whose edges cross between the graphs of the batch
    g = system.graph
    crossing = dataclasses.replace(g, ptr=torch.tensor([0, 5, g.num_nodes]), num_graphs=2)
    crossing = dataclasses.replace(crossing, batch=(torch.arange(g.num_nodes) >= 5).long())
    with pytest.raises(ValueError, match="block-diagonal"):
        solve_ensemble(Kuramoto(crossing, system.omega, system.coupling), y0, t)

    # the op itself checks what it reads (direct calls bypass the wrapper)
    def op(**kw):
        args = {"ptr": g.ptr, "node": system.omega, "edge": system.coupling, "graph": None, "t": t}
        args.update(kw)
        return torch.ops.fastsim.ensemble_dopri5(
            args["ptr"], g.indptr, g.src, args["node"], args["edge"], args["graph"], y0, args["t"],
            args.get("system", "kuramoto"), 1e-6, 1e-8, 0.0, 10,
        )  # fmt: skip

    for match, kw in {
        "crosses": {"ptr": crossing.ptr},
        "system must be one of": {"system": "lorenz"},
        "edge_coeff": {"edge": None},
        "graph_coeff must be None": {"graph": system.omega[:4]},
        "t_eval must be float64": {"t": t.float()},
    }.items():
        with pytest.raises(RuntimeError, match=match):
            op(**kw)


@pytest.mark.cuda
@pytest.mark.parametrize("cls", list(ARGS), ids=lambda c: c.__name__)
def test_cuda_matches_cpu(cls):
    system, y0, _ = build(cls, sizes=(12, 30, 7, 21, 300))  # 300 nodes: several nodes per thread of a block
    t = output_times(HORIZON.get(cls, 2.0))
    cpu = solve_ensemble(system, y0, t, rtol=1e-9, atol=1e-11)
    graph = system.graph.to("cuda")
    moved = type(system)(graph, **{name: getattr(system, name).cuda() for name in ARGS[cls]})
    gpu = solve_ensemble(moved, y0.cuda(), t.cuda(), rtol=1e-9, atol=1e-11)
    assert gpu.success
    assert (gpu.ys.cpu() - cpu.ys).abs().max().item() <= 1e-8
    # reduction orders differ from the CPU's, so step counts may differ by a step or two
    assert (gpu.stats.accepted.cpu() - cpu.stats.accepted).abs().max().item() <= 2
