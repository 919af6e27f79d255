"""Benchmarks of fastsim's kernels against their peers (pytest-benchmark and `python -m bench.report`)."""
