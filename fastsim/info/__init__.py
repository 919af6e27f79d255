"""Measure information in representations: matrix-based Rényi entropy and mutual information, KDE bounds,
kernel-width rules and the online information plane. See docs/info.md."""

from fastsim.info.bandwidth import RULES, kernel_width
from fastsim.info.kde import KDEBounds, kde_mutual_information
from fastsim.info.renyi import (
    conditional_entropy,
    gram_matrix,
    joint_entropy,
    matrix_entropy,
    mutual_information,
    plane_mutual_information,
    renyi_entropy,
)

__all__ = [
    "RULES",
    "KDEBounds",
    "conditional_entropy",
    "gram_matrix",
    "joint_entropy",
    "kde_mutual_information",
    "kernel_width",
    "matrix_entropy",
    "mutual_information",
    "plane_mutual_information",
    "renyi_entropy",
]
