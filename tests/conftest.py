import os

import pytest
import torch

# Without a GPU, Triton kernels run in the interpreter; this must be set before triton is first imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import fastsim  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    cuda_ok = torch.cuda.is_available() and fastsim.build_info()["cuda_archs"] != []
    for item in items:
        if "cuda" in item.keywords and not cuda_ok:
            item.add_marker(skip_cuda)


def skip_unless_triton_runs_on(device: str) -> None:
    """Skip unless Triton kernels can run tensors on `device`: CUDA, or CPU under TRITON_INTERPRET=1."""
    pytest.importorskip("triton")
    if device == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("Triton runs CPU tensors only under TRITON_INTERPRET=1 (unset where a GPU is present)")


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: small matrices and models, where on a shared 2-core machine a second thread
    costs more than it gains (busy-waiting BLAS ran such tests up to 35× slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_graph(num_nodes: int, num_edges: int, seed: int = 0, device: str = "cpu", weighted: bool = False):
    """A random multigraph with self-loops, repeated edges and (usually) isolated nodes."""
    gen = torch.Generator().manual_seed(seed)
    if num_nodes == 0:
        edge_index = torch.empty(2, 0, dtype=torch.long)
    else:
        # Use only the first ~2/3 of the nodes so some are isolated; add a self-loop and a duplicate edge.
        active = max(1, (2 * num_nodes) // 3)
        edge_index = torch.randint(0, active, (2, num_edges), generator=gen)
        if num_edges >= 2:
            edge_index[:, 0] = edge_index[0, 0]
            edge_index[:, -1] = edge_index[:, 1]
    weight = torch.rand(edge_index.shape[1], generator=gen, dtype=torch.float64) if weighted else None
    return fastsim.Graph.from_edge_index(edge_index, num_nodes=num_nodes, edge_weight=weight).to(device)


# (num_nodes, num_edges): ordinary, empty graph, nodes without edges, a single node with a self-loop.
GRAPH_SIZES = [(9, 30), (40, 200), (0, 0), (5, 0), (1, 1)]


def assert_compiles_like_eager(fn, x: torch.Tensor, *rest) -> None:
    """`torch.compile(fn, fullgraph=True)` (no graph break allowed) gives eager's value and gradient in `x`."""
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    eager = fn(x, *rest)
    (grad_eager,) = torch.autograd.grad(eager, x)
    result = compiled(x, *rest)
    (grad_compiled,) = torch.autograd.grad(result, x)
    torch.testing.assert_close(result, eager)
    torch.testing.assert_close(grad_compiled, grad_eager)
