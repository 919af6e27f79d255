"""The problem and linear-algebra layer of the stiff solvers: array backend, `f`/`J` evaluation, LU factorisations.

The steppers (`fastsim.solvers.radau`, `fastsim.solvers.rosenbrock`) are written once against `Backend`, whose
arrays are numpy arrays when the state lives on the CPU and torch tensors otherwise. On the CPU the solver's own
work is a few hundred tiny vector operations per step, which cost ~1 µs in numpy against ~4 µs in torch, and the
dense LU goes straight to LAPACK (`?getrf`/`?getrs`, ~2 µs per small solve against ~20 µs for `torch.linalg`).
The user's `func` and `jac` always receive and return torch tensors (zero-copy views of the numpy buffers, so they
must not modify `y` in place).

Jacobians: a user callable `jac(t, y)` returning a dense tensor, or a torch sparse CSR/COO tensor; or, by default,
forward-mode autograd (`torch.func.jacfwd`, falling back to reverse mode for ops without a forward rule). Sparse
Jacobians of systems with more than `DENSE_LU_MAX_N` unknowns are factorised by SuperLU
(`scipy.sparse.linalg.splu`, on the CPU); smaller ones are densified, where a dense LU is faster.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["Backend", "System", "Factorization", "IntegrationStop", "DENSE_LU_MAX_N"]

DENSE_LU_MAX_N = 64  # sparse Jacobians of systems up to this size are factorised densely
NUMPY_ON_CPU = True  # run the steppers on numpy arrays for CPU states (tests set False to exercise the torch path)


class IntegrationStop(Exception):
    """Raised inside a stepper to end the integration with a status of `fastsim.solvers.implicit.STATUS_MESSAGES`."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class Backend:
    """Array operations of the steppers: numpy on the CPU, torch on other devices; all arrays float64."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.is_numpy = device.type == "cpu" and NUMPY_ON_CPU

    def asarray(self, x: np.ndarray | Tensor | list[float]) -> Any:
        """A float64 backend array from numpy data, a list or a torch tensor."""
        if self.is_numpy:
            return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
        return torch.as_tensor(x, dtype=torch.float64, device=self.device)

    def zeros(self, *shape: int) -> Any:
        return np.zeros(shape) if self.is_numpy else torch.zeros(shape, dtype=torch.float64, device=self.device)

    def stack(self, xs: list[Any]) -> Any:
        return np.stack(xs) if self.is_numpy else torch.stack(xs)

    def maximum(self, x: Any, y: Any) -> Any:
        return np.maximum(x, y) if self.is_numpy else torch.maximum(x, y)

    def norm(self, x: Any) -> float:
        """Euclidean norm of all entries, as a Python float (NaN/inf propagate; one host sync on a GPU)."""
        if self.is_numpy:
            v = x.reshape(-1)
            return math.sqrt(float(v @ v))
        return float(torch.linalg.vector_norm(x))

    def all_finite(self, x: Any) -> bool:
        """Whether every entry is finite (the exact test only runs when the sum is not)."""
        if math.isfinite(float(x.sum())):
            return True
        return bool(np.isfinite(x).all()) if self.is_numpy else bool(torch.isfinite(x).all())

    def to_torch(self, x: Any) -> Tensor:
        return torch.from_numpy(x) if self.is_numpy else x


class System:
    """`f`, its Jacobian and the shifted-matrix factorisations of one flattened float64 problem.

    Counts right-hand-side evaluations (`nfev`; one per state, also in vectorised calls), Jacobian evaluations
    (`njev`) and LU factorisations (`nlu`; a complex factorisation counts as one, as in scipy).
    """

    def __init__(
        self,
        func: Callable[[Tensor, Tensor], Tensor],
        y0: Tensor,
        jac: Callable | None,
        vectorized: bool = False,
    ) -> None:
        self.func, self.jac_fn, self.vectorized = func, jac, vectorized
        self.shape, self.device, self.n = tuple(y0.shape), y0.device, y0.numel()
        self.be = Backend(y0.device)
        self.nfev = self.njev = self.nlu = 0
        self._jacfwd_failed = False

    def t_tensor(self, t: float) -> Tensor:
        return torch.scalar_tensor(t, dtype=torch.float64, device=self.device)

    def _out(self, out: object, shape: tuple[int, ...], flat: tuple[int, ...]) -> Any:
        if not isinstance(out, Tensor) or out.numel() != math.prod(flat):
            got = f"{tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"func must return a tensor of shape {shape}; got {got}")
        if out.dtype != torch.float64 or out.device != self.device:
            out = out.to(device=self.device, dtype=torch.float64)
        out = out.reshape(flat)
        return out.numpy() if self.be.is_numpy else out

    def f(self, t: float, y: Any) -> Any:
        """`f(t, y)` for a flat backend array `y (n,)`; a flat backend array."""
        self.nfev += 1
        out = self.func(self.t_tensor(t), self.be.to_torch(y).view(self.shape))
        return self._out(out, self.shape, (self.n,))

    def f_many(self, ts: list[float], Y: Any) -> Any:
        """`f` at `k` states `Y (k, n)` and times `ts`: one call if `vectorized`, else a loop; `(k, n)`.

        A vectorised `func` receives `t` of shape `(k, 1, ..., 1)` (broadcastable against `y`) and `y (k, *S)`.
        """
        k = Y.shape[0]
        if not self.vectorized:
            return self.be.stack([self.f(t, Y[i]) for i, t in enumerate(ts)])
        self.nfev += k
        shape = (k, *self.shape)
        t_b = self.be.to_torch(self.be.asarray(ts)).reshape((k,) + (1,) * len(self.shape))
        return self._out(self.func(t_b, self.be.to_torch(Y).view(shape)), shape, (k, self.n))

    def time_derivative(self, t: float, y: Any, f0: Any) -> Any:
        """`∂f/∂t` at `(t, y)` by a forward difference `(f(t + δ, y) − f(t, y))/δ`, `δ = √eps·max(1, |t|)`."""
        delta = math.sqrt(np.finfo(np.float64).eps) * max(1.0, abs(t))
        return (self.f(t + delta, y) - f0) * (1.0 / delta)

    def jacobian(self, t: float, y: Any) -> Any:
        """`J = ∂f/∂y` at `(t, y)`: a dense `(n, n)` backend array, or a scipy CSC matrix (large sparse input).

        Raises:
            ValueError: `jac` returned something other than an `(n, n)` tensor.
            IntegrationStop: ("non_finite") `J` has NaN or infinite entries.
        """
        self.njev += 1
        if self.jac_fn is None:
            J = self._autograd_jacobian(t, y)
        else:
            J = self.jac_fn(self.t_tensor(t), self.be.to_torch(y).view(self.shape))
            if not isinstance(J, Tensor) or tuple(J.shape) != (self.n, self.n):
                got = f"{J.layout} {tuple(J.shape)}" if isinstance(J, Tensor) else type(J).__name__
                raise ValueError(f"options['jac'] must return an (n, n) = ({self.n}, {self.n}) tensor; got {got}")
            if J.layout in (torch.sparse_csr, torch.sparse_coo):
                if self.n > DENSE_LU_MAX_N:
                    Js = _to_scipy_csc(J)
                    if not np.isfinite(Js.data).all():
                        raise IntegrationStop("non_finite", f"The Jacobian is not finite at t = {t:.6g}.")
                    return Js
                J = J.to_dense()
            elif J.layout != torch.strided:
                raise ValueError(f"options['jac'] must return a strided, sparse CSR or COO tensor; got {J.layout}")
        J = J.detach().to(device=self.device, dtype=torch.float64)
        J = J.numpy() if self.be.is_numpy else J
        if not self.be.all_finite(J):
            raise IntegrationStop("non_finite", f"The Jacobian is not finite at t = {t:.6g}.")
        return J

    def _autograd_jacobian(self, t: float, y: Any) -> Tensor:
        tt, yt = self.t_tensor(t), self.be.to_torch(y).clone()

        def g(z: Tensor) -> Tensor:
            return self.func(tt, z.view(self.shape)).reshape(-1).to(torch.float64)

        with torch.enable_grad():
            if not self._jacfwd_failed:
                try:
                    return torch.func.jacfwd(g)(yt)
                except Exception:  # an op without a forward-mode or vmap rule: fall back to reverse mode
                    self._jacfwd_failed = True
            return torch.autograd.functional.jacobian(g, yt)

    def factorize(self, J: Any, shift: complex | float) -> Factorization | None:
        """Factorise `M = shift·I − J` (complex if `shift` is); None if M is singular."""
        self.nlu += 1
        if not isinstance(J, (np.ndarray, Tensor)):
            return _SuperLU.create(J, shift, self.be)
        if self.be.is_numpy:
            return _LapackLU.create(J, shift)
        return _TorchLU.create(J, shift)


class Factorization(ABC):
    """An LU factorisation of `M = c·I − J`, applied to backend arrays.

    `solve(b)` returns `M⁻¹ b` for `b (n,)` (real `c`). For complex `c`, `solve_pair(b (2, n))` returns the real
    form `(Re x, Im x)` of `x = M⁻¹ (b₀ + i b₁)`.
    """

    @abstractmethod
    def solve(self, b: Any) -> Any: ...

    @abstractmethod
    def solve_pair(self, b: Any) -> Any: ...


class _LapackLU(Factorization):
    """Dense LU on the CPU through LAPACK ?getrf/?getrs on numpy arrays."""

    @classmethod
    def create(cls, J: np.ndarray, shift: complex | float) -> _LapackLU | None:
        from scipy.linalg import lapack

        cplx = isinstance(shift, complex)
        M = np.array(J, dtype=np.complex128 if cplx else np.float64, order="F") * -1
        M.flat[:: M.shape[0] + 1] += shift
        getrf, getrs = (lapack.zgetrf, lapack.zgetrs) if cplx else (lapack.dgetrf, lapack.dgetrs)
        lu, piv, info = getrf(M, overwrite_a=True)
        if info != 0:
            return None
        self = cls()
        self.lu, self.piv, self.getrs = lu, piv, getrs
        return self

    def solve(self, b: np.ndarray) -> np.ndarray:
        return self.getrs(self.lu, self.piv, b)[0]

    def solve_pair(self, b: np.ndarray) -> np.ndarray:
        x = self.getrs(self.lu, self.piv, b[0] + 1j * b[1])[0]
        return np.stack([x.real, x.imag])


class _TorchLU(Factorization):
    """Dense LU on the tensors' device with torch.linalg."""

    @classmethod
    def create(cls, J: Tensor, shift: complex | float) -> _TorchLU | None:
        M = -J.to(torch.complex128 if isinstance(shift, complex) else torch.float64)
        M.diagonal().add_(shift)
        LU, piv, info = torch.linalg.lu_factor_ex(M)
        if int(info) != 0:
            return None
        self = cls()
        self.LU, self.piv = LU, piv
        return self

    def solve(self, b: Tensor) -> Tensor:
        return torch.linalg.lu_solve(self.LU, self.piv, b.to(self.LU.dtype).unsqueeze(-1)).squeeze(-1)

    def solve_pair(self, b: Tensor) -> Tensor:
        x = self.solve(torch.complex(b[0], b[1]))
        return torch.stack([x.real, x.imag])


class _SuperLU(Factorization):
    """Sparse LU (SuperLU through scipy) on the CPU; on other devices right-hand sides travel to the host."""

    @classmethod
    def create(cls, J: Any, shift: complex | float, be: Backend) -> _SuperLU | None:
        import scipy.sparse as sp
        from scipy.sparse.linalg import splu

        M = (shift * sp.identity(J.shape[0], format="csc") - J).tocsc()
        try:
            lu = splu(M)
        except RuntimeError:  # "Factor is exactly singular"
            return None
        self = cls()
        self.lu, self.be = lu, be
        return self

    def _host(self, b: Any) -> np.ndarray:
        return b if self.be.is_numpy else b.cpu().numpy()

    def solve(self, b: Any) -> Any:
        return self.be.asarray(self.lu.solve(self._host(b)).real)

    def solve_pair(self, b: Any) -> Any:
        bn = self._host(b)
        x = self.lu.solve(bn[0] + 1j * bn[1])
        return self.be.asarray(np.stack([x.real, x.imag]))


def _to_scipy_csc(J: Tensor) -> Any:
    import scipy.sparse as sp

    J = J.detach().to("cpu", torch.float64)
    if J.layout == torch.sparse_coo:
        J = J.coalesce()
        idx = J.indices().numpy()
        return sp.csc_matrix((J.values().numpy(), (idx[0], idx[1])), shape=tuple(J.shape))
    csr = sp.csr_matrix((J.values().numpy(), J.col_indices().numpy(), J.crow_indices().numpy()), shape=J.shape)
    return csr.tocsc()
