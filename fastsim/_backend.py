"""Loads the compiled extension and chooses a kernel backend per call.

CPU tensors run the C++/OpenMP kernels; CUDA tensors run the CUDA C++ or the Triton kernel of each op.
`set_backend` (or the environment variable ``FASTSIM_BACKEND``) overrides the choice for every device (ops that have
no Triton kernel keep their C++/CUDA one); forcing ``"triton"`` on CPU tensors is meant for ``TRITON_INTERPRET=1``
testing.
"""

import importlib
import importlib.util
import os
from types import ModuleType
from typing import Literal

import torch


def _load_extension() -> ModuleType:
    """The compiled CPU kernels for this processor: fastsim._C_avx512 where torch itself runs AVX-512 kernels
    (`torch.backends.cpu.get_cpu_capability()`, which ATEN_CPU_CAPABILITY=avx2 lowers), else fastsim._C (AVX2 on
    x86-64, the compiler's default target elsewhere, where no AVX-512 module is built)."""
    name = "fastsim._C"
    if torch.backends.cpu.get_cpu_capability() == "AVX512" and importlib.util.find_spec("fastsim._C_avx512"):
        name = "fastsim._C_avx512"
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - only without a build
        raise ImportError(
            f"fastsim's compiled extension {name} could not be loaded; install the package with "
            "`pip install --no-build-isolation .` after `pip install torch` (" + str(exc) + ")"
        ) from exc


_C = _load_extension()

Backend = Literal["auto", "cpp", "triton"]
_BACKENDS = ("auto", "cpp", "triton")

# Backend for CUDA tensors under "auto", per op. Every op runs on both; the choice is the faster one on the
# GPU benchmark (bench/bench_message_passing.py); ops not measured yet use the CUDA C++ kernel.
CUDA_PREFERRED: dict[str, str] = {
    "segment_reduce": "cpp",
    "spmm": "cpp",
    "sddmm": "cpp",
    "gn_edge_aggregate": "cpp",
    "gn_edge_aggregate_backward": "cpp",
    "rk_stage": "cpp",
    "rk_error_norm": "cpp",
    "gaussian_gram": "cpp",
    "kde_logsumexp": "cpp",
}

_backend: str = "auto"


def set_backend(name: Backend) -> None:
    """Choose the kernel backend for every later call: "auto" (default), "cpp" (C++/CUDA) or "triton".

    Raises:
        ValueError: for an unknown name, or "triton" when Triton is not installed.
    """
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}; got {name!r}")
    if name == "triton" and triton_kernels() is None:
        raise ValueError("backend 'triton' needs the triton package (pip install triton)")
    _backend = name


def get_backend() -> str:
    """The backend set by `set_backend` (or FASTSIM_BACKEND)."""
    return _backend


_triton_registered = False


def triton_kernels():
    """The Triton kernel modules (registering fastsim::<op>_triton), or None without triton (imported on first use)."""
    global _triton_registered
    try:
        modules = [importlib.import_module(f"fastsim.kernels.{name}") for name in ("message_passing", "rk", "mi")]
    except ImportError:
        return None
    if not _triton_registered:
        from fastsim.ops import message_passing_grad, mi, rk

        message_passing_grad.register("_triton")
        rk.register("_triton")
        mi.register("_triton")
        _triton_registered = True
    return modules


def op(name: str, device: torch.device):
    """The `torch.ops` overload that runs op `name` for tensors on `device` under the current backend."""
    backend = _backend
    if backend == "auto":
        backend = CUDA_PREFERRED.get(name, "cpp") if device.type == "cuda" else "cpp"
    if backend == "triton":
        triton_kernels()  # registers fastsim::<name>_triton
        if hasattr(torch.ops.fastsim, name + "_triton"):
            if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
                raise RuntimeError(
                    f"fastsim's Triton kernels run CUDA tensors (CPU tensors only under TRITON_INTERPRET=1); "
                    f"{name} got tensors on {device}: move them to the GPU or use set_backend('auto')"
                )
            return getattr(torch.ops.fastsim, name + "_triton").default
        # Ops without a Triton kernel (the ensemble integrators, the eigenvalue solver) keep their C++/CUDA one.
    if device.type == "cuda" and not _C.with_cuda:
        raise RuntimeError("this fastsim build has no CUDA kernels; reinstall it where torch has CUDA and nvcc exists")
    return getattr(torch.ops.fastsim, name).default


def build_info() -> dict[str, object]:
    """Version, compiled backends, CPU instruction set, OpenMP threads and CUDA architectures of this build."""
    kernels = triton_kernels()
    backends = ["cpu"] + (["cuda"] if _C.with_cuda else []) + (["triton"] if kernels is not None else [])
    triton_version = importlib.import_module("triton").__version__ if kernels is not None else None
    return {
        "version": _C.__version__,
        "torch": torch.__version__,
        "backends": backends,
        "backend": _backend,
        "cpu_capability": _C.cpu_capability,
        "openmp": bool(_C.openmp),
        "num_threads": _C.num_threads(),
        "cuda_archs": [a for a in _C.cuda_archs.split(",") if a],
        "cuda_available": torch.cuda.is_available(),
        "triton": triton_version,
    }


_env = os.environ.get("FASTSIM_BACKEND")
if _env:
    set_backend(_env)  # type: ignore[arg-type]
