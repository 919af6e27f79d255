"""`odeint` and `solve_ivp`: agreement with scipy and torchdiffeq, state structures, options, hostile input."""

import math

import numpy as np
import pytest
import torch

from fastsim.solvers import METHODS, odeint, solve_ivp

F64 = torch.float64


def lorenz(t, y):
    return torch.stack([10 * (y[1] - y[0]), y[0] * (28 - y[2]) - y[1], y[0] * y[1] - 8 / 3 * y[2]])


def lorenz_np(t, y):
    return [10 * (y[1] - y[0]), y[0] * (28 - y[2]) - y[1], y[0] * y[1] - 8 / 3 * y[2]]


def vdp(t, y):
    return torch.stack([y[1], (1 - y[0] ** 2) * y[1] - y[0]])


def vdp_np(t, y):
    return [y[1], (1 - y[0] ** 2) * y[1] - y[0]]


@pytest.mark.parametrize("f, f_np, y0, T", [(lorenz, lorenz_np, [1.0, 1.0, 1.0], 1.0), (vdp, vdp_np, [2.0, 0.0], 6.0)])
def test_matches_scipy_dop853_at_tight_tolerance(f, f_np, y0, T):
    from scipy.integrate import solve_ivp as scipy_solve_ivp

    t_eval = np.sort(np.r_[0.0, np.random.default_rng(0).uniform(0, T, 12), T])
    ref = scipy_solve_ivp(f_np, (0, T), y0, method="DOP853", rtol=1e-12, atol=1e-12, t_eval=t_eval)
    ys = odeint(f, torch.tensor(y0, dtype=F64), torch.tensor(t_eval), method="dop853", rtol=1e-12, atol=1e-12)
    scale = np.abs(ref.y).max()
    assert np.abs(ys.numpy().T - ref.y).max() / scale < 1e-10
    res = solve_ivp(f, (0, T), torch.tensor(y0, dtype=F64), t_eval=t_eval, rtol=1e-12, atol=1e-12)
    assert res.success and res.status == 0 and res.y.shape == (len(y0), len(t_eval))
    assert np.abs(res.y.numpy() - ref.y).max() / scale < 1e-10


@pytest.mark.parametrize("method, tol", [("DOP853", 1e-12), ("DOP853", 1e-6), ("RK45", 1e-8), ("RK23", 1e-6)])
def test_integral_controller_reproduces_scipy_step_sequence(method, tol):
    """With the plain integral controller (pcoeff=0, icoeff=1) the engine makes scipy's decisions: the same
    number of function evaluations and steps, and the same end point to round-off."""
    from scipy.integrate import solve_ivp as scipy_solve_ivp

    ref = scipy_solve_ivp(lorenz_np, (0, 1), [1.0, 1.0, 1.0], method=method, rtol=tol, atol=tol)
    res = solve_ivp(lorenz, (0, 1), [1.0, 1.0, 1.0], method=method, rtol=tol, atol=tol, pcoeff=0.0, icoeff=1.0)
    assert res.nfev == ref.nfev
    assert res.stats["naccept"].item() == len(ref.t) - 1
    assert np.abs(res.y[:, -1].numpy() - ref.y[:, -1]).max() < 1e-12 * np.abs(ref.y).max() / tol


def test_matches_torchdiffeq():
    torchdiffeq = pytest.importorskip("torchdiffeq")
    torch.manual_seed(0)
    A = torch.randn(8, 8, dtype=F64) / 3

    def f(t, y):
        return torch.tanh(y @ A.T) * torch.cos(t)

    y0 = torch.randn(5, 8, dtype=F64)
    t = torch.tensor([0.0, 0.3, 1.1, 2.0, 3.5], dtype=F64)
    ref = odeint(f, y0, t, rtol=1e-13, atol=1e-13, method="dop853")
    for method, options in (("dopri5", None), ("bosh3", None), ("rk4", {"step_size": 0.02}), ("euler", None)):
        ours = odeint(f, y0, t, rtol=1e-8, atol=1e-10, method=method, options=options)
        theirs = torchdiffeq.odeint(f, y0, t, rtol=1e-8, atol=1e-10, method=method, options=options)
        if method == "euler":  # steps on the grid of t in both: the same arithmetic
            assert torch.allclose(ours, theirs, rtol=1e-13, atol=1e-14)
            continue
        # rk4 here is the classical method with cubic Hermite output; torchdiffeq's is the 3/8 rule with
        # linear interpolation between grid points: errors differ by a constant, both O(h^4) ≈ 1e-10
        err_ours, err_theirs = (ours - ref).abs().max(), (theirs - ref).abs().max()
        assert err_ours <= 3 * err_theirs + 1e-9, (method, err_ours, err_theirs)
        assert err_ours < 1e3 * 1e-8, method  # the global error of a local-error controller: ≲ 10³·rtol


def test_tuple_state_and_float32():
    x0, v0 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    t = torch.linspace(0, 3, 7)
    xs, vs = odeint(lambda t, s: (s[1], -s[0]), (x0, v0), t, rtol=1e-6, atol=1e-8)
    assert xs.dtype == torch.float32 and xs.shape == (7, 2) and vs.shape == (7, 2)
    exact = x0 * torch.cos(t)[:, None] + v0 * torch.sin(t)[:, None]
    assert (xs - exact).abs().max() < 1e-5


def test_single_time_and_options_aliases():
    y0 = torch.tensor([1.0, 2.0], dtype=F64)
    assert torch.equal(odeint(lambda t, y: -y, y0, torch.tensor([0.5], dtype=F64)), y0[None])
    ys, st = odeint(lambda t, y: -y, y0, torch.tensor([0.0, 1.0], dtype=F64), method="dopri8", return_stats=True,
                    options={"first_step": 0.01, "max_step": 0.1, "ifactor": 5.0, "dfactor": 0.3})  # fmt: skip
    assert st.accepted.item() >= 10 and (ys[1] - y0 * math.exp(-1)).abs().max() < 1e-9
    for name in METHODS:
        out = odeint(lambda t, y: -y, y0, torch.tensor([0.0, 0.5, 1.0], dtype=F64), method=name,
                     options=None if METHODS[name][1] else {"step_size": 0.01})  # fmt: skip
        assert (out[-1] - y0 * math.exp(-1)).abs().max() < 5e-3, name


def test_solve_ivp_batch_args_and_numpy_fun():
    y0 = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])
    res = solve_ivp(lambda t, y, w: np.stack([y[:, 1], -(w**2) * y[:, 0]], 1), (0, 2), y0, args=(2.0,),
                    t_eval=[0.0, 0.5, 2.0], method="RK45", rtol=1e-9, atol=1e-12)  # fmt: skip
    assert res.success and res.y.shape == (3, 2, 3) and res.t.shape == (3,)
    t = res.t.numpy()
    exact = y0[:, :1] * np.cos(2 * t) + y0[:, 1:] / 2 * np.sin(2 * t)
    assert np.abs(res.y[:, 0].numpy() - exact).max() < 1e-7
    assert res.stats["nfev"].shape == (3,) and res.nfev == int(res.stats["nfev"].sum())
    back = solve_ivp(lambda t, y: -y, (1.0, 0.0), [1.0], rtol=1e-10, atol=1e-12)
    assert back.t.tolist() == [1.0, 0.0] and back.y[0, -1].item() == pytest.approx(math.e, rel=1e-8)


def test_implicit_dispatch_runs_radau():
    pytest.importorskip("fastsim.solvers.implicit")
    y0 = torch.tensor([1.0, 0.0], dtype=F64)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    f = lambda t, y: torch.stack([-1000 * y[0] + y[1], -y[1]])  # noqa: E731
    ys = odeint(f, y0, t, method="radau", rtol=1e-8, atol=1e-10)
    assert ys[-1, 0].abs() < 1e-8
    res = solve_ivp(f, (0.0, 1.0), y0, t_eval=t, method="Radau", rtol=1e-8, atol=1e-10)
    assert res.success and torch.allclose(res.y.T, ys, atol=1e-9)
    back = odeint(f, ys[-1], t.flip(0)[:2], method="radau", rtol=1e-8, atol=1e-10)  # decreasing t
    assert torch.isfinite(back).all()


def test_radau5_tolerances_reach_radau_and_are_refused_for_rodas5():
    A = torch.tensor([[-10.0, 1.0], [0.0, -1.0]], dtype=F64)
    y0, t = torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([0.0, 1.0], dtype=F64)
    f = lambda t, y: A @ y  # noqa: E731
    _, plain = odeint(f, y0, t, method="radau", rtol=1e-10, atol=1e-12, return_stats=True)
    _, mapped = odeint(f, y0, t, method="radau", rtol=1e-10, atol=1e-12, options={"radau5_tolerances": True},
                       return_stats=True)  # fmt: skip
    assert mapped["accepted"] < plain["accepted"]  # rtol 1e-10 → 0.1·rtol^(2/3) ≈ 2e-8: fewer steps
    with pytest.raises(ValueError, match="radau5_tolerances"):
        odeint(f, y0, t, method="rodas5", options={"radau5_tolerances": True})
    with pytest.raises(ValueError, match="apply to the implicit methods"):
        odeint(f, y0, t, method="dopri5", options={"radau5_tolerances": True})


@pytest.mark.parametrize("method", ["radau", "rodas5"])
def test_implicit_options_jac_and_vectorized_reach_the_stiff_solver(method):
    """`jac` replaces autograd (negated for decreasing `t`, which runs `dy/ds = −f(−s, y)`); `vectorized` passes."""
    from fastsim.solvers.implicit import solve_implicit

    A = torch.tensor([[-10.0, 1.0], [0.0, -1.0]], dtype=F64)  # mildly stiff, so also stable backwards
    f = lambda t, y: A @ y  # noqa: E731
    calls = []

    def jac(t, y):
        calls.append(float(t))
        return A

    y0 = torch.tensor([1.0, 2.0], dtype=F64)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    ys, st = odeint(f, y0, t, method=method, rtol=1e-8, atol=1e-10, options={"jac": jac}, return_stats=True)
    assert st["status"] == "success" and len(calls) == st["njev"] > 0
    exact = torch.stack([torch.linalg.matrix_exp(A * ti) @ y0 for ti in t])
    torch.testing.assert_close(ys, exact, rtol=1e-5, atol=0)
    calls.clear()
    back, st = odeint(f, y0, t.flip(0), method=method, rtol=1e-8, atol=1e-10, options={"jac": jac},
                      return_stats=True)  # fmt: skip
    assert st["status"] == "success" and len(calls) == st["njev"] > 0 and min(calls) >= 0.0  # the user's times
    ref, _ = solve_implicit(lambda s, y: -f(-s, y), y0, -t.flip(0), method, 1e-8, 1e-10, {"jac": lambda s, y: -A})
    torch.testing.assert_close(back, ref, rtol=1e-13, atol=0)
    fv = lambda t, y: y @ A.T  # noqa: E731 (a (k, 2) batch of stage states)
    ys_v = odeint(fv, y0, t, method=method, rtol=1e-8, atol=1e-10, options={"vectorized": True, "jac": jac})
    torch.testing.assert_close(ys_v, ys, rtol=1e-12, atol=1e-14)


Y0 = torch.ones(3, dtype=F64)
T2 = torch.tensor([0.0, 1.0], dtype=F64)
FUNC = lambda t, y: -y  # noqa: E731
HOSTILE = [
    ({"t": torch.tensor([0.0, 1.0, 0.5], dtype=F64)}, ValueError, "t must be strictly"),
    ({"t": torch.tensor([0.0, 0.0], dtype=F64)}, ValueError, "t must be strictly"),
    ({"t": torch.tensor([0.0, float("nan")], dtype=F64)}, ValueError, "t must be finite"),
    ({"t": torch.tensor([0, 1])}, TypeError, "t must be a floating"),
    ({"t": [0.0, 1.0]}, TypeError, "t must be a torch.Tensor"),
    ({"t": torch.zeros(2, 2, dtype=F64)}, ValueError, "t must have shape"),
    ({"t": torch.zeros(0, dtype=F64)}, ValueError, "t must have shape"),
    ({"y0": torch.tensor([1.0, float("nan")])}, ValueError, "y0 must be finite"),
    ({"y0": torch.tensor([1, 2])}, TypeError, "y0 must be a floating"),
    ({"y0": torch.ones(3, dtype=torch.float16)}, TypeError, r"y0 must be a floating tensor \(float32/float64\)"),
    ({"y0": (Y0, "x")}, TypeError, r"y0\[1\] must be a torch.Tensor"),
    ({"y0": [1.0, 2.0]}, TypeError, r"y0\[0\] must be a torch.Tensor"),
    ({"method": "rk45"}, ValueError, "unknown method 'rk45'; valid methods: .*dopri5.*radau"),
    ({"rtol": 0.0}, ValueError, "rtol must be a positive"),
    ({"atol": -1e-9}, ValueError, "atol must be a positive"),
    ({"rtol": float("nan")}, ValueError, "rtol must be a positive"),
    ({"rtol": 1e-300, "atol": 1e-300}, ValueError, "rtol must be at least 2.22e-16"),
    ({"y0": torch.ones(3), "t": T2.float(), "atol": 1e-50}, ValueError, "atol must be at least 1.18e-38.*float32"),
    ({"atol": "1e-9"}, TypeError, "atol must be a positive number"),
    ({"options": {"step_size": 0.0}}, ValueError, r"options\['step_size'\] must be a positive"),
    ({"options": {"step_size": -0.1}}, ValueError, r"options\['step_size'\] must be a positive"),
    ({"options": {"step_size": float("nan")}}, ValueError, r"options\['step_size'\]"),
    ({"options": {"first_step": 0.0}}, ValueError, r"options\['first_step'\]"),
    ({"options": {"max_num_steps": 0}}, ValueError, r"options\['max_num_steps'\]"),
    ({"options": {"sync_every": 10**9}}, ValueError, r"options\['sync_every'\] must be a positive int ≤ 256"),
    (
        {"method": "rk4", "options": {"step_size": 1e-300}},
        ValueError,
        r"options\['step_size'\]=1e-300 needs 1e\+300 steps from t=0 to t=1, more than 100000",
    ),
    (
        {"method": "euler", "options": {"step_size": 1e300}, "t": torch.tensor([-1.7e308, 1.7e308], dtype=F64)},
        ValueError,
        r"options\['step_size'\]=1e\+300 needs 3.4e\+08 steps from t=-1.7e\+308",
    ),
    (
        {"options": {"jac": lambda t, y: -torch.eye(3, dtype=F64)}},
        ValueError,
        r"options \['jac'\] apply to the implicit methods",
    ),
    ({"method": "rk4", "options": {"vectorized": True}}, ValueError, r"options \['vectorized'\] apply"),
    ({"options": {"batch_dim": 1}}, ValueError, r"options\['batch_dim'\]=1 is out of range"),
    ({"options": {"batch_dim": 0}, "t": torch.zeros(2, 5, dtype=F64)}, ValueError, "t must have shape"),
    ({"options": {"bogus": 1}}, ValueError, r"unknown options \['bogus'\]"),
    ({"options": {"dtype": torch.int32}}, ValueError, r"options\['dtype'\]"),
    ({"options": [1]}, TypeError, "options must be a dict"),
    ({"func": 3}, TypeError, "func must be callable"),
    ({"func": lambda t, y: y[:2]}, ValueError, r"func\(t, y\) must have shape \(3,\); got \(2,\)"),
    ({"func": lambda t, y: None}, TypeError, r"func\(t, y\) must return a tensor shaped like y0; got NoneType"),
]


@pytest.mark.parametrize("kwargs, exc, match", HOSTILE)
def test_hostile_odeint_input(kwargs, exc, match):
    args = {"func": FUNC, "y0": Y0, "t": T2, **kwargs}
    with pytest.raises(exc, match=match):
        odeint(args.pop("func"), args.pop("y0"), args.pop("t"), **args)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"method": "LSODA"}, ValueError, "unknown method 'LSODA'; valid methods: RK45, RK23, DOP853, Radau"),
        ({"t_span": (0.0, 0.0)}, ValueError, "t_span must hold two different"),
        ({"t_span": (0.0, float("inf"))}, ValueError, "t_span must hold two different finite"),
        ({"t_span": (0.0,)}, ValueError, "t_span must be a pair"),
        ({"t_eval": [0.0, 2.0]}, ValueError, "t_eval must lie within t_span"),
        ({"t_eval": [0.5, 0.2]}, ValueError, "t_eval must be strictly increasing|ordered in the direction"),
        ({"y0": np.zeros((2, 2, 2))}, ValueError, r"y0 must have shape \(n,\) or \(B, n\)"),
        ({"y0": ["a"]}, TypeError, "y0 must be real numbers"),
        ({"rtol": -1.0}, ValueError, "rtol must be a positive"),
        ({"rtol": 1e-300}, ValueError, "rtol must be at least"),
        ({"args": 5}, TypeError, "args must be a tuple"),
        ({"args": "ab"}, TypeError, "args must be a tuple"),
        ({"max_step": 0.0}, ValueError, r"options\['max_step'\]"),
        ({"dense_output": True}, ValueError, "dense_output=True is not supported"),
    ],
)
def test_hostile_solve_ivp_input(kwargs, exc, match):
    args = {"fun": FUNC, "t_span": (0.0, 1.0), "y0": [1.0, 2.0], **kwargs}
    with pytest.raises(exc, match=match):
        solve_ivp(args.pop("fun"), args.pop("t_span"), args.pop("y0"), **args)


def test_empty_states():
    t = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    ys, st = odeint(lambda t, y: -y, torch.zeros(0, dtype=F64), t, return_stats=True)
    assert ys.shape == (3, 0) and st.success.all()
    assert odeint(lambda t, y: -y, torch.zeros(0, 3, dtype=F64), t, options={"batch_dim": 0}).shape == (3, 0, 3)
    xs, es = odeint(lambda t, s: (-s[0], -s[1]), (torch.ones(2, dtype=F64), torch.zeros(0, dtype=F64)), t)
    assert es.shape == (3, 0) and torch.allclose(xs[:, 0], torch.exp(-t), rtol=1e-7)
