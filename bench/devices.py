"""What every benchmark report needs: a synchronised clock, the interleaved order of timed runs, the device check,
the hardware line and the command line of its header."""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from collections.abc import Callable, Iterator

import torch

import fastsim


def synced_clock(device: str, clock: Callable[[], float] = time.perf_counter) -> Callable[[], float]:
    """`clock`, read on CUDA only after `torch.cuda.synchronize()`: a region timed with it starts once earlier
    kernels are done and ends once its own are (on the CPU, `clock` itself)."""
    if torch.device(device).type != "cuda":
        return clock

    def read() -> float:
        torch.cuda.synchronize(device)
        return clock()

    return read


def rotating_order(names: list, reps: int) -> Iterator:
    """`names` `reps` times over, each round starting one later: implementations timed in this order are
    interleaved, and none always runs first or after the same one, so a slow spell of a shared machine is spread
    over all of them."""
    for r in range(reps if names else 0):
        k = r % len(names)
        yield from names[k:] + names[:k]


def describe_device(device: str) -> str:
    """The hardware and builds of a report: the processor, fastsim's CPU kernels (their instruction set) and torch's
    threads, after the GPU on CUDA."""
    isa = fastsim._backend._C.cpu_capability
    host = (
        f"{platform.processor() or platform.machine()}{f' ({isa} kernels)' if isa else ''}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    if torch.device(device).type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}), {host}"
    return host


def command_line(module: str, argv: list[str] | None) -> str:
    """The command that ran `module` with `argv` (the process's arguments when None)."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


def check_device(parser: argparse.ArgumentParser, device: str) -> None:
    """`parser.error` unless `device` can run fastsim's kernels (a GPU, and a build with its CUDA kernels)."""
    if torch.device(device).type == "cuda":
        if not torch.cuda.is_available():
            parser.error(f"--device cuda: torch {torch.__version__} sees no CUDA device")
        if not fastsim._backend._C.with_cuda:
            parser.error("--device cuda: this fastsim build has no CUDA kernels (rebuild it where nvcc exists)")
