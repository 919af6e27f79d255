"""The traffic-forecasting variant of the Neural Graph Simulator (ngs_gnrk.md §1.2 "Traffic-specific model", §1.7).

Unlike the ODE-system NGS (`fastsim.models.ngs`), this model is not autoregressive and has no Δt: one forward pass
maps a window of `in_steps` observations per sensor to `out_steps` future speeds.

- State encoder `MLP(5·in_steps → 5d → 5d)` on the window, flattened feature-major as the reference does
  (`[speed × in_steps, cos tod × in_steps, sin tod × in_steps, cos dow × in_steps, sin dow × in_steps]`), where
  tod is the 5-minute slot of the day (0..287) and dow the day of the week (0..6) of each step.
- Node latent = [state embedding (5d), learned sensor-ID embedding `Embedding(num_sensors, d)`] → 6d.
- Edge latent = `MLP(1 → d → d)` of `1 − w_ij` (w the sensor-graph weight).
- Global latent = [`Embedding(288, d)` of the last input step's time-of-day slot, `Embedding(7, d)` of its day].
- `depth` graph-network layers (`fastsim.models.blocks.GraphNetworkLayer`), then `out_steps` separate decoder heads
  `MLP(6d → 6d → 1)`; prediction `k` = last observed (normalised) speed + head `k`.

Dropout (0.2 in the paper) follows the first GELU of every two-layer MLP, as in the reference, except inside the
edge MLP φ_e: fastsim runs φ_e fused with the aggregation and never stores its per-edge hidden layer, so there is no
place to drop units; the edge messages feed φ_v, whose dropout remains. Dropout adds no parameters, so the count
is the paper's: 5,833,292 on PEMS-BAY (325 sensors) at d = 64, depth 2.
"""

import torch
from torch import Tensor, nn

from fastsim.graph import Graph
from fastsim.models.blocks import MLP, GraphNetworkLayer

__all__ = ["DAYS_PER_WEEK", "FEATURES", "SLOTS_PER_DAY", "TrafficNGS"]

SLOTS_PER_DAY = 288  # 5-minute slots
DAYS_PER_WEEK = 7
FEATURES = 5  # speed, cos/sin time-of-day, cos/sin day-of-week


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"{str(x.dtype).removeprefix('torch.')} {tuple(x.shape)} on {x.device}"
    return type(x).__name__


def _mlp(dims: list[int], dropout: float, final_activation: bool = True) -> MLP:
    """`MLP(dims)` with dropout after its first activation (the reference's `MLP(..., dropout)`)."""
    mlp = MLP(dims, final_activation=final_activation)
    if dropout > 0:
        mlp.insert(2, nn.Dropout(dropout))
    return mlp


class TrafficNGS(nn.Module):
    """NGS for traffic forecasting; `NGS.for_system("traffic", ...)` builds one for PEMS-BAY's 325 sensors.

    Args:
        num_sensors: sensors of the road network (rows of the sensor-ID embedding), >= 1.
        emb_dim: the base width d (the paper: 64), >= 1.
        depth: graph-network layers L (the paper: 2), >= 1.
        dropout: dropout probability in [0, 1) (the paper: 0.2).
        in_steps, out_steps: observed and predicted steps (the paper: 12 and 12, i.e. one hour each at 5 min).
    """

    def __init__(
        self,
        num_sensors: int = 325,
        emb_dim: int = 64,
        depth: int = 2,
        dropout: float = 0.2,
        in_steps: int = 12,
        out_steps: int = 12,
    ) -> None:
        super().__init__()
        for name, value in (
            ("num_sensors", num_sensors),
            ("emb_dim", emb_dim),
            ("depth", depth),
            ("in_steps", in_steps),
            ("out_steps", out_steps),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1); got {dropout!r}")
        self.system = "traffic"
        self.num_sensors, self.emb_dim, self.depth, self.dropout = num_sensors, emb_dim, depth, float(dropout)
        self.in_steps, self.out_steps = in_steps, out_steps
        d = emb_dim
        # Registration order = the reference's parameter order.
        self.state_encoder = _mlp([FEATURES * in_steps, 5 * d, 5 * d], self.dropout)
        self.node_encoder = nn.Embedding(num_sensors, d)
        self.edge_encoder = _mlp([1, d, d], self.dropout)
        self.glob_encoder = nn.ModuleDict(
            {"tid": nn.Embedding(SLOTS_PER_DAY, d), "diw": nn.Embedding(DAYS_PER_WEEK, d)}
        )
        node_dim, edge_dim, glob_dim = 6 * d, d, 2 * d
        self.gn_layers = nn.ModuleList(GraphNetworkLayer(node_dim, edge_dim, glob_dim) for _ in range(depth))
        for layer in self.gn_layers:
            for mlp in (layer.per_node_update, layer.glob_update):
                if self.dropout > 0:
                    mlp.insert(2, nn.Dropout(self.dropout))
        # As in NGS: the last layer's global update feeds nothing; kept for the parameter count, frozen for DDP.
        self.gn_layers[-1].glob_update.requires_grad_(False)
        self.decoder = nn.ModuleList(
            _mlp([node_dim, node_dim, 1], self.dropout, final_activation=False) for _ in range(out_steps)
        )

    def model_args(self) -> dict:
        """The constructor arguments (plain data: stored in checkpoints to rebuild the model)."""
        return {
            "num_sensors": self.num_sensors,
            "emb_dim": self.emb_dim,
            "depth": self.depth,
            "dropout": self.dropout,
            "in_steps": self.in_steps,
            "out_steps": self.out_steps,
        }

    def _check(self, graph: Graph, window: Tensor, edge: Tensor, sensor: Tensor, time: Tensor) -> Tensor:
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a fastsim.Graph; got {type(graph).__name__}")
        n, e, b = graph.num_nodes, graph.num_edges, graph.num_graphs
        shape = (n, self.in_steps, FEATURES)
        if not isinstance(window, Tensor) or not window.is_floating_point() or tuple(window.shape) != shape:
            raise ValueError(
                f"window must be a floating tensor of shape {shape} (N = graph.num_nodes, in_steps, [speed, cos/sin "
                f"time-of-day, cos/sin day-of-week]); got {_describe(window)}"
            )
        if not isinstance(edge, Tensor) or not edge.is_floating_point() or tuple(edge.shape) not in ((e,), (e, 1)):
            raise ValueError(
                f"edge must be a floating tensor of shape ({e},) or ({e}, 1) (1 − w_ij); got {_describe(edge)}"
            )
        for name, x, want, high in (("sensor", sensor, (n,), self.num_sensors), ("time", time, (b, 2), None)):
            if not isinstance(x, Tensor) or x.dtype != torch.int64 or tuple(x.shape) != want:
                raise ValueError(f"{name} must be an int64 tensor of shape {want}; got {_describe(x)}")
            if high is not None and x.numel() and not bool(((x >= 0) & (x < high)).all()):
                raise ValueError(f"sensor ids must lie in [0, {high}) (num_sensors); got values outside")
        if time.numel() and not bool(((time >= 0) & (time < time.new_tensor([SLOTS_PER_DAY, DAYS_PER_WEEK]))).all()):
            raise ValueError(f"time must hold (slot in [0, {SLOTS_PER_DAY}), day in [0, {DAYS_PER_WEEK})) per graph")
        for name, x in (("window", window), ("edge", edge)):
            if x.device != graph.device:
                raise ValueError(f"{name} must be on the graph's device {graph.device}; got {_describe(x)}")
            if x.numel() and not bool(torch.isfinite(x).all()):
                raise ValueError(f"{name} must be finite; got NaN or inf values (encode missing speeds before)")
        return edge.reshape(e, 1)

    def forward(self, graph: Graph, window: Tensor, edge: Tensor, sensor: Tensor, time: Tensor) -> Tensor:
        """Predicted (normalised) speeds of the next `out_steps` steps, `(N, out_steps)`.

        Args:
            graph: the (batched) sensor graph, edges j → i. window: `(N, in_steps, 5)` per node and step
                `[speed, cos, sin of 2π·slot/288, cos, sin of 2π·day/7]`, speeds normalised.
            edge: `(E,)` or `(E, 1)` the edge feature `1 − w_ij`, in the graph's CSR order.
            sensor: `(N,)` int64 sensor ids in `[0, num_sensors)`.
            time: `(B, 2)` int64 per graph: the time-of-day slot and the day of the week of the last input step.

        Raises:
            TypeError / ValueError: a wrong type, shape, device, id range, or non-finite values.
        """
        edge = self._check(graph, window, edge, sensor, time)
        dtype = self.decoder[0][0].weight.dtype
        window = window.to(dtype)
        state = self.state_encoder(window.transpose(1, 2).reshape(graph.num_nodes, -1))
        node = torch.cat([state, self.node_encoder(sensor)], dim=1)
        edge = self.edge_encoder(edge.to(dtype))
        glob = torch.cat([self.glob_encoder["tid"](time[:, 0]), self.glob_encoder["diw"](time[:, 1])], dim=1)
        for k, layer in enumerate(self.gn_layers):
            node, edge, glob = layer(graph, node, edge, glob, last=k == self.depth - 1)
        last_speed = window[:, -1, :1]
        return last_speed + torch.cat([head(node) for head in self.decoder], dim=1)
