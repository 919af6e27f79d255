"""The explicit engine: measured convergence orders, dense output, batching with per-trajectory steps,
statuses (non-finite, max steps), and the host-synchronisation budget of the step loop."""

import functools

import numpy as np
import pytest
import torch

from fastsim.solvers import (
    MAX_SYNC_EVERY,
    TABLEAUX,
    FixedStep,
    PIController,
    Status,
    error_norm,
    integrate,
    odeint,
    stage_combination,
)

F64 = torch.float64


def forced_pendulum(t, y):
    """θ'' = −sin θ + 0.3 cos t: smooth, nonlinear, non-autonomous (so the stage times c_i matter)."""
    return torch.stack([y[1], -torch.sin(y[0]) + 0.3 * torch.cos(t)])


# (method, horizon T, step counts): ranges where the error is asymptotic and far above round-off. Tsitouras'
# pair has a tiny 5th-order error coefficient, so its slope approaches 5 from above only near 1e-12.
CONVERGENCE = {
    "euler": (4.0, [128, 181, 256, 362, 512]),
    "midpoint": (4.0, [32, 45, 64, 90, 128]),
    "heun": (4.0, [32, 45, 64, 90, 128]),
    "rk4": (4.0, [16, 22, 32, 45, 64]),
    "bosh3": (4.0, [30, 42, 60, 84, 118]),
    "dopri5": (4.0, [30, 43, 60, 84, 118]),
    "tsit5": (4.0, [84, 118, 165]),
    "dop853": (3.0, [6, 8, 10, 12, 14]),
}


def _query_times(T: float, n: int) -> list[float]:
    """t = 0, a point 37% into the middle step of n steps, and T."""
    h = T / n
    return [0.0, h * (n // 2) + 0.37 * h, T]


@functools.cache
def _reference(T: float) -> dict[float, torch.Tensor]:
    """The solution at every query time of CONVERGENCE for horizon T: DOP853 with 1000 fixed steps (error
    ~1e-14, checked against scipy in `test_convergence_reference_matches_scipy`)."""
    times = sorted({x for T2, ns in CONVERGENCE.values() if T2 == T for n in ns for x in _query_times(T, n)})
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    ys = odeint(forced_pendulum, y0, torch.tensor(times, dtype=F64), method="dop853",
                options={"step_size": T / 1000})  # fmt: skip
    return dict(zip(times, ys, strict=True))


def test_convergence_reference_matches_scipy():
    from scipy.integrate import solve_ivp

    for T in (3.0, 4.0):
        ref = _reference(T)
        times = np.array(sorted(ref))
        sol = solve_ivp(lambda t, y: [y[1], -np.sin(y[0]) + 0.3 * np.cos(t)], (0, T), [1.0, 0.0],
                        method="DOP853", rtol=1e-13, atol=1e-15, t_eval=times)  # fmt: skip
        ours = torch.stack([ref[x] for x in times]).numpy().T
        assert np.abs(ours - sol.y).max() < 5e-13


@pytest.mark.parametrize("name", list(CONVERGENCE))
def test_convergence_order(name):
    """Fixed steps h = T/n: the log-log slope of the end-point error vs h is the order (±0.2); the slope of
    the dense-output error at a point inside a step is min(p, q + 1) for a dense output of order q (cubic
    Hermite, q = 3, where the tableau has none)."""
    tab = TABLEAUX[name]
    T, ns = CONVERGENCE[name]
    ref = _reference(T)
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    hs, err_end, err_dense = [], [], []
    for n in ns:
        times = _query_times(T, n)
        t = torch.tensor(times, dtype=F64)
        ys, stats = odeint(forced_pendulum, y0, t, method=name, options={"step_size": T / n}, return_stats=True)
        assert stats.accepted.item() == n and stats.rejected.item() == 0
        hs.append(T / n)
        err_end.append((ys[-1] - ref[times[-1]]).norm().item())
        err_dense.append((ys[1] - ref[times[1]]).norm().item())
    slope = np.polyfit(np.log(hs), np.log(err_end), 1)[0]
    dense_slope = np.polyfit(np.log(hs), np.log(err_dense), 1)[0]
    q = tab.dense_order if tab.dense is not None else 3
    assert abs(slope - tab.order) < 0.2, (slope, err_end)
    assert abs(dense_slope - min(tab.order, q + 1)) < 0.2, (dense_slope, err_dense)


@pytest.mark.parametrize("name", ["bosh3", "dopri5", "tsit5", "dop853"])
def test_linear_ode_matches_matrix_exponential(name):
    torch.manual_seed(0)
    A = torch.randn(6, 6, dtype=F64) / 2 - 0.3 * torch.eye(6, dtype=F64)
    y0 = torch.randn(6, dtype=F64)
    t = torch.tensor([0.0, 0.13, 0.5, 0.51, 1.7, 2.0], dtype=F64)  # non-uniform
    rtol = 1e-10 if name != "bosh3" else 1e-8
    ys = odeint(lambda t, y: A @ y, y0, t, method=name, rtol=rtol, atol=1e-12)
    exact = torch.stack([torch.linalg.matrix_exp(A * ti) @ y0 for ti in t])
    assert (ys - exact).abs().max() / exact.abs().max() < 50 * rtol


def test_dense_output_is_not_forced_onto_output_times():
    """200 output times cost no extra steps: the accepted-step count equals that of a 2-point solve."""
    lam = torch.tensor([-1.0, 0.5], dtype=F64)
    t_dense = torch.sort(torch.rand(198, dtype=F64, generator=torch.Generator().manual_seed(1)) * 3).values
    t_dense = torch.cat([torch.zeros(1, dtype=F64), t_dense, torch.full((1,), 3.0, dtype=F64)])
    y0 = torch.tensor([1.0, 2.0], dtype=F64)
    ys, st = odeint(lambda t, y: lam * y, y0, t_dense, rtol=1e-9, atol=1e-12, return_stats=True,
                    options={"max_outputs_per_step": 256})  # fmt: skip
    _, st2 = odeint(lambda t, y: lam * y, y0, t_dense[[0, -1]], rtol=1e-9, atol=1e-12, return_stats=True)
    assert st.accepted.item() == st2.accepted.item()
    exact = y0 * torch.exp(lam * t_dense[:, None])
    assert ((ys - exact).abs() / exact.abs()).max() < 1e-7


def test_output_window_limits_steps_but_keeps_accuracy():
    """With at most 2 output times per step, a fine grid shortens steps; the answers stay accurate."""
    t = torch.linspace(0, 3, 101, dtype=F64)
    y0 = torch.tensor([1.0], dtype=F64)
    ys, st = odeint(lambda t, y: -y, y0, t, rtol=1e-9, atol=1e-12, return_stats=True,
                    options={"max_outputs_per_step": 2})  # fmt: skip
    assert st.accepted.item() >= 50
    assert (ys[:, 0] - torch.exp(-t)).abs().max() < 1e-8


def test_decreasing_time():
    t = torch.tensor([2.0, 1.5, 0.2, -1.0], dtype=F64)
    y0 = torch.tensor([0.3, 0.1], dtype=F64)
    for method, tol in (("dopri5", 1e-8), ("dop853", 1e-8), ("rk4", 1e-6)):
        opts = {"step_size": 0.01} if method == "rk4" else None
        ys = odeint(lambda t, y: torch.stack([y[1], -y[0]]), y0, t, method=method, rtol=1e-10, atol=1e-12,
                    options=opts)  # fmt: skip
        dt = t - t[0]
        exact = torch.stack(
            [y0[0] * torch.cos(dt) + y0[1] * torch.sin(dt), -y0[0] * torch.sin(dt) + y0[1] * torch.cos(dt)], 1
        )  # noqa: E501
        assert (ys - exact).abs().max() < tol, method


def _vdp_batch(mu):
    def f(t, y):  # y: (B, 2)
        return torch.stack([y[:, 1], mu * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], dim=-1)

    return f


def test_batched_trajectories_step_independently():
    """Each trajectory of a batch gets the same answer, steps and nfev as when solved alone."""
    mu = torch.tensor([0.2, 1.0, 4.0, 10.0], dtype=F64)
    y0 = torch.tensor([[2.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.5, -1.0]], dtype=F64)
    t = torch.linspace(0, 4, 17, dtype=F64)
    ys, st = odeint(_vdp_batch(mu), y0, t, rtol=1e-8, atol=1e-8, options={"batch_dim": 0}, return_stats=True)
    assert st.success.all()
    for b in range(4):
        yb, sb = odeint(_vdp_batch(mu[b : b + 1]), y0[b : b + 1], t, rtol=1e-8, atol=1e-8,
                        options={"batch_dim": 0}, return_stats=True)  # fmt: skip
        assert torch.allclose(ys[:, b], yb[:, 0], rtol=1e-12, atol=1e-12)
        assert sb.accepted.item() == st.accepted[b].item() and sb.nfev.item() == st.nfev[b].item()
    # stiffer trajectories (larger μ) need more steps
    acc = st.accepted.tolist()
    assert acc[3] > acc[2] > acc[0] and len(set(acc)) == 4


def test_batch_with_per_trajectory_times_and_batch_dim_1():
    k = torch.tensor([0.5, 1.0, 2.0], dtype=F64)
    y0 = torch.ones(2, 3, dtype=F64)  # batch along dim 1
    t = torch.stack([torch.linspace(0, 1, 5), torch.linspace(0, 2, 5), torch.linspace(1, -1, 5)]).to(F64)

    def f(t, y):
        assert t.shape == (1, 3)
        return -k * y + torch.sin(t)

    ys = odeint(f, y0, t, rtol=1e-10, atol=1e-12, options={"batch_dim": 1})
    assert ys.shape == (5, 2, 3)
    for b in range(3):
        tb = t[b]
        yb = odeint(lambda s, y, kb=k[b]: -kb * y + torch.sin(s), y0[:, b], tb, rtol=1e-10, atol=1e-12)
        assert torch.allclose(ys[:, :, b], yb, rtol=1e-9, atol=1e-11)


def test_nan_stops_only_that_trajectory():
    """A trajectory that blows up (y' = y², y(0) = 1 explodes at t = 1) ends with status non_finite and
    NaN outputs beyond; the others finish normally."""
    y0 = torch.tensor([[1.0], [0.1], [-1.0]], dtype=F64)
    t = torch.tensor([0.0, 0.5, 2.0], dtype=F64)
    with pytest.warns(RuntimeWarning, match="non_finite|step_size_underflow"):
        ys = odeint(lambda t, y: y**2, y0, t, options={"batch_dim": 0})
    ys, st = odeint(lambda t, y: y**2, y0, t, options={"batch_dim": 0}, return_stats=True)
    names = st.status_names()
    assert names[1] == names[2] == "success" and names[0] in ("non_finite", "step_size_underflow")
    assert ys[1, 0, 0] == pytest.approx(2.0, rel=1e-6) and torch.isnan(ys[2, 0, 0])
    assert ys[2, 1, 0] == pytest.approx(0.1 / 0.8, rel=1e-6) and ys[2, 2, 0] == pytest.approx(-1 / 3, rel=1e-6)


def test_nan_from_rhs_gives_non_finite_status_fixed_and_adaptive():
    def f(t, y):
        return torch.where(t > 0.5, torch.full_like(y, float("nan")), -y)

    t = torch.tensor([0.0, 0.25, 1.0], dtype=F64)
    for opts in ({"step_size": 0.1}, None):
        ys, st = odeint(f, torch.ones(3, dtype=F64), t, method="rk4" if opts else "dopri5", options=opts,
                        return_stats=True)  # fmt: skip
        assert st.status_names() == ["non_finite"]
        assert 0.25 <= st.t_final.item() <= 0.5
        assert torch.isfinite(ys[1]).all() and torch.isnan(ys[2]).all()


def test_max_num_steps_status():
    ys, st = odeint(lambda t, y: -y, torch.ones(2, dtype=F64), torch.tensor([0.0, 10.0], dtype=F64),
                    method="euler", options={"step_size": 0.01, "max_num_steps": 50}, return_stats=True)  # fmt: skip
    assert st.status_names() == ["max_num_steps"] and st.accepted.item() == 50
    assert st.t_final.item() == pytest.approx(0.5) and torch.isnan(ys[1]).all()


def test_fixed_step_beyond_the_default_step_budget_needs_max_num_steps():
    """A step size needing more than 1e5 steps (1e300 here) is a ValueError unless max_num_steps bounds the run."""
    t = torch.tensor([0.0, 1.0], dtype=F64)
    with pytest.raises(ValueError, match=r"options\['step_size'\]=1e-300 needs 1e\+300 steps from t=0 to t=1"):
        odeint(lambda t, y: -y, torch.ones(2, dtype=F64), t, method="rk4", options={"step_size": 1e-300})
    ys, st = odeint(lambda t, y: -y, torch.ones(2, dtype=F64), t, method="rk4",
                    options={"step_size": 1e-300, "max_num_steps": 5}, return_stats=True)  # fmt: skip
    assert st.status_names() == ["max_num_steps"] and st.accepted.item() == 5 and torch.isnan(ys[1]).all()


def test_loop_ends_when_every_trajectory_is_done_whatever_sync_every():
    """The masked tail after the last trajectory stops is bounded by MAX_SYNC_EVERY and by max_num_steps."""
    calls = {"n": 0}

    def f(t, y):
        calls["n"] += 1
        return -y

    y0, t = torch.ones(2, 3, dtype=F64), torch.tensor([[0.0, 1.0]], dtype=F64).expand(2, 2)
    with pytest.raises(ValueError, match=r"sync_every must be an int in \[1, 256\]; got 1000000000"):
        integrate(f, y0, t[:, 0], t[:, 1], t, TABLEAUX["rk4"], FixedStep(0.1), sync_every=10**9)
    assert MAX_SYNC_EVERY == 256
    # 10 steps of 4 evaluations: the loop stops at max_num_steps = 12 iterations, not at the check after 256
    _, st = integrate(f, y0, t[:, 0], t[:, 1], t, TABLEAUX["rk4"], FixedStep(0.1), max_num_steps=12,
                      sync_every=MAX_SYNC_EVERY)  # fmt: skip
    assert st.success.all() and calls["n"] <= 1 + 4 * 12
    calls["n"] = 0
    _, st = odeint(f, y0[0], t[0], options={"sync_every": MAX_SYNC_EVERY, "max_num_steps": 20}, return_stats=True)
    assert st.success.all() and calls["n"] <= 2 + 6 * 20  # dopri5: FSAL, 6 evaluations per step


def test_stage_combination_and_error_norm():
    g = torch.Generator().manual_seed(0)
    y, ks = (
        torch.randn(3, 5, generator=g, dtype=F64),
        [torch.randn(3, 5, generator=g, dtype=F64) for _ in range(3)],
    )
    dt = torch.tensor([0.1, -0.2, 0.0], dtype=F64)
    out = stage_combination(y, dt, ks, (0.5, 0.0, -2.0))
    assert torch.allclose(out, y + dt[:, None] * (0.5 * ks[0] - 2.0 * ks[2]))
    assert stage_combination(y, dt, ks, (0.0,)) is y
    y1 = y + 0.1
    err = error_norm(y, y1, dt, ks, (1.0, -1.0, 0.0), 1e-3, 1e-6)
    sc = 1e-6 + 1e-3 * torch.maximum(y.abs(), y1.abs())
    assert torch.allclose(err, (dt[:, None] * (ks[0] - ks[1]) / sc).pow(2).mean(1).sqrt())
    # DOP853's combined estimate: |dt| ‖e5‖² / sqrt(N (‖e5‖² + 0.01 ‖e3‖²))
    e5, e3 = (ks[0] - ks[1]) / sc, ks[2] / sc
    n5, n3 = e5.pow(2).sum(1), e3.pow(2).sum(1)
    expect = dt.abs() * n5 / ((n5 + 0.01 * n3) * 5).sqrt()
    assert torch.allclose(error_norm(y, y1, dt, ks, (1.0, -1.0, 0.0), 1e-3, 1e-6, (0.0, 0.0, 1.0)), expect)


def test_integrate_rejects_fixed_tableau_with_adaptive_control():
    y0 = torch.ones(1, 1, dtype=F64)
    t = torch.tensor([[0.0, 1.0]], dtype=F64)
    with pytest.raises(ValueError, match="no error estimate"):
        integrate(lambda t, y: -y, y0, t[:, 0], t[:, 1], t, TABLEAUX["rk4"], PIController())
    ys, st = integrate(lambda t, y: -y, y0, t[:, 0], t[:, 1], t, TABLEAUX["rk4"], FixedStep(0.25))
    assert st.status.item() == Status.success and ys[0, 1, 0].item() == pytest.approx(np.exp(-1), rel=1e-4)


def test_host_reads_once_every_sync_every_steps(monkeypatch):
    """The step loop reads device values back only for the termination check (every `sync_every` steps),
    plus a constant number before the loop."""
    reads = {"n": 0}
    orig_bool, orig_item = torch.Tensor.__bool__, torch.Tensor.item

    def counting_bool(self):
        reads["n"] += 1
        return orig_bool(self)

    def counting_item(self):
        reads["n"] += 1
        return orig_item(self)

    y0, t = torch.ones(4, 3, dtype=F64), torch.linspace(0, 5, 11, dtype=F64).expand(4, 11)
    f = lambda t, y: -y * torch.cos(t)[:, None]  # noqa: E731
    monkeypatch.setattr(torch.Tensor, "__bool__", counting_bool)
    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    ys, st = integrate(f, y0, t[:, 0], t[:, -1], t, TABLEAUX["dopri5"], PIController(rtol=1e-10, atol=1e-12))
    monkeypatch.undo()
    iterations = int(st.accepted.max() + st.rejected.max())
    assert iterations > 100 and st.success.all()
    assert 1 <= reads["n"] <= iterations // 8 + 4


def test_step_size_underflow_status():
    """y' = 1/(1 − t) has a log singularity at t = 1: the steps shrink to the resolution of t, and the
    trajectory stops there with status step_size_underflow (the state itself stays finite)."""
    t = torch.tensor([0.0, 0.5, 2.0], dtype=F64)
    ys, st = odeint(lambda t, y: 1 / (1 - t) + 0 * y, torch.zeros(1, dtype=F64), t, return_stats=True)
    assert st.status_names() == ["step_size_underflow"]
    assert st.t_final.item() == pytest.approx(1.0, abs=1e-6)
    assert ys[1, 0].item() == pytest.approx(np.log(2), rel=1e-5) and torch.isnan(ys[2]).all()


def test_min_and_max_step():
    """torchdiffeq's semantics: steps never exceed max_step; a step at min_step is accepted whatever its error."""
    t = torch.tensor([0.0, 1.0], dtype=F64)
    _, st = odeint(lambda t, y: -y, torch.ones(1, dtype=F64), t, return_stats=True, options={"max_step": 0.01})
    assert st.accepted.item() >= 100
    ys, st = odeint(lambda t, y: -50 * y, torch.ones(1, dtype=F64), t, return_stats=True,
                    options={"min_step": 0.1, "first_step": 0.1})  # fmt: skip
    assert st.accepted.item() == 10 and st.rejected.item() == 0
    assert ys[1].abs().item() > 1e6  # dopri5 at h·λ = −5 is unstable: the error was not controlled


@pytest.mark.cuda
def test_cuda_step_loop_synchronises_only_for_termination_checks():
    """On a GPU, CUDA's sync debug mode flags every host synchronisation: inside the step loop only the
    termination check (every `sync_every` steps) may synchronise."""
    import warnings

    mu = torch.linspace(0.5, 5.0, 64, dtype=F64, device="cuda")
    y0 = torch.tensor([2.0, 0.0], dtype=F64, device="cuda").expand(64, 2).contiguous()
    t = torch.linspace(0, 5, 41, dtype=F64, device="cuda").expand(64, 41)
    f = _vdp_batch(mu)
    tc = t.cpu()
    ys_ref, st_ref = integrate(_vdp_batch(mu.cpu()), y0.cpu(), tc[:, 0], tc[:, -1], tc, TABLEAUX["dopri5"],
                               PIController(rtol=1e-8, atol=1e-8), max_num_steps=10_000)  # fmt: skip
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ys, st = integrate(f, y0, t[:, 0], t[:, -1], t, TABLEAUX["dopri5"], PIController(rtol=1e-8, atol=1e-8),
                               max_num_steps=10_000)  # fmt: skip
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    iterations = int((st.accepted + st.rejected).max())
    assert syncs <= iterations // 8 + 6, (syncs, iterations)
    assert torch.allclose(ys.cpu(), ys_ref, rtol=1e-10, atol=1e-12)
    assert torch.equal(st.accepted.cpu(), st_ref.accepted)
