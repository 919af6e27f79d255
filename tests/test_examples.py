"""The examples run (at reduced sizes) and write what their docstrings promise."""

import importlib.util
import math
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ngs_heat_example_learns_and_plots(tmp_path, one_thread):
    mae = _load("ngs_heat").main(str(tmp_path), num_train=10, epochs=2)
    assert math.isfinite(mae)
    assert {"loss.png", "trajectories.png", "best.pt"} <= {p.name for p in tmp_path.iterdir()}


def test_gnrk_burgers_example_trains_and_switches_tableaux(tmp_path, one_thread):
    results = _load("gnrk_burgers").main(str(tmp_path), epochs=1, num_steps=10)
    assert set(results) == {"rk4", "rk2", "rk1", "rk4_48x48"} and all(map(math.isfinite, results.values()))
    assert (tmp_path / "fields_rk4.png").stat().st_size > 0 and (tmp_path / "run" / "best.pt").is_file()
