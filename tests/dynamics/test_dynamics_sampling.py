"""Every system: seeded coefficients and initial states reproduce, differ across seeds, and drive the RHS."""

import pytest
import torch

from fastsim.dynamics import SIR, SIS, CoupledRossler, HeatDiffusion, Kuramoto, KuramotoMeanField
from fastsim.graphs import erdos_renyi

SYSTEMS = [HeatDiffusion, Kuramoto, KuramotoMeanField, CoupledRossler, SIS, SIR]


@pytest.mark.parametrize("system", SYSTEMS, ids=lambda s: s.__name__)
def test_seeds_reproduce_and_feed_the_rhs(system):
    graph = erdos_renyi(80, 3.0, generator=0)
    coeffs = system.sample_coefficients(graph, generator=1)
    again = system.sample_coefficients(graph, generator=torch.Generator().manual_seed(1))
    other = system.sample_coefficients(graph, generator=2)
    for key, value in coeffs.items():
        assert value.dtype == torch.float64
        assert torch.equal(value, again[key]) and not torch.equal(value, other[key])
    y0 = system.initial_state(graph, generator=3)
    assert torch.equal(y0, system.initial_state(graph, generator=3))
    assert not torch.equal(y0, system.initial_state(graph, generator=4))
    model = system(graph, **coeffs)
    dy = model(0.0, y0)
    assert dy.shape == y0.shape and bool(torch.isfinite(dy).all())
    dy32 = model(0.0, y0.float())
    assert dy32.dtype == torch.float32
    torch.testing.assert_close(dy32, dy.float(), rtol=1e-5, atol=1e-5)
    assert model.jacobian(0.0, y0).shape == (y0.numel(), y0.numel())


@pytest.mark.parametrize("system", SYSTEMS, ids=lambda s: s.__name__)
def test_hostile_generator_and_graph(system):
    graph = erdos_renyi(10, 3.0, generator=0)
    with pytest.raises(TypeError, match="generator must be"):
        system.sample_coefficients(graph, generator=1.5)
    with pytest.raises(TypeError, match="graph must be a fastsim.Graph"):
        system.initial_state("graph", generator=0)
