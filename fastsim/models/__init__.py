"""Reusable model pieces: MLPs and graph-network layers built on fastsim.ops."""

from fastsim.models.blocks import EdgeBlock

__all__ = ["EdgeBlock"]
