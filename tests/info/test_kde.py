"""Kolchinsky–Tracey KDE bounds: against the full-matrix formula, analytic limits, labels, hostile input."""

import math

import pytest
import torch

import fastsim.info as fi


def full_matrix_bound(t: torch.Tensor, variance: float) -> torch.Tensor:
    d2 = torch.cdist(t, t).square()
    return -(torch.logsumexp(-d2 / (2 * variance), dim=-1) - math.log(t.shape[-2])).mean(-1) / math.log(2)


def test_bounds_match_the_full_matrix():
    t = torch.randn(3, 70, 4, dtype=torch.float64)
    bounds = fi.kde_mutual_information(t, noise_variance=0.5)
    torch.testing.assert_close(bounds.upper, full_matrix_bound(t, 0.5))
    torch.testing.assert_close(bounds.lower, full_matrix_bound(t, 2.0))
    assert bool((bounds.lower <= bounds.upper).all())
    assert bounds.unit == "bits" and bounds.noise_variance == 0.5


def test_limits_zero_and_log_n():
    n = 32
    assert float(fi.kde_mutual_information(torch.zeros(n, 2)).upper) == pytest.approx(0.0, abs=1e-12)
    far = torch.arange(n, dtype=torch.float64)[:, None] * 100
    both = fi.kde_mutual_information(far, unit="nats")
    assert float(both.upper) == pytest.approx(math.log(n)) and float(both.lower) == pytest.approx(math.log(n))


def test_label_information_is_bounded_by_label_entropy():
    labels = torch.arange(60) % 3
    separated = labels[:, None].double() * 50 + 0.01 * torch.randn(60, 2, dtype=torch.float64)
    bounds = fi.kde_mutual_information(separated, labels=labels)
    assert float(bounds.upper) == pytest.approx(math.log2(3), abs=1e-6)
    mixed = fi.kde_mutual_information(torch.randn(60, 2, dtype=torch.float64), noise_variance=4.0, labels=labels)
    assert float(mixed.upper) < 0.5


def test_gradients_flow():
    t = torch.randn(20, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: fi.kde_mutual_information(t).upper, (t,))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise_variance": 0.0}, "noise_variance"),
        ({"noise_variance": -1.0}, "noise_variance"),
        ({"unit": "dits"}, "unit"),
        ({"labels": torch.zeros(9, dtype=torch.long)}, "labels"),
    ],
)
def test_hostile_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fi.kde_mutual_information(torch.randn(10, 2), **kwargs)
