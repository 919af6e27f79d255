"""The online information-plane callback and its figure."""

import gc
import tracemalloc

import numpy as np
import pytest
import torch

from fastsim.info import mutual_information
from fastsim.info.bandwidth import kernel_width
from fastsim.info.information_plane import InformationPlane, plot_information_plane

pytestmark = pytest.mark.usefixtures("one_thread")


def _network(generator: torch.Generator) -> tuple[torch.nn.Module, torch.nn.Module]:
    encoder = torch.nn.Sequential(torch.nn.Linear(12, 6), torch.nn.Sigmoid())
    decoder = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Sigmoid())
    with torch.no_grad():
        for p in [*encoder.parameters(), *decoder.parameters()]:
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    return encoder, decoder


def _record(plane: InformationPlane, encoder, decoder, probe, iteration: int) -> None:
    z = encoder(probe)
    plane.update(iteration, {"Z": z, "Z2": z**2}, decoder(z))


def test_numbers_equal_a_direct_estimator_call():
    generator = torch.Generator().manual_seed(0)
    probe = torch.rand(40, 12, generator=generator)
    encoder, decoder = _network(generator)
    plane = InformationPlane(probe, ["Z", "Z2"], every=1)
    with torch.no_grad():
        _record(plane, encoder, decoder, probe, 0)
        z, y = encoder(probe).double(), decoder(encoder(probe)).double()
    x = probe.double()
    history = plane.history
    for k, t in enumerate([z, z**2]):
        sigma_x, sigma_t, sigma_y = (kernel_width(v, rule="iprl") for v in (x, t, y))
        expected_in = mutual_information(x, t, alpha=1.01, sigma=(sigma_x, sigma_t))
        expected_out = mutual_information(t, y, alpha=1.01, sigma=(sigma_t, sigma_y))
        assert history["mi_input"][0, k] == pytest.approx(float(expected_in), abs=1e-8)
        assert history["mi_output"][0, k] == pytest.approx(float(expected_out), abs=1e-8)
    assert 0 < history["mi_input"][0, 0] <= np.log2(40) + 1e-9


def test_memory_does_not_grow_with_the_run_beyond_its_table():
    generator = torch.Generator().manual_seed(1)
    probe = torch.rand(20, 12, generator=generator)
    encoder, decoder = _network(generator)
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-2)
    plane = InformationPlane(probe, ["Z", "Z2"], every=1)

    def train(first: int, last: int) -> int:
        """Bytes allocated while training from `first` to `last` and still held afterwards."""
        tracemalloc.start()
        for iteration in range(first, last):
            loss = torch.nn.functional.mse_loss(decoder(encoder(probe)), probe)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                _record(plane, encoder, decoder, probe, iteration)
        gc.collect()  # count only what is reachable, not garbage waiting for the cycle collector
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return held

    def held_beyond_table(first: int, last: int) -> int:
        table = plane.nbytes
        return train(first, last) - (plane.nbytes - table)

    train(0, 20)  # warm-up: allocator caches, Adam state, first table allocation
    short, long = held_beyond_table(20, 40), held_beyond_table(40, 200)
    # Storing the weights at every iteration (the offline approach) would hold 160 snapshots more in the long window
    # than in the short one. Apart from the table of numbers the callback holds nothing per iteration; torch itself
    # leaves some 100 B of small objects per call alive (measured), far below a third of the snapshots.
    snapshots = 160 * sum(p.numel() * p.element_size() for p in [*encoder.parameters(), *decoder.parameters()])
    assert long - short < snapshots / 3, (short, long, snapshots)
    assert len(plane.history["iteration"]) == 200
    assert plane.nbytes <= probe.numel() * 8 + 2 * 200 * plane.row_width * 8


def test_state_round_trip_continues_the_table():
    generator = torch.Generator().manual_seed(2)
    probe = torch.rand(16, 12, generator=generator)
    encoder, decoder = _network(generator)
    first = InformationPlane(probe, ["Z", "Z2"], every=5)
    with torch.no_grad():
        for iteration in (0, 5):
            _record(first, encoder, decoder, probe, iteration)
    second = InformationPlane(probe, ["Z", "Z2"], every=5)
    second.load_state_dict(first.state_dict())
    with torch.no_grad():
        _record(first, encoder, decoder, probe, 10)
        _record(second, encoder, decoder, probe, 10)
    for key, value in first.history.items():
        np.testing.assert_array_equal(second.history[key], value)
    with pytest.raises(ValueError, match="settings"):
        InformationPlane(probe, ["Z"], every=5).load_state_dict(first.state_dict())
    state = first.state_dict()
    state["rows"][1, 2] = float("nan")
    with pytest.raises(ValueError, match="'rows' holds NaN"):
        InformationPlane(probe, ["Z", "Z2"], every=5).load_state_dict(state)


def test_hostile_input():
    probe = torch.rand(10, 4)
    with pytest.raises(TypeError, match="probe"):
        InformationPlane(probe.to(torch.int64), ["Z"])
    with pytest.raises(ValueError, match="N >= 2"):
        InformationPlane(probe[:1], ["Z"])
    with pytest.raises(ValueError, match="NaN"):
        InformationPlane(torch.full((10, 4), float("nan")), ["Z"])
    with pytest.raises(ValueError, match="distinct"):
        InformationPlane(probe, ["Z", "Z"])
    with pytest.raises(ValueError, match="every"):
        InformationPlane(probe, ["Z"], every=0)
    with pytest.raises(ValueError, match="alpha"):
        InformationPlane(probe, ["Z"], alpha=1.0)
    plane = InformationPlane(probe, ["Z"])
    with pytest.raises(ValueError, match="lack"):
        plane.update(0, {}, probe)
    with pytest.raises(ValueError, match=r"shape \(10, d\)"):
        plane.update(0, {"Z": torch.rand(9, 3)}, probe)
    with pytest.raises(ValueError, match="NaN"):
        plane.update(0, {"Z": torch.full((10, 3), float("inf"))}, probe)
    plane.update(3, {"Z": torch.rand(10, 3)}, probe)
    with pytest.raises(ValueError, match="not after"):
        plane.update(3, {"Z": torch.rand(10, 3)}, probe)


def test_plot_writes_a_png(tmp_path):
    iterations = np.arange(0, 50, 5)
    rising = np.linspace(0.5, 5.0, len(iterations))
    history = {
        "iteration": iterations,
        "mi_input": np.stack([rising + 1, rising], axis=1),
        "mi_output": np.stack([rising - 0.3, rising], axis=1),
    }
    losses = {"train": (iterations, np.exp(-iterations / 20)), "test": (iterations, np.exp(-iterations / 25))}
    path = plot_information_plane(
        history, ["E1", "Z"], tmp_path / "plane.png", probe_size=100, encoder=["E1", "Z"], decoder=["Z"], losses=losses
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileNotFoundError, match="folder"):
        plot_information_plane(history, ["E1", "Z"], tmp_path / "missing" / "plane.png", probe_size=100)
    with pytest.raises(ValueError, match="not in"):
        plot_information_plane(history, ["E1", "Z"], tmp_path / "p.png", probe_size=100, encoder=["Q"])
