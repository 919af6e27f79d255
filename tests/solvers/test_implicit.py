"""Stiff solvers (Radau IIA(5), Rodas5(4)): test-set accuracy, convergence orders, Jacobian paths, statuses.

The scd figures of the stiff test set are printed (run with `-s` to see them).
"""

import math
import time

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import fastsim.solvers.stiff_linalg as stiff_linalg
from fastsim.dynamics.stiff import TEST_SET, ThresholdedKuramoto
from fastsim.graph import Graph
from fastsim.solvers import radau, rosenbrock
from fastsim.solvers.implicit import METHODS, STATUS_MESSAGES, solve_implicit

F64 = torch.float64


def span(t0: float, t1: float) -> torch.Tensor:
    return torch.tensor([t0, t1], dtype=F64)


@pytest.fixture(params=["numpy", "torch"])
def backend(request, monkeypatch):
    """Run the stepper on numpy arrays (the CPU default) or on torch tensors (the path used on GPUs)."""
    monkeypatch.setattr(stiff_linalg, "NUMPY_ON_CPU", request.param == "numpy")
    return request.param


# ------------------------------------------------------------------------------------------------- method constants
def test_radau_tableau_and_eigendecomposition():
    C, A = radau.C, radau.A
    for k in range(1, 4):  # stage order 3: Σ_j a_ij c_j^(k-1) = c_i^k / k
        np.testing.assert_allclose(A @ C ** (k - 1), C**k / k, rtol=0, atol=1e-15)
    for k in range(1, 6):  # order 5 quadrature with b = last row of A (stiffly accurate)
        assert abs(A[2] @ C ** (k - 1) - 1 / k) < 1e-15
    lam = radau.TI @ np.linalg.inv(A) @ radau.T
    expected = np.array([[radau.GAMMA, 0, 0], [0, radau.ALPHA, radau.BETA], [0, -radau.BETA, radau.ALPHA]])
    np.testing.assert_allclose(lam, expected, rtol=0, atol=1e-13)
    eig = np.sort_complex(np.linalg.eigvals(np.linalg.inv(A)))
    np.testing.assert_allclose(eig, np.sort_complex([radau.GAMMA, radau.ALPHA + 1j * radau.BETA,
                                                     radau.ALPHA - 1j * radau.BETA]), atol=1e-13)  # fmt: skip


def test_rodas5_coefficients_satisfy_order_conditions():
    """Back-transform (Hairer & Wanner II, §IV.7): `Γ = (I/γ − C)⁻¹`, `α = A Γ`, `b = m Γ` with `m` the weights
    of `y_{n+1} = y_n + Σ m_j k_j`; then `c = α 1`, `d = Γ 1` and the Rosenbrock order conditions hold."""
    g = rosenbrock.GAMMA
    Gam = np.linalg.inv(np.eye(8) / g - rosenbrock.C)
    alpha = rosenbrock.A @ Gam
    b = rosenbrock.B @ Gam
    np.testing.assert_allclose(alpha.sum(axis=1), rosenbrock.c, atol=1e-12)
    np.testing.assert_allclose(Gam.sum(axis=1), rosenbrock.d, atol=1e-12)
    a = alpha.sum(axis=1)
    beta = alpha + Gam - np.diag(np.diag(Gam))  # β_ij = α_ij + γ_ij for j < i
    bp = beta.sum(axis=1)
    checks = [
        (b.sum(), 1.0),
        (b @ bp, 0.5 - g),
        (b @ a**2, 1 / 3),
        (b @ (beta @ bp), 1 / 6 - g + g * g),
        (b @ a**3, 1 / 4),
        (b @ a**4, 1 / 5),
    ]
    for got, want in checks:
        assert got == pytest.approx(want, abs=1e-12)
    # Stiffly accurate: the last three stages sit at c = 1, and y_{n+1} = (input of stage 8) + k_8.
    np.testing.assert_array_equal(rosenbrock.c[5:], 1.0)
    np.testing.assert_array_equal(rosenbrock.B[:7], rosenbrock.A[7, :7])


# -------------------------------------------------------------------------------------------------- stiff test set
RTOL = 1e-10


def _solve_test_problem(name: str, method: str, rtol: float = RTOL, atol: float | None = None, **options):
    p = TEST_SET[name]
    atol = p.atol(rtol) if atol is None else atol
    start = time.perf_counter()
    ys, stats = solve_implicit(p.rhs, p.initial_state(), span(0.0, p.t_end), method, rtol, atol,
                               {"jac": p.jac, "vectorized": True, **options})  # fmt: skip
    return p, ys, stats, time.perf_counter() - start


@pytest.mark.parametrize("name", ["rober", "hires", "orego", "vdpol"])
def test_radau_test_set_scd(name):
    """≥ 8 correct significant digits at t_end for rtol = 1e-10, atol as the test set pairs with it."""
    p, ys, stats, wall = _solve_test_problem(name, "radau")
    scd = p.scd(ys[-1])
    print(f"\nradau  {name:6s} scd={scd:5.2f} steps={stats['accepted']} rejected={stats['rejected']} "
          f"nfev={stats['nfev']} njev={stats['njev']} nlu={stats['nlu']} wall={wall:.2f}s")  # fmt: skip
    assert stats["status"] == "success", stats["message"]
    assert scd >= 8.0


@pytest.mark.parametrize("name", ["hires", "vdpolm"])
def test_rodas5_test_set_scd(name):
    p, ys, stats, wall = _solve_test_problem(name, "rodas5")
    scd = p.scd(ys[-1])
    print(f"\nrodas5 {name:6s} scd={scd:5.2f} steps={stats['accepted']} nfev={stats['nfev']} wall={wall:.2f}s")
    assert stats["status"] == "success" and scd >= 8.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["orego", "vdpol"])
def test_rodas5_test_set_scd_slow(name):
    p, ys, stats, wall = _solve_test_problem(name, "rodas5")
    scd = p.scd(ys[-1])
    print(f"\nrodas5 {name:6s} scd={scd:5.2f} steps={stats['accepted']} nfev={stats['nfev']} wall={wall:.2f}s")
    assert stats["status"] == "success" and scd >= 8.0


def test_rodas5_rober_needs_a_tighter_atol():
    """Rodas5's order-4 estimate is far less pessimistic than Radau's order-3 one: at the test set's atol = 1e-14
    the late y1 ≈ 2e-8 is only controlled to ~1e-7 relative (6.7 digits); atol = 1e-18 gives ≥ 9."""
    p, ys, stats, _ = _solve_test_problem("rober", "rodas5", atol=1e-18)
    print(f"\nrodas5 rober  (atol=1e-18) scd={p.scd(ys[-1]):5.2f} steps={stats['accepted']}")
    assert stats["status"] == "success" and p.scd(ys[-1]) >= 9.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rober", "hires", "orego", "vdpol", "vdpolm"])
def test_radau_work_matches_scipy(name):
    """Same method as scipy's Radau (both RADAU5-derived): accepted steps within 10 %, no more f-evaluations."""
    p, ys, stats, wall = _solve_test_problem(name, "radau")
    f = lambda t, y: p.rhs(t, torch.from_numpy(y)).numpy()  # noqa: E731
    jac = lambda t, y: p.jac(t, torch.from_numpy(y)).numpy()  # noqa: E731
    start = time.perf_counter()
    ref = solve_ivp(f, (0, p.t_end), p.y0, method="Radau", rtol=RTOL, atol=p.atol(RTOL), jac=jac)
    wall_scipy = time.perf_counter() - start
    print(f"\n{name:6s} fastsim: scd={p.scd(ys[-1]):5.2f} steps={stats['accepted']} nfev={stats['nfev']} "
          f"{wall:.2f}s | scipy: scd={p.scd(torch.from_numpy(ref.y[:, -1])):5.2f} steps={len(ref.t) - 1} "
          f"nfev={ref.nfev} {wall_scipy:.2f}s")  # fmt: skip
    assert stats["accepted"] <= 1.1 * (len(ref.t) - 1)
    assert stats["nfev"] <= 1.05 * ref.nfev


# -------------------------------------------------------------------------------------------- convergence orders
def _rational(t, y):
    """scipy's test problem with solution y = (t/(t+10), 10t/(t+10)²): non-stiff, non-autonomous, nonlinear."""
    return torch.stack([y[1] / t, y[1] * (y[0] + 2 * y[1] - 1) / (t * (y[0] - 1))])


def _rational_exact(t: float) -> np.ndarray:
    return np.array([t / (t + 10), 10 * t / (t + 10) ** 2])


def _fixed_step_slope(func, y0, t0, t1, exact, method, steps):
    errs = []
    for n in steps:
        ys, stats = solve_implicit(func, y0, span(t0, t1), method, 1e-13, 1e-15, {"step_size": (t1 - t0) / n})
        assert stats["status"] == "success" and stats["accepted"] == n
        errs.append(np.abs(ys[-1].numpy() - exact).max())
    slope = -np.polyfit(np.log(steps), np.log(errs), 1)[0]
    return slope, errs


@pytest.mark.parametrize("method", METHODS)
def test_convergence_order_nonstiff(method, backend):
    """Fixed steps on a smooth non-stiff problem: the log-log slope is the classical order 5 (within 0.2)."""
    y0 = torch.tensor(_rational_exact(5.0))
    slope, errs = _fixed_step_slope(_rational, y0, 5.0, 15.0, _rational_exact(15.0), method, [4, 8, 16, 32])
    print(f"\n{method} ({backend}): errors {[f'{e:.2e}' for e in errs]}, slope {slope:.2f}")
    assert abs(slope - 5.0) < 0.2


def test_radau_order_reduction_prothero_robinson():
    """Prothero–Robinson `y' = λ(y − sin t) + cos t`, λ = −1e6, with |hλ| ≥ 6e3: Radau IIA's error is
    O(h^{q+1}/(hλ)) = O(h^q/λ) with stage order q = 3 (Hairer & Wanner II, §IV.15), not the classical 5."""
    lam = -1e6

    def pr(t, y):
        return lam * (y - torch.sin(t)) + torch.cos(t)

    slope, errs = _fixed_step_slope(pr, torch.zeros(1, dtype=F64), 0.0, 1.0, np.sin(1.0), "radau",
                                    [10, 20, 40, 80, 160])  # fmt: skip
    print(f"\nradau Prothero-Robinson: errors {[f'{e:.2e}' for e in errs]}, slope {slope:.2f}")
    assert abs(slope - 3.0) < 0.2
    assert max(errs) < 1e-10  # the 1/λ factor


# ----------------------------------------------------------------------------------------- dense output, paths
def _stiff_linear(n: int = 5, seed: int = 0):
    """`y' = M y` with eigenvalues from −1 to −1e5 (a rotated diagonal): exact solution by matrix_exp."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    M = Q @ torch.diag(-torch.logspace(0, 5, n, dtype=F64)) @ Q.T
    y0 = torch.randn(n, generator=g, dtype=F64)
    return M, y0


@pytest.mark.parametrize("method", METHODS)
def test_dense_output_at_nonuniform_times(method, backend):
    M, y0 = _stiff_linear()
    t = torch.cat([torch.zeros(1, dtype=F64), torch.sort(torch.rand(40, generator=torch.Generator().manual_seed(1),
                                                                    dtype=F64)).values * 3])  # fmt: skip
    ys, stats = solve_implicit(lambda t, y: M @ y, y0, t, method, 1e-10, 1e-12, {"jac": lambda t, y: M})
    exact = torch.stack([torch.linalg.matrix_exp(M * s) @ y0 for s in t])
    assert stats["status"] == "success"
    assert (ys - exact).abs().max() < 1e-8


def test_autograd_jacobian_matches_analytic():
    p = TEST_SET["orego"]
    t = torch.linspace(0, 10, 6, dtype=F64)
    ys, st = solve_implicit(p.rhs, p.initial_state(), t, "radau", 1e-8, 1e-8, {"jac": p.jac})
    ys_ad, st_ad = solve_implicit(p.rhs, p.initial_state(), t, "radau", 1e-8, 1e-8)  # torch.func.jacfwd
    assert st_ad["status"] == "success" and st_ad["njev"] > 0
    torch.testing.assert_close(ys_ad, ys, rtol=1e-9, atol=0)
    ys_r, _ = solve_implicit(p.rhs, p.initial_state(), t, "rodas5", 1e-8, 1e-8)
    torch.testing.assert_close(ys_r, ys, rtol=1e-6, atol=0)


def _reaction_diffusion(n: int):
    """`y' = D y − y³`, D the 1-D Dirichlet Laplacian times (n+1)²: stiff, with a tridiagonal Jacobian."""
    k = float((n + 1) ** 2)
    idx = torch.arange(n)

    def f(t, y):
        lap = -2 * y
        lap[1:] += y[:-1]
        lap[:-1] += y[1:]
        return k * lap - y**3

    def jac(t, y):
        rows = torch.cat([idx, idx[1:], idx[:-1]])
        cols = torch.cat([idx, idx[:-1], idx[1:]])
        vals = torch.cat([-2 * k - 3 * y**2, torch.full((2 * (n - 1),), k, dtype=F64)])
        return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n)).to_sparse_csr()

    y0 = torch.sin(math.pi * (idx + 1) / (n + 1)).to(F64) + 0.5 * torch.sin(7 * math.pi * (idx + 1) / (n + 1))
    return f, jac, y0


@pytest.mark.parametrize("method", METHODS)
def test_sparse_jacobian_superlu_matches_dense(method, backend):
    n = 72  # > DENSE_LU_MAX_N: SuperLU
    f, jac, y0 = _reaction_diffusion(n)
    t = torch.linspace(0, 0.1, 5, dtype=F64)
    ys_sp, st_sp = solve_implicit(f, y0, t, method, 1e-8, 1e-10, {"jac": jac})
    ys_de, st_de = solve_implicit(f, y0, t, method, 1e-8, 1e-10, {"jac": lambda t, y: jac(t, y).to_dense()})
    assert st_sp["status"] == st_de["status"] == "success"
    torch.testing.assert_close(ys_sp, ys_de, rtol=1e-9, atol=1e-12)
    assert st_sp["accepted"] < 200


def test_state_shape_dtype_and_vectorized():
    p = TEST_SET["hires"]
    y0 = p.initial_state().reshape(2, 4).to(torch.float32)

    def f(t, y):
        return p.rhs(t, y.reshape(*y.shape[:-2], 8).to(F64)).reshape(y.shape)

    t = torch.linspace(0, 5, 4, dtype=F64)
    ys, st = solve_implicit(f, y0, t, "radau", 1e-8, 1e-10)
    assert ys.shape == (4, 2, 4) and ys.dtype == torch.float32
    ys_v, st_v = solve_implicit(f, y0, t, "radau", 1e-8, 1e-10, {"vectorized": True})
    torch.testing.assert_close(ys_v, ys, rtol=0, atol=0)
    assert st_v["nfev"] == st["nfev"]


def test_options_first_and_max_step_and_radau5_tolerances():
    p = TEST_SET["hires"]
    t = span(0.0, p.t_end)
    _, st = solve_implicit(p.rhs, p.initial_state(), t, "radau", 1e-6, 1e-6, {"jac": p.jac, "max_step": 1.0})
    assert st["accepted"] >= p.t_end
    _, st_plain = solve_implicit(p.rhs, p.initial_state(), t, "radau", 1e-10, 1e-10, {"jac": p.jac})
    ys, st_r5 = solve_implicit(p.rhs, p.initial_state(), t, "radau", 1e-10, 1e-10,
                               {"jac": p.jac, "radau5_tolerances": True, "first_step": 1e-6})  # fmt: skip
    # RADAU5's mapping rtol → 0.1·rtol^(2/3) takes a third of the steps; the global error is then ~1e-7, not 1e-10.
    print(
        f"\nhires radau5_tolerances: {st_r5['accepted']} steps (plain: {st_plain['accepted']}), scd {p.scd(ys[-1]):.2f}"
    )
    assert st_r5["accepted"] < 0.5 * st_plain["accepted"]
    assert p.scd(ys[-1]) > 6.5


# ------------------------------------------------------------------------------------------ thresholded Kuramoto
def _kuramoto_setup(n: int = 4):
    g = torch.Generator().manual_seed(0)
    omega = torch.linspace(-2, 2, n, dtype=F64)  # spread: pairs drift through the thresholds (no sliding)
    theta0 = (torch.rand(n, generator=g, dtype=F64) * 2 - 1) * math.pi
    return omega, theta0


def test_thresholded_kuramoto_agrees_with_scipy_radau():
    omega, theta0 = _kuramoto_setup()
    system = ThresholdedKuramoto(omega, 0.5, math.pi / 3)
    t = torch.linspace(0, 2, 7, dtype=F64)
    ys, st = solve_implicit(system, theta0, t, "radau", 1e-10, 1e-12, {"jac": system.jacobian})
    f = lambda s, y: system(s, torch.from_numpy(y)).numpy()  # noqa: E731
    jac = lambda s, y: system.jacobian(s, torch.from_numpy(y)).numpy()  # noqa: E731
    ref = solve_ivp(f, (0, 2), theta0.numpy(), method="Radau", t_eval=t.numpy(), rtol=1e-10, atol=1e-12, jac=jac)
    diff = np.abs(ys.numpy().T - ref.y).max()
    print(f"\nthresholded Kuramoto N=4 θ_th=π/3: max |fastsim − scipy| = {diff:.1e}, steps {st['accepted']} "
          f"(+{st['rejected']} rejected), nfev {st['nfev']} vs scipy {ref.nfev}")  # fmt: skip
    assert st["status"] == "success"
    assert diff < 1e-6  # the right-hand side jumps at every switching: agreement is limited by the error control


@pytest.mark.parametrize("method", METHODS)
def test_thresholded_kuramoto_on_graph_sparse_jacobian(method):
    """On a sparse graph (N = 72 > 64: the CSR Jacobian goes to SuperLU) the answer equals the dense-LU one."""
    n = 72
    ring = torch.arange(n)
    edges = torch.cat([torch.stack([ring, (ring + k) % n]) for k in (1, 2, n - 1, n - 2)], dim=1)
    graph = Graph.from_edge_index(edges, num_nodes=n)
    omega = torch.linspace(-1, 1, n, dtype=F64)
    theta0 = (torch.rand(n, generator=torch.Generator().manual_seed(3), dtype=F64) * 2 - 1) * math.pi
    system = ThresholdedKuramoto(omega, 20.0, math.pi / 4, graph)
    t = torch.linspace(0, 0.05, 3, dtype=F64)
    ys_s, st_s = solve_implicit(system, theta0, t, method, 1e-6, 1e-8, {"jac": system.jacobian})
    ys_d, st_d = solve_implicit(system, theta0, t, method, 1e-6, 1e-8,
                                {"jac": lambda s, y: system.jacobian(s, y).to_dense()})  # fmt: skip
    assert st_d["status"] == st_s["status"] == "success"
    assert st_s["accepted"] == st_d["accepted"]
    torch.testing.assert_close(ys_s, ys_d, rtol=0, atol=1e-10)


# -------------------------------------------------------------------------------------- stiffness: explicit vs implicit
def test_explicit_method_needs_far_more_steps():
    """ROBER on [0, 5]: an explicit method is stability-limited (|hλ| ≲ 3 with |λ| ~ 1e4 once y3 has built up)
    while Radau's steps follow the smooth solution."""
    p = TEST_SET["rober"]
    ys, st = solve_implicit(p.rhs, p.initial_state(), span(0, 5), "radau", 1e-6, 1e-10, {"jac": p.jac})

    def f(t, y):  # numpy, for speed: the explicit solver takes thousands of steps
        r1, r2, r3 = 0.04 * y[0], 3e7 * y[1] ** 2, 1e4 * y[1] * y[2]
        return np.array([r3 - r1, r1 - r3 - r2, r2])

    explicit = solve_ivp(f, (0, 5), p.y0, method="RK45", rtol=1e-6, atol=1e-10)
    print(f"\nROBER [0, 5]: radau {st['accepted']} steps, RK45 {len(explicit.t) - 1} steps")
    assert st["status"] == "success" and explicit.status == 0
    assert len(explicit.t) - 1 > 30 * st["accepted"]
    np.testing.assert_allclose(ys[-1].numpy(), explicit.y[:, -1], rtol=1e-4, atol=1e-10)


# ------------------------------------------------------------------------------------------------ statuses, hostile
def test_max_num_steps_status():
    p = TEST_SET["vdpol"]
    t = torch.linspace(0, p.t_end, 5, dtype=F64)
    ys, st = solve_implicit(p.rhs, p.initial_state(), t, "radau", 1e-8, 1e-8, {"jac": p.jac, "max_num_steps": 50})
    assert st["status"] == "max_num_steps" and "50" in st["message"]
    assert torch.isnan(ys[-1]).all() and not torch.isnan(ys[0]).any()
    ys, st = solve_implicit(p.rhs, p.initial_state(), t, "rodas5", 1e-8, 1e-8, {"jac": p.jac, "max_num_steps": 50})
    assert st["status"] == "max_num_steps"


@pytest.mark.parametrize("method", METHODS)
def test_non_finite_rhs_stops_with_status(method):
    def f(t, y):
        return torch.where(t > 0.5, torch.full_like(y, float("nan")), -y)

    t = torch.linspace(0, 1, 5, dtype=F64)
    ys, st = solve_implicit(f, torch.ones(3, dtype=F64), t, method, 1e-6, 1e-8)
    assert st["status"] == "non_finite", st["message"]
    torch.testing.assert_close(ys[1], torch.full((3,), math.exp(-0.25), dtype=F64), rtol=1e-5, atol=0)
    assert torch.isnan(ys[-1]).all()


@pytest.mark.parametrize("method", METHODS)
def test_blow_up_terminates(method):
    """`y' = y²`, `y(0) = 1` blows up at t = 1: the solver must stop with a failure status, not hang."""
    start = time.perf_counter()
    ys, st = solve_implicit(lambda t, y: y * y, torch.ones(1, dtype=F64), span(0, 2), method, 1e-6, 1e-8)
    assert st["status"] in ("non_finite", "step_size_underflow"), st
    assert time.perf_counter() - start < 10


def test_statuses_documented():
    assert set(STATUS_MESSAGES) >= {"success", "max_num_steps", "step_size_underflow", "non_finite"}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"y0": torch.tensor([1.0, float("nan")], dtype=F64)}, ValueError, "y0"),
        ({"y0": torch.tensor([1, 2])}, TypeError, "y0"),
        ({"t": torch.tensor([0.0, 2.0, 1.0], dtype=F64)}, ValueError, "t must be strictly increasing"),
        ({"t": torch.tensor([0.0, float("nan")], dtype=F64)}, ValueError, "t must be finite"),
        ({"t": torch.zeros(2, 2, dtype=F64)}, ValueError, "t must be a 1-D"),
        ({"rtol": 0.0}, ValueError, "rtol"),
        ({"rtol": -1e-6}, ValueError, "rtol"),
        ({"atol": -1.0}, ValueError, "atol"),
        ({"method": "bdf"}, ValueError, "method"),
        ({"options": {"bogus": 1}}, ValueError, "bogus"),
        ({"options": {"max_num_steps": 0}}, ValueError, "max_num_steps"),
        ({"options": {"first_step": -1.0}}, ValueError, "first_step"),
        ({"options": {"jac": 3}}, TypeError, "jac"),
        ({"options": {"jac": lambda t, y: torch.eye(3, dtype=F64)}}, ValueError, "jac"),
        ({"func": lambda t, y: torch.zeros(3, dtype=F64)}, ValueError, "func"),
    ],
)
def test_hostile_inputs(kwargs, error, match):
    args = {"func": lambda t, y: -y, "y0": torch.ones(2, dtype=F64), "t": span(0, 1), "method": "radau",
            "rtol": 1e-6, "atol": 1e-8, "options": None}  # fmt: skip
    args.update(kwargs)
    with pytest.raises(error, match=match):
        solve_implicit(**args)


def test_single_output_time_returns_y0():
    ys, st = solve_implicit(lambda t, y: -y, torch.ones(2, dtype=F64), torch.zeros(1, dtype=F64), "rodas5")
    assert ys.shape == (1, 2) and st["status"] == "success" and st["nfev"] == 0


@pytest.mark.cuda
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_cpu(method):
    p = TEST_SET["hires"]
    t = torch.linspace(0, p.t_end, 5, dtype=F64)
    ys_cpu, _ = solve_implicit(p.rhs, p.initial_state(), t, method, 1e-8, 1e-8, {"jac": p.jac})
    ys_gpu, st = solve_implicit(p.rhs, p.initial_state(device="cuda"), t.cuda(), method, 1e-8, 1e-8, {"jac": p.jac})
    assert ys_gpu.device.type == "cuda" and st["status"] == "success"
    torch.testing.assert_close(ys_gpu.cpu(), ys_cpu, rtol=1e-7, atol=1e-12)
