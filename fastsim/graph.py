"""`Graph`: a directed graph stored once as CSR over incoming edges, plus its transpose (docs/ops.md).

Sorting happens once, at construction, with stable sorts: within a destination (and within a source, for
the transpose) edges keep the caller's relative order, so multi-edges are never reordered. Every per-edge
tensor a `Graph` holds (`src`, `dst`, `edge_weight`, `edge_attr`) is in CSR order; `perm` maps back to the
caller's order. Depends on torch and numpy only; scipy, networkx and torch_geometric are imported lazily.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
_INDEX_FIELDS = ("indptr", "src", "dst", "perm", "rev_indptr", "rev_dst", "rev_perm", "batch", "ptr")


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"{str(x.dtype).removeprefix('torch.')} {tuple(x.shape)} on {x.device}"
    return type(x).__name__


def _count(value: object, name: str) -> int:
    """A non-negative Python int (numpy integers accepted, bool rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative int; got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int; got {value}")
    return int(value)


def _index_tensor(x: object, name: str, shape: str, ndim: int) -> Tensor:
    """Check an integer index tensor of `ndim` dims and return it as a contiguous plain int64 tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be an integer torch.Tensor of shape {shape}; got {_describe(x)}")
    if x.dtype not in _INT_DTYPES:
        raise TypeError(f"{name} must have an integer dtype (int64 preferred); got {_describe(x)}")
    if x.dim() != ndim or (ndim == 2 and x.shape[0] != 2):
        raise ValueError(f"{name} must have shape {shape}; got {_describe(x)}")
    if type(x) is not Tensor:  # a subclass such as PyG's EdgeIndex: copy into a plain tensor
        return torch.empty(x.shape, dtype=torch.int64, device=x.device).copy_(x)
    return x.to(torch.int64).contiguous()


def _check_range(x: Tensor, name: str, num_nodes: int | None) -> int:
    """Check `0 <= x < num_nodes`; return num_nodes, inferred as `max(x) + 1` (0 when empty) if None."""
    if x.numel() == 0:
        return 0 if num_nodes is None else num_nodes
    lo, hi = torch.stack(torch.aminmax(x)).tolist()  # one host sync
    if lo < 0:
        raise ValueError(f"{name} must hold node indices >= 0; got minimum {lo}")
    if num_nodes is not None and hi >= num_nodes:
        raise ValueError(f"{name} must hold node indices < num_nodes = {num_nodes}; got maximum {hi}")
    return hi + 1 if num_nodes is None else num_nodes


def _edge_values(
    x: object, name: str, num_edges: int, device: torch.device, *, weight: bool, finite: bool = True
) -> Tensor | None:
    """Check `edge_weight (E,)` (`weight=True`; finite unless `finite=False`) or `edge_attr (E, *)`."""
    if x is None:
        return None
    shape = f"(E,) = ({num_edges},)" if weight else f"(E, *) with E = {num_edges}"
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating torch.Tensor of shape {shape}; got {_describe(x)}")
    if x.device != device:
        raise ValueError(f"{name} must be on the graph's device {device}; got {_describe(x)}")
    if (weight and x.shape != (num_edges,)) or x.dim() == 0 or x.shape[0] != num_edges:
        raise ValueError(f"{name} must have shape {shape}; got {_describe(x)}")
    if weight and finite and num_edges > 0:
        has_nan, has_inf = torch.stack([x.isnan().any(), x.isinf().any()]).tolist()  # one host sync
        if has_nan or has_inf:
            raise ValueError(f"{name} must be finite; got {'NaN' if has_nan else 'inf'} values")
    return x


def _csr_pointers(sorted_keys: Tensor, num_nodes: int) -> Tensor:
    """`(N+1,)` offsets of each key's run in a sorted key vector."""
    return torch.searchsorted(sorted_keys, torch.arange(num_nodes + 1, device=sorted_keys.device))


def _single_batch(num_nodes: int, device: torch.device) -> tuple[Tensor, Tensor]:
    batch = torch.zeros(num_nodes, dtype=torch.int64, device=device)
    return batch, torch.tensor([0, num_nodes], dtype=torch.int64, device=device)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Graph:
    """A directed (batch of) graph(s) with `N` nodes and `E` edges, in CSR order over incoming edges.

    Build one with `from_edge_index`, `from_csr`, `from_scipy`, `from_networkx`, `from_pyg` or `batch_graphs`;
    the field constructor only checks dtypes, shapes and devices. All index tensors are int64, contiguous and
    on one device. Instances are frozen; derived graphs share tensors where they can.

    Attributes:
        num_nodes: `N`.
        indptr: `(N+1,)` the edges into node `i` are CSR positions `indptr[i]:indptr[i+1]`.
        src: `(E,)` source of each edge, CSR order.
        dst: `(E,)` destination of each edge, CSR order (non-decreasing).
        perm: `(E,)` for each CSR position, the edge's position in the caller's order.
        rev_indptr: `(N+1,)` CSR over outgoing edges (edges grouped by source, caller order within a source).
        rev_dst: `(E,)` destination of each edge, source-sorted order.
        rev_perm: `(E,)` for each source-sorted position, the CSR position of that edge.
        batch: `(N,)` graph id of each node; all zeros for a single graph.
        ptr: `(B+1,)` node offsets of the graphs; `[0, N]` for a single graph.
        num_graphs: `B`.
        edge_weight: optional floating `(E,)`, CSR order.
        edge_attr: optional floating `(E, *)`, CSR order.
    """

    num_nodes: int
    indptr: Tensor
    src: Tensor
    dst: Tensor
    perm: Tensor
    rev_indptr: Tensor
    rev_dst: Tensor
    rev_perm: Tensor
    batch: Tensor
    ptr: Tensor
    num_graphs: int
    edge_weight: Tensor | None = None
    edge_attr: Tensor | None = None

    def __post_init__(self) -> None:
        n, b = _count(self.num_nodes, "num_nodes"), _count(self.num_graphs, "num_graphs")
        if b < 1:
            raise ValueError(f"num_graphs must be >= 1; got {b}")
        if not isinstance(self.src, Tensor) or self.src.dim() != 1:
            raise ValueError(f"src must be a 1-D int64 tensor; got {_describe(self.src)}")
        e, device = self.src.shape[0], self.src.device
        sizes = {"indptr": n + 1, "rev_indptr": n + 1, "batch": n, "ptr": b + 1}
        for name in _INDEX_FIELDS:
            t, size = getattr(self, name), sizes.get(name, e)
            ok = isinstance(t, Tensor) and t.dtype == torch.int64 and t.shape == (size,)
            if not (ok and t.device == device and t.is_contiguous()):
                expected = f"contiguous int64 of shape ({size},) on {device}"
                raise ValueError(f"{name} must be {expected}; got {_describe(t)}")
        _edge_values(self.edge_weight, "edge_weight", e, device, weight=True, finite=False)  # no host sync
        _edge_values(self.edge_attr, "edge_attr", e, device, weight=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def _build(
        cls,
        src: Tensor,
        dst: Tensor,
        num_nodes: int,
        edge_weight: object,
        edge_attr: object,
        *,
        csr_order: bool = False,
    ) -> Graph:
        """Sort validated caller-order `src, dst (E,)` int64 once (stable) and assemble the graph."""
        device, num_edges = src.device, src.numel()
        edge_weight = _edge_values(edge_weight, "edge_weight", num_edges, device, weight=True)
        edge_attr = _edge_values(edge_attr, "edge_attr", num_edges, device, weight=False)
        positions = torch.arange(num_edges, device=device)
        if csr_order:  # from_csr: the caller's order already is the CSR order
            perm, inv_perm, dst_csr, src_csr = positions, positions, dst, src
        else:
            dst_csr, perm = torch.sort(dst, stable=True)
            src_csr = src[perm]
            inv_perm = torch.empty_like(perm).index_put_((perm,), positions)
            edge_weight = None if edge_weight is None else edge_weight[perm]
            edge_attr = None if edge_attr is None else edge_attr[perm]
        src_sorted, by_src = torch.sort(src, stable=True)  # caller positions grouped by source
        batch, ptr = _single_batch(num_nodes, device)
        return cls(
            num_nodes=num_nodes,
            indptr=_csr_pointers(dst_csr, num_nodes),
            src=src_csr.contiguous(),
            dst=dst_csr.contiguous(),
            perm=perm,
            rev_indptr=_csr_pointers(src_sorted, num_nodes),
            rev_dst=dst[by_src],
            rev_perm=inv_perm[by_src],
            batch=batch,
            ptr=ptr,
            num_graphs=1,
            edge_weight=None if edge_weight is None else edge_weight.contiguous(),
            edge_attr=None if edge_attr is None else edge_attr.contiguous(),
        )

    @classmethod
    def from_edge_index(
        cls,
        edge_index: Tensor,
        num_nodes: int | None = None,
        edge_weight: Tensor | None = None,
        edge_attr: Tensor | None = None,
    ) -> Graph:
        """Build from a PyG-style `edge_index (2, E)`: row 0 holds sources, row 1 destinations.

        Args:
            edge_index: integer `(2, E)` tensor (any integer dtype; stored as int64).
            num_nodes: `N`; defaults to `max(edge_index) + 1`, or 0 without edges.
            edge_weight: optional finite floating `(E,)` in the caller's edge order, same device.
            edge_attr: optional floating `(E, *)` in the caller's edge order, same device.

        Returns:
            The graph; `edge_weight`/`edge_attr` are stored permuted into CSR order.

        Raises:
            TypeError: non-tensor or non-integer `edge_index`, non-int `num_nodes`, non-floating weight/attr.
            ValueError: wrong shapes, indices outside `[0, num_nodes)`, negative `num_nodes`, a device
                mismatch, NaN or inf in `edge_weight`.
        """
        edge_index = _index_tensor(edge_index, "edge_index", "(2, E)", ndim=2)
        n = None if num_nodes is None else _count(num_nodes, "num_nodes")
        n = _check_range(edge_index, "edge_index", n)
        return cls._build(edge_index[0].contiguous(), edge_index[1].contiguous(), n, edge_weight, edge_attr)

    @classmethod
    def from_csr(
        cls,
        indptr: Tensor,
        src: Tensor,
        num_nodes: int | None = None,
        edge_weight: Tensor | None = None,
        edge_attr: Tensor | None = None,
    ) -> Graph:
        """Build from an existing CSR over incoming edges; the caller's edge order is the CSR order.

        Args:
            indptr: integer `(N+1,)`, `indptr[0] == 0`, non-decreasing, `indptr[-1] == E`.
            src: integer `(E,)` source of each edge, values in `[0, N)`, same device.
            num_nodes: optional `N`; must equal `len(indptr) - 1`.
            edge_weight: optional finite floating `(E,)` in CSR order.
            edge_attr: optional floating `(E, *)` in CSR order.

        Returns:
            The graph, with `perm == arange(E)`.

        Raises:
            TypeError: non-tensor or non-integer `indptr`/`src`, non-int `num_nodes`, non-float weight/attr.
            ValueError: any violated condition above, or a device mismatch.
        """
        indptr = _index_tensor(indptr, "indptr", "(N+1,)", ndim=1)
        src = _index_tensor(src, "src", "(E,)", ndim=1)
        n, num_edges = indptr.numel() - 1, src.numel()
        if n < 0:
            raise ValueError("indptr must have length N + 1 >= 1; got an empty tensor")
        if num_nodes is not None and _count(num_nodes, "num_nodes") != n:
            raise ValueError(f"indptr must have length num_nodes + 1 = {num_nodes + 1}; got {n + 1}")
        if src.device != indptr.device:
            raise ValueError(f"src must be on indptr's device {indptr.device}; got {_describe(src)}")
        counts = indptr.diff()
        first, last, decreasing = torch.stack([indptr[0], indptr[-1], (counts < 0).any()]).tolist()
        if first != 0:
            raise ValueError(f"indptr[0] must be 0; got {first}")
        if decreasing:
            raise ValueError("indptr must be non-decreasing; got a decreasing step")
        if last != num_edges:
            raise ValueError(f"indptr[-1] must equal the number of edges len(src) = {num_edges}; got {last}")
        _check_range(src, "src", n)
        dst = torch.repeat_interleave(torch.arange(n, device=src.device), counts, output_size=num_edges)
        return cls._build(src, dst, n, edge_weight, edge_attr, csr_order=True)

    @classmethod
    def from_scipy(cls, matrix: Any) -> Graph:
        """Build from a square scipy sparse matrix/array; convention: `A[u, v]` = weight of the edge `u -> v`.

        This is the adjacency convention of networkx and scipy.sparse.csgraph. Every stored entry is an edge,
        explicit zeros included; duplicate COO entries become multi-edges; edges are taken in `tocoo()` order.
        Floating data keeps its dtype; integer/bool data becomes `torch.get_default_dtype()`.

        Args:
            matrix: any `scipy.sparse` matrix or array of shape `(N, N)`.

        Returns:
            The graph with `edge_weight` set from the stored values.

        Raises:
            TypeError: `matrix` is not scipy sparse, or holds complex values.
            ValueError: `matrix` is not square, or holds NaN/inf values.
        """
        import scipy.sparse

        if not scipy.sparse.issparse(matrix):
            raise TypeError(f"matrix must be a scipy.sparse matrix or array; got {type(matrix).__name__}")
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"matrix must be square (N, N); got shape {matrix.shape}")
        coo = matrix.tocoo()
        if coo.data.dtype.kind == "c":
            raise TypeError(f"matrix must hold real values; got {coo.data.dtype}")
        edge_index = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
        weight = torch.from_numpy(np.array(coo.data, copy=True))
        if not weight.is_floating_point():
            weight = weight.to(torch.get_default_dtype())
        return cls.from_edge_index(edge_index, matrix.shape[0], edge_weight=weight)

    @classmethod
    def from_networkx(cls, g: Any, weight: str | None = "weight") -> Graph:
        """Build from a networkx graph; node `k` is `list(g.nodes)[k]`.

        Directed graphs keep their edges (each parallel edge of a multigraph is one edge), in `g.edges` order.
        An undirected edge `{u, v}` becomes `u -> v` and `v -> u` (all forward edges first, then the reverse
        ones); an undirected self-loop becomes one edge.

        Args:
            g: a `networkx.Graph`, `DiGraph`, `MultiGraph` or `MultiDiGraph`.
            weight: edge attribute read as `edge_weight` (missing values count as 1.0); no weights are stored
                when it is None or no edge has the attribute. Stored in `torch.get_default_dtype()`.

        Returns:
            The graph.

        Raises:
            TypeError: `g` is not a networkx graph, `weight` is not a str/None, or a weight is not a number.
            ValueError: a weight is NaN or inf.
        """
        import networkx as nx

        if not isinstance(g, nx.Graph):
            raise TypeError(f"g must be a networkx graph; got {type(g).__name__}")
        if weight is not None and not isinstance(weight, str):
            raise TypeError(f"weight must be an edge attribute name or None; got {type(weight).__name__}")
        index = {node: k for k, node in enumerate(g.nodes)}
        edges = [(index[u], index[v], data) for u, v, data in g.edges(data=True)]
        if not g.is_directed():
            edges += [(v, u, data) for u, v, data in edges if u != v]
        edge_index = torch.tensor([[u for u, _, _ in edges], [v for _, v, _ in edges]], dtype=torch.int64)
        edge_weight = None
        if weight is not None and any(weight in data for _, _, data in edges):
            values = [data.get(weight, 1.0) for _, _, data in edges]
            try:
                edge_weight = torch.tensor(values, dtype=torch.get_default_dtype())
            except (TypeError, ValueError, RuntimeError) as err:
                raise TypeError(f"edge attribute weight={weight!r} must hold numbers; got {err}") from None
        return cls.from_edge_index(edge_index.view(2, -1), len(index), edge_weight=edge_weight)

    @classmethod
    def from_pyg(cls, data: Any) -> Graph:
        """Build from a `torch_geometric.data.Data` (`edge_index`, `num_nodes`, optional `edge_weight`,
        `edge_attr`); a PyG `Batch` also keeps its `batch`/`ptr` as this graph's batching.

        Args:
            data: the PyG data object.

        Returns:
            The graph.

        Raises:
            TypeError: `data` is not a PyG `Data` (also when torch_geometric is not installed), or a field
                has a wrong type (see `from_edge_index`).
            ValueError: a field has a wrong shape or value (see `from_edge_index`).
        """
        try:
            from torch_geometric.data import Batch, Data
        except ImportError:
            raise TypeError(
                f"data must be a torch_geometric.data.Data (torch_geometric is not installed); "
                f"got {type(data).__name__}"
            ) from None
        if not isinstance(data, Data):
            raise TypeError(f"data must be a torch_geometric.data.Data; got {type(data).__name__}")
        edge_index = data.edge_index
        if edge_index is None:
            edge_index = torch.empty(2, 0, dtype=torch.int64)
        graph = cls.from_edge_index(
            edge_index,
            data.num_nodes,
            edge_weight=getattr(data, "edge_weight", None),
            edge_attr=getattr(data, "edge_attr", None),
        )
        if isinstance(data, Batch) and getattr(data, "ptr", None) is not None:
            ptr = _index_tensor(data.ptr, "data.ptr", "(B+1,)", ndim=1).to(graph.indptr.device)
            sizes = ptr.diff()
            ok = ptr.numel() >= 2 and ptr[0].item() == 0 and ptr[-1].item() == graph.num_nodes
            if not ok or bool((sizes < 0).any()):
                raise ValueError(f"data.ptr must rise from 0 to num_nodes = {graph.num_nodes}; got {ptr}")
            batch = torch.repeat_interleave(torch.arange(sizes.numel(), device=ptr.device), sizes)
            graph = dataclasses.replace(graph, batch=batch, ptr=ptr, num_graphs=sizes.numel())
        return graph

    @classmethod
    def batch_graphs(cls, graphs: Sequence[Graph]) -> Graph:
        """Stack graphs block-diagonally; node `k` of graph `b` becomes node `ptr[b] + k`.

        No re-sorting: the CSR blocks are concatenated with offsets. The caller's edge order of the result
        is graph 0's edges, then graph 1's, and so on. Batched inputs are flattened: `num_graphs` is the sum
        of the inputs' `num_graphs` (`len(graphs)` for single graphs).

        Args:
            graphs: a non-empty sequence of graphs on one device; either all or none carry `edge_weight`
                (resp. `edge_attr`, which must then share trailing shape and dtype).

        Returns:
            The batched graph with `batch (N,)`, `ptr (B+1,)` and `num_graphs = B`.

        Raises:
            TypeError: `graphs` is not a sequence of `Graph`.
            ValueError: `graphs` is empty, spans several devices, or only some graphs carry a field.
        """
        if isinstance(graphs, Graph) or not isinstance(graphs, Sequence):
            raise TypeError(f"graphs must be a sequence of Graph; got {type(graphs).__name__}")
        if len(graphs) == 0:
            raise ValueError("graphs must hold at least one Graph; got an empty sequence")
        for k, g in enumerate(graphs):
            if not isinstance(g, Graph):
                raise TypeError(f"graphs[{k}] must be a Graph; got {type(g).__name__}")
        devices = sorted({str(g.device) for g in graphs})
        if len(devices) > 1:
            raise ValueError(f"graphs must all be on one device; got {devices}")
        node_off = np.cumsum([0] + [g.num_nodes for g in graphs]).tolist()
        edge_off = np.cumsum([0] + [g.num_edges for g in graphs]).tolist()
        graph_off = np.cumsum([0] + [g.num_graphs for g in graphs]).tolist()
        zero = torch.zeros(1, dtype=torch.int64, device=graphs[0].device)

        def cat(name: str, offsets: list[int], skip_first: bool = False) -> Tensor:
            start = int(skip_first)
            parts = [getattr(g, name)[start:] + off for g, off in zip(graphs, offsets[:-1], strict=True)]
            return torch.cat([zero, *parts] if skip_first else parts)

        fields: dict[str, Tensor | None] = {}
        for name in ("edge_weight", "edge_attr"):
            present = [getattr(g, name) is not None for g in graphs]
            if any(present) and not all(present):
                missing = [k for k, p in enumerate(present) if not p]
                raise ValueError(f"{name} must be set on all graphs or none; missing on graphs {missing}")
            values = [getattr(g, name) for g in graphs]
            if all(present) and len({(v.dtype, v.shape[1:]) for v in values}) > 1:
                raise ValueError(f"{name} must share dtype and trailing shape across graphs; got mixed")
            fields[name] = torch.cat(values) if all(present) else None
        return cls(
            num_nodes=node_off[-1],
            indptr=cat("indptr", edge_off, skip_first=True),
            src=cat("src", node_off),
            dst=cat("dst", node_off),
            perm=cat("perm", edge_off),
            rev_indptr=cat("rev_indptr", edge_off, skip_first=True),
            rev_dst=cat("rev_dst", node_off),
            rev_perm=cat("rev_perm", edge_off),
            batch=cat("batch", graph_off),
            ptr=cat("ptr", node_off, skip_first=True),
            num_graphs=graph_off[-1],
            **fields,
        )

    # ------------------------------------------------------------------ views and queries
    @property
    def num_edges(self) -> int:
        """`E`."""
        return self.src.numel()

    @property
    def device(self) -> torch.device:
        """The device of every tensor of the graph."""
        return self.indptr.device

    def to(self, device: torch.device | str) -> Graph:
        """The same graph with every tensor on `device` (`self` when already there)."""
        device = torch.device(device)
        if device == self.device:
            return self
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        moved = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in moved.items()}
        return dataclasses.replace(self, **moved)

    def edge_index(self) -> Tensor:
        """`(2, E)` int64 `[src; dst]` in the caller's original edge order (the inverse of `perm`)."""
        out = torch.empty(2, self.num_edges, dtype=torch.int64, device=self.device)
        out[:, self.perm] = torch.stack([self.src, self.dst])
        return out

    def reverse(self) -> Graph:
        """The transposed graph (each edge `u -> v` becomes `v -> u`).

        Equal to `from_edge_index` of the flipped `edge_index()` with the same weights; the four CSR tensors
        (`indptr`, `src`, `rev_indptr`, `rev_dst`) are shared with `self`, not copied."""
        positions = torch.arange(self.num_edges, device=self.device)
        csr_to_rev = torch.empty_like(self.rev_perm).index_put_((self.rev_perm,), positions)
        return dataclasses.replace(
            self,
            indptr=self.rev_indptr,
            src=self.rev_dst,
            dst=self.src[self.rev_perm],
            perm=self.perm[self.rev_perm],
            rev_indptr=self.indptr,
            rev_dst=self.src,
            rev_perm=csr_to_rev,
            edge_weight=None if self.edge_weight is None else self.edge_weight[self.rev_perm],
            edge_attr=None if self.edge_attr is None else self.edge_attr[self.rev_perm],
        )

    def to_csr_order(self, values: Tensor) -> Tensor:
        """Permute per-edge `values (E, *)` from the caller's edge order into CSR order: `values[perm]`.

        Raises:
            TypeError: `values` is not a tensor.
            ValueError: its first dimension is not `E` or it is on another device.
        """
        return self._edge_tensor(values)[self.perm]

    def to_caller_order(self, values: Tensor) -> Tensor:
        """Permute per-edge `values (E, *)` from CSR order back to the caller's edge order (inverse of
        `to_csr_order`); differentiable, like it.

        Raises:
            TypeError: `values` is not a tensor.
            ValueError: its first dimension is not `E` or it is on another device.
        """
        values = self._edge_tensor(values)
        return values.new_empty(values.shape).index_put((self.perm,), values)

    def _edge_tensor(self, values: object) -> Tensor:
        if not isinstance(values, Tensor):
            raise TypeError(f"values must be a torch.Tensor of shape (E, *); got {_describe(values)}")
        if values.dim() == 0 or values.shape[0] != self.num_edges or values.device != self.device:
            expected = f"(E, *) with E = {self.num_edges} on {self.device}"
            raise ValueError(f"values must have shape {expected}; got {_describe(values)}")
        return values

    def in_degree(self) -> Tensor:
        """`(N,)` int64 number of edges into each node."""
        return self.indptr.diff()

    def out_degree(self) -> Tensor:
        """`(N,)` int64 number of edges out of each node."""
        return self.rev_indptr.diff()

    def __repr__(self) -> str:
        weight = "None" if self.edge_weight is None else str(self.edge_weight.dtype).removeprefix("torch.")
        attr = "None" if self.edge_attr is None else _describe(self.edge_attr).rsplit(" on ", 1)[0]
        return (
            f"Graph(num_nodes={self.num_nodes}, num_edges={self.num_edges}, num_graphs={self.num_graphs}, "
            f"device={self.device}, edge_weight={weight}, edge_attr={attr})"
        )
