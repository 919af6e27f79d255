"""A small 2-D Fourier neural operator (Li et al. 2021), the neural-operator baseline of GNRK on uniform grids.

`FNO2d` maps fields `(B, C_in, H, W)` on a uniform periodic grid to `(B, C_out, H, W)`: a pointwise lift to `width`
channels, `layers` Fourier layers `v ← GELU(K v + W v)` (K keeps the lowest `modes` Fourier modes per axis with
learned complex weights, W is a 1×1 convolution; no GELU after the last), and a two-layer pointwise projection.
It needs a uniform grid of fixed spacing: unlike GNRK it cannot run on the non-uniform grids of dataset III or
take another time step than the one it was trained on without a new model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["FNO2d", "SpectralConv2d"]


class SpectralConv2d(nn.Module):
    """`K v`: multiply the lowest `modes` × `modes` Fourier coefficients (both signs of the first axis) by learned
    complex `(C_in, C_out)` matrices, zero the rest, transform back."""

    def __init__(self, channels: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / (channels * channels)
        self.weight = nn.Parameter(scale * torch.randn(2, channels, channels, modes, modes, 2))

    def forward(self, v: Tensor) -> Tensor:
        height, width = v.shape[-2:]
        m = self.modes
        if 2 * m > height or m > width // 2 + 1:
            raise ValueError(
                f"FNO with {m} modes needs a grid of at least {2 * m} x {2 * (m - 1)}; got {height} x {width}"
            )
        coeffs = torch.fft.rfft2(v.float())
        weight = torch.view_as_complex(self.weight)
        out = torch.zeros_like(coeffs)
        out[..., :m, :m] = torch.einsum("bixy,ioxy->boxy", coeffs[..., :m, :m], weight[0])
        out[..., -m:, :m] = torch.einsum("bixy,ioxy->boxy", coeffs[..., -m:, :m], weight[1])
        return torch.fft.irfft2(out, s=(height, width)).to(v.dtype)


class FNO2d(nn.Module):
    """Fourier neural operator on a uniform periodic 2-D grid (module docstring).

    Args:
        in_channels: input fields (e.g. u, v, ν). out_channels: output fields. width: channels of the Fourier
            layers. modes: Fourier modes kept per axis. layers: number of Fourier layers.
    """

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 16, modes: int = 8, layers: int = 4):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1; got {value}")
        if modes < 1 or layers < 1:
            raise ValueError(f"modes and layers must be >= 1; got {modes}, {layers}")
        self.lift = nn.Conv2d(in_channels, width, 1)
        self.spectral = nn.ModuleList(SpectralConv2d(width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(layers))
        self.project = nn.Sequential(nn.Conv2d(width, 4 * width, 1), nn.GELU(), nn.Conv2d(4 * width, out_channels, 1))

    def forward(self, fields: Tensor) -> Tensor:
        """`(B, C_in, H, W)` → `(B, C_out, H, W)`."""
        if not isinstance(fields, Tensor) or fields.dim() != 4 or fields.shape[1] != self.lift.in_channels:
            got = tuple(fields.shape) if isinstance(fields, Tensor) else type(fields).__name__
            raise ValueError(f"fields must have shape (B, {self.lift.in_channels}, H, W); got {got}")
        v = self.lift(fields)
        for k, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            v = spectral(v) + pointwise(v)
            if k < len(self.spectral) - 1:
                v = nn.functional.gelu(v)
        return self.project(v)
