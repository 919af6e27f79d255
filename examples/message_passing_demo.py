"""Message passing on a random graph with fastsim: heat diffusion by SpMM and a fused graph-network edge step.

Run: python examples/message_passing_demo.py
"""

import time

import torch

import fastsim
from fastsim.models import EdgeBlock


def timed(f, repeat=5):
    f()
    start = time.perf_counter()
    for _ in range(repeat):
        result = f()
    return result, (time.perf_counter() - start) / repeat * 1e3


def main() -> None:
    torch.manual_seed(0)
    num_nodes, num_edges, features = 20_000, 200_000, 32
    edge_index = torch.randint(0, num_nodes, (2, num_edges))
    graph = fastsim.Graph.from_edge_index(edge_index, num_nodes=num_nodes)
    print(graph)
    print("build:", fastsim.build_info()["backends"], f"{fastsim.build_info()['num_threads']} threads")

    # Heat diffusion, explicit Euler on dT/dt = -(D - A) T, with A T computed by fastsim.ops.spmm.
    temperature = torch.zeros(num_nodes, features)
    temperature[:100] = 1.0
    degree = graph.in_degree().to(temperature.dtype).unsqueeze(-1)
    dt = 0.5 / degree.max().item()
    total_before = temperature.sum().item()
    for _ in range(50):
        temperature = temperature + dt * (fastsim.ops.spmm(graph, temperature) - degree * temperature)
    print(
        f"heat: 50 Euler steps, max temperature {temperature.max():.4f}, heat {total_before:.1f} -> "
        f"{temperature.sum():.1f} (directed graph: heat is not conserved exactly)"
    )

    # SpMM against the scatter path that most GNN code uses.
    x = torch.randn(num_nodes, features)
    ours, t_ours = timed(lambda: fastsim.ops.spmm(graph, x))
    theirs, t_theirs = timed(lambda: torch.zeros_like(x).index_add_(0, edge_index[1], x[edge_index[0]]))
    print(
        f"spmm sum F={features}: fastsim {t_ours:.2f} ms, index_add_ {t_theirs:.2f} ms "
        f"({t_theirs / t_ours:.1f}x), max difference {(ours - theirs).abs().max():.2e}"
    )

    # One fused graph-network edge step (NGS φ_e + sum aggregation), forward and backward.
    block = EdgeBlock(node_dim=features, edge_dim=0, glob_dim=0, hidden_dim=64, out_dim=features)
    x.requires_grad_()
    messages = block(graph, x)
    messages.square().mean().backward()
    print(f"gn edge step: messages {tuple(messages.shape)}, |grad x| = {x.grad.norm():.4f}")


if __name__ == "__main__":
    main()
