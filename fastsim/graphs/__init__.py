"""Graph generators (Erdős–Rényi, random regular, Barabási–Albert, periodic 2-D grids) and NGS time grids."""

from fastsim.graphs.grid import PeriodicGrid, periodic_grid
from fastsim.graphs.random import (
    as_generator,
    barabasi_albert,
    erdos_renyi,
    largest_connected_component,
    random_regular,
    undirected_graph,
)
from fastsim.graphs.time import divide_randomly, time_grid

__all__ = [
    "PeriodicGrid",
    "as_generator",
    "barabasi_albert",
    "divide_randomly",
    "erdos_renyi",
    "largest_connected_component",
    "periodic_grid",
    "random_regular",
    "time_grid",
    "undirected_graph",
]
