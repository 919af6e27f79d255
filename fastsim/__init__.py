"""fastsim: compiled kernels to simulate and learn dynamics on graphs and measure information in networks."""

import torch  # noqa: F401  (the extension links libtorch: torch must be loaded first)

from fastsim import ops
from fastsim._backend import _C, build_info, get_backend, set_backend
from fastsim.graph import Graph
from fastsim.solvers import odeint, odeint_adjoint, solve_ivp

__version__: str = _C.__version__

__all__ = [
    "Graph",
    "build_info",
    "get_backend",
    "odeint",
    "odeint_adjoint",
    "ops",
    "set_backend",
    "solve_ivp",
    "__version__",
]
