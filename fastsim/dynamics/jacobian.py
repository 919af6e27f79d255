"""Assembly of sparse Jacobians `∂f/∂y` for the graph dynamics, in torch's sparse CSR layout.

A graph system's Jacobian has one entry per (edge, state component) pair plus a block per node. The systems
list their entries as COO triplets; `sparse_csr` sums duplicates (multi-edges, self-loops) and always stores
the full diagonal, so an implicit solver can form `I - γ J` without changing the sparsity pattern.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sparse_csr(rows: Tensor, cols: Tensor, values: Tensor, size: int) -> Tensor:
    """`(size, size)` sparse CSR matrix with `J[rows[k], cols[k]] += values[k]`, diagonal always present.

    Args:
        rows, cols: int64 `(K,)` entry coordinates in `[0, size)`.
        values: floating `(K,)`.
        size: the state dimension `n`.

    Returns:
        A coalesced `torch.sparse_csr_tensor` of shape `(size, size)` and the dtype of `values`.
    """
    diag = torch.arange(size, device=values.device)
    index = torch.stack([torch.cat([rows, diag]), torch.cat([cols, diag])])
    data = torch.cat([values, values.new_zeros(size)])
    coo = torch.sparse_coo_tensor(index, data, (size, size), check_invariants=False).coalesce()
    return coo.to_sparse_csr()


def node_block_csr(
    coupling: tuple[Tensor, Tensor, Tensor], blocks: list[tuple[int, int, Tensor]], num_nodes: int, dim: int
) -> Tensor:
    """`(dim·N, dim·N)` sparse CSR Jacobian of a graph system whose state `(N, dim)` is flattened row-major.

    Args:
        coupling: `(rows, cols, values)`, the flat coordinates and values of the entries between nodes.
        blocks: `(row, col, values (N,))`: entry `(row, col)` of every node's `dim × dim` block.
        num_nodes, dim: N and the state components per node.
    """
    rows, cols, values = coupling
    base = torch.arange(num_nodes, device=values.device) * dim
    rows = torch.cat([rows, *(base + r for r, _, _ in blocks)])
    cols = torch.cat([cols, *(base + c for _, c, _ in blocks)])
    return sparse_csr(rows, cols, torch.cat([values, *(v for _, _, v in blocks)]), dim * num_nodes)
