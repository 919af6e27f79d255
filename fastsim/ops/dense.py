"""Dense Linear layers, with the compiled CPU kernel where MKL is slow.

`linear(x, weight, bias)` equals `torch.nn.functional.linear` (up to float rounding: the products sum in another
order). On CPU float32/float64 tensors with at least `MIN_COMPILED_WORK` multiply-adds it runs
`torch.ops.fastsim.linear` (csrc/nn/linear_cpu.cpp: register-blocked tile products, ≈ 2× MKL's sgemm at the
graph models' shapes on AVX-512 machines) with `torch.ops.fastsim.linear_backward` as its gradient; elsewhere
(smaller products, CUDA, half precision, CPU autocast) ATen's.
"""

import torch
from torch import Tensor
from torch.nn import functional as F

from fastsim import _backend

_COMPILED_DTYPES = (torch.float32, torch.float64)
# Below ≈ 2M multiply-adds (M·K·N) ATen's Linear is as fast: the custom op's autograd runs in Python, ≈ 25 µs more
# per forward and backward than nn.Linear's, which the faster products only repay beyond this size (measured on
# one AVX-512 core: 2408×32×32 1.36× faster, 2408×24×24 0.82×).
MIN_COMPILED_WORK = 1 << 21


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """`x @ weight.T + bias` for `x (*, K)`, `weight (N, K)`, `bias (N,)`; differentiable (twice, through tensor
    ops)."""
    for name, t in (("x", x), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
    if weight.dim() != 2 or x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"x (..., K) and a 2-D weight (N, K) must agree in K; got {tuple(x.shape)} and {tuple(weight.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},); got {tuple(bias.shape)}")
    compiled = (
        x.device.type == "cpu"
        and weight.device.type == "cpu"
        and x.dtype in _COMPILED_DTYPES
        and weight.dtype == x.dtype
        and (bias is None or bias.dtype == x.dtype)
        and x.numel() * weight.shape[0] >= MIN_COMPILED_WORK
        and not torch.is_autocast_enabled("cpu")
    )
    if not compiled:
        return F.linear(x, weight, bias)
    rows = x.reshape(x.shape[:-1].numel(), x.shape[-1]).contiguous()
    out = _backend.op("linear", x.device)(rows, weight, bias)
    return out.reshape(*x.shape[:-1], weight.shape[0])


@torch.library.register_fake("fastsim::linear")
def _linear_fake(x, weight, bias):
    return x.new_empty((x.shape[0], weight.shape[0]))


@torch.library.register_fake("fastsim::linear_backward")
def _linear_backward_fake(grad, x, weight, input_grad, weight_grad):
    return x.new_empty((x.shape[0] if input_grad else 0, x.shape[1])), x.new_empty(
        (weight.shape[0] if weight_grad else 0, x.shape[1])
    )


def _linear_setup(ctx, inputs, output):
    x, weight, bias = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None


def _linear_backward(ctx, grad):
    x, weight = ctx.saved_tensors
    need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    need_b = ctx.has_bias and ctx.needs_input_grad[2]
    grad_b = grad.sum(0) if need_b else None
    if torch.is_grad_enabled():  # a backward with create_graph=True: the same products, differentiable
        return (grad @ weight if need_x else None), (grad.T @ x if need_w else None), grad_b
    grad_x, grad_w = torch.ops.fastsim.linear_backward.default(grad.contiguous(), x, weight, need_x, need_w)
    return (grad_x if need_x else None), (grad_w if need_w else None), grad_b


torch.library.register_autograd("fastsim::linear", _linear_backward, setup_context=_linear_setup)
