"""Stiff-Kuramoto experiment (NGS Fig. 4): rows of a tiny case, the LSODA wall-time cap, the summary."""

import math

import numpy as np
import pytest
import torch

from fastsim.dynamics.stiff import ThresholdedKuramoto
from fastsim.experiments import ngs_stiff
from fastsim.models.ngs import NeuralGraphSimulator
from fastsim.simulate import SimulationConfig, generate


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Two all-to-all Kuramoto trajectories of 8-12 oscillators, 6 steps to T = 1."""
    config = SimulationConfig("kuramoto_mean_field", 2, (8, 12), max_time=(1.0,), num_steps=(6,), delta=0.6, seed=3)
    path = generate(config, tmp_path_factory.mktemp("kuramoto") / "k.npz", progress=False)
    return ngs_stiff.load_cases(path, [0, 1])


def test_rows_are_well_formed_and_solvers_agree_with_the_exact_model_at_pi_over_2(cases, one_thread):
    torch.manual_seed(0)
    model = NeuralGraphSimulator("kuramoto", emb_dim=4, depth=2)
    rows = ngs_stiff.compare_at_threshold(
        model, cases, "π/2", math.pi / 2, rtol=1e-8, atol=1e-8, time_limit=30.0, repeats=1
    )
    assert len(rows) == len(cases) * len(ngs_stiff.METHODS)
    for row in rows:
        assert row["finished"] and row["t_reached"] == pytest.approx(1.0) == row["t_end"]
        assert row["wall_s"] > 0 and np.isfinite(row["mae"])
        assert row["N"] in (c.num_nodes for c in cases)
    # θ_th = π/2 keeps every pair: both solvers integrate the exact model, so they match the stored trajectory.
    for row in rows:
        if row["method"] != "NGS":
            assert row["mae"] < 1e-6 and row["nfev"] > 6
        else:
            assert row["nfev"] == 6
    summary = ngs_stiff.summarize(rows)
    assert [s["method"] for s in summary] == list(ngs_stiff.METHODS)
    ngs = summary[-1]
    assert ngs["speedup_vs_ngs"] == pytest.approx(1.0) and ngs["finished"] == len(cases)


def test_ngs_uses_the_threshold_of_the_system(cases):
    model = NeuralGraphSimulator("kuramoto", emb_dim=4, depth=2)
    narrow = ngs_stiff.with_threshold(model, math.pi / 6)
    assert narrow.threshold == pytest.approx(math.pi / 6)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), narrow.state_dict().values()))


def test_lsoda_cap_stops_the_run_and_counts_it_as_not_finished(cases):
    case = cases[0]
    system = ThresholdedKuramoto(case.omega, case.coupling, math.pi / 6)
    run = ngs_stiff.lsoda(system, case.truth[0], case.times, rtol=1e-12, atol=1e-12, time_limit=0.0)
    assert not run.finished and run.t_reached < 1.0
    assert np.isnan(run.states[-1]).all() and np.array_equal(run.states[0], case.truth[0].numpy())
    rows = [
        {"threshold": "π/6", "method": "scipy LSODA", "finished": False, "nfev": run.nfev, "wall_s": 2.0,
         "t_reached": 0.25, "t_end": 1.0, "mae": math.nan},
        {"threshold": "π/6", "method": "NGS", "finished": True, "nfev": 6, "wall_s": 0.5, "t_reached": 1.0,
         "t_end": 1.0, "mae": 0.1},
    ]  # fmt: skip
    capped, _ = ngs_stiff.summarize(rows)
    assert capped["finished"] == 0 and math.isnan(capped["mae"]) and capped["speedup_vs_ngs"] == pytest.approx(4.0)
    assert capped["wall_extrapolated_s"] == pytest.approx(8.0) and capped["speedup_extrapolated"] == pytest.approx(16)


def test_lsoda_cap_interrupts_a_long_run_between_steps(one_thread):
    gen = torch.Generator().manual_seed(0)
    omega = torch.randn(60, generator=gen, dtype=torch.float64)
    y0 = (torch.rand(60, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    system = ThresholdedKuramoto(omega, 0.5, math.pi / 6)
    times = torch.linspace(0, 5, 21, dtype=torch.float64)
    run = ngs_stiff.lsoda(system, y0, times, rtol=1e-12, atol=1e-12, time_limit=0.3)
    assert not run.finished and 0 < run.t_reached < 5 and run.nfev > 1
    assert 0.3 <= run.wall_s < 30  # stopped at the first step boundary after the cap
    reached = times.numpy() <= run.t_reached
    assert np.isfinite(run.states[reached]).all() and np.isnan(run.states[~reached]).all()
