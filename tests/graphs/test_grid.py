"""Periodic 2-D grid graphs in GNRK's convention."""

import pytest
import torch

from fastsim.graphs import PeriodicGrid, periodic_grid


def test_uniform_grid_follows_gnrk_edge_convention():
    grid = periodic_grid(4, 3, lengths=(2.0, 1.5))
    graph = grid.graph()
    assert graph.num_nodes == 12 and graph.num_edges == 24
    edges, attr = graph.edge_index(), graph.to_caller_order(graph.edge_attr)
    # Node i = y * nx + x; edge 2i goes +x, edge 2i+1 goes +y (periodic).
    assert edges[:, 2 * 3].tolist() == [3, 0] and edges[:, 2 * 3 + 1].tolist() == [3, 7]
    assert edges[:, 2 * 9 + 1].tolist() == [9, 1]
    torch.testing.assert_close(attr[0::2], torch.tensor([[0.5, 0.0]] * 12, dtype=torch.float64))
    torch.testing.assert_close(attr[1::2], torch.tensor([[0.0, 0.5]] * 12, dtype=torch.float64))
    assert bool((graph.in_degree() == 2).all()) and bool((graph.out_degree() == 2).all())
    pos = grid.positions()
    torch.testing.assert_close(pos[7], torch.tensor([1.5, 0.5], dtype=torch.float64))
    assert grid.lengths == (2.0, 1.5)


def test_non_uniform_spacings_sum_to_the_domain_and_feed_the_edges():
    grid = periodic_grid(50, 40, spacing_delta=0.1, generator=3)
    assert abs(grid.dx.sum().item() - 1.0) < 1e-13 and abs(grid.dy.sum().item() - 1.0) < 1e-13
    assert grid.dx.min() >= 0.9 / 50 - 1e-15 and grid.dx.max() <= 1.1 / 50 + 1e-15
    attr = grid.graph().to_caller_order(grid.graph().edge_attr)
    torch.testing.assert_close(attr[0::2, 0], grid.dx.repeat(40))  # GNRK dxdy2edge: tile(dx, Ny)
    torch.testing.assert_close(attr[1::2, 1], grid.dy.repeat_interleave(50))  # repeat(dy, Nx)
    pos = grid.positions()
    torch.testing.assert_close(pos[51], torch.stack([grid.dx[0], grid.dy[0]]))
    again = periodic_grid(50, 40, spacing_delta=0.1, generator=3)
    assert torch.equal(grid.dx, again.dx) and torch.equal(grid.dy, again.dy)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: periodic_grid(2, 5), ValueError, "nx must be >= 3"),
        (lambda: periodic_grid(5, -1), ValueError, "ny must be >= 3"),
        (lambda: periodic_grid(5, 5, lengths=(1.0, 0.0)), ValueError, "lengths must be a pair"),
        (lambda: periodic_grid(5, 5, spacing_delta=1.0), ValueError, r"spacing_delta must lie in \[0, 1\)"),
        (lambda: PeriodicGrid(torch.ones(4), -torch.ones(4)), ValueError, "dy must hold finite spacings > 0"),
        (lambda: PeriodicGrid(torch.ones(2), torch.ones(4)), ValueError, "dx must hold >= 3"),
    ],
)
def test_hostile_inputs_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
