"""The CPU kernels are built once per x86-64 instruction set (CMakeLists.txt: fastsim._C for AVX2,
fastsim._C_avx512 for AVX-512) and fastsim/_backend.py loads the one torch reports for this CPU. The rest of the
suite tests the loaded module; here the choice is checked, and on an AVX-512 machine the kernel tests run again on
the AVX2 module (ATEN_CPU_CAPABILITY=avx2 makes torch, and so fastsim, pick it)."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fastsim

ROOT = Path(__file__).resolve().parents[1]
X86 = platform.machine().lower() in ("x86_64", "amd64")
SIMD_FLOATS = {"AVX2": 8, "AVX512": 16}

# Every C++ CPU kernel's tests against its pure-torch reference (plus the AVX2 side of the check below).
KERNEL_TESTS = [
    "tests/test_cpu_dispatch.py::test_loaded_module_matches_the_cpu",
    "tests/ops/test_gelu.py",
    "tests/ops/test_linear.py",
    "tests/ops/test_gn_edge_aggregate.py",
    "tests/ops/test_segment_reduce.py",
    "tests/ops/test_spmm.py",
    "tests/ops/test_sddmm.py",
    "tests/ops/test_rk.py",
    "tests/ops/test_mi.py",
    "tests/ops/test_symmetric_eigvalsh.py",
    "tests/models/test_ngs_rollout.py",
    "tests/models/test_gnrk_burgers_op.py",
    "tests/solvers/test_fused.py",
    "tests/solvers/test_fused_stiff.py",
]


@pytest.mark.skipif(not X86, reason="one module, for the compiler's default target, off x86-64")
def test_loaded_module_matches_the_cpu():
    expected = "AVX512" if torch.backends.cpu.get_cpu_capability() == "AVX512" else "AVX2"
    assert fastsim.build_info()["cpu_capability"] == expected
    assert fastsim._C.simd_floats == SIMD_FLOATS[expected]


@pytest.mark.skipif(
    not X86 or torch.backends.cpu.get_cpu_capability() != "AVX512",
    reason="the loaded module is the AVX2 one: the rest of the suite tests it",
)
def test_avx2_module_passes_the_kernel_tests():
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *KERNEL_TESTS]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
