"""NGS experiment: the paper's data settings, data preparation, a short training that learns heat, the CLI."""

import json
import math

import pytest
import torch

from fastsim.cli import main
from fastsim.experiments import ngs
from fastsim.graph import Graph
from fastsim.simulate import SimulationConfig, generate
from fastsim.training import TrainConfig, mse


@pytest.fixture(scope="module")
def heat_files(tmp_path_factory):
    """Small heat files with the paper's time grid (T = 1 in 20 steps, δ = 0.8) on graphs of 30-60 nodes:
    40 training trajectories and 12 test ones."""
    folder = tmp_path_factory.mktemp("heat")
    files = {}
    for name, count, seed in (("train", 40, 0), ("G_int,T_int", 12, 1)):
        config = SimulationConfig("heat", count, (30, 60), max_time=(1.0,), num_steps=(20,), delta=0.8, seed=seed)
        files[name] = generate(config, folder / ngs.split_file(name), progress=False)
    return files


def test_dataset_configs_follow_the_paper():
    configs = ngs.dataset_configs("heat", num_train=1000, num_test=50)
    train = configs["train"]
    assert (train.system, train.num_nodes, train.mean_degree) == ("heat", (100, 200), (2.0, 4.0))
    assert (train.max_time, train.num_steps, train.delta, train.num_samples) == ((1.0,), (20,), 0.8, 1000)
    assert configs["G_ext,T_int"].num_nodes == (2000, 3000)
    assert (configs["G_int,T_ext"].max_time, configs["G_int,T_ext"].num_steps) == ((1.0, 2.0), (20, 20))
    assert len({c.seed for c in configs.values()}) == 5  # test graphs differ from training graphs
    rossler = ngs.dataset_configs("rossler")["G_int,T_ext"]
    assert (rossler.max_time, rossler.num_steps, rossler.delta) == ((40.0, 50.0), (40, 10), 0.5)
    assert ngs.dataset_configs("kuramoto")["train"].system == "kuramoto_mean_field"


def test_trajectories_and_corruption(heat_files):
    data = ngs.load_trajectories(heat_files["train"], "heat")
    assert len(data) == 40 and data.states[0].shape[0] == 21 and data.dts[0].sum().item() == pytest.approx(1.0)
    noisy = ngs.corrupt(data, noise=1e-3, missing=0.1, depth=2, seed=0)
    residual = torch.cat([(a - b).flatten() for a, b in zip(noisy.states, data.states)])
    assert residual.std().item() == pytest.approx(1e-3, rel=0.05)
    # Missing nodes: drawn with probability p, then every node within 2 hops downstream (breadth-first reference).
    masked = ngs.corrupt(data, noise=0.0, missing=0.1, depth=2, seed=3)
    graph, mask = data.graphs[0], masked.missing[0]
    drawn = torch.rand(graph.num_nodes, generator=torch.Generator().manual_seed(3)) < 0.1
    reached = set(drawn.nonzero().flatten().tolist())
    edges = graph.edge_index().T.tolist()
    for _ in range(2):
        reached |= {j for i, j in edges if i in reached}
    assert set(mask.nonzero().flatten().tolist()) == reached and 0 < len(reached) < graph.num_nodes
    # Masked nodes do not count in the loss.
    target = data.states[0][1].clone()
    pred = target + 0.5 * mask.float()
    assert mse(pred, target, mask).item() == 0.0
    with pytest.raises(ValueError, match="needs 'rossler'"):
        ngs.load_trajectories(heat_files["train"], "rossler")
    with pytest.raises(FileNotFoundError):
        ngs.load_trajectories(heat_files["train"].with_name("absent.npz"), "heat")


def test_short_training_learns_heat(heat_files, tmp_path, one_thread):
    """A reduced run (32 training trajectories, 640 single steps per epoch, 16 epochs) beats persistence by far."""
    config = ngs.NGSConfig("heat", noise=1e-4, missing=0.05, val_samples=4)
    train_config = TrainConfig(epochs=16, lr=1e-2, warmup_epochs=1, period_epochs=15, out=str(tmp_path), quiet=True)
    model, result = ngs.train(config, train_config, heat_files["train"])
    assert (tmp_path / "best.pt").is_file() and len(result.history) == 16
    metrics, preds, data = ngs.evaluate(model, heat_files["G_int,T_int"])
    persistence = sum((s[1:] - s[0]).abs().mean().item() for s in data.states) / len(data)
    print(f"rollout MAE {metrics['mae']:.4g}, persistence {persistence:.4g}")
    assert metrics["mae"] < 0.04 < persistence / 5
    assert len(metrics["mae_vs_time"]) == 21 and metrics["mae_vs_time"][0] == 0.0


def test_train_and_rollout_commands(heat_files, tmp_path, one_thread):
    out = tmp_path / "run"
    options = "--epochs 1 --batch-size 32 --quiet --val-samples 2"
    argv = ["train", "ngs", "--data", str(heat_files["train"]), "--out", str(out), *options.split()]
    argv += ["--test", str(heat_files["G_int,T_int"])]
    assert main(argv) == 0
    assert {"best.pt", "last.pt", "history.json", "loss.png", "summary.json"} <= {p.name for p in out.iterdir()}
    assert math.isfinite(json.loads((out / "summary.json").read_text())["test_G_int_T_int"])
    rollout = tmp_path / "rollout"
    argv = ["rollout", "--checkpoint", str(out / "best.pt"), "--data", str(heat_files["G_int,T_int"])]
    argv += ["--out", str(rollout), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    result = json.loads((rollout / "rollout_test_G_int_T_int.json").read_text())
    assert result["samples"] == 12 and result["system"] == "heat" and math.isfinite(result["mae"])
    assert (rollout / "trajectories_test_G_int_T_int.png").stat().st_size > 0
    assert (rollout / "error_vs_time_test_G_int_T_int.png").stat().st_size > 0


def test_hostile_configuration(heat_files):
    with pytest.raises(ValueError, match="missing must lie in"):
        ngs.NGSConfig("heat", missing=1.0)
    with pytest.raises(ValueError, match="noise must be"):
        ngs.NGSConfig("heat", noise=math.nan)
    with pytest.raises(ValueError, match="system must be one of"):
        ngs.dataset_configs("lorenz")
    with pytest.raises(ValueError, match="not an NGS checkpoint"):
        ngs.model_from_checkpoint({"extra": {"model_kind": "gnrk"}})
    empty = Graph.from_edge_index(torch.empty(2, 0, dtype=torch.int64), 3)
    data = ngs.Trajectories("heat", [empty], [torch.zeros(2, 3)], [torch.ones(1)], None, [torch.zeros(0, 1)], None)
    with pytest.raises(ValueError, match="at least 2 trajectories"):
        ngs.train(ngs.NGSConfig("heat"), TrainConfig(epochs=1, quiet=True), data)
