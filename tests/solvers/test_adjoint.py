"""Gradients: direct backpropagation through `odeint` and the continuous adjoint `odeint_adjoint`, both against
finite differences (float64 gradcheck) and against each other."""

import pytest
import torch
from torch import nn

from fastsim.solvers import odeint, odeint_adjoint

F64 = torch.float64
T = torch.tensor([0.0, 0.4, 1.3, 2.0], dtype=F64)


def rhs(t, y, w, b):
    return torch.tanh(y @ w.T + b) * torch.cos(t)


def _params():
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(2, 2, generator=g, dtype=F64) * 0.8).requires_grad_()
    b = (torch.randn(2, generator=g, dtype=F64) * 0.3).requires_grad_()
    y0 = torch.tensor([0.5, -0.3], dtype=F64, requires_grad=True)
    return y0, w, b


@pytest.mark.parametrize("method, options", [("dopri5", None), ("tsit5", None), ("rk4", {"step_size": 0.05})])
def test_gradcheck_through_odeint(method, options):
    """Backprop through the engine's operations (step sizes held fixed) equals finite differences."""

    def solve(y0, w, b):
        return odeint(lambda t, y: rhs(t, y, w, b), y0, T, method=method, rtol=1e-8, atol=1e-10, options=options)

    assert torch.autograd.gradcheck(solve, _params(), atol=1e-6, rtol=1e-5)


def test_gradcheck_through_odeint_adjoint():
    def solve(y0, w, b):
        return odeint_adjoint(lambda t, y: rhs(t, y, w, b), y0, T, rtol=1e-9, atol=1e-10, adjoint_params=(w, b))

    assert torch.autograd.gradcheck(solve, _params(), atol=1e-6, rtol=1e-5)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin1, self.lin2 = nn.Linear(3, 16).double(), nn.Linear(16, 3).double()

    def forward(self, t, y):
        return self.lin2(torch.tanh(self.lin1(y))) - 0.1 * y


@pytest.mark.parametrize("batched", [False, True])
def test_adjoint_matches_backprop_for_module(batched):
    net = Net()
    y0 = torch.randn(4, 3, dtype=F64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    t = torch.linspace(0, 1.5, 5, dtype=F64)
    opts = {"batch_dim": 0} if batched else None
    grads = []
    for solver in (odeint, odeint_adjoint):
        net.zero_grad()
        y0.grad = None
        ys = solver(net, y0, t, rtol=1e-10, atol=1e-12, options=opts)
        loss = (ys**2).sum() + ys[2].sin().sum()
        loss.backward()
        grads.append([y0.grad.clone()] + [p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-8)


def test_adjoint_tuple_state_and_decreasing_time():
    w = torch.tensor(1.3, dtype=F64, requires_grad=True)
    x0 = torch.tensor([1.0], dtype=F64, requires_grad=True)
    v0 = torch.tensor([0.2], dtype=F64, requires_grad=True)
    t = torch.tensor([1.0, 0.3, -0.5], dtype=F64)

    def f(t, s):
        return s[1], -(w**2) * s[0]

    xs, vs = odeint_adjoint(f, (x0, v0), t, rtol=1e-11, atol=1e-12, adjoint_params=(w,))
    (xs[-1] + vs[1]).sum().backward()
    # exact: x(t) = x0 cos(w τ) + v0/w sin(w τ), v(t) = −x0 w sin(w τ) + v0 cos(w τ), τ = t − 1
    tau = t - 1.0

    def exact(x0, v0, w):
        x = x0 * torch.cos(w * tau[-1]) + v0 / w * torch.sin(w * tau[-1])
        v = -x0 * w * torch.sin(w * tau[1]) + v0 * torch.cos(w * tau[1])
        return (x + v).sum()

    gx, gv, gw = torch.autograd.grad(exact(x0, v0, w), (x0, v0, w))
    assert torch.allclose(x0.grad, gx, atol=1e-8) and torch.allclose(v0.grad, gv, atol=1e-8)
    assert torch.allclose(w.grad, gw, atol=1e-8)


def test_adjoint_rejects_bad_input():
    with pytest.raises(TypeError, match="nn.Module"):
        odeint_adjoint(lambda t, y: -y, torch.ones(2, dtype=F64), T)
    with pytest.raises(ValueError, match="explicit methods"):
        odeint_adjoint(Net(), torch.ones(3, dtype=F64), T, method="radau")
    with pytest.raises(ValueError, match="unknown method"):
        odeint_adjoint(Net(), torch.ones(3, dtype=F64), T, adjoint_method="rk45")
