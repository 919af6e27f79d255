"""Right-hand sides `f(t, y)` of dynamics on graphs, usable with any torchdiffeq-style solver.

Graph systems: heat diffusion, Kuramoto (per-edge and all-to-all), coupled Rössler, SIS/SIR epidemics and 2-D
Burgers on a grid graph. Each is an `nn.Module` built from a `fastsim.Graph` and coefficient tensors, with
`sample_coefficients` and `initial_state` drawing NGS/GNRK-style samples from a seed, and (except Burgers) a
sparse CSR `jacobian(t, y)`. Per-edge coefficients are in the graph's CSR order. The module keeps the graph it
was built with: build it from a graph and coefficients on the device it will run on.
"""

from fastsim.dynamics.burgers2d import GNRK_BURGERS, GNRK_BURGERS_I, Burgers2D, BurgersRanges
from fastsim.dynamics.epidemic import EPIDEMIC, SIR, SIS, EpidemicRanges
from fastsim.dynamics.heat import GNRK_HEAT, NGS_HEAT, HeatDiffusion, HeatRanges
from fastsim.dynamics.kuramoto import GNRK_KURAMOTO, NGS_KURAMOTO, Kuramoto, KuramotoMeanField, KuramotoRanges
from fastsim.dynamics.rossler import GNRK_ROSSLER, NGS_ROSSLER, CoupledRossler, RosslerRanges

__all__ = [
    "EPIDEMIC",
    "GNRK_BURGERS",
    "GNRK_BURGERS_I",
    "GNRK_HEAT",
    "GNRK_KURAMOTO",
    "GNRK_ROSSLER",
    "NGS_HEAT",
    "NGS_KURAMOTO",
    "NGS_ROSSLER",
    "SIR",
    "SIS",
    "Burgers2D",
    "BurgersRanges",
    "CoupledRossler",
    "EpidemicRanges",
    "HeatDiffusion",
    "HeatRanges",
    "Kuramoto",
    "KuramotoMeanField",
    "KuramotoRanges",
    "RosslerRanges",
]
