"""NGS (p, σ) robustness grid: every cell trained and scored once, a killed grid resumes, other settings refused."""

import dataclasses
import json

import pytest

from fastsim.experiments import ngs, ngs_grid
from fastsim.simulate import SimulationConfig, generate
from fastsim.training import TrainConfig


@pytest.fixture(scope="module")
def heat_files(tmp_path_factory):
    """Tiny heat files: 10 training trajectories (2 validate) and 4 test ones, graphs of 20-30 nodes, 5 steps."""
    folder = tmp_path_factory.mktemp("heat")
    files = []
    for name, count, seed in (("train", 10, 0), ("G_int,T_int", 4, 1)):
        config = SimulationConfig("heat", count, (20, 30), max_time=(0.25,), num_steps=(5,), delta=0.8, seed=seed)
        files.append(generate(config, folder / ngs.split_file(name), progress=False))
    return files


def test_grid_resumes_and_extends(heat_files, tmp_path, monkeypatch, one_thread):
    train_file, test_file = heat_files
    config = ngs.NGSConfig("heat", val_samples=2)
    train_config = TrainConfig(epochs=2, lr=1e-2, warmup_epochs=1, period_epochs=1, quiet=True)
    grid = lambda missing, noise: ngs_grid.robustness_grid(  # noqa: E731
        train_file, test_file, tmp_path, missing, noise, config=config, train_config=train_config
    )
    # A grid killed while training its second cell: the first is recorded, the second has a checkpoint only.
    trained = []
    real_train = ngs_grid.train

    def killed_in_second_cell(cell_config, cell_train_config, data, **kwargs):
        trained.append((cell_config.missing, cell_config.noise, kwargs["resume"]))
        if len(trained) == 2:
            real_train(cell_config, dataclasses.replace(cell_train_config, epochs=1), data, **kwargs)
            raise KeyboardInterrupt
        return real_train(cell_config, cell_train_config, data, **kwargs)

    monkeypatch.setattr(ngs_grid, "train", killed_in_second_cell)
    with pytest.raises(KeyboardInterrupt):
        grid((0.0, 0.2), (0.0, 1e-2))
    saved = json.loads((tmp_path / "grid.json").read_text())
    assert list(saved["cells"]) == ["p0_s0"] and (tmp_path / "cells" / "p0_s0.01" / "last.pt").is_file()

    # Resumed: the recorded cell is not retrained, the half-trained one continues from its checkpoint.
    trained.clear()
    monkeypatch.setattr(ngs_grid, "train", lambda *a, **k: trained.append(k["resume"]) or real_train(*a, **k))
    results = grid((0.0, 0.2), (0.0, 1e-2))
    assert trained == [True, False, False]
    assert list(results["cells"]) == ["p0_s0", "p0_s0.01", "p0.2_s0", "p0.2_s0.01"]
    history = json.loads((tmp_path / "cells" / "p0_s0.01" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]
    cells = results["cells"]
    assert cells["p0_s0"]["loss_node_fraction"] == 1.0 > cells["p0.2_s0"]["loss_node_fraction"] > 0
    assert all(0 < c["mae"] < 1 and c["samples"] == 4 for c in cells.values())
    assert json.loads((tmp_path / "grid.json").read_text()) == results

    # Extending the grid trains only the new cells; other settings are refused.
    trained.clear()
    results = grid((0.0, 0.2), (0.0, 1e-3, 1e-2))
    assert trained == [False, False] and len(results["cells"]) == 6
    png = ngs_grid.plot_grid(results, tmp_path / "grid.png")
    assert png.stat().st_size > 0
    with pytest.raises(ValueError, match="other settings"):
        other = dataclasses.replace(train_config, lr=1e-3)
        ngs_grid.robustness_grid(train_file, test_file, tmp_path, (0.0,), (0.0,), config=config, train_config=other)
