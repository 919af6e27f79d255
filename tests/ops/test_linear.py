import pytest
import torch
import torch.nn.functional as F

import fastsim.ops.dense as dense
from fastsim.models.blocks import MLP, Linear
from fastsim.ops import linear
from tests.conftest import assert_compiles_like_eager


@pytest.fixture
def always_compiled(monkeypatch):
    """Every size through the compiled op (the small test shapes would otherwise take ATen's)."""
    monkeypatch.setattr(dense, "MIN_COMPILED_WORK", 0)


def _calls(monkeypatch) -> list:
    calls = []
    op = torch.ops.fastsim.linear.default
    monkeypatch.setattr(dense._backend, "op", lambda name, device: lambda *a: calls.append(name) or op(*a))
    return calls


# Widths on both sides of the SIMD widths (8 and 16 floats): whole vectors, whole vectors plus a tail, a tail alone.
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (7, 3, 5), (13, 16, 16), (50, 24, 40), (100, 33, 17), (61, 5, 48)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch(always_compiled, m, k, n, dtype):
    x, w, b = (torch.randn(s, dtype=dtype) for s in ((m, k), (n, k), (n,)))
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-13, "atol": 1e-13}
    torch.testing.assert_close(linear(x, w, b), F.linear(x, w, b), **tol)
    torch.testing.assert_close(linear(x, w), F.linear(x, w), **tol)


@pytest.mark.parametrize("m, k, n", [(0, 4, 3), (5, 0, 3), (5, 4, 0), (0, 0, 0)])
def test_empty_inputs(always_compiled, m, k, n):
    x, w, b = torch.randn(m, k), torch.randn(n, k), torch.randn(n)
    torch.testing.assert_close(linear(x, w, b), F.linear(x, w, b), rtol=0, atol=0)


def test_batch_dimensions_and_strided_weights(always_compiled):
    x = torch.randn(2, 3, 9, dtype=torch.float64)
    whole = torch.randn(7, 20, dtype=torch.float64)
    block = whole[:, 4:13]  # a column block of a larger weight, as the graph layers' split first Linear
    torch.testing.assert_close(linear(x, block), F.linear(x, block), rtol=1e-13, atol=1e-13)
    transposed_x = torch.randn(9, 5, dtype=torch.float64).T
    torch.testing.assert_close(linear(transposed_x, block), F.linear(transposed_x, block), rtol=1e-13, atol=1e-13)


def test_gradients_match_torch_and_gradcheck(always_compiled):
    x = torch.randn(30, 21, dtype=torch.float64, requires_grad=True)
    w = torch.randn(19, 21, dtype=torch.float64, requires_grad=True)
    b = torch.randn(19, dtype=torch.float64, requires_grad=True)
    g = torch.randn(30, 19, dtype=torch.float64)
    ours = torch.autograd.grad(linear(x, w, b), (x, w, b), g)
    expected = torch.autograd.grad(F.linear(x, w, b), (x, w, b), g)
    for a, e in zip(ours, expected):
        torch.testing.assert_close(a, e, rtol=1e-13, atol=1e-13)
    small = [t[:4, :3].detach().requires_grad_() for t in (x, w)] + [b[:4].detach().requires_grad_()]
    assert torch.autograd.gradcheck(linear, tuple(small))
    assert torch.autograd.gradgradcheck(linear, tuple(small))


def test_weight_gradient_sums_as_accurately_as_atens():
    # A sum over all M rows in one accumulator had 1.5× ATen's rounding error at M = 480, enough to move where a
    # short traffic training ended (tests/experiments/test_traffic.py); the op sums blocks of rows separately.
    gen = torch.Generator().manual_seed(0)
    x, grad = torch.randn(4096, 40, generator=gen), torch.randn(4096, 24, generator=gen)
    exact = grad.double().T @ x.double()
    _, ours = torch.ops.fastsim.linear_backward(grad, x, torch.randn(24, 40), False, True)
    error, aten_error = ((g.double() - exact).abs().mean() for g in (ours, grad.T @ x))
    assert error < 1.5 * aten_error, (error, aten_error)


def test_only_the_needed_gradients_are_formed(always_compiled):
    x, w = torch.randn(6, 5), torch.randn(4, 5, requires_grad=True)
    (grad_w,) = torch.autograd.grad(linear(x, w).sum(), (w,))
    torch.testing.assert_close(grad_w, torch.ones(6, 4).T @ x)
    grad_x, grad_w = torch.ops.fastsim.linear_backward(torch.ones(6, 4), x, w.detach(), False, True)
    assert grad_x.shape == (0, 5) and grad_w.shape == (4, 5)


def test_opcheck():
    x, w, b = torch.randn(6, 5), torch.randn(7, 5), torch.randn(7)
    torch.library.opcheck(torch.ops.fastsim.linear.default, (x, w, b))
    torch.library.opcheck(torch.ops.fastsim.linear.default, (x.requires_grad_(), w.requires_grad_(), None))
    for flags in ((True, True), (False, True), (True, False)):
        torch.library.opcheck(
            torch.ops.fastsim.linear_backward.default, (torch.randn(6, 7), x.detach(), w.detach(), *flags)
        )


def test_compiles_without_graph_breaks(always_compiled):
    w = torch.randn(6, 4)
    assert_compiles_like_eager(lambda x: linear(x, w).square().sum(), torch.randn(9, 4, requires_grad=True))


def test_size_decides_between_the_op_and_atens_linear(monkeypatch):
    calls = _calls(monkeypatch)
    linear(torch.randn(8, 4), torch.randn(3, 4))  # 96 multiply-adds: ATen's
    assert calls == []
    x, w = torch.randn(256, 128), torch.randn(64, 128)  # 2**21 multiply-adds: the op
    torch.testing.assert_close(linear(x, w), F.linear(x, w), rtol=1e-5, atol=1e-4)
    assert calls == ["linear"]


def test_other_dtypes_and_autocast_take_atens_linear(always_compiled, monkeypatch):
    calls = _calls(monkeypatch)
    half = torch.randn(5, 4).to(torch.bfloat16), torch.randn(3, 4).to(torch.bfloat16)
    assert torch.equal(linear(*half), F.linear(*half))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert linear(torch.randn(5, 4), torch.randn(3, 4)).dtype == torch.bfloat16
    assert calls == []


def test_hostile_input_is_named(always_compiled):
    with pytest.raises(TypeError, match="x must be a torch.Tensor; got list"):
        linear([1.0], torch.randn(2, 1))
    with pytest.raises(ValueError, match="agree in K"):
        linear(torch.randn(5, 4), torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        linear(torch.randn(5, 4), torch.randn(3, 4), torch.randn(4))
    with pytest.raises(RuntimeError, match="agree in K"):
        torch.ops.fastsim.linear(torch.randn(5, 4), torch.randn(3, 5), None)
    with pytest.raises(RuntimeError, match="contiguous"):
        torch.ops.fastsim.linear(torch.randn(4, 5).T, torch.randn(3, 4), None)
    with pytest.raises(RuntimeError, match="dtype"):
        torch.ops.fastsim.linear(torch.randn(5, 4), torch.randn(3, 4, dtype=torch.float64), None)
    with pytest.raises(RuntimeError, match=r"grad must be \(M, N\)"):
        torch.ops.fastsim.linear_backward(torch.randn(5, 2), torch.randn(5, 4), torch.randn(3, 4), True, True)


def test_module_is_a_drop_in_nn_linear(always_compiled):
    ours, theirs = Linear(6, 5), torch.nn.Linear(6, 5)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 6)
    torch.testing.assert_close(ours(x), theirs(x))
    assert [type(layer) for layer in MLP([3, 4, 2]) if isinstance(layer, torch.nn.Linear)] == [Linear, Linear]
