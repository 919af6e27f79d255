"""The information-estimator ops (`gaussian_gram`, `kde_logsumexp`): C++ and Triton (interpreter on CPU) against
the pure-torch references, gradients, opcheck, torch.compile, degenerate and hostile inputs."""

import math

import pytest
import torch

import fastsim
from fastsim.ops import gaussian_gram, kde_logsumexp, reference
from tests.conftest import assert_compiles_like_eager, skip_unless_triton_runs_on

SHAPES = [(3, 17, 5), (1, 1, 3), (2, 0, 4), (0, 5, 2), (2, 33, 1), (1, 6, 40)]


def points(shape, device="cpu", seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def with_backend(backend, device, call):
    if backend == "triton":
        skip_unless_triton_runs_on(device)
    fastsim.set_backend(backend)
    try:
        return call()
    finally:
        fastsim.set_backend("auto")


@pytest.mark.parametrize("backend", ["cpp", "triton"])
@pytest.mark.parametrize("shape", SHAPES)
def test_gram_matches_reference(device, backend, shape):
    x = points(shape, device)
    sigma = torch.rand(shape[0], dtype=torch.float64, device=device) + 0.5
    out = with_backend(backend, device, lambda: gaussian_gram(x, sigma))
    torch.testing.assert_close(out, reference.gaussian_gram(x, sigma), rtol=1e-12, atol=1e-12)
    if shape[1] > 0:
        other = reference.gaussian_gram(points(shape, device, seed=1), sigma)
        joint = with_backend(backend, device, lambda: gaussian_gram(x, sigma, other))
        torch.testing.assert_close(joint, reference.gaussian_gram(x, sigma, other), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(joint.diagonal(dim1=-2, dim2=-1).sum(-1), torch.ones_like(sigma))


@pytest.mark.parametrize("backend", ["cpp", "triton"])
@pytest.mark.parametrize("shape", SHAPES)
def test_kde_logsumexp_matches_reference(device, backend, shape):
    t = points(shape, device) * 3
    out = with_backend(backend, device, lambda: kde_logsumexp(t, 0.7))
    torch.testing.assert_close(out, reference.kde_logsumexp(t, 0.7), rtol=1e-12, atol=1e-12)


def test_float32_and_batch_dims():
    x = points((2, 3, 20, 4), dtype=torch.float32)
    out = gaussian_gram(x, 1.3)
    assert out.shape == (2, 3, 20, 20) and out.dtype == torch.float32
    flat = reference.gaussian_gram(x.reshape(6, 20, 4), torch.full((6,), 1.3))
    torch.testing.assert_close(out.reshape(6, 20, 20), flat, rtol=1e-5, atol=1e-6)
    assert kde_logsumexp(x, 0.5).shape == (2, 3, 20)


def test_identical_points_and_far_points():
    n = 9
    same = gaussian_gram(torch.zeros(1, n, 3, dtype=torch.float64), 1.0)
    torch.testing.assert_close(same, torch.full((1, n, n), 1.0 / n, dtype=torch.float64))
    far = torch.arange(n, dtype=torch.float64)[None, :, None] * 1e3
    torch.testing.assert_close(gaussian_gram(far, 1.0)[0], torch.eye(n, dtype=torch.float64) / n)
    torch.testing.assert_close(kde_logsumexp(far, 1.0), torch.zeros(1, n, dtype=torch.float64))
    same_lse = kde_logsumexp(torch.zeros(1, n, 2, dtype=torch.float64), 1.0)
    torch.testing.assert_close(same_lse, torch.full((1, n), math.log(n), dtype=torch.float64))


def distances(x: torch.Tensor) -> torch.Tensor:
    """Exact float64 squared distances from differences (no cancellation against a common offset)."""
    x = x.double()
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist").square()


@pytest.mark.parametrize("backend", ["cpp", "triton"])
@pytest.mark.parametrize(("dtype", "offset", "tol"), [(torch.float32, 1e3, 1e-6), (torch.float64, 1e8, 1e-12)])
def test_common_offset_changes_nothing(device, backend, dtype, offset, tol):
    """The GEMM form ‖a‖² + ‖b‖² − 2a·b of the C++ kernels cancelled against the offset (float32 at 1e3: 0.013 off
    the Gram, 0.13 nats off the log-sum-exp); the wrappers centre the samples, so the error is the dtype's own."""
    x = points((2, 20, 3), device, dtype=dtype) + offset  # exactly representable differences: the reference is exact
    gram = with_backend(backend, device, lambda: gaussian_gram(x, 1.0))
    torch.testing.assert_close(gram.double(), torch.exp(-distances(x) / 2) / 20, rtol=0, atol=tol)
    lse = with_backend(backend, device, lambda: kde_logsumexp(x, 0.5))
    torch.testing.assert_close(lse.double(), torch.logsumexp(-0.5 * distances(x), -1), rtol=0, atol=10 * tol)


@pytest.mark.parametrize("backend", ["cpp", "triton"])
@pytest.mark.parametrize("size", [2.0**510, 2.0**-510])
def test_huge_and_tiny_samples(device, backend, size):
    """The kernels see the samples in units of their spread or of the width: samples at 1e±153 with widths to match
    are the same problem as at 1 (their squares overflowed into NaN)."""
    x = points((2, 10, 3), device)
    huge = with_backend(backend, device, lambda: gaussian_gram(x * size, 0.7 * size))
    torch.testing.assert_close(huge, reference.gaussian_gram(x, torch.full((2,), 0.7, dtype=torch.float64)))
    huge = with_backend(backend, device, lambda: kde_logsumexp(x * size, 0.5 / size**2))
    torch.testing.assert_close(huge, reference.kde_logsumexp(x, 0.5))


@pytest.mark.parametrize("backend", ["cpp", "triton"])
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the Triton interpreter's exp(−∞)
def test_samples_far_beyond_the_width(device, backend):
    """The Gram resolves them exactly, duplicates at exp(0) = 1 (1/(2σ²) in the samples' units would overflow);
    the KDE, whose scale is a number and cannot follow the data, refuses them by name."""
    spread = torch.tensor([[[0.0], [0.0], [1e200]]], dtype=torch.float64, device=device)
    resolved = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64) / 3
    torch.testing.assert_close(with_backend(backend, device, lambda: gaussian_gram(spread, 1.0))[0].cpu(), resolved)
    with pytest.raises(ValueError, match="t is too spread out"):
        kde_logsumexp(spread, 1.0)


@pytest.mark.parametrize("backend", ["cpp", "triton"])
def test_gradcheck(device, backend):
    x = points((2, 7, 3), device).requires_grad_()
    sigma = torch.tensor([0.9, 1.4], dtype=torch.float64, device=device, requires_grad=True)
    ones = torch.ones(2, dtype=torch.float64, device=device)
    other = reference.gaussian_gram(points((2, 7, 2), device, seed=3), ones).requires_grad_()
    t = points((2, 9, 3), device, seed=5).requires_grad_()

    def check():
        torch.autograd.gradcheck(lambda x, s: gaussian_gram(x, s), (x, sigma))
        torch.autograd.gradcheck(lambda x, s, o: gaussian_gram(x, s, o), (x, sigma, other))
        torch.autograd.gradcheck(lambda t: kde_logsumexp(t, 0.4), (t,))

    with_backend(backend, device, check)


def test_kde_backward_is_blocked(monkeypatch):
    from fastsim.ops import mi

    monkeypatch.setattr(mi, "_BACKWARD_BLOCK", 4)
    t = points((2, 11, 3)).requires_grad_()
    (ours,) = torch.autograd.grad(kde_logsumexp(t, 0.3).sin().sum(), t)
    t2 = t.detach().clone().requires_grad_()
    (plain,) = torch.autograd.grad(reference.kde_logsumexp(t2, 0.3).sin().sum(), t2)
    torch.testing.assert_close(ours, plain)


def test_opcheck(device):
    x = points((2, 6, 3), device).requires_grad_()
    sigma = torch.tensor([0.8, 1.2], dtype=torch.float64, device=device, requires_grad=True)
    other = reference.gaussian_gram(points((2, 6, 2), device, seed=2), sigma.detach()).requires_grad_()
    torch.library.opcheck(torch.ops.fastsim.gaussian_gram.default, (x, sigma, None))
    torch.library.opcheck(torch.ops.fastsim.gaussian_gram.default, (x, sigma, other))
    torch.library.opcheck(torch.ops.fastsim.kde_logsumexp.default, (x, 0.5))


def test_compiled_estimator_has_no_graph_breaks():
    x = points((3, 12, 4)).requires_grad_()
    sigma = torch.tensor([1.0, 1.5, 2.0], dtype=torch.float64)

    def score(x):
        gram = gaussian_gram(x, sigma)
        joint = gaussian_gram(x * 0.5, sigma, gram)
        return gram.square().sum() + joint.square().sum() + kde_logsumexp(x, 0.5).sum()

    assert_compiles_like_eager(score, x)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gaussian_gram(torch.randn(5), 1.0), "samples"),
        (lambda: gaussian_gram(torch.randn(2, 5, 3), 0.0), "sigma"),
        (lambda: gaussian_gram(torch.randn(2, 5, 3), torch.tensor([1.0, -1.0])), "sigma"),
        (lambda: gaussian_gram(torch.randn(2, 5, 3), torch.ones(3)), "broadcast"),
        (lambda: gaussian_gram(torch.tensor([[[float("nan")]]]), 1.0), "NaN"),
        (lambda: gaussian_gram(torch.randn(2, 5, 3), 1.0, torch.ones(2, 4, 4)), "other"),
        (lambda: gaussian_gram(torch.randn(2, 5, 3), 1.0, torch.ones(2, 5, 5, dtype=torch.float64)), "dtype"),
        (lambda: gaussian_gram(torch.randn(2, 5, 3), 1.0, torch.full((2, 5, 5), float("nan"))), "other contains NaN"),
        (lambda: gaussian_gram(torch.randn(2, 5, 3), 1.0, torch.zeros(2, 5, 5)), "other must .* positive trace"),
        (lambda: gaussian_gram(torch.arange(6).reshape(1, 3, 2), 1.0), "floating"),
        (lambda: kde_logsumexp(torch.randn(4, 2), 0.0), "scale"),
        (lambda: kde_logsumexp(torch.randn(4, 2), float("inf")), "scale"),
        (lambda: kde_logsumexp(torch.randn(4), 1.0), "samples"),
    ],
)
def test_hostile_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
