"""`fastsim simulate` / `fastsim plot`: a tiny heat dataset checked against scipy, exact resume, hostile input."""

import json

import numpy as np
import pytest
import scipy.integrate
import scipy.sparse

import fastsim.simulate
from fastsim.cli import main
from fastsim.datasets import load_dataset

TINY = ["--num-samples", "6", "--num-nodes", "10", "20", "--mean-degree", "2", "4", "--max-time", "2"]
TINY += ["--num-steps", "40", "--delta", "0.5", "--rtol", "1e-8", "--atol", "1e-8", "--seed", "3", "--quiet"]


def simulate(out, *extra: str) -> int:
    return main(["simulate", "heat", *TINY, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "heat.npz"
    assert simulate(out, "--batch-size", "4") == 0
    return out


def assert_same_data(path_a, path_b):
    """Every array equal bit for bit (wall times aside), and the same metadata apart from the provenance."""
    a, b = load_dataset(path_a), load_dataset(path_b)
    assert sorted(a.arrays) == sorted(b.arrays)
    for key in a.arrays:
        if key != "wall_time":
            assert a.arrays[key].dtype == b.arrays[key].dtype, key
            assert np.array_equal(a.arrays[key], b.arrays[key]), key
    strip = [{k: v for k, v in d.metadata.items() if k != "provenance"} for d in (a, b)]
    assert strip[0] == strip[1]


def test_tiny_heat_dataset_shapes_and_times(tiny):
    data = load_dataset(tiny)
    assert len(data) == 6 and data.complete and data.solver == "fused:dopri5"
    assert data.config["num_nodes"] == [10, 20] and data.config["seed"] == 3
    a = data.arrays
    assert np.array_equal(a["node_offsets"], np.concatenate([[0], np.cumsum(a["num_nodes"])]))
    assert a["trajectories"].shape == (a["num_nodes"].sum(), 41) and a["times"].shape == (6, 41)
    for sample in data:
        n = sample.graph.num_nodes
        assert 10 <= n <= 20 and 2 <= sample.mean_degree <= 4
        assert sample.trajectory.shape == (41, n) and sample.stats["status"] == "success"
        assert sample.stats["nfev"] > 0 and sample.stats["accepted"] > 0
        steps = np.diff(sample.times.numpy())
        assert sample.times[0] == 0.0 and sample.times[-1] == 2.0 and steps.sum() == pytest.approx(2.0, abs=1e-14)
        assert np.all(steps >= 0.5 * 2 / 40 - 1e-12) and np.all(steps <= 1.5 * 2 / 40 + 1e-12)
        # undirected: every edge stored in both directions, with one diffusivity per pair
        ei = sample.graph.edge_index().numpy()
        assert set(zip(ei[0], ei[1])) == set(zip(ei[1], ei[0]))
        # heat is conserved on an undirected graph; the initial state is 0/1 hot spots
        y = sample.trajectory.numpy()
        assert set(np.unique(y[0])) <= {0.0, 1.0}
        np.testing.assert_allclose(y.sum(axis=1), y[0].sum(), rtol=1e-9)


def test_trajectories_match_scipy(tiny):
    """Re-solve every sample from the stored graph, diffusivities and initial state with scipy's DOP853."""
    a = load_dataset(tiny).arrays
    for s in range(6):
        n0, n1 = a["node_offsets"][s : s + 2]
        e0, e1 = a["edge_offsets"][s : s + 2]
        src, dst = a["edge_index"][:, e0:e1]
        n = n1 - n0
        weight = scipy.sparse.coo_array((a["edge.diffusivity"][e0:e1], (dst, src)), shape=(n, n)).tocsr()
        laplacian = scipy.sparse.diags(np.asarray(weight.sum(axis=1)).ravel()) - weight
        times, y = a["times"][s], a["trajectories"][n0:n1]
        ref = scipy.integrate.solve_ivp(
            lambda t, x, lap=laplacian: -(lap @ x), (0.0, times[-1]), y[:, 0], "DOP853", times, rtol=1e-10, atol=1e-12
        )
        assert ref.success
        np.testing.assert_allclose(y, ref.y, atol=2e-7, rtol=0)  # measured: ~2e-8 at rtol = atol = 1e-8


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    whole = tmp_path / "whole.npz"
    assert simulate(whole, "--checkpoint-every", "2", "--batch-size", "2") == 0

    out, real_solve, calls = tmp_path / "out.npz", fastsim.simulate._solve_fused, []

    def crash_on_third_batch(config, batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real_solve(config, batch)

    monkeypatch.setattr(fastsim.simulate, "_solve_fused", crash_on_third_batch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        simulate(out, "--checkpoint-every", "2", "--batch-size", "2")
    monkeypatch.undo()
    folder = tmp_path / "out.partial"
    assert not out.exists() and sorted(p.name for p in folder.iterdir()) == ["000000000.npz", "000000002.npz"]
    assert len(load_dataset(folder / "000000002.npz")) == 2

    with pytest.raises(SystemExit) as exit_info:  # a checkpoint is never overwritten silently
        simulate(out, "--checkpoint-every", "2", "--batch-size", "2")
    assert exit_info.value.code == 2
    assert simulate(out, "--checkpoint-every", "2", "--batch-size", "3", "--resume") == 0
    assert not folder.exists()
    assert_same_data(whole, out)
    assert load_dataset(out).metadata["provenance"]["resumed_at"] == [4]
    assert simulate(out, "--resume") == 0  # already finished: nothing to do


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path, monkeypatch):
    whole, out = tmp_path / "whole.npz", tmp_path / "out.npz"
    assert simulate(whole, "--batch-size", "6") == 0
    real_solve, calls = fastsim.simulate._solve_fused, []

    def interrupt_second_batch(config, batch):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_solve(config, batch)

    monkeypatch.setattr(fastsim.simulate, "_solve_fused", interrupt_second_batch)
    assert simulate(out, "--batch-size", "1", "--checkpoint-every", "100") == 130
    monkeypatch.undo()
    assert len(load_dataset(tmp_path / "out.partial" / "000000000.npz")) == 1
    assert simulate(out, "--resume") == 0
    assert_same_data(whole, out)


def test_resume_refuses_other_settings(tmp_path, monkeypatch, capsys):
    out, real_solve, calls = tmp_path / "out.npz", fastsim.simulate._solve_fused, []

    def crash_on_second_batch(config, batch):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return real_solve(config, batch)

    monkeypatch.setattr(fastsim.simulate, "_solve_fused", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        simulate(out, "--checkpoint-every", "1", "--batch-size", "1")
    monkeypatch.undo()
    with pytest.raises(SystemExit):
        main(["simulate", "heat", *TINY, "--out", str(out), "--seed", "4", "--resume"])
    assert "made with different settings (seed)" in capsys.readouterr().err


def test_giant_component_flag(tmp_path):
    out = tmp_path / "giant.npz"
    assert simulate(out, "--giant-component", "--mean-degree", "1", "1.5") == 0
    data = load_dataset(out)
    assert data.config["giant_component"] is True
    assert all(sample.graph.indptr.diff().min() > 0 for sample in data)  # no isolated node at mean degree 1–1.5


def test_plot_writes_a_png(tiny, tmp_path):
    out = tmp_path / "traj.png"
    assert main(["plot", str(tiny), "--sample", "1", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


HOSTILE = [
    (["simulate", "lorenz", "--out", "{d}/a.npz"], "invalid choice: 'lorenz'"),
    (["simulate", "heat", "--num-samples", "0", "--out", "{d}/a.npz"], "--num-samples must be >= 1"),
    (["simulate", "heat", "--num-samples", "many", "--out", "{d}/a.npz"], "takes int values"),
    (["simulate", "heat", "--num-nodes", "0", "5", "--out", "{d}/a.npz"], "--num-nodes must be >= 1"),
    (["simulate", "heat", "--num-nodes", "200", "100", "--out", "{d}/a.npz"], "min <= max"),
    (["simulate", "heat", "--mean-degree", "4", "2", "--out", "{d}/a.npz"], "min <= max"),
    (["simulate", "heat", "--num-nodes", "4", "9", "--mean-degree", "2", "4", "--out", "{d}/a.npz"], "<= min(num"),
    (["simulate", "heat", "--num-steps", "-2", "--out", "{d}/a.npz"], "--num-steps must be >= 1"),
    (["simulate", "heat", "--max-time", "nan", "--out", "{d}/a.npz"], "max_time must be a finite number"),
    (["simulate", "heat", "--delta", "1", "--out", "{d}/a.npz"], "delta must lie in [0, 1)"),
    (["simulate", "heat", "--method", "rk45", "--out", "{d}/a.npz"], "method must be one of"),
    (["simulate", "heat", "--graph", "rr", "--mean-degree", "2.2", "2.8", "--out", "{d}/a.npz"], "integer degree"),
    (["simulate", "heat", "--out", "{d}/missing/a.npz"], "folder of out does not exist"),
    (["simulate", "heat", "--out", "{d}/a.csv"], "must be a .npz file"),
    (["plot", "{d}/none.npz", "--out", "{d}/a.png"], "dataset file not found"),
    (["plot", "{d}/junk.npz", "--out", "{d}/a.png"], "not an .npz (zip) archive"),
    (["plot", "{d}/v9.npz", "--out", "{d}/a.png"], "format_version 9"),
]


@pytest.mark.parametrize(("argv", "message"), HOSTILE, ids=[" ".join(a[:4]) for a, _ in HOSTILE])
def test_hostile_input_exits_with_a_message(argv, message, tmp_path, capsys):
    (tmp_path / "junk.npz").write_text("not a zip file")
    np.savez(tmp_path / "v9.npz", format_version=np.array(9), metadata=np.array(json.dumps({})))
    with pytest.raises(SystemExit) as exit_info:
        main([part.format(d=tmp_path) for part in argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "a.npz").exists()


def test_plot_rejects_a_sample_out_of_range(tiny, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["plot", str(tiny), "--sample", "6", "--out", str(tmp_path / "a.png")])
    assert "--sample must lie in [0, 6)" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["gnrk"], ["ngs"], ["ngs", "--system", "traffic"]])
def test_train_help_is_a_summary_and_the_options(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv, "--help"])
    assert exit_info.value.code == 0
    description = capsys.readouterr().out.split("options:")[0]
    assert "format_version" not in description and len(description.splitlines()) < 20
