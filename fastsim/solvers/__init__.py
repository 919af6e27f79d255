"""ODE solvers: one batched explicit Runge–Kutta engine for every tableau, step-size controllers, the
torchdiffeq-style `odeint`, the scipy-style `solve_ivp`, and adjoint gradients.

The stiff methods ("radau", "rodas5") live in `fastsim.solvers.implicit` and are imported only when asked for.
"""

from fastsim.solvers.adjoint import odeint_adjoint
from fastsim.solvers.api import IMPLICIT_METHODS, METHODS, odeint
from fastsim.solvers.control import FixedStep, PIController, initial_step
from fastsim.solvers.explicit import MAX_SYNC_EVERY, STATUS_MESSAGES, SolverStats, Status, integrate
from fastsim.solvers.fused import EnsembleSolution, solve_ensemble, solve_stiff_ensemble
from fastsim.solvers.ivp import OdeResult, solve_ivp
from fastsim.solvers.stages import dense_combination, error_norm, stage_combination
from fastsim.solvers.tableaux import TABLEAUX, Tableau, get_tableau

__all__ = [
    "FixedStep",
    "IMPLICIT_METHODS",
    "MAX_SYNC_EVERY",
    "METHODS",
    "OdeResult",
    "PIController",
    "STATUS_MESSAGES",
    "SolverStats",
    "Status",
    "TABLEAUX",
    "Tableau",
    "EnsembleSolution",
    "dense_combination",
    "error_norm",
    "get_tableau",
    "initial_step",
    "integrate",
    "odeint",
    "odeint_adjoint",
    "solve_ensemble",
    "solve_stiff_ensemble",
    "solve_ivp",
    "stage_combination",
]
