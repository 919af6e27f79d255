"""Reusable model pieces: MLPs and graph-network layers built on fastsim.ops, and the learned simulators."""

from fastsim.models.blocks import MLP, EdgeBlock, GraphNetworkLayer
from fastsim.models.fno import FNO2d
from fastsim.models.gnrk import GNRK, BurgersApproximator, GraphApproximator
from fastsim.models.ngs import NGS, NeuralGraphSimulator
from fastsim.models.ngs_traffic import TrafficNGS

__all__ = [
    "FNO2d",
    "GNRK",
    "BurgersApproximator",
    "GraphApproximator",
    "MLP",
    "NGS",
    "EdgeBlock",
    "GraphNetworkLayer",
    "NeuralGraphSimulator",
    "TrafficNGS",
]
