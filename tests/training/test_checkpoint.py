import os
import pickle

import pytest
import torch

from fastsim.training import data_digest, load_checkpoint, save_checkpoint


def test_round_trip_of_plain_state(tmp_path):
    state = {
        "model": {"w": torch.arange(3.0)},
        "epoch": 4,
        "lr": 1e-3,
        "name": "ngs",
        "opt": [1, (2, None)],
        "ok": True,
    }
    save_checkpoint(tmp_path / "sub" / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "sub" / "c.pt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert {k: v for k, v in loaded.items() if k != "model"} == {k: v for k, v in state.items() if k != "model"}
    assert os.listdir(tmp_path / "sub") == ["c.pt"]  # no temporary left behind


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path) == {"epoch": 1} and os.listdir(tmp_path) == ["last.pt"]


def test_objects_are_refused_on_save(tmp_path):
    with pytest.raises(TypeError, match=r"got Linear at state\['model'\]"):
        save_checkpoint(tmp_path / "c.pt", {"model": torch.nn.Linear(1, 1)})
    with pytest.raises(TypeError, match="state must be a dict"):
        save_checkpoint(tmp_path / "c.pt", [1, 2])
    assert not (tmp_path / "c.pt").exists()


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_hostile_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path)  # a folder
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(tmp_path / "garbage.pt")
    save_checkpoint(tmp_path / "good.pt", {"w": torch.ones(1000)})
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(tmp_path / "truncated.pt")
    torch.save({"evil": Payload()}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match="corrupt or not a plain"):
        load_checkpoint(tmp_path / "pickled.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="must hold a dict"):
        load_checkpoint(tmp_path / "list.pt")
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(tmp_path / "raw.pkl")


def test_data_digest_follows_the_bytes_not_the_path(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.npz").write_bytes(b"trajectories")
    (tmp_path / "a" / "y.csv").write_bytes(b"graph")
    (tmp_path / "b").mkdir()
    for name in ("x.npz", "y.csv"):
        (tmp_path / "b" / name).write_bytes((tmp_path / "a" / name).read_bytes())
    digest = data_digest(tmp_path / "a" / "x.npz")
    assert digest.startswith("sha256:") and digest == data_digest(tmp_path / "b" / "x.npz", None)
    assert data_digest(tmp_path / "a") == data_digest(tmp_path / "b")  # a copied folder
    assert data_digest(tmp_path / "a" / "x.npz", tmp_path / "a" / "y.csv") != digest  # validation data counts
    (tmp_path / "b" / "y.csv").write_bytes(b"other graph")
    assert data_digest(tmp_path / "a") != data_digest(tmp_path / "b")
    (tmp_path / "b" / "y.csv").rename(tmp_path / "b" / "z.csv")
    assert data_digest(tmp_path / "a") != data_digest(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="data not found"):
        data_digest(tmp_path / "missing.npz")
