"""The exact (erf) GELU, with the compiled CPU kernel where ATen's is slow.

`gelu(x)` equals `torch.nn.functional.gelu(x)` (to a few float32 ulps; exactly the formula in float64). On CPU
float32/float64 tensors it runs `torch.ops.fastsim.gelu` (csrc/nn/gelu_cpu.cpp), whose erf is ≈ 2.6× cheaper
than ATen's, with `torch.ops.fastsim.gelu_backward` as its gradient; elsewhere (CUDA, other dtypes) ATen's.
"""

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from fastsim import _backend

_COMPILED_DTYPES = (torch.float32, torch.float64)


def gelu(x: Tensor) -> Tensor:
    """`x · Φ(x)`, Φ the standard normal CDF; differentiable (twice, through a tensor-op formula)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if x.device.type == "cpu" and x.dtype in _COMPILED_DTYPES:
        return _backend.op("gelu", x.device)(x.contiguous())
    return F.gelu(x)


@torch.library.register_fake("fastsim::gelu")
def _gelu_fake(x):
    return torch.empty_like(x)


@torch.library.register_fake("fastsim::gelu_backward")
def _gelu_backward_fake(grad, x):
    return torch.empty_like(x)


def _gelu_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


def _gelu_backward(ctx, grad):
    (x,) = ctx.saved_tensors
    if torch.is_grad_enabled():  # a backward with create_graph=True: the same derivative, differentiable
        cdf = 0.5 * (1.0 + torch.erf(x * math.sqrt(0.5)))
        return grad * (cdf + x * torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi))
    return torch.ops.fastsim.gelu_backward.default(grad.contiguous(), x)


torch.library.register_autograd("fastsim::gelu", _gelu_backward, setup_context=_gelu_setup)
