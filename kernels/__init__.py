"""Triton kernels of fastsim, registered as ``torch.ops.fastsim.*_triton`` (see docs/ops.md)."""
