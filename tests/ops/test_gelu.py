import pytest
import torch
import torch.nn.functional as F

from fastsim.ops import gelu
from tests.conftest import assert_compiles_like_eager


@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (13, 9), (3, 0, 5), (2, 33, 17)])
def test_float64_equals_torch(shape):
    x = 4 * torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(gelu(x), F.gelu(x), rtol=1e-15, atol=1e-15)


def test_float32_as_accurate_as_torchs_float32():
    # Both tails (erf clamped to ±1 beyond |z| ≈ 5.4), the rational erf's whole range, and every vector remainder.
    # Error against float64, scaled by max(1, |GELU|): ATen's float32 GELU reaches 1.2e-6 on these points.
    x = torch.cat([torch.linspace(-12, 12, 200_001), torch.tensor([0.0, -0.0, 1e-30, -1e-30, 5.42, -5.42])])
    for n in (len(x), len(x) - 3):  # a length that leaves a partial vector
        exact = F.gelu(x[:n].double())
        error = (gelu(x[:n]).double() - exact).abs() / exact.abs().clamp_min(1.0)
        assert error.max() < 1.5e-6


def test_float32_far_tails():
    # Below the clamp Φ is exactly 0, so GELU is −0 and its gradient 0 however large |z| is (a Φ held at its clamp
    # value, ≈ 5e-8, gave GELU(−1e30) = −5e22); above it GELU is z to within float precision.
    x = torch.tensor([-1e30, -1e4, -100.0, -10.0, -6.0, 6.0, 10.0, 1e4, 1e30], requires_grad=True)
    y = gelu(x)
    torch.testing.assert_close(y[:5].detach(), torch.zeros(5), rtol=0, atol=0)
    torch.testing.assert_close(y[5:].detach(), x[5:].detach(), rtol=2e-7, atol=0)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad[:3], torch.zeros(3), rtol=0, atol=0)
    assert grad[3:5].abs().max() < 1e-7  # z·φ(z): −7.7e-22 at −10, −3.6e-8 at −6
    torch.testing.assert_close(grad[5:], torch.ones(4), rtol=2e-7, atol=0)


def test_non_tensor_input_is_named():
    with pytest.raises(TypeError, match="x must be a torch.Tensor; got list"):
        gelu([1.0])


def test_gradient_matches_torch_in_float32_and_float64():
    for dtype, tol in ((torch.float32, 2e-6), (torch.float64, 1e-14)):
        x = (4 * torch.randn(1000, dtype=dtype)).requires_grad_()
        g = torch.randn(1000, dtype=dtype)
        (ours,) = torch.autograd.grad(gelu(x), x, g)
        (expected,) = torch.autograd.grad(F.gelu(x), x, g)
        torch.testing.assert_close(ours, expected, rtol=tol, atol=tol)


def test_gradcheck_and_second_derivatives():
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gelu, (x,))
    assert torch.autograd.gradgradcheck(gelu, (x,))


def test_opcheck():
    x = torch.randn(6, 5)
    torch.library.opcheck(torch.ops.fastsim.gelu.default, (x,))
    torch.library.opcheck(torch.ops.fastsim.gelu_backward.default, (torch.randn(6, 5), x))


def test_compiles_without_graph_breaks():
    x = torch.randn(9, 4, requires_grad=True)
    assert_compiles_like_eager(lambda x: gelu(x @ x.T).sum(), x)


def test_non_contiguous_and_other_dtypes_fall_back_to_torch():
    x = torch.randn(8, 6, dtype=torch.float64).T
    torch.testing.assert_close(gelu(x), F.gelu(x), rtol=1e-15, atol=1e-15)
    half = torch.randn(10).to(torch.bfloat16)
    assert torch.equal(gelu(half), F.gelu(half))


def test_direct_calls_check_their_arguments():
    with pytest.raises(RuntimeError, match="floating"):
        torch.ops.fastsim.gelu(torch.arange(4))
    with pytest.raises(RuntimeError, match="contiguous"):
        torch.ops.fastsim.gelu(torch.randn(4, 3).T)
    with pytest.raises(RuntimeError, match="grad must match x"):
        torch.ops.fastsim.gelu_backward(torch.randn(3), torch.randn(4))
