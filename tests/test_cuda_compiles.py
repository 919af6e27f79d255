"""Every CUDA source compiles with nvcc against the installed torch headers.

Where torch has CUDA, the package build itself compiles (and the CUDA tests run) these files; on a CPU-only
machine this is the check that the CUDA kernels at least build. Slow (about a minute per file): run it with
`python -m pytest -m slow tests/test_cuda_compiles.py`.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CUDA_SOURCES = sorted((ROOT / "csrc").glob("*/*.cu"))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found")
@pytest.mark.parametrize("source", CUDA_SOURCES, ids=lambda p: p.name)
def test_cuda_source_compiles(source, tmp_path):
    include = Path(torch.__file__).parent / "include"
    # The CPU wheel of torch lacks one generated header that CUDA builds ship; supply its one line.
    shim = tmp_path / "shim" / "c10" / "cuda" / "impl"
    shim.mkdir(parents=True)
    (shim / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    command = [
        "nvcc",
        "-c",
        "-std=c++20",
        "-O3",
        "--expt-relaxed-constexpr",
        "-arch=sm_90",
        f"-I{tmp_path / 'shim'}",
        f"-I{include}",
        f"-I{include / 'torch/csrc/api/include'}",
        f"-I{ROOT / 'csrc'}",
        "-D_GLIBCXX_USE_CXX11_ABI=1",
        "-Xcompiler",
        "-fPIC",
        str(source),
        "-o",
        str(tmp_path / "out.o"),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
