"""Reusable model pieces: MLPs and graph-network layers built on fastsim.ops."""

from fastsim.models.blocks import MLP, EdgeBlock

__all__ = ["MLP", "EdgeBlock"]
