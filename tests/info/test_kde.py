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


def test_bounds_ignore_offset_and_scale():
    """Translation and scale (with the noise variance) invariant: an offset of 1e8 cancelled the GEMM-form distances
    (upper bound 1.3 bits instead of 4.3), samples at 1e160 overflowed them into NaN."""
    t = torch.randn(30, 3, dtype=torch.float64)
    labels = torch.arange(30) % 3
    plain, shifted = fi.kde_mutual_information(t), fi.kde_mutual_information(t + 1e8)
    torch.testing.assert_close(shifted.upper, plain.upper, rtol=0, atol=1e-6)
    torch.testing.assert_close(shifted.lower, plain.lower, rtol=0, atol=1e-6)
    shifted = fi.kde_mutual_information(t + 1e8, labels=labels)
    torch.testing.assert_close(shifted.upper, fi.kde_mutual_information(t, labels=labels).upper, rtol=0, atol=1e-6)
    huge = fi.kde_mutual_information(t * 1e160, noise_variance=1e300)
    torch.testing.assert_close(huge.upper, fi.kde_mutual_information(t, noise_variance=1e-20).upper)


def test_gradients_flow():
    t = torch.randn(20, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: fi.kde_mutual_information(t).upper, (t,))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise_variance": 0.0}, "noise_variance"),
        ({"noise_variance": -1.0}, "noise_variance"),
        ({"noise_variance": float("nan")}, "noise_variance"),
        ({"noise_variance": float("inf")}, "noise_variance"),
        ({"noise_variance": 1e308}, "noise_variance"),  # 4v overflows
        ({"noise_variance": 1e-320}, "noise_variance"),  # 1/(2v) overflows
        ({"unit": "dits"}, "unit"),
        ({"labels": torch.zeros(9, dtype=torch.long)}, "labels"),
    ],
)
def test_hostile_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fi.kde_mutual_information(torch.randn(10, 2), **kwargs)


def test_samples_too_spread_out_for_the_variance_are_refused():
    with pytest.raises(ValueError, match="t is too spread out"):
        fi.kde_mutual_information(torch.tensor([[0.0], [1e200]], dtype=torch.float64), noise_variance=1.0)
