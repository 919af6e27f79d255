"""Graph dynamics solved by fastsim (generic engine and fused ensemble) against scipy's DOP853 and Radau at tight
tolerance, with scipy integrating plain dense numpy formulas (not fastsim's right-hand sides)."""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from fastsim.dynamics import SIS, CoupledRossler, Kuramoto, KuramotoMeanField
from fastsim.graphs import erdos_renyi
from fastsim.solvers import odeint
from fastsim.solvers.fused import solve_ensemble
from tests.dynamics.dense_reference import dense_weights

N = 40
TIMES = np.array([0.0, 0.3, 1.1, 2.0, 3.7, 5.0])  # non-uniform output times


def kuramoto_case(graph):
    coeffs = Kuramoto.sample_coefficients(graph, generator=1)
    w, omega = dense_weights(graph, coeffs["coupling"]), coeffs["omega"].numpy()

    def f(_, th):
        return omega + (w * np.sin(th[None, :] - th[:, None])).sum(1)

    return Kuramoto(graph, **coeffs), Kuramoto.initial_state(graph, generator=2), f


def kuramoto_mean_field_case(graph):
    coeffs = KuramotoMeanField.sample_coefficients(graph, generator=1)
    omega, k_over_n = coeffs["omega"].numpy(), coeffs["coupling"].item() / graph.num_nodes

    def f(_, th):  # all-to-all pairwise sum, O(N²): independent of the O(N) mean-field form
        return omega + k_over_n * np.sin(th[None, :] - th[:, None]).sum(1)

    return KuramotoMeanField(graph, **coeffs), KuramotoMeanField.initial_state(graph, generator=2), f


def rossler_case(graph):
    coeffs = CoupledRossler.sample_coefficients(graph, generator=1)
    a, b, c = (coeffs[k].item() for k in "abc")
    w = dense_weights(graph, coeffs["coupling"])

    def f(_, flat):
        x, y, z = flat.reshape(-1, 3).T
        return np.stack([-y - z, x + a * y + w @ y - w.sum(1) * y, b + z * (x - c)], axis=1).ravel()

    return CoupledRossler(graph, **coeffs), CoupledRossler.initial_state(graph, generator=2), f


def sis_case(graph):
    coeffs = SIS.sample_coefficients(graph, generator=1)
    beta, gamma = dense_weights(graph, coeffs["infection_rate"]), coeffs["recovery_rate"].numpy()

    def f(_, rho):
        return -gamma * rho + (1 - rho) * (beta @ rho)

    return SIS(graph, **coeffs), SIS.initial_state(graph, generator=2), f


CASES = {
    "kuramoto": kuramoto_case,
    "kuramoto_mean_field": kuramoto_mean_field_case,
    "rossler": rossler_case,  # chaotic: the horizon T = 5 keeps the comparison well conditioned
    "sis": sis_case,
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    graph = erdos_renyi(N, 4.0, generator=0)
    system, y0, f = CASES[request.param](graph)
    refs = {
        method: solve_ivp(f, TIMES[[0, -1]], y0.numpy().ravel(), method=method, t_eval=TIMES, rtol=1e-12, atol=1e-12)
        for method in ("DOP853", "Radau")
    }
    for ref in refs.values():
        assert ref.success
    return request.param, system, y0, refs


@pytest.mark.parametrize("method", ["dop853", "dopri5", "tsit5", "radau"])
def test_odeint_matches_scipy(case, method):
    name, system, y0, refs = case
    ys = odeint(system, y0, torch.from_numpy(TIMES), method=method, rtol=1e-11, atol=1e-11)
    ours = ys.reshape(len(TIMES), -1).numpy()
    scale = 1.0 + np.abs(refs["DOP853"].y.T).max()
    for scipy_method, ref in refs.items():
        err = np.abs(ours - ref.y.T).max() / scale
        assert err < 1e-8, f"{name} {method} vs scipy {scipy_method}: max relative error {err:.1e}"


def test_fused_ensemble_matches_scipy(case):
    name, system, y0, refs = case
    sol = solve_ensemble(system, y0, torch.from_numpy(TIMES), rtol=1e-11, atol=1e-11)
    assert sol.success, sol.message
    ours = sol.ys.reshape(len(TIMES), -1).numpy()
    err = np.abs(ours - refs["DOP853"].y.T).max() / (1.0 + np.abs(refs["DOP853"].y.T).max())
    assert err < 1e-8, f"{name} fused dopri5 vs scipy DOP853: max relative error {err:.1e}"
