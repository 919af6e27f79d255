"""Information flows of diverse autoencoders: species, runs, resume, figures and the CLI, on real MNIST digits."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fastsim.cli import main
from fastsim.cli.info_plane import SPECIES as CLI_SPECIES
from fastsim.experiments import information_flows as flows
from fastsim.experiments.digits import load_digits
from fastsim.experiments.information_flows import FlowConfig, build_model, compression_summary, run, species_loss
from fastsim.info import mutual_information
from fastsim.info.bandwidth import kernel_width
from fastsim.training.checkpoint import load_checkpoint

MNIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST not found at {MNIST}")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    if not MNIST.is_dir():
        pytest.skip(f"MNIST not found at {MNIST}")
    return load_digits(MNIST)


def _tiny(model: str, **changes) -> FlowConfig:
    return FlowConfig(
        **{"model": model, "iterations": 40, "mi_every": 5, "test_every": 20, "checkpoint_every": 10, **changes}
    )


def test_tied_autoencoder_has_one_weight_matrix():
    model = build_model("tae")
    matrices = [name for name, p in model.named_parameters() if p.ndim == 2]
    assert matrices == ["weight"]
    x = torch.rand(4, 784)
    species_loss("tae", model(x), x, torch.zeros(4, dtype=torch.long)).backward()
    assert model.weight.grad is not None and model.weight.grad.abs().sum() > 0  # both directions reach one matrix


def test_species_have_the_papers_layers():
    assert build_model("shallow").layer_names == ("Z",)
    for model in ("deep", "vae", "lae", "deep_small"):
        assert build_model(model).layer_names == flows.DEEP_LAYERS
    widths = [p.shape for name, p in build_model("deep").named_parameters() if name.endswith("weight")]
    assert [tuple(w) for w in widths] == [(256, 784), (128, 256), (50, 128), (128, 50), (256, 128), (784, 256)]
    assert CLI_SPECIES == flows.SPECIES


@needs_mnist
@pytest.mark.parametrize("model", flows.SPECIES)
def test_species_learn_to_reconstruct_digits(model, digits, tmp_path):
    results = run(_tiny(model, iterations=100, test_every=100, mi_every=50), tmp_path / model, data=digits)
    initial, final = results["logs"]["test_mse"][0], results["logs"]["test_mse"][-1]
    assert final < 0.6 * initial, (initial, final)
    assert final < 0.075  # at least the mean image: random sigmoid outputs score ~0.23
    mi = np.array(results["history"]["mi_input"])
    assert mi.shape == (3, len(build_model(model).layer_names))
    assert np.all((mi >= -1e-6) & (mi <= np.log2(100) + 1e-6))
    assert (tmp_path / model / "information_plane.png").read_bytes()[:4] == b"\x89PNG"


@needs_mnist
def test_resume_after_a_kill_gives_the_same_result(digits, tmp_path, monkeypatch):
    config = _tiny("vae", test_every=40)  # the VAE also draws noise, which must be the same after the restart
    straight = run(config, tmp_path / "straight", data=digits)
    step = flows._Run.step

    def killed_at_25(self):
        if self.iteration == 25:
            raise KeyboardInterrupt
        step(self)

    monkeypatch.setattr(flows._Run, "step", killed_at_25)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path / "resumed", data=digits)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["iteration"] == 20
    monkeypatch.setattr(flows._Run, "step", step)
    with pytest.raises(ValueError, match="resume"):
        run(config, tmp_path / "resumed", data=digits)
    resumed = run(config, tmp_path / "resumed", data=digits, resume=True)
    assert resumed["history"] == straight["history"]
    assert resumed["logs"] == straight["logs"]
    assert resumed["summary"] == straight["summary"]
    with pytest.raises(ValueError, match="another configuration"):
        run(_tiny("vae", seed=1), tmp_path / "resumed", data=digits, resume=True)


@needs_mnist
def test_online_numbers_equal_an_offline_recomputation_from_saved_weights(digits, tmp_path):
    results = run(_tiny("deep", iterations=30, test_every=30), tmp_path / "deep", data=digits)
    model = build_model("deep")
    model.load_state_dict(load_checkpoint(tmp_path / "deep" / "checkpoint.pt")["model"])
    with torch.no_grad():
        result = model(digits.test_images[:100])
    x, y = digits.test_images[:100].double(), result["output"].double()
    for k, name in enumerate(flows.DEEP_LAYERS):
        t = result["layers"][name].double()
        sx, st, sy = (kernel_width(v, rule="iprl") for v in (x, t, y))
        assert results["history"]["mi_input"][-1][k] == pytest.approx(
            float(mutual_information(x, t, alpha=1.01, sigma=(sx, st))), abs=1e-9
        )
        assert results["history"]["mi_output"][-1][k] == pytest.approx(
            float(mutual_information(t, y, alpha=1.01, sigma=(st, sy))), abs=1e-9
        )


def test_compression_criterion():
    steps = np.arange(200)
    rise_then_fall = np.where(steps < 100, steps / 20, 5 - (steps - 100) / 100)
    assert compression_summary(steps, rise_then_fall)["compression"]
    summary = compression_summary(steps, np.minimum(steps / 20, 5.0))
    assert not summary["compression"] and summary["final_mi_code"] == pytest.approx(5.0)


def test_config_and_loader_reject_hostile_values(tmp_path):
    for bad in [
        {"model": "gan"},
        {"iterations": 0},
        {"mi_every": True},
        {"probe_size": 1},
        {"learning_rate": -1.0},
        {"bandwidth": "bogus"},
    ]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            FlowConfig(**bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_digits(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="train-images"):
        load_digits(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 12)
    with pytest.raises(ValueError, match="magic"):
        load_digits(tmp_path)
    with pytest.raises(FileNotFoundError, match="parent"):
        run(_tiny("shallow"), tmp_path / "a" / "b", data=tmp_path)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "gan"], "invalid choice"),
        (["--model", "sae", "--iterations", "0"], "--iterations must be >= 1"),
        (["--model", "sae", "--mi-every", "x"], "--mi-every takes int"),
        (["--model", "sae", "--data", "/nonexistent/mnist"], "not found"),
        (["--model", "sae", "--bandwidth", "bogus"], "bogus"),
    ],
)
def test_cli_rejects_hostile_input(argv, message, tmp_path, capsys):
    data = [] if "--data" in argv else ["--data", str(MNIST)]
    with pytest.raises(SystemExit) as exit_info:
        main(["info-plane", "--out", str(tmp_path / "run"), *data, *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@needs_mnist
def test_cli_writes_results_and_figure(tmp_path, capsys):
    out = tmp_path / "sae"
    argv = ["info-plane", "--model", "sae", "--out", str(out), "--data", str(MNIST), "--quiet"]
    assert main([*argv, "--iterations", "20", "--mi-every", "10", "--test-every", "10"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["model"] == "sae" and results["history"]["iteration"] == [0, 10, 20]
    assert (out / "information_plane.png").is_file()
    with pytest.raises(SystemExit):
        main([*argv, "--iterations", "20", "--mi-every", "10", "--test-every", "10"])  # exists, no --resume
    assert "--resume" in capsys.readouterr().err
    assert "| sae | iprl | 20 |" in flows.results_table([out])


@needs_mnist
@pytest.mark.slow
def test_reduced_run_shows_the_papers_contrast(digits, tmp_path):
    """3,000 iterations (a tenth of the authors' schedule): the sparse AE fits, then its I(X;Z) falls; the tied AE's
    does not fall (the paper's simplifying phase with sparsity, none with tied weights)."""
    sparse = run(FlowConfig.quick("sae", iterations=3000), tmp_path / "sae", data=digits)["summary"]
    tied = run(FlowConfig.quick("tae", iterations=3000), tmp_path / "tae", data=digits)["summary"]
    assert sparse["compression"] and sparse["drop_bits"] > 0.3
    assert not tied["compression"] and tied["final_mi_code"] > 5.5
