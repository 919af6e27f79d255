"""NGS non-uniform time grids: exact sums, bounds, the NGS algorithm, seeds, hostile input."""

import pytest
import torch

from fastsim.graphs import divide_randomly, time_grid


@pytest.mark.parametrize("total, steps, delta", [(1.0, 20, 0.8), (40.0, 40, 0.5), (5.0, 20, 0.6), (2.0, 1, 0.3)])
def test_steps_sum_to_total_and_respect_bounds(total, steps, delta):
    for seed in range(20):
        dt = divide_randomly(total, steps, delta, generator=seed)
        assert dt.shape == (steps,) and dt.dtype == torch.float64
        assert abs(dt.sum().item() - total) <= 4 * steps * torch.finfo(torch.float64).eps * total
        mean = total / steps
        slack = 1e-12 * mean
        assert dt.min() >= (1 - delta) * mean - slack and dt.max() <= (1 + delta) * mean + slack


def test_steps_spread_over_the_whole_interval():
    dt = torch.cat([divide_randomly(1.0, 20, 0.8, generator=s) for s in range(50)])
    assert dt.min() < 0.0125 and dt.max() > 0.0875  # bounds [0.01, 0.09], NGS heat training grid
    assert abs(dt.mean().item() - 0.05) < 1e-12
    uniform = divide_randomly(3.0, 7, 0.0, generator=0)
    torch.testing.assert_close(uniform, torch.full((7,), 3.0 / 7, dtype=torch.float64), rtol=0, atol=1e-15)


def test_ngs_sequential_algorithm():
    """Replays NGS `divide_randomly` with the same uniforms and permutation."""
    total, steps, delta = 1.0, 20, 0.8
    gen = torch.Generator().manual_seed(3)
    u = torch.rand(steps, generator=gen, dtype=torch.float64).tolist()
    order = torch.randperm(steps, generator=gen)
    lo, hi, remaining, values = total / steps * (1 - delta), total / steps * (1 + delta), total, []
    for i in range(steps):
        high = min(hi, remaining - (steps - i - 1) * lo)
        low = max(lo, remaining - (steps - i - 1) * hi)
        value = remaining if i == steps - 1 else min(low, high) + u[i] * (max(low, high) - min(low, high))
        values.append(value)
        remaining -= value
    expected = torch.tensor(values, dtype=torch.float64)[order]
    torch.testing.assert_close(divide_randomly(total, steps, delta, generator=3), expected, rtol=0, atol=0)


def test_time_grid_hits_every_horizon_exactly():
    t = time_grid((1.0, 2.0), (20, 20), 0.8, generator=1)  # NGS heat test grid
    assert t.shape == (41,) and t[0] == 0.0 and t[20] == 1.0 and t[40] == 2.0
    assert bool((t.diff() > 0).all())
    single = time_grid(40.0, 40, 0.5, generator=2)  # NGS Rössler training grid
    assert single[-1] == 40.0 and single.diff().min() >= 0.5 - 1e-12 and single.diff().max() <= 1.5 + 1e-12
    torch.testing.assert_close(single, time_grid(40.0, 40, 0.5, generator=torch.Generator().manual_seed(2)))
    assert not torch.equal(single, time_grid(40.0, 40, 0.5, generator=3))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: divide_randomly(1.0, 10, 1.0), ValueError, r"delta must lie in \[0, 1\)"),
        (lambda: divide_randomly(1.0, 10, -0.1), ValueError, r"delta must lie in \[0, 1\)"),
        (lambda: divide_randomly(1.0, 0, 0.5), ValueError, "steps must be >= 1"),
        (lambda: divide_randomly(1.0, -3, 0.5), ValueError, "steps must be >= 1"),
        (lambda: divide_randomly(-1.0, 10, 0.5), ValueError, "total must be a finite number > 0"),
        (lambda: divide_randomly(float("inf"), 10, 0.5), ValueError, "total must be a finite number > 0"),
        (lambda: divide_randomly(1.0, 2.5, 0.5), TypeError, "steps must be an int"),
        (lambda: divide_randomly(1.0, 10, "x"), TypeError, "delta must be a number"),
        (lambda: time_grid((2.0, 1.0), (5, 5), 0.5), ValueError, "max_time must be increasing"),
        (lambda: time_grid((1.0, 2.0), (5,), 0.5), ValueError, "same non-zero length"),
        (lambda: time_grid(1.0, 5, 1.5), ValueError, "delta must lie in"),
    ],
)
def test_hostile_inputs_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
