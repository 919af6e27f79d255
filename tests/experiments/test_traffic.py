"""NGS traffic experiment: sensor graphs, windows / splits / normalisation, metrics and baselines, a short training
that beats the last-value forecast on real speeds, the CLI, hostile input."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fastsim.cli import main
from fastsim.experiments import traffic
from fastsim.training import TrainConfig

DATA = Path(__file__).parents[2] / ".." / "shared" / "data"
LOS_LOOP, PEMS_BAY = DATA / "los-loop", DATA / "pems-bay-sensor-graph"
needs_los_loop = pytest.mark.skipif(
    not (LOS_LOOP / "los_speed.csv").is_file() or not (DATA / "metr-la-sensor-graph").is_dir(),
    reason="../shared/data/los-loop or metr-la-sensor-graph is absent",
)


def ring_adjacency(n: int) -> np.ndarray:
    adj = np.eye(n, dtype=np.float32)
    for i in range(n):
        adj[i, (i + 1) % n] = 0.9
        adj[(i + 2) % n, i] = 0.4
    return adj


def daily_speeds(rows: int, sensors: int, seed: int = 0) -> np.ndarray:
    """Speeds with a daily dip per sensor plus noise (a stand-in for real traffic)."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)[:, None] / 288
    dip = 20 * np.exp(-(((t % 1) - 0.35 - 0.02 * np.arange(sensors)) ** 2) / 0.002)
    return (65 - dip + rng.normal(0, 1, (rows, sensors))).astype(np.float32)


def write_los_loop(folder: Path, speeds: np.ndarray, adj: np.ndarray) -> Path:
    """A los-loop folder and its metr-la-sensor-graph sibling with made-up sensor ids."""
    ids = np.arange(1000, 1000 + speeds.shape[1], dtype=np.int64)
    (folder / "los-loop").mkdir(parents=True)
    (folder / "metr-la-sensor-graph").mkdir()
    np.savetxt(
        folder / "los-loop" / "los_speed.csv", speeds, delimiter=",", header=",".join(map(str, ids)), comments=""
    )
    np.savez(folder / "metr-la-sensor-graph" / "adj_mx.npz", sensor_ids=ids, adj=adj)
    return folder / "los-loop"


# ---------------------------------------------------------------------------------------------------------- data
@pytest.mark.skipif(not PEMS_BAY.is_dir(), reason="../shared/data/pems-bay-sensor-graph is absent")
def test_pems_bay_graph_and_window_shapes():
    ids, adj = traffic.read_sensor_graph(PEMS_BAY)
    assert ids.shape == (325,) and adj.shape == (325, 325)
    graph, edge = traffic.sensor_graph(adj)
    src, dst = graph.src.numpy(), graph.dst.numpy()
    assert graph.num_edges == 2369 and (src != dst).all()
    np.testing.assert_allclose(edge.numpy(), 1 - adj[src, dst])  # CSR order, edge i → j for adj[i, j]
    data = traffic.prepare(daily_speeds(400, 325), adj, traffic.TrafficConfig())
    batch = data.batch(data.starts["test"][:2])
    assert batch["graph"].num_nodes == 650 and batch["graph"].num_edges == 2 * 2369
    assert batch["window"].shape == (650, 12, 5) and batch["target"].shape == (650, 12)
    assert batch["time"].shape == (2, 2) and batch["edge"].shape == (2 * 2369,)


def test_windows_splits_time_features_and_normalisation():
    speeds = daily_speeds(1000, 6)
    speeds[5, 2] = 0.0  # a missing reading
    data = traffic.prepare(speeds, ring_adjacency(6), traffic.TrafficConfig())
    windows = 1000 - 24 + 1
    assert [len(data.starts[s]) for s in ("train", "val", "test")] == [684, 98, 195]
    assert torch.equal(torch.cat(list(data.starts.values())), torch.arange(windows))  # chronological, disjoint
    # Statistics of the non-zero speeds the training windows observe, nothing later.
    train_rows = round(0.7 * windows) + 11
    seen = speeds[:train_rows][speeds[:train_rows] > 0]
    assert data.train_rows == train_rows
    np.testing.assert_allclose([data.mean, data.std], [seen.mean(), seen.std()], rtol=1e-5)
    later = speeds.copy()
    later[train_rows:] += 50
    other = traffic.prepare(later, ring_adjacency(6), traffic.TrafficConfig())
    assert (other.mean, other.std) == (data.mean, data.std)
    # Row 0 is Thursday 00:00; row 288·3 + 7 is Sunday 00:35.
    assert (int(data.day[0]), int(data.slot[0])) == (3, 0)
    assert (int(data.day[288 * 3 + 7]), int(data.slot[288 * 3 + 7])) == (6, 7)
    # A window's inputs and targets.
    start = int(data.starts["val"][3])
    batch = data.batch(torch.tensor([start, start + 1]))
    window = batch["window"].reshape(2, 6, 12, 5)
    np.testing.assert_allclose(
        window[0, :, :, 0].numpy(), (speeds[start : start + 12].T - data.mean) / data.std, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(batch["speed"].reshape(2, 6, 12)[1].numpy(), speeds[start + 13 : start + 25].T)
    slot = (start + np.arange(12)) % 288
    np.testing.assert_allclose(window[0, 4, :, 1].numpy(), np.cos(2 * np.pi * slot / 288), atol=1e-6)
    assert batch["time"][0].tolist() == [(start + 11) % 288, (3 + (start + 11) // 288) % 7]


def test_masked_metrics_and_baselines():
    true = torch.tensor([[50.0, 0.0], [40.0, 60.0]])
    pred = torch.tensor([[45.0, 30.0], [44.0, 60.0]])
    m = traffic.masked_metrics(pred, true)  # the zero is excluded in the second horizon
    np.testing.assert_allclose(m["mae"], [4.5, 0.0])
    np.testing.assert_allclose(m["rmse"], [np.sqrt((25 + 16) / 2), 0.0])
    np.testing.assert_allclose(m["mape"], [100 * (5 / 50 + 4 / 40) / 2, 0.0])
    # Exactly periodic speeds: the historical average is exact; the last value is the last input.
    speeds = np.tile(daily_speeds(288, 4, seed=1), (7, 1))
    data = traffic.prepare(speeds, ring_adjacency(4), traffic.TrafficConfig())
    truth = traffic.truth(data, "test")
    torch.testing.assert_close(traffic.historical_average(data, "test"), truth)
    last = traffic.last_value(data, "test")
    assert torch.equal(last[0, :, 5], torch.as_tensor(speeds[int(data.starts["test"][0]) + 11]))


def test_hostile_data():
    adj = ring_adjacency(5)
    config = traffic.TrafficConfig()
    speeds = daily_speeds(300, 5)
    speeds[10, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        traffic.prepare(speeds, adj, config)
    with pytest.raises(ValueError, match="sensors"):
        traffic.prepare(daily_speeds(300, 4), adj, config)
    with pytest.raises(ValueError, match="too few"):
        traffic.prepare(daily_speeds(25, 5), adj, config)
    with pytest.raises(ValueError, match="train_fraction"):
        traffic.TrafficConfig(train_fraction=0.9, val_fraction=0.2)
    with pytest.raises(ValueError, match="in_steps"):
        traffic.TrafficConfig(in_steps=0)
    with pytest.raises(FileNotFoundError, match="los_speed.csv"):
        traffic.read_los_loop(Path("/nonexistent/los-loop"))
    with pytest.raises(ValueError, match="shape"):
        traffic.masked_metrics(torch.zeros(3, 12), torch.zeros(3, 11))


# ---------------------------------------------------------------------------------------------------------- training
def short_training(tmp_path, sensors: int, epochs: int):
    """Train d = 8 on the first `sensors` of los-loop (the whole week); the last weights are kept (validated only at
    the end, so no checkpoint selection); masked MAE over the 12 horizons of the model and of the last value, per
    split. The test windows (Tuesday afternoon to Wednesday night) come after every training window."""
    speed, adj = traffic.read_los_loop(LOS_LOOP)
    config = traffic.TrafficConfig(emb_dim=8, dropout=0.0)
    data = traffic.prepare(speed[:, :sensors], adj[:sensors, :sensors], config)
    train_config = TrainConfig(
        epochs=epochs,
        lr=1e-2,
        batch_size=16,
        warmup_epochs=0,
        period_epochs=epochs,
        ema=False,
        validate_every=epochs,
        out=str(tmp_path / "run"),
        quiet=True,
    )
    model, result = traffic.train(config, train_config, data)
    assert result.best_epoch == epochs - 1
    errors = {}
    for split in ("val", "test"):
        truth = traffic.truth(data, split)
        ngs = np.mean(traffic.masked_metrics(traffic.predict(model, data, split), truth)["mae"])
        last = np.mean(traffic.masked_metrics(traffic.last_value(data, split), truth)["mae"])
        errors[split] = (ngs, last)
    return errors


@needs_los_loop
def test_short_training_beats_last_value_on_test_windows(tmp_path, one_thread):
    errors = short_training(tmp_path, sensors=12, epochs=2)  # 176 steps; measured 0.93-0.95 × the last value
    ngs, last = errors["test"]
    assert ngs < 0.98 * last, errors


@needs_los_loop
@pytest.mark.slow
def test_training_beats_last_value_on_test_windows(tmp_path, one_thread):
    # Measured 0.89 × the last value. At 3 epochs it was 0.93 with the foreach AdamW and 0.98 with the fused one
    # (the same updates up to float rounding): that short a run sat too close to its bound.
    errors = short_training(tmp_path, sensors=30, epochs=5)
    ngs, last = errors["test"]
    assert ngs < 0.95 * last, errors


def test_cli_train_and_rollout(tmp_path, one_thread):
    folder = write_los_loop(tmp_path / "data", daily_speeds(400, 5), ring_adjacency(5))
    out = tmp_path / "run"
    code = main(
        ["train", "ngs", "--system", "traffic", "--data", str(folder), "--out", str(out), "--emb-dim", "4"]
        + ["--epochs", "2", "--warmup-epochs", "0", "--period-epochs", "2", "--quiet"]
    )
    assert code == 0
    result = json.loads((out / "traffic_results.json").read_text())
    assert set(result["table"]) == {"ngs", "last_value", "historical_average"}
    assert set(result["table"]["ngs"]) == {"15 min", "30 min", "60 min"}
    assert (out / "traffic_forecast.png").stat().st_size > 0
    checkpoint = torch.load(out / "best.pt", weights_only=True)
    assert checkpoint["extra"]["model_kind"] == "ngs_traffic"
    assert (
        main(
            [
                "rollout",
                "--checkpoint",
                str(out / "best.pt"),
                "--data",
                str(folder),
                "--out",
                str(tmp_path / "ev"),
                "--quiet",
            ]
        )
        == 0
    )
    again = json.loads((tmp_path / "ev" / "traffic_results.json").read_text())
    assert again["table"]["ngs"] == result["table"]["ngs"]
    other = write_los_loop(tmp_path / "other", daily_speeds(400, 5, seed=3) + 5, ring_adjacency(5))
    with pytest.raises(SystemExit):
        main(["rollout", "--checkpoint", str(out / "best.pt"), "--data", str(other), "--out", str(tmp_path / "x")])
