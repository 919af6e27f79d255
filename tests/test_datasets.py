"""Dataset generation and the .npz format: sampling, solver paths, storage round trip, loader errors."""

import json

import numpy as np
import pytest
import torch

from fastsim.datasets import FORMAT_VERSION, SYSTEMS, load_dataset, pack, unpack
from fastsim.dynamics import GNRK_HEAT, GNRK_ROSSLER
from fastsim.graphs import largest_connected_component
from fastsim.simulate import SimulationConfig, checkpoint_dir, draw_sample, generate
from fastsim.solvers import odeint

SMALL = {"num_samples": 4, "num_nodes": (10, 16), "mean_degree": (2.0, 4.0), "seed": 1}


def make(tmp_path, name="data.npz", **kwargs):
    config = SimulationConfig(**{**SMALL, "system": "heat", **kwargs})
    return config, load_dataset(generate(config, tmp_path / name, progress=False))


def test_stored_sample_is_the_drawn_sample(tmp_path):
    config, data = make(tmp_path)
    for s, sample in enumerate(data):
        drawn = draw_sample(config, s)
        assert torch.equal(sample.graph.edge_index(), drawn.graph.edge_index())
        assert torch.equal(sample.graph.src, drawn.graph.src) and torch.equal(sample.graph.dst, drawn.graph.dst)
        assert torch.equal(sample.coefficients["diffusivity"], drawn.coefficients["diffusivity"])
        assert torch.equal(sample.trajectory[0], drawn.y0) and torch.equal(sample.times, drawn.times)
        assert sample.mean_degree == drawn.mean_degree
    # neighbouring samples, and the same sample under another seed, draw different inputs
    other_seed = SimulationConfig(**{**SMALL, "system": "heat", "seed": 2})
    assert not torch.equal(draw_sample(config, 0).times, draw_sample(config, 1).times)
    assert not torch.equal(draw_sample(config, 0).times, draw_sample(other_seed, 0).times)


def test_sample_system_resolves_to_the_stored_trajectory(tmp_path):
    _, data = make(tmp_path)
    sample = data[2]
    ys = odeint(sample.system(), sample.trajectory[0], sample.times, method="dop853", rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(sample.trajectory, ys, atol=2e-7, rtol=0)


@pytest.mark.parametrize(("system", "ranges"), [("heat", GNRK_HEAT), ("rossler", GNRK_ROSSLER)])
def test_gnrk_ranges(system, ranges):
    """`ranges="gnrk"` draws from GNRK's ranges; "ngs" is the default draw, bit for bit."""
    configs = {
        r: SimulationConfig(**{**SMALL, "system": system, "num_samples": 1, "ranges": r}) for r in (None, "ngs", "gnrk")
    }
    default, ngs, gnrk = (draw_sample(configs[r], 0) for r in (None, "ngs", "gnrk"))
    low, high = ranges.diffusivity if system == "heat" else ranges.coupling
    edge = gnrk.coefficients["diffusivity" if system == "heat" else "coupling"]
    assert low <= edge.min() and edge.max() <= high
    assert not torch.equal(edge, default.coefficients["diffusivity" if system == "heat" else "coupling"])
    for name, value in default.coefficients.items():
        assert torch.equal(value, ngs.coefficients[name])
    assert torch.equal(default.y0, ngs.y0)


@pytest.mark.parametrize("graph", ["er", "rr"])
def test_giant_component_keeps_the_largest_component(graph):
    """`giant_component` keeps each graph's largest component (GNRK's graphs); without it the whole graph is
    drawn, and both draws start from the same generator state."""
    base = {**SMALL, "system": "heat", "graph": graph, "num_nodes": (60, 60), "mean_degree": (1.5, 2.0)}
    smaller = 0
    for index in range(8):
        whole = draw_sample(SimulationConfig(**base), index).graph
        giant = draw_sample(SimulationConfig(**base, giant_component=True), index).graph
        assert torch.equal(giant.edge_index(), largest_connected_component(whole).edge_index())
        assert largest_connected_component(giant).num_nodes == giant.num_nodes  # connected
        smaller += giant.num_nodes < whole.num_nodes
    assert smaller > 0  # at these degrees some whole graphs have several components
    with pytest.raises(ValueError, match="giant_component must be a bool"):
        SimulationConfig(**base, giant_component="yes")


def test_batch_size_does_not_change_the_data(tmp_path):
    config = SimulationConfig(**{**SMALL, "system": "sir"})
    one = load_dataset(generate(config, tmp_path / "one.npz", batch_size=1, progress=False))
    many = load_dataset(generate(config, tmp_path / "many.npz", batch_size=3, checkpoint_every=2, progress=False))
    for key in one.arrays:
        if key != "wall_time":
            assert np.array_equal(one.arrays[key], many.arrays[key]), key
    assert not checkpoint_dir(tmp_path / "many.npz").exists()


def test_fused_and_odeint_paths_agree(tmp_path):
    _, fused = make(tmp_path, "fused.npz")
    _, generic = make(tmp_path, "generic.npz", solver="odeint")
    assert fused.solver == "fused:dopri5" and generic.solver == "odeint:dopri5"
    np.testing.assert_allclose(fused.arrays["trajectories"], generic.arrays["trajectories"], atol=1e-7, rtol=0)
    assert np.array_equal(fused.arrays["edge.diffusivity"], generic.arrays["edge.diffusivity"])
    assert (generic.arrays["status"] == 1).all() and (generic.arrays["nfev"] > 0).all()


@pytest.mark.parametrize("system", ["rossler", "sir", "kuramoto", "kuramoto_mean_field", "sis"])
def test_every_system_round_trips(tmp_path, system):
    config, data = make(tmp_path, system=system, num_samples=2, max_time=(1.0,), num_steps=(5,))
    spec = SYSTEMS[system]
    for s, sample in enumerate(data):
        n = sample.graph.num_nodes
        assert sample.trajectory.shape == (6, n, *spec.state_shape)
        assert set(sample.coefficients) == set(spec.coefficients)
        for name, value in draw_sample(config, s).coefficients.items():
            assert torch.equal(sample.coefficients[name], value), name
        assert (sample.graph.num_edges == 0) == (not spec.uses_edges)
        y = sample.trajectory
        if system == "sir":  # S + I + R = 1 at every node
            torch.testing.assert_close(y.sum(-1), torch.ones_like(y[..., 0]), atol=1e-9, rtol=0)
        ref = odeint(sample.system(), y[0], sample.times, method="dop853", rtol=1e-11, atol=1e-12)
        torch.testing.assert_close(y, ref, atol=1e-6, rtol=1e-6)


def test_graph_kinds(tmp_path):
    _, rr = make(tmp_path, "rr.npz", graph="rr", num_nodes=(11, 15), mean_degree=(2.6, 3.4))
    for sample in rr:  # 3-regular; a node is added when N·d is odd (GNRK)
        assert sample.mean_degree == 3.0 and (sample.graph.in_degree() == 3).all()
        assert sample.graph.num_nodes % 2 == 0 and 11 <= sample.graph.num_nodes <= 16
    _, ba = make(tmp_path, "ba.npz", graph="ba", mean_degree=(4.0, 5.9))
    for sample in ba:  # m = 2: exactly m (N - m) undirected edges
        n = sample.graph.num_nodes
        assert sample.graph.num_edges == 2 * 2 * (n - 2)


def test_multi_interval_grid_and_float32_storage(tmp_path):
    _, data = make(tmp_path, max_time=(1.0, 2.0), num_steps=(3, 4), delta=0.3, dtype="float32")
    times = data.arrays["times"]
    assert times.shape == (4, 8) and (times[:, 3] == 1.0).all() and (times[:, -1] == 2.0).all()
    assert (np.diff(times, axis=1) > 0).all()
    assert data.arrays["trajectories"].dtype == np.float32 and data[0].trajectory.dtype == torch.float32


def test_pack_unpack_round_trip(tmp_path):
    _, data = make(tmp_path, system="rossler", num_samples=3, max_time=(2.0,), num_steps=(4,))
    again = pack(unpack(data.arrays))
    assert sorted(again) == sorted(data.arrays)
    for key, value in data.arrays.items():
        assert np.array_equal(again[key], value) and again[key].dtype == value.dtype, key


def test_metadata_documents_the_file(tmp_path):
    config, data = make(tmp_path)
    meta = data.metadata
    assert meta["format_version"] == FORMAT_VERSION and meta["system"] == "heat" and meta["complete"]
    assert meta["config"] == config.to_json() and meta["coefficients"] == {"diffusivity": "edge"}
    assert meta["num_samples"] == 4 and meta["first_sample"] == 0 and meta["status_names"]["1"] == "success"
    with np.load(data.path, allow_pickle=False) as archive:  # plain arrays, no pickle needed
        assert int(archive["format_version"]) == FORMAT_VERSION
        assert json.loads(str(archive["metadata"]))["solver"] == "fused:dopri5"


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_dataset(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not an .npz"):
        load_dataset(tmp_path / "text.npz")
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="no format_version"):
        load_dataset(tmp_path / "plain.npz")
    np.savez(tmp_path / "future.npz", format_version=np.array(FORMAT_VERSION + 1), metadata=np.array("{}"))
    with pytest.raises(ValueError, match=f"format_version {FORMAT_VERSION + 1}"):
        load_dataset(tmp_path / "future.npz")
    np.savez(tmp_path / "broken.npz", format_version=np.array(FORMAT_VERSION), metadata=np.array("{not json"))
    with pytest.raises(ValueError, match="not a valid fastsim dataset"):
        load_dataset(tmp_path / "broken.npz")
    _, data = make(tmp_path)
    with pytest.raises(IndexError):
        data[4]
    assert data[-1].index == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"system": "lorenz"}, "system must be one of"),
        ({"num_samples": 0}, "num_samples must be an int >= 1"),
        ({"num_nodes": (5, 4)}, "min <= max"),
        ({"num_nodes": (5, 9), "mean_degree": (2.0, 5.0)}, "<= min(num_nodes) - 1 = 4"),
        ({"mean_degree": (-1.0, 2.0)}, "mean_degree must be a finite number"),
        ({"graph": "ws"}, "graph must be one of"),
        ({"max_time": (2.0, 1.0), "num_steps": (3, 3)}, "max_time must be increasing"),
        ({"delta": 1.0}, "delta must lie in [0, 1)"),
        ({"rtol": float("nan")}, "rtol must be a finite number"),
        ({"dtype": "float16"}, "dtype must be float64 or float32"),
        ({"solver": "fused", "method": "tsit5"}, "solver fused needs method dopri5"),
        ({"ranges": "pinn"}, "ranges must be one of ngs, gnrk"),
        ({"system": "kuramoto", "ranges": "gnrk"}, "for heat, rossler) or None; got 'gnrk' for system 'kuramoto'"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        config = SimulationConfig(**{"system": "heat", **kwargs})
        config.resolved_solver()
