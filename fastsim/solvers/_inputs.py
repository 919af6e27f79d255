"""Argument checks and the state layout shared by `odeint`, `solve_ivp` and `odeint_adjoint`.

`StateLayout` maps a user state (a tensor or a tuple of tensors, optionally with a batch dimension) to the
engine's `(B, N)` matrix and back, and wraps the user's right-hand side accordingly.
"""

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

State = Tensor | tuple[Tensor, ...]

# The smallest rtol accepted. Below float64's machine epsilon a relative tolerance asks for more digits than any
# supported dtype holds, and the weighted errors err/(atol + rtol·|y|) of the first steps can overflow, which the
# solvers would report as a non-finite state. Not the state dtype's epsilon: float32's (1.2e-7) exceeds the default
# rtol 1e-7, which works because the error estimate combines stages instead of differencing rounded states.
RTOL_MIN = float(torch.finfo(torch.float64).eps)


def check_tolerance(name: str, value: object) -> float:
    """A positive finite float from a number or a one-element tensor; ValueError/TypeError naming `name`."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number; got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number; got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value}")
    return float(value)


def check_rtol(name: str, value: object) -> float:
    """`check_tolerance`, and at least `RTOL_MIN`."""
    rtol = check_tolerance(name, value)
    if rtol < RTOL_MIN:
        raise ValueError(f"{name} must be at least {RTOL_MIN:.3g} (float64's machine epsilon); got {rtol:g}")
    return rtol


def check_positive_option(name: str, value: object, allow_inf: bool = False) -> float:
    """A positive number from `options[name]` (inf allowed where `allow_inf`)."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"options['{name}'] must be a positive number; got {type(value).__name__}")
    if not (value > 0) or (math.isinf(value) and not allow_inf) or math.isnan(value):
        raise ValueError(f"options['{name}'] must be a positive finite number; got {value}")
    return float(value)


def check_times(name: str, t: object, device: torch.device, batch: int | None) -> Tensor:
    """Checks a floating `(T,)` (or `(B, T)` when `batch` is given) tensor: finite, rows strictly monotone.

    Returns `t` detached, as `(T,)` or `(B, T)`.
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor (float32/float64); got {t.dtype}")
    if t.device != device:
        raise ValueError(f"{name} is on {t.device} but y0 is on {device}")
    shapes = "(T,)" if batch is None else f"(T,) or ({batch}, T)"
    if not (t.dim() == 1 or (batch is not None and t.dim() == 2 and t.shape[0] == batch)) or t.shape[-1] == 0:
        raise ValueError(f"{name} must have shape {shapes} with T ≥ 1; got {tuple(t.shape)}")
    t = t.detach()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite; it contains NaN or inf")
    if t.shape[-1] > 1:
        d = torch.diff(t, dim=-1)
        if not bool(((d > 0).all(dim=-1) | (d < 0).all(dim=-1)).all()):
            raise ValueError(f"{name} must be strictly increasing or strictly decreasing")
    return t


class StateLayout:
    """The user's state structure and its `(B, N)` flattening.

    With `batch_dim = b`, every tensor of the state holds `B` independent trajectories along dimension `b`;
    the right-hand side then receives `t` of shape `(1, …, B, …, 1)` (B at position `b`, as many dimensions as
    the first state tensor), so expressions like `t * y` broadcast. Without a batch dimension `B = 1` and `t`
    is 0-d. Either way `t` is passed in the dtype of the state.
    """

    def __init__(self, y0: object, batch_dim: object = None) -> None:
        self.is_tuple = isinstance(y0, (tuple, list))
        tensors = tuple(y0) if self.is_tuple else (y0,)
        if len(tensors) == 0:
            raise ValueError("y0 must be a tensor or a non-empty tuple of tensors")
        for i, x in enumerate(tensors):
            nm = f"y0[{i}]" if self.is_tuple else "y0"
            if not isinstance(x, Tensor):
                raise TypeError(f"{nm} must be a torch.Tensor; got {type(x).__name__}")
            if x.dtype not in (torch.float32, torch.float64):
                raise TypeError(f"{nm} must be a floating tensor (float32/float64); got {x.dtype}")
            if x.device != tensors[0].device:
                raise ValueError(f"{nm} is on {x.device} but y0[0] is on {tensors[0].device}")
            if not bool(torch.isfinite(x).all()):
                raise ValueError(f"{nm} must be finite; it contains NaN or inf")
        self.dtype = tensors[0].dtype
        for x in tensors[1:]:
            self.dtype = torch.promote_types(self.dtype, x.dtype)
        self.dtypes = tuple(x.dtype for x in tensors)
        self.device = tensors[0].device
        self.shapes = tuple(tuple(x.shape) for x in tensors)
        self.batch_dim: int | None = None
        self.batch = 1
        if batch_dim is not None:
            if isinstance(batch_dim, bool) or not isinstance(batch_dim, int):
                raise TypeError(f"options['batch_dim'] must be an int; got {type(batch_dim).__name__}")
            for x in tensors:
                if not -x.dim() <= batch_dim < x.dim():
                    raise ValueError(f"options['batch_dim']={batch_dim} is out of range for y0 of shape {x.shape}")
            dims = [batch_dim % x.dim() for x in tensors]
            sizes = {x.shape[d] for x, d in zip(tensors, dims, strict=True)}
            if len(sizes) != 1:
                raise ValueError(f"every tensor of y0 must have the same size along batch_dim; got {sizes}")
            self.batch_dims = dims
            self.batch_dim, self.batch = dims[0], sizes.pop()
        self.sizes = tuple(
            math.prod(
                s for d, s in enumerate(x.shape) if d != (self.batch_dims[i] if self.batch_dim is not None else -1)
            )
            for i, x in enumerate(tensors)
        )
        self.t_shape = [1] * len(self.shapes[0])
        if self.batch_dim is not None:
            self.t_shape[self.batch_dim] = self.batch

    def _split(self, flat: Tensor) -> list[Tensor]:
        return list(torch.split(flat, self.sizes, dim=-1))

    def flatten(self, state: State, what: str = "y0") -> Tensor:
        """`state` (the structure of `y0`) → `(B, N)` in the common dtype; checks the shapes."""
        tensors = tuple(state) if isinstance(state, (tuple, list)) else (state,)
        if len(tensors) != len(self.shapes) or isinstance(state, (tuple, list)) != self.is_tuple:
            raise ValueError(f"{what} must have the structure of y0 ({len(self.shapes)} tensor(s))")
        pieces = []
        for i, (x, shape) in enumerate(zip(tensors, self.shapes, strict=True)):
            if not isinstance(x, Tensor) or tuple(x.shape) != shape:
                got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ValueError(f"{what}{f'[{i}]' if self.is_tuple else ''} must have shape {shape}; got {got}")
            if self.batch_dim is not None:
                x = x.movedim(self.batch_dims[i], 0)
            pieces.append(x.reshape(self.batch, self.sizes[i]).to(self.dtype))
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)

    def unflatten(self, flat: Tensor) -> State:
        """`(B, N)` → the structure of `y0`."""
        out = []
        for i, (piece, shape) in enumerate(zip(self._split(flat), self.shapes, strict=True)):
            if self.batch_dim is None:
                out.append(piece.reshape(shape))
            else:
                d = self.batch_dims[i]
                rest = shape[:d] + shape[d + 1 :]
                out.append(piece.reshape(self.batch, *rest).movedim(0, d))
        return tuple(out) if self.is_tuple else out[0]

    def outputs(self, ys: Tensor) -> State:
        """`(B, T, N)` engine output → `(T, *shape)` per tensor of the state, in the dtypes of `y0`."""
        out = []
        for i, (piece, shape) in enumerate(zip(self._split(ys), self.shapes, strict=True)):
            T = piece.shape[1]
            if self.batch_dim is None:
                y = piece.reshape(T, *shape)
            else:
                d = self.batch_dims[i]
                y = piece.reshape(self.batch, T, *shape[:d], *shape[d + 1 :]).movedim(1, 0).movedim(1, d + 1)
            out.append(y.to(self.dtypes[i]))
        return tuple(out) if self.is_tuple else out[0]

    def wrap(self, func: Callable[..., Any], extra_args: tuple = ()) -> Callable[[Tensor, Tensor], Tensor]:
        """The engine's `f(t (B,), y (B, N)) -> (B, N)` from the user's `func(t, y, *extra_args)`."""

        def flat_func(t: Tensor, y: Tensor) -> Tensor:
            tt = t.to(self.dtype)
            tt = tt.reshape(self.t_shape) if self.batch_dim is not None else tt[0]
            dy = func(tt, self.unflatten(y), *extra_args)
            if not self.is_tuple and not isinstance(dy, Tensor):
                try:
                    dy = torch.as_tensor(dy, dtype=self.dtype, device=self.device)  # e.g. numpy from a scipy-style fun
                except (TypeError, ValueError, RuntimeError) as e:
                    raise TypeError(f"func(t, y) must return a tensor shaped like y0; got {type(dy).__name__}") from e
            return self.flatten(dy, what="func(t, y)")

        return flat_func
