"""Information planes measured online during training, and their figure.

`InformationPlane` is a training callback: every `every` iterations it takes the representations T_1 … T_L of a
fixed probe batch X (N samples) and the network's output Y on the same batch, and records I(X;T_l) and I(T_l;Y) for
every layer with the matrix-based Rényi estimator (`fastsim.info.plane_mutual_information`: the 2L mutual
informations of one evaluation share the entropies of X, Y and each T_l, 3L + 2 spectra in one batched call).
Nothing of the network is stored: the callback holds the probe batch and a table of numbers (one row per
evaluation), so a run of any length costs the same memory apart from that table, unlike recomputing the plane
afterwards from stored weight snapshots.

`plot_information_plane` draws the figure of Lee & Jo (Entropy 2021): one plane per layer (points coloured by
iteration, dashed y = x), the data-processing-inequality panels of the encoder and decoder, and the train/test loss.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from fastsim.info.bandwidth import kernel_width
from fastsim.info.renyi import plane_mutual_information
from fastsim.ops.mi import all_finite

_STATE_VERSION = 1


class InformationPlane:
    """Online I(X;T) and I(T;Y) of every layer on a fixed probe batch.

    Args:
        probe: the probe inputs X, (N, D) floating, N >= 2, finite (the paper: the first 100 test images).
        layers: the names of the layers T_1 … T_L, in network order (unique, at least one).
        every: evaluate at iterations 0, every, 2·every, … (>= 1).
        alpha: Rényi order (> 0, != 1); the paper uses 1.01.
        bandwidth: the kernel-width rule of `fastsim.info.bandwidth.kernel_width` ("iprl" is the paper's
            σ = 2·N^(−1/(4+d)); a data-scaled rule moves with the representation and is recorded per evaluation).
        unit: "bits" or "nats".

    Each evaluation adds one row to `history`: the iteration, I(X;T_l) and I(T_l;Y) for every layer, and the kernel
    widths used for X, every T_l and Y.
    """

    def __init__(
        self,
        probe: torch.Tensor,
        layers: Sequence[str],
        *,
        every: int = 1,
        alpha: float = 1.01,
        bandwidth: str = "iprl",
        unit: str = "bits",
    ) -> None:
        if not isinstance(probe, torch.Tensor) or not probe.is_floating_point():
            raise TypeError(f"probe must be a floating tensor of shape (N, D); got {_describe(probe)}")
        if probe.ndim != 2 or probe.shape[0] < 2:
            raise ValueError(f"probe must have shape (N, D) with N >= 2; got {tuple(probe.shape)}")
        if not all_finite(probe):
            raise ValueError("probe holds NaN or inf")
        layers = tuple(layers)
        if not layers or len(set(layers)) != len(layers) or not all(isinstance(name, str) for name in layers):
            raise ValueError(f"layers must be one or more distinct names; got {layers!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1; got {every!r}")
        if not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0 or alpha == 1:
            raise ValueError(f"alpha must be a finite number > 0 and != 1; got {alpha!r}")
        if unit not in ("bits", "nats"):
            raise ValueError(f"unit must be 'bits' or 'nats'; got {unit!r}")
        self.probe = probe.detach().to(torch.float64)
        self.layers, self.every, self.alpha, self.bandwidth, self.unit = layers, every, float(alpha), bandwidth, unit
        kernel_width(self.probe, rule=bandwidth)  # fail now, not mid-run, on an unknown rule
        self._rows = np.empty((0, self.row_width), dtype=np.float64)
        self._count = 0

    @property
    def row_width(self) -> int:
        """Numbers per evaluation: iteration, L values of I(X;T), L of I(T;Y), L + 2 kernel widths."""
        return 1 + 2 * len(self.layers) + len(self.layers) + 2

    def due(self, iteration: int) -> bool:
        """Whether `iteration` is an evaluation point."""
        return iteration % self.every == 0

    @torch.no_grad()
    def update(self, iteration: int, representations: Mapping[str, torch.Tensor], output: torch.Tensor) -> None:
        """Record I(X;T_l) and I(T_l;Y) at `iteration` (the schedule is `due`; a run also records its last one).

        Args:
            iteration: the training iteration (>= 0, greater than the last recorded one).
            representations: layer name -> (N, d_l) representation of the probe batch, for every layer.
            output: the output Y of the network on the probe batch, (N, d_Y).
        """
        if self._count and iteration <= self._rows[self._count - 1, 0]:
            raise ValueError(
                f"iteration {iteration} is not after the last recorded {int(self._rows[self._count - 1, 0])}"
            )
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
            raise ValueError(f"iteration must be an int >= 0; got {iteration!r}")
        missing = [name for name in self.layers if name not in representations]
        if missing:
            raise ValueError(f"representations lack the layers {missing}")
        n = self.probe.shape[0]
        samples = [self._checked(f"representation {name!r}", representations[name], n) for name in self.layers]
        target = self._checked("output", output, n)
        mi_input, mi_output, widths = self._measure(samples, target)
        row = np.concatenate([[float(iteration)], mi_input, mi_output, widths])
        if self._count == len(self._rows):  # amortised growth: the table is the only thing that grows
            grown = np.empty((max(16, 2 * len(self._rows)), self.row_width), dtype=np.float64)
            grown[: self._count] = self._rows[: self._count]
            self._rows = grown
        self._rows[self._count] = row
        self._count += 1

    def _checked(self, name: str, value: torch.Tensor, n: int) -> torch.Tensor:
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating tensor of shape (N, d); got {_describe(value)}")
        flat = value.detach().reshape(value.shape[0], -1) if value.ndim >= 1 else value
        if value.ndim < 2 or value.shape[0] != n:
            raise ValueError(f"{name} must have shape ({n}, d) like the probe batch; got {tuple(value.shape)}")
        if not all_finite(flat):
            raise ValueError(f"{name} holds NaN or inf")
        return flat.to(device="cpu", dtype=torch.float64)

    def _measure(self, samples: list[torch.Tensor], target: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Zero-padding features to a common width leaves every pairwise distance, hence every Gram matrix,
        # unchanged, so the layers stack into one (L, N, d) tensor; the width of each is that of its own samples.
        width = max(t.shape[1] for t in samples)
        sigma_x = kernel_width(self.probe, rule=self.bandwidth)
        sigma_t = torch.stack([kernel_width(t, rule=self.bandwidth) for t in samples])
        sigma_y = kernel_width(target, rule=self.bandwidth)
        layers = torch.stack([_pad(t, width) for t in samples])
        mi_input, mi_output = plane_mutual_information(
            self.probe, layers, target, alpha=self.alpha, sigma=(sigma_x, sigma_t, sigma_y), unit=self.unit
        )
        widths = np.array([float(sigma_x), *sigma_t.tolist(), float(sigma_y)])
        return mi_input.numpy(), mi_output.numpy(), widths

    @property
    def history(self) -> dict[str, np.ndarray]:
        """The recorded table: "iteration" (R,), "mi_input" = I(X;T) (R, L), "mi_output" = I(T;Y) (R, L),
        "sigma_input" (R,), "sigma_layers" (R, L), "sigma_output" (R,) — copies, in evaluation order."""
        rows, count = self._rows[: self._count], len(self.layers)
        return {
            "iteration": rows[:, 0].astype(np.int64),
            "mi_input": rows[:, 1 : 1 + count].copy(),
            "mi_output": rows[:, 1 + count : 1 + 2 * count].copy(),
            "sigma_input": rows[:, 1 + 2 * count].copy(),
            "sigma_layers": rows[:, 2 + 2 * count : 2 + 3 * count].copy(),
            "sigma_output": rows[:, 2 + 3 * count].copy(),
        }

    @property
    def nbytes(self) -> int:
        """Bytes held by the callback: the probe batch plus the table (allocated capacity)."""
        return self.probe.numel() * self.probe.element_size() + self._rows.nbytes

    def state_dict(self) -> dict:
        """Everything needed to continue recording after a restart (tensors and plain values only)."""
        return {
            "version": _STATE_VERSION,
            "layers": list(self.layers),
            "every": self.every,
            "alpha": self.alpha,
            "bandwidth": self.bandwidth,
            "unit": self.unit,
            "rows": torch.from_numpy(self._rows[: self._count].copy()),
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a `state_dict()` taken from a callback with the same settings.

        Raises:
            ValueError: another state version, settings (layers, every, alpha, bandwidth, unit) that differ, or rows
                of another shape or with NaN or inf.
        """
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"information-plane state version {state.get('version')!r}; expected {_STATE_VERSION}")
        mine = {"layers": list(self.layers), "every": self.every, "alpha": self.alpha}
        mine.update(bandwidth=self.bandwidth, unit=self.unit)
        theirs = {key: state.get(key) for key in mine}
        if theirs != mine:
            raise ValueError(f"information-plane state has settings {theirs}; this callback has {mine}")
        rows = state["rows"].numpy() if isinstance(state["rows"], torch.Tensor) else np.asarray(state["rows"])
        if rows.ndim != 2 or rows.shape[1] != self.row_width:
            raise ValueError(f"information-plane rows must have shape (R, {self.row_width}); got {rows.shape}")
        if not np.isfinite(rows).all():
            raise ValueError("information-plane state 'rows' holds NaN or inf")
        self._rows = np.array(rows, dtype=np.float64)
        self._count = len(rows)


def _pad(x: torch.Tensor, width: int) -> torch.Tensor:
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} {tuple(value.shape)}"
    return type(value).__name__


def plot_information_plane(
    history: Mapping[str, np.ndarray],
    layers: Sequence[str],
    path: str | os.PathLike,
    *,
    probe_size: int,
    encoder: Sequence[str] = (),
    decoder: Sequence[str] = (),
    losses: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    title: str = "",
) -> Path:
    """Draw the information plane of a run and save it as PNG.

    Top row: one panel per layer, I(X;T) on x and I(T;Y) on y, points coloured by iteration, dashed y = x, both axes
    up to the estimator's ceiling log2(probe_size). Bottom row: I(X;T) against iteration for the `encoder` layers
    (the data-processing inequality orders them I(X;T_1) >= I(X;T_2) >= …), I(T;Y) for the `decoder` layers, and
    log10 of the `losses` (name -> (iterations, values)) against iteration.

    Args:
        history: `InformationPlane.history`. layers: its layer names, in order.
        path: the PNG file to write (its folder must exist). probe_size: N, which sets the axis ceiling.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder of the figure does not exist: {path.parent}")
    layers = list(layers)
    unknown = [name for name in (*encoder, *decoder) if name not in layers]
    if unknown:
        raise ValueError(f"encoder/decoder name layers that are not in {layers}: {unknown}")
    iterations = np.asarray(history["iteration"])
    mi_input, mi_output = np.asarray(history["mi_input"]), np.asarray(history["mi_output"])
    if mi_input.shape != (len(iterations), len(layers)) or mi_output.shape != mi_input.shape:
        raise ValueError(f"history does not match {len(layers)} layers: mi_input {mi_input.shape}")
    ceiling = math.log2(probe_size) + 0.4
    columns = max(len(layers), 3)
    figure, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 6.4), squeeze=False)
    points = None
    for k, name in enumerate(layers):
        ax = axes[0, k]
        ax.plot([0, ceiling], [0, ceiling], "k--", lw=0.8)
        points = ax.scatter(mi_input[:, k], mi_output[:, k], c=iterations, cmap="viridis", s=6)
        ax.set(xlim=(0, ceiling), ylim=(0, ceiling), xlabel="I(X;T)", title=name, aspect="equal")
        if k == 0:
            ax.set_ylabel("I(T;Y)")
    for ax in axes[0, len(layers) :]:
        ax.axis("off")
    if points is not None:
        figure.colorbar(points, ax=axes[0, len(layers) - 1], label="iteration", shrink=0.8)
    panels = [("DPI of encoder", "I(X;T)", encoder, mi_input), ("DPI of decoder", "I(T;Y)", decoder, mi_output)]
    for ax, (label, ylabel, names, values) in zip(axes[1], panels):
        for name in names:
            ax.plot(iterations, values[:, layers.index(name)], label=name, lw=1)
        ax.set(title=label, xlabel="iteration", ylabel=ylabel, ylim=(0, ceiling))
        if names:
            ax.legend(fontsize=7)
    loss_ax = axes[1, 2]
    for name, (steps, values) in (losses or {}).items():
        values = np.asarray(values, dtype=np.float64)
        loss_ax.plot(np.asarray(steps), np.log10(np.clip(values, 1e-300, None)), label=name, lw=1)
    loss_ax.set(title="loss", xlabel="iteration", ylabel="log10 loss")
    if losses:
        loss_ax.legend(fontsize=7)
    for ax in axes[1, 3:]:
        ax.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
