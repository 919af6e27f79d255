"""NGS traffic variant: the paper's parameter count on PEMS-BAY, agreement with a plain-torch reference, batching,
dropout, hostile input."""

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from fastsim.graph import Graph
from fastsim.graphs import erdos_renyi
from fastsim.models import NGS
from fastsim.models.ngs_traffic import TrafficNGS

PEMS_BAY = Path(__file__).parents[2] / ".." / "shared" / "data" / "pems-bay-sensor-graph"


def inputs(graph: Graph, num_graphs: int = 1, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n = graph.num_nodes
    window = torch.randn(n, 12, 5, generator=gen)
    edge = torch.rand(graph.num_edges, generator=gen)
    sensor = torch.arange(n) % (n // num_graphs)
    time = torch.stack([torch.randint(0, 288, (num_graphs,), generator=gen), torch.randint(0, 7, (num_graphs,))], 1)
    return window, edge, sensor, time


def reference_forward(model: TrafficNGS, graph: Graph, window, edge, sensor, time):
    """The authors' formulation in plain torch: feature-major flattening, concatenated edge inputs, index_add,
    scatter min, last speed + 12 heads."""
    src, dst, batch = graph.src, graph.dst, graph.batch
    flat = torch.cat([window[:, :, k] for k in range(5)], dim=1)
    node = torch.cat([model.state_encoder(flat), model.node_encoder(sensor)], dim=1)
    e = model.edge_encoder(edge[:, None])
    glob = torch.cat([model.glob_encoder["tid"](time[:, 0]), model.glob_encoder["diw"](time[:, 1])], dim=1)
    for layer in model.gn_layers:
        block = layer.per_edge_update
        hidden = F.gelu(block.first(torch.cat([node[src], node[dst], e, glob[batch[dst]]], dim=1)))
        e = F.gelu(block.second(hidden))
        aggregated = torch.zeros(node.shape[0], e.shape[1]).index_add_(0, dst, e)
        node_new = layer.per_node_update(torch.cat([node, aggregated, glob[batch]], dim=1))
        index = batch[:, None]
        node_min = torch.full((graph.num_graphs, node.shape[1]), torch.inf).scatter_reduce(
            0, index.expand_as(node_new), node_new, "amin"
        )
        edge_min = torch.full((graph.num_graphs, e.shape[1]), torch.inf).scatter_reduce(
            0, index.expand_as(aggregated), aggregated, "amin"
        )
        glob = layer.glob_update(torch.cat([node_min, edge_min, glob], dim=1))
        node = node_new
    return window[:, -1, :1] + torch.cat([head(node) for head in model.decoder], dim=1)


@pytest.mark.skipif(not PEMS_BAY.is_dir(), reason="../shared/data/pems-bay-sensor-graph is absent")
def test_parameter_count_on_pems_bay_matches_the_paper():
    from fastsim.experiments.traffic import read_sensor_graph, sensor_graph

    ids, adj = read_sensor_graph(PEMS_BAY)
    model = NGS.for_system("traffic", emb_dim=64, depth=2)
    assert isinstance(model, TrafficNGS) and model.num_sensors == len(ids) == 325
    assert sum(p.numel() for p in model.parameters()) == 5_833_292
    graph, edge = sensor_graph(adj)
    assert graph.num_edges == 2694 - 325  # every non-zero off the diagonal
    model.eval()
    with torch.no_grad():
        out = model(graph, torch.randn(325, 12, 5), edge, torch.arange(325), torch.tensor([[100, 2]]))
    assert out.shape == (325, 12) and torch.isfinite(out).all()


def test_forward_matches_plain_torch_reference_and_batches():
    torch.manual_seed(0)
    model = TrafficNGS(num_sensors=20, emb_dim=8).eval()
    single = erdos_renyi(20, 3.0, generator=torch.Generator().manual_seed(1))
    graph = Graph.batch_graphs([single, single])
    window, edge, sensor, time = inputs(graph, num_graphs=2)
    with torch.no_grad():
        out = model(graph, window, edge, sensor, time)
        ref = reference_forward(model, graph, window, edge, sensor, time)
        first = model(single, window[:20], edge[: single.num_edges], sensor[:20], time[:1])
    assert out.shape == (40, 12)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out[:20], first, rtol=1e-4, atol=1e-5)
    # Each head corrects the last observed speed: with zero output layers the forecast is that speed.
    for head in model.decoder:
        torch.nn.init.zeros_(head[-1].weight)
        torch.nn.init.zeros_(head[-1].bias)
    with torch.no_grad():
        assert torch.equal(model(graph, window, edge, sensor, time), window[:, -1, :1].expand(-1, 12))


def test_dropout_only_in_training_and_last_global_update_frozen():
    torch.manual_seed(0)
    model = TrafficNGS(num_sensors=10, emb_dim=4, dropout=0.2)
    graph = erdos_renyi(10, 3.0, generator=torch.Generator().manual_seed(2))
    args = (graph, *inputs(graph))
    assert not torch.equal(model(*args), model(*args))
    model.eval()
    assert torch.equal(model(*args), model(*args))
    assert not any(p.requires_grad for p in model.gn_layers[-1].glob_update.parameters())
    # Dropout adds no parameters.
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model) == count(TrafficNGS(num_sensors=10, emb_dim=4, dropout=0.0))


def test_hostile_input():
    model = TrafficNGS(num_sensors=10, emb_dim=4)
    graph = erdos_renyi(10, 3.0, generator=torch.Generator().manual_seed(3))
    window, edge, sensor, time = inputs(graph)
    with pytest.raises(ValueError, match="window must be"):
        model(graph, window[:, :11], edge, sensor, time)  # 11 steps, not 12
    with pytest.raises(ValueError, match="window must be"):
        model(graph, window[:9], edge, sensor, time)  # 9 sensors on a 10-node graph
    with pytest.raises(ValueError, match="window must be"):
        model(graph, window[..., :1], edge, sensor, time)  # speeds without time features
    bad = window.clone()
    bad[3, 5, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        model(graph, bad, edge, sensor, time)
    with pytest.raises(ValueError, match="edge must be"):
        model(graph, window, edge[:-1], sensor, time)
    with pytest.raises(ValueError, match="sensor ids"):
        model(graph, window, edge, sensor + 1, time)
    with pytest.raises(ValueError, match="sensor must be"):
        model(graph, window, edge, sensor.float(), time)
    with pytest.raises(ValueError, match="time must"):
        model(graph, window, edge, sensor, torch.tensor([[288, 0]]))
    with pytest.raises(TypeError, match="Graph"):
        model(graph.edge_index, window, edge, sensor, time)
    with pytest.raises(ValueError, match="in_steps"):
        TrafficNGS(in_steps=0)
    with pytest.raises(ValueError, match="dropout"):
        TrafficNGS(dropout=1.0)
    with pytest.raises(ValueError, match="threshold"):
        NGS.for_system("traffic", threshold=1.0)
