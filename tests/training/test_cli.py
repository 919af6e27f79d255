import json
import subprocess
import sys

import pytest

from fastsim.cli import main
from fastsim.cli.train import EXPERIMENTS
from fastsim.training import load_checkpoint, save_checkpoint


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setitem(EXPERIMENTS, "fake", "tests.training.fake_experiment")
    data = tmp_path / "data.npz"
    data.write_bytes(b"")
    return data


def test_train_then_rollout_dispatch_through_the_checkpoint(fake, tmp_path):
    run = tmp_path / "run"
    args = ["train", "fake", "--data", str(fake), "--out", str(run), "--epochs", "2", "--width", "5", "--quiet"]
    assert main(args) == 0
    assert load_checkpoint(run / "last.pt")["config"]["epochs"] == 2
    assert main([*args[:6], "--epochs", "3", "--width", "5", "--quiet", "--resume"]) == 0
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [0, 1, 2]
    rollout = ["rollout", "--checkpoint", str(run / "best.pt"), "--data", str(fake), "--out", str(tmp_path / "r")]
    assert main([*rollout, "--device", "cpu", "--batch-size", "4", "--quiet"]) == 0
    summary = json.loads((tmp_path / "r" / "rollout.json").read_text())
    assert summary["width"] == 5 and summary["device"] == "cpu" and summary["batch"] == 4
    assert summary["mae"] == pytest.approx(min(r["mae"] for r in history), rel=1e-6)


def test_errors_end_with_a_message_not_a_traceback(fake, tmp_path, capsys):
    def fails(argv: list[str], message: str) -> None:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err

    fails(["train", "fake", "--out", str(tmp_path)], "the following arguments are required: --data")
    fails(["train", "fake", "--data", str(tmp_path / "no.npz"), "--out", str(tmp_path)], "no such file")
    fails(["train", "fake", "--data", str(fake), "--out", str(tmp_path), "--epochs", "0"], "--epochs must be >= 1")
    fails(["train", "fake", "--data", str(fake), "--out", str(tmp_path), "--device", "tpu9"], "unknown device")
    fails(["train", "nosuch"], "invalid choice: 'nosuch'")
    rollout = ["rollout", "--data", str(fake), "--out", str(tmp_path / "r"), "--checkpoint"]
    fails([*rollout, str(tmp_path / "missing.pt")], "checkpoint not found")
    save_checkpoint(tmp_path / "plain.pt", {"model": {}})
    fails([*rollout, str(tmp_path / "plain.pt")], "has no extra['model_kind']")
    save_checkpoint(tmp_path / "alien.pt", {"extra": {"model_kind": "alien"}})
    fails([*rollout, str(tmp_path / "alien.pt")], "unknown model 'alien'")


def test_a_missing_experiment_module_breaks_nothing_else(monkeypatch, capsys):
    monkeypatch.setitem(EXPERIMENTS, "ghost", "fastsim.experiments.ghost_model_that_does_not_exist")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "ghost", "--data", "x", "--out", "y"])
    assert exit_info.value.code == 2 and "not available in this installation" in capsys.readouterr().err
    assert main(["info", "--json"]) == 0


def test_help_never_imports_an_experiment():
    code = (
        "import sys; from fastsim.cli import build_parser; build_parser(); "
        "print(any(m.startswith('fastsim.experiments') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
