"""Stiff test problems (ROBER, HIRES, OREGO, VDPOL, VDPOLM) and NGS's thresholded Kuramoto model."""

import math

import pytest
import torch

from fastsim.dynamics.stiff import (
    TEST_SET,
    ThresholdedKuramoto,
    Vdpol,
    Vdpolm,
    thresholded_kuramoto,
    thresholded_kuramoto_jacobian,
)
from fastsim.graph import Graph

F64 = torch.float64


def _states(p, k: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y0 = p.initial_state()
    return y0 + (0.5 + torch.rand(k, p.n, generator=g, dtype=F64)) * (y0.abs().max() * 0.1)


@pytest.mark.parametrize("name", sorted(TEST_SET))
def test_analytic_jacobian_matches_autograd(name):
    p = TEST_SET[name]
    for y in _states(p):
        J = p.jac(0.0, y)
        J_ad = torch.func.jacfwd(lambda z: p.rhs(0.0, z))(y)
        torch.testing.assert_close(J, J_ad, rtol=1e-13, atol=1e-13 * J_ad.abs().max().item())


@pytest.mark.parametrize("name", sorted(TEST_SET))
def test_rhs_accepts_a_batch_of_states(name):
    p = TEST_SET[name]
    Y = _states(p, k=3)
    torch.testing.assert_close(p.rhs(0.0, Y), torch.stack([p.rhs(0.0, y) for y in Y]), rtol=1e-15, atol=0)
    assert p.rhs(0.0, Y.reshape(3, 1, p.n)).shape == (3, 1, p.n)


@pytest.mark.parametrize("name", sorted(TEST_SET))
def test_problem_metadata(name):
    p = TEST_SET[name]
    assert len(p.y0) == len(p.reference) == p.n and p.t_end > 0
    assert "test set" in p.source.lower()
    ref = p.reference_state()
    assert p.scd(ref) == math.inf
    assert p.scd(ref * (1 + 1e-9)) == pytest.approx(9.0, abs=1e-3)
    assert p.atol(1e-10) == pytest.approx(1e-14 if name == "rober" else 1e-10)


def test_test_set_values():
    """Spot checks of the transcribed constants against the Bari files (rober.f, hires.f, orego.f, vdpol.f)."""
    assert TEST_SET["rober"].reference == (0.2083340149701255e-7, 0.8333360770334713e-13, 0.9999999791665050)
    assert TEST_SET["hires"].reference[7] == 0.2850001604814231e-2 and TEST_SET["hires"].t_end == 321.8122
    assert TEST_SET["orego"].reference[1] == 0.1228178521549917e4 and TEST_SET["orego"].t_end == 360.0
    assert TEST_SET["vdpol"].reference == (0.1706167732170483e1, -0.8928097010247975e0)


def test_vdpol_scalings_are_consistent():
    """VDPOL (ε = 1e-6 on [0, 2]) is VDPOLM (μ = 1000 on [0, 2000]) with t = μτ, y2 = μ x': the two independently
    computed test-set references agree to ~1e-14."""
    a, b = Vdpol(), Vdpolm()
    assert a.reference[0] == pytest.approx(b.reference[0], rel=1e-13)
    assert a.reference[1] == pytest.approx(b.mu * b.reference[1], rel=1e-13)
    y = torch.tensor([1.3, -0.7], dtype=F64)
    fa = a.rhs(0.0, y * torch.tensor([1.0, b.mu], dtype=F64))
    fb = b.rhs(0.0, y)
    torch.testing.assert_close(fa, torch.stack([fb[0] * b.mu, fb[1] * b.mu**2]), rtol=1e-14, atol=0)


def test_conservation_laws():
    rober, hires = TEST_SET["rober"], TEST_SET["hires"]
    for y in _states(rober):
        f = rober.rhs(0.0, y)
        assert abs(f.sum().item()) <= 1e-15 * f.abs().max().item()  # y1 + y2 + y3 is conserved
    for y in _states(hires):
        f = hires.rhs(0.0, y)
        assert f[6].item() == pytest.approx(-f[7].item(), rel=1e-14)


# ---------------------------------------------------------------------------------------- thresholded Kuramoto
def _population(n: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    theta = (torch.rand(n, generator=g, dtype=F64) * 2 - 1) * math.pi * 3  # phases beyond [−π, π] on purpose
    omega = torch.randn(n, generator=g, dtype=F64)
    return theta, omega


def _complete_graph(n: int) -> Graph:
    src, dst = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = src != dst
    return Graph.from_edge_index(torch.stack([src[keep], dst[keep]]), num_nodes=n)


def test_threshold_rule_is_the_sine_criterion():
    """NGS's |Δθ − π/2| < θ_th or |Δθ − 3π/2| < θ_th (Δθ mod 2π) is |sin Δθ| > cos θ_th for θ_th ≤ π/2."""
    theta, omega = _population(40, seed=1)
    diff = theta[None, :] - theta[:, None]
    k = 1.3
    for th in (math.pi / 6, math.pi / 4, math.pi / 3, math.pi / 2):
        mask = (torch.sin(diff).abs() > math.cos(th)).to(F64)
        expected = omega + k / 40 * (mask * torch.sin(diff)).sum(dim=1)
        torch.testing.assert_close(thresholded_kuramoto(theta, omega, k, th), expected, rtol=1e-13, atol=1e-13)


def test_wide_threshold_is_plain_kuramoto():
    theta, omega = _population()
    n, k = theta.numel(), 0.7
    plain = omega + k / n * torch.sin(theta[None, :] - theta[:, None]).sum(dim=1)
    torch.testing.assert_close(thresholded_kuramoto(theta, omega, k, 2.0), plain, rtol=1e-14, atol=1e-14)
    kuramoto = pytest.importorskip("fastsim.dynamics.kuramoto")
    graph = _complete_graph(n)
    mean_field = kuramoto.KuramotoMeanField(graph, omega, torch.tensor([k], dtype=F64))
    torch.testing.assert_close(thresholded_kuramoto(theta, omega, k, 2.0, graph), mean_field(0.0, theta),
                               rtol=1e-13, atol=1e-13)  # fmt: skip


def test_graph_form_matches_all_to_all():
    theta, omega = _population()
    graph = _complete_graph(theta.numel())
    for th in (math.pi / 3, math.pi / 6):
        torch.testing.assert_close(thresholded_kuramoto(theta, omega, 0.9, th, graph),
                                   thresholded_kuramoto(theta, omega, 0.9, th), rtol=1e-13, atol=1e-13)  # fmt: skip
        J_graph = thresholded_kuramoto_jacobian(theta, 0.9, th, graph)
        assert J_graph.layout == torch.sparse_csr
        torch.testing.assert_close(J_graph.to_dense(), thresholded_kuramoto_jacobian(theta, 0.9, th),
                                   rtol=1e-13, atol=1e-13)  # fmt: skip


@pytest.mark.parametrize("use_graph", [False, True])
def test_jacobian_matches_autograd_away_from_switching(use_graph):
    theta, omega = _population()
    graph = _complete_graph(theta.numel()) if use_graph else None
    J = thresholded_kuramoto_jacobian(theta, 0.9, math.pi / 4, graph)
    J = J.to_dense() if use_graph else J
    J_ad = torch.autograd.functional.jacobian(lambda z: thresholded_kuramoto(z, omega, 0.9, math.pi / 4, graph), theta)
    torch.testing.assert_close(J, J_ad, rtol=1e-13, atol=1e-13)
    assert torch.allclose(J.sum(dim=1), torch.zeros_like(theta), atol=1e-14)  # phase-shift invariance


def test_batched_graphs_use_per_graph_size_and_coupling():
    (ta, oa), (tb, ob) = _population(5, seed=2), _population(8, seed=3)
    ga, gb = _complete_graph(5), _complete_graph(8)
    both = Graph.batch_graphs([ga, gb])
    k = torch.tensor([0.4, 1.5], dtype=F64)
    out = thresholded_kuramoto(torch.cat([ta, tb]), torch.cat([oa, ob]), k, math.pi / 3, both)
    torch.testing.assert_close(out[:5], thresholded_kuramoto(ta, oa, 0.4, math.pi / 3), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(out[5:], thresholded_kuramoto(tb, ob, 1.5, math.pi / 3), rtol=1e-13, atol=1e-13)


def test_edge_weights_scale_the_coupling():
    theta, omega = _population(6)
    graph = _complete_graph(6)
    weighted = Graph.from_edge_index(graph.edge_index(), num_nodes=6, edge_weight=torch.full((30,), 2.0, dtype=F64))
    torch.testing.assert_close(
        thresholded_kuramoto(theta, omega, 0.5, math.pi / 3, weighted),
        thresholded_kuramoto(theta, omega, 1.0, math.pi / 3, graph),
        rtol=1e-13,
        atol=1e-13,
    )


def test_module_wraps_the_functions():
    theta, omega = _population()
    m = ThresholdedKuramoto(omega, 0.9, math.pi / 3)
    torch.testing.assert_close(m(torch.tensor(0.0), theta), thresholded_kuramoto(theta, omega, 0.9, math.pi / 3))
    torch.testing.assert_close(m.jacobian(0.0, theta), thresholded_kuramoto_jacobian(theta, 0.9, math.pi / 3))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((torch.zeros(2, 3, dtype=F64), torch.zeros(2, 3, dtype=F64), 1.0, 0.5), "theta"),
        ((torch.zeros(3, dtype=F64), torch.zeros(4, dtype=F64), 1.0, 0.5), "omega"),
        ((torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64), 1.0, 0.0), "threshold"),
        ((torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64), 1.0, -1.0), "threshold"),
    ],
)
def test_hostile_kuramoto_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        thresholded_kuramoto(*args)
    with pytest.raises(ValueError, match="theta must have graph.num_nodes"):
        thresholded_kuramoto(torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64), 1.0, 0.5, _complete_graph(4))


def test_module_rejects_non_finite_coefficients():
    with pytest.raises(ValueError, match="omega must be finite"):
        ThresholdedKuramoto(torch.tensor([0.0, float("nan")], dtype=F64), 0.5, 1.0)
    with pytest.raises(ValueError, match="coupling must be finite"):
        ThresholdedKuramoto(torch.zeros(2, dtype=F64), float("inf"), 1.0)
