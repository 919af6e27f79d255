"""GNRK experiment: Burgers data files, learning heat on graphs, resume, CLI train/rollout, the plain reference."""

import json

import numpy as np
import pytest
import torch

from fastsim.cli import main
from fastsim.experiments import gnrk
from fastsim.simulate import SimulationConfig, generate
from fastsim.training import TrainConfig


@pytest.fixture(scope="module")
def heat_files(tmp_path_factory):
    """GNRK-style heat data: random regular graphs, Δt ±10 % around 0.02, Euler for train, RK4 for test."""
    folder = tmp_path_factory.mktemp("heat")
    common = dict(system="heat", num_nodes=(20, 30), mean_degree=(2, 4), graph="rr", max_time=0.6, num_steps=30)
    generate(SimulationConfig(**common, num_samples=8, delta=0.1, method="euler", seed=0), folder / "train.npz",
             progress=False)  # fmt: skip
    generate(SimulationConfig(**common, num_samples=3, delta=0.1, method="rk4", seed=1), folder / "test.npz",
             progress=False)  # fmt: skip
    return folder / "train.npz", folder / "test.npz"


def heat_config(out, epochs, validate_every=1):
    return TrainConfig(
        epochs=epochs, lr=1e-2, batch_size=8, schedule="constant", weight_decay=0.0, ema=False, out=str(out),
        quiet=True, validate_every=validate_every,
    )  # fmt: skip


def test_learns_heat_dynamics_on_graphs(heat_files, tmp_path):
    train_path, test_path = heat_files
    system, train_data = gnrk.load_trajectories(train_path)
    _, test_data = gnrk.load_trajectories(test_path)
    assert system == "heat" and train_data[0].states.dim() == 3
    args = {"architecture": "gnrk", "system": "heat", "tableau": "rk1", "options": {"dim": 8, "edge_hidden": 32,
            "node_hidden": 32}}  # fmt: skip
    torch.manual_seed(0)
    untrained = gnrk.build_model(args)
    _, before = gnrk.rollout_errors(untrained, "heat", test_data)
    model, result = gnrk.train(
        "heat", train_data, test_data[:1], heat_config(tmp_path, 8, 8), model_args=args, steps_per_epoch=20,
        val_steps=None,
    )  # fmt: skip
    model.tableau = "rk4"
    _, after = gnrk.rollout_errors(model, "heat", test_data)
    # a constant prediction's error, for scale: the states move by O(0.1-1) over the horizon
    still = np.mean([(t.states - t.states[0]).abs().mean().item() for t in test_data])
    assert after[:, 1:].mean() < 0.1 * still, (after[:, 1:].mean(), still)
    assert after[:, 1:].mean() < 0.1 * before[:, 1:].mean()
    assert result.history[-1]["train_loss"] < 0.05 * result.history[0]["train_loss"]


def test_resume_reaches_the_same_weights(heat_files, tmp_path):
    train_path, _ = heat_files
    _, data = gnrk.load_trajectories(train_path)
    args = {"architecture": "gnrk", "system": "heat", "tableau": "rk2", "options": {"dim": 4, "edge_hidden": 8,
            "node_hidden": 8}}  # fmt: skip
    kwargs = dict(model_args=args, steps_per_epoch=3, val_steps=5)
    straight, _ = gnrk.train("heat", data[:-1], data[-1:], heat_config(tmp_path / "a", 3), **kwargs)
    gnrk.train("heat", data[:-1], data[-1:], heat_config(tmp_path / "b", 2), **kwargs)
    resumed, _ = gnrk.train("heat", data[:-1], data[-1:], heat_config(tmp_path / "b", 3), resume=True, **kwargs)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_burgers_file_round_trip_and_cli(tmp_path, capsys):
    out = tmp_path / "b.npz"
    code = main(["simulate", "burgers", "--dataset", "III", "--grid-range", "6", "9", "--num-samples", "2",
                 "--num-steps", "4", "--method", "rk4", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    system, data = gnrk.load_trajectories(out)
    assert system == "burgers" and len(data) == 2
    item = data[0]
    assert item.states.shape == (5, item.grid.num_nodes, 2) and item.states.dtype == torch.float32
    assert not torch.allclose(item.grid.dx, item.grid.dx.mean().expand_as(item.grid.dx))  # non-uniform
    dts = item.times.diff()
    torch.testing.assert_close(dts, torch.full_like(dts, 1e-3))
    # train two steps through the CLI, then roll out with three tableaux
    run = tmp_path / "run"
    assert main(["train", "gnrk", "--system", "burgers", "--data", str(out), "--out", str(run), "--epochs", "1",
                 "--steps-per-epoch", "2", "--batch-size", "1", "--lr-min", "1e-5", "--quiet"]) == 0  # fmt: skip
    assert json.loads((run / "results.json").read_text())["parameters"] == 10_882
    # resuming it on other data, or with another tableau, is refused
    other = tmp_path / "other.npz"
    assert main(["simulate", "burgers", "--dataset", "III", "--grid-range", "6", "9", "--num-samples", "2",
                 "--num-steps", "4", "--method", "rk4", "--seed", "1", "--out", str(other),
                 "--quiet"]) == 0  # fmt: skip
    for changed in (["--data", str(other)], ["--data", str(out), "--tableau", "rk2"]):
        with pytest.raises(SystemExit):
            main(["train", "gnrk", "--system", "burgers", *changed, "--out", str(run), "--epochs", "2",
                  "--steps-per-epoch", "2", "--batch-size", "1", "--lr-min", "1e-5", "--quiet",
                  "--resume"])  # fmt: skip
    err = capsys.readouterr().err
    assert "model or data differ" in err and "extra: data_digest" in err and "extra: model_args" in err
    roll = tmp_path / "roll"
    assert main(["rollout", "--checkpoint", str(run / "best.pt"), "--data", str(out), "--out", str(roll),
                 "--tableaux", "rk1", "rk2", "rk4", "--quiet"]) == 0  # fmt: skip
    results = json.loads((roll / "results.json").read_text())
    assert [r["label"] for r in results["runs"]] == ["rk1", "rk2", "rk4"]
    assert all(r["slope_mae"] > 0 for r in results["runs"])
    assert all(r["mae_ci95"] > 0 for r in results["runs"])  # two samples: an interval
    assert (roll / "fields_rk4.png").is_file() and (roll / "error_vs_time_rk1.png").is_file()
    assert (roll / "error_vs_time.png").read_bytes()[:4] == b"\x89PNG"


def test_non_uniform_time_steps_dataset_iv(tmp_path):
    config = gnrk.BurgersConfig("IV", num_samples=1, grid=(6, 6), num_steps=10, method="euler")
    _, data = gnrk.load_trajectories(gnrk.simulate_burgers(config, tmp_path / "iv.npz", progress=False))
    dts = data[0].times.diff()
    assert float(dts.min()) >= 0.9e-3 - 1e-12 and float(dts.max()) <= 1.1e-3 + 1e-12 and float(dts.std()) > 0
    model = gnrk.build_model({"architecture": "gnrk", "system": "burgers", "tableau": "rk4"})
    preds, errors = gnrk.rollout_errors(model, "burgers", data)
    assert preds[0].shape == (11, 36, 2) and errors.shape == (1, 11) and errors[0, 0] == 0


class _ConstantRollout(torch.nn.Module):
    """Predicts zeros everywhere, and NaN for the batch's first node after the first step."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def rollout(self, x0, dts, graph, **coefficients):
        pred = x0.new_zeros(dts.shape[1] + 1, *x0.shape)
        pred[1:, 0] = float("nan")
        return pred


def test_rollout_errors_keep_errors_above_one_and_cap_diverged_entries(tmp_path):
    config = SimulationConfig("rossler", num_samples=2, num_nodes=(6, 8), mean_degree=(2, 3), max_time=1.0,
                              num_steps=5, method="rk4", seed=0)  # fmt: skip
    _, data = gnrk.load_trajectories(generate(config, tmp_path / "rossler.npz", progress=False))
    _, errors = gnrk.rollout_errors(_ConstantRollout(), "rossler", data, batch_size=2)
    for b, (item, row) in enumerate(zip(data, errors)):
        expected, cap = item.states.abs(), float(item.states.abs().max())
        if b == 0:
            expected[1:, 0] = cap  # the diverged node counts as the trajectory's largest |state|
        assert cap > 1 and row[0] > 1
        np.testing.assert_allclose(row, expected.mean(dim=(1, 2)).numpy(), rtol=1e-6)


def test_slope_error_is_the_capped_mae_of_rollout_slopes(tmp_path):
    config = SimulationConfig("rossler", num_samples=2, num_nodes=(6, 8), mean_degree=(2, 3), max_time=1.0,
                              num_steps=5, method="rk4", delta=0.2, seed=0)  # fmt: skip
    _, data = gnrk.load_trajectories(generate(config, tmp_path / "rossler.npz", progress=False))
    preds, _ = gnrk.rollout_errors(_ConstantRollout(), "rossler", data, batch_size=2)
    for b, (pred, item) in enumerate(zip(preds, data)):
        dt = item.times.diff()[:, None, None]
        slopes = item.states.diff(dim=0) / dt
        cap = max(1.0, float(slopes.abs().max()))
        expected = slopes.abs().clamp(max=cap)  # the prediction's slopes are zero ...
        if b == 0:
            expected[:, 0] = cap  # ... but for the diverged node, which counts as the cap
        assert gnrk.slope_error(pred, item) == pytest.approx(float(expected.mean()), rel=1e-6)
    assert gnrk.slope_error(data[0].states, data[0]) == 0.0  # the truth itself


def test_hostile_files_and_settings(tmp_path):
    with pytest.raises(FileNotFoundError):
        gnrk.load_trajectories(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not an .npz"):
        gnrk.load_trajectories(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="dataset must be one of"):
        gnrk.BurgersConfig("V")
    with pytest.raises(ValueError, match="dt must be"):
        gnrk.BurgersConfig("I", dt=0.0)
    with pytest.raises(ValueError, match="method must be rk4 or euler"):
        gnrk.BurgersConfig("I", method="dopri5")
    with pytest.raises(ValueError, match="grid sizes must be pairs of ints >= 3"):
        gnrk.BurgersConfig("I", grid=(2, 5))


def _burgers_case(seed: int, nu: float):
    """A float64 Burgers GNRK (RK4), a 7×5 non-uniform grid, a random state, ν and per-node steps of 1e-3."""
    from fastsim.graphs.grid import periodic_grid

    torch.manual_seed(seed)
    model = gnrk.build_model({"architecture": "gnrk", "system": "burgers", "tableau": "rk4"}).double()
    graph = periodic_grid(7, 5, spacing_delta=0.1, generator=seed + 1).graph()
    x = torch.randn(graph.num_nodes, 2, dtype=torch.float64)
    dt = torch.full((graph.num_nodes,), 1e-3, dtype=torch.float64)
    return model, graph, x, torch.tensor([nu], dtype=torch.float64), dt


def test_fastsim_matches_the_plain_torch_reference():
    bench = pytest.importorskip("bench.bench_gnrk")
    model, graph, x, nu, dt = _burgers_case(0, 0.01)
    expected = model(x, dt, graph, nu=nu)  # with gradients: fresh tensors for autograd
    with torch.no_grad():  # without: GELUs in place
        torch.testing.assert_close(model(x, dt, graph, nu=nu), expected)
        rollout = model.rollout(x, torch.full((1, 3), 1e-3, dtype=torch.float64), graph, nu=nu)[-1]
    for cache in (False, True):
        plain = bench.PlainGNRK(model, cache_encodings=cache)
        torch.testing.assert_close(plain(x, dt, bench.plain_inputs(graph), nu), expected)
        torch.testing.assert_close(plain.rollout(x, dt, bench.plain_inputs(graph), nu, 3), rollout)


def test_fastsim_gradients_match_the_plain_torch_reference():
    """Training goes through the fused edge op's backward in both rounds: the parameter gradients of one step
    equal those of the plain formulation (same weights, float64)."""
    bench = pytest.importorskip("bench.bench_gnrk")
    model, graph, x, nu, dt = _burgers_case(1, 0.02)
    params = list(model.parameters())
    fused = torch.autograd.grad(model(x, dt, graph, nu=nu).square().sum(), params)
    plain = bench.PlainGNRK(model)
    expected = torch.autograd.grad(plain(x, dt, bench.plain_inputs(graph), nu).square().sum(), params)
    for (name, _), g, e in zip(model.named_parameters(), fused, expected):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-11, msg=f"gradient of {name}")
