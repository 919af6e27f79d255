import os
import subprocess
import sys
from pathlib import Path

import torch

from fastsim.training import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += [str(ROOT / "tests" / "training" / "ddp_worker.py"), str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = load_checkpoint(tmp_path / "rank0.pt"), load_checkpoint(tmp_path / "rank1.pt")
    for part in ("model", "ema"):
        for name, value in rank0[part].items():
            assert torch.equal(value, rank1[part][name]), (part, name)
    # Each rank took half of the 8 batches of every epoch; losses and metrics are averaged over ranks.
    assert rank0["steps"] == rank1["steps"] == 6 * 4
    timeless = [[{k: v for k, v in r.items() if k != "time_s"} for r in rank["history"]] for rank in (rank0, rank1)]
    assert timeless[0] == timeless[1]
    assert rank0["history"][-1]["train_loss"] < rank0["history"][0]["train_loss"] / 5
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "history.json", "last.pt"]
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 5


def test_fastsim_train_under_torchrun_shards_the_batches_over_two_ranks(tmp_path):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    fastsim = str(Path(sys.executable).with_name("fastsim"))
    data = tmp_path / "heat.npz"
    simulate = [fastsim, "simulate", "heat", "--out", str(data), "--num-samples", "8", "--num-nodes", "20", "30"]
    subprocess.run(simulate + ["--max-time", "1", "--num-steps", "5", "--quiet"], env=env, check=True, timeout=120)
    train = ["train", "ngs", "--system", "heat", "--data", str(data), "--epochs", "2", "--batch-size", "2", "--quiet"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python"]
    for command, out in (([fastsim], "single"), (torchrun + [fastsim], "ddp")):
        done = subprocess.run(
            command + train + ["--out", str(tmp_path / out)], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
    steps = {
        out: int(load_checkpoint(tmp_path / out / "last.pt")["optimizer"]["state"][0]["step"])
        for out in ("single", "ddp")
    }
    # Two ranks split every epoch's batches: half the optimizer steps each (±1 per epoch for an odd batch count).
    assert abs(steps["ddp"] - steps["single"] / 2) <= 2
