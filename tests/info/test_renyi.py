"""Matrix-based Rényi entropy and MI: analytic cases, the authors' code path, batching, gradients, hostile input."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist, squareform

import fastsim.info as fi
from fastsim.info.renyi import matrix_entropy


def iprl_entropy(a: np.ndarray, alpha: float) -> float:
    """`Ent` of the autoencoder code, literally: SVD spectrum, ε = 1e-8 inside log2."""
    s = np.linalg.svd(a, compute_uv=False)
    return 1.0 / (1.0 - alpha) * np.log2(np.sum(s**alpha) + 1e-8)


def iprl_gram(x: np.ndarray) -> np.ndarray:
    n, d = x.shape
    sigma = 2.0 * n ** (-1.0 / (4 + d))
    k = squareform(pdist(x, "euclidean")) ** 2
    return np.exp(-k / (2 * sigma**2)) / n


def iprl_mi(x: np.ndarray, y: np.ndarray, alpha: float = 1.01) -> float:
    """`MI` of the autoencoder code, literally (information.md §1.2)."""
    ax, ay = iprl_gram(x), iprl_gram(y)
    axy = ax * ay / np.trace(ax * ay)
    return iprl_entropy(ax, alpha) + iprl_entropy(ay, alpha) - iprl_entropy(axy, alpha)


def test_compat_iprl_reproduces_the_authors_numbers():
    rng = np.random.default_rng(0)
    for d_x, d_y, scale in ((784, 50, 0.05), (10, 10, 0.3), (5, 3, 1.0)):
        x = rng.random((100, d_x)) * scale
        y = np.tanh(x[:, :d_y] + 0.1 * rng.standard_normal((100, d_y)))
        ours = fi.mutual_information(torch.from_numpy(x), torch.from_numpy(y), compat="iprl")
        assert float(ours) == pytest.approx(iprl_mi(x, y), abs=1e-9)
        h = fi.renyi_entropy(torch.from_numpy(x), alpha=1.01, compat="iprl")
        assert float(h) == pytest.approx(iprl_entropy(iprl_gram(x), 1.01), abs=1e-9)


def test_identical_points_have_zero_entropy_and_far_points_log_n():
    for n in (2, 7, 64):
        assert float(fi.renyi_entropy(torch.zeros(n, 3))) == pytest.approx(0.0, abs=1e-9)
        far = torch.arange(n, dtype=torch.float64)[:, None] * 100.0
        for alpha in (0.5, 1.0, 1.01, 2.0, 3.0):
            assert float(fi.renyi_entropy(far, alpha=alpha, sigma=1.0)) == pytest.approx(math.log2(n), abs=1e-9)
        assert float(fi.renyi_entropy(far, sigma=1.0, unit="nats")) == pytest.approx(math.log(n), abs=1e-9)


def test_mi_of_a_set_with_itself_is_its_entropy():
    """The Hadamard joint of X with itself is the Gram at width σ/√2: I(X; X) = 2 S_σ(X) − S_{σ/√2}(X), which is
    S(X) = log N when the points are resolved."""
    x = torch.randn(2, 60, 4, dtype=torch.float64)
    h, h_narrow = fi.renyi_entropy(x, alpha=1.0, sigma=1.5), fi.renyi_entropy(x, alpha=1.0, sigma=1.5 / math.sqrt(2))
    torch.testing.assert_close(fi.mutual_information(x, x, alpha=1.0, sigma=1.5), 2 * h - h_narrow)
    far = torch.randn(50, 3, dtype=torch.float64) * 1e3
    torch.testing.assert_close(fi.mutual_information(far, far), fi.renyi_entropy(far))
    assert float(fi.mutual_information(far, far)) == pytest.approx(math.log2(50))


def test_mi_of_independent_sets_is_small_and_dependent_sets_large():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 400, 2, generator=g, dtype=torch.float64)
    independent = float(fi.mutual_information(x, y, sigma="median"))
    dependent = float(fi.mutual_information(x, x + 0.05 * y, sigma="median"))
    assert 0.0 <= independent < 0.1 < 1.0 < dependent


def test_processing_loses_information():
    """Data-processing sanity: I(X; f(X)) ≥ I(X; g(f(X))) for a lossy g (a projection)."""
    x = torch.randn(200, 3, dtype=torch.float64)
    t1 = torch.tanh(x)
    t2 = t1[:, :1]
    assert float(fi.mutual_information(x, t1, sigma=1.0)) > float(fi.mutual_information(x, t2, sigma=1.0))


def test_entropy_identities_and_batch_agree_with_single_calls():
    x, y = torch.randn(3, 2, 40, 5, dtype=torch.float64), torch.randn(3, 2, 40, 2, dtype=torch.float64)
    mi = fi.mutual_information(x, y, sigma=2.0)
    assert mi.shape == (3, 2)
    torch.testing.assert_close(mi[1, 0], fi.mutual_information(x[1, 0], y[1, 0], sigma=2.0))
    hx, hy = fi.renyi_entropy(x, sigma=2.0), fi.renyi_entropy(y, sigma=2.0)
    hxy = fi.joint_entropy(x, y, sigma=2.0)
    torch.testing.assert_close(mi, hx + hy - hxy)
    torch.testing.assert_close(fi.conditional_entropy(x, y, sigma=2.0), hxy - hy)
    assert bool((hxy >= torch.maximum(hx, hy) - 1e-9).all())


@pytest.mark.parametrize("compat", [None, "iprl"])
def test_plane_shares_entropies_and_equals_pairwise_mutual_information(compat):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 30, 8, generator=gen, dtype=torch.float64)
    t = torch.tanh(x[:, None, :, :4] @ torch.randn(3, 4, 4, generator=gen, dtype=torch.float64))  # (2, 3, 30, 4)
    y = torch.sigmoid(t[:, -1, :, :2])
    sx, st, sy = fi.kernel_width(x, "median"), fi.kernel_width(t, "median"), fi.kernel_width(y, "median")
    if compat == "iprl":
        sx, st, sy = "iprl", "iprl", "iprl"
    mi_in, mi_out = fi.plane_mutual_information(x, t, y, sigma=(sx, st, sy), compat=compat)
    assert mi_in.shape == mi_out.shape == (2, 3)
    for b in range(2):
        for layer in range(3):
            sl = st if isinstance(st, str) else st[b, layer]
            sxb = sx if isinstance(sx, str) else sx[b]
            syb = sy if isinstance(sy, str) else sy[b]
            pair_in = fi.mutual_information(x[b], t[b, layer], sigma=(sxb, sl), compat=compat)
            pair_out = fi.mutual_information(t[b, layer], y[b], sigma=(sl, syb), compat=compat)
            torch.testing.assert_close(mi_in[b, layer], pair_in, rtol=0, atol=1e-10)
            torch.testing.assert_close(mi_out[b, layer], pair_out, rtol=0, atol=1e-10)


def test_estimators_ignore_a_common_offset():
    """The estimators are translation invariant; GEMM-form distances cancelled against an offset of 1e8 (the MI of
    two 30-point clouds at σ = 1 rose from 1.6 to 2.5 bits, the median width of 100 points from 2.2 to 2.8)."""
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(2, 100, 3, generator=g, dtype=torch.float64)
    for sigma in (1.0, "median", "scott"):
        plain, shifted = fi.mutual_information(x, y, sigma=sigma), fi.mutual_information(x + 1e8, y - 1e8, sigma=sigma)
        torch.testing.assert_close(shifted, plain, rtol=0, atol=1e-6)
        torch.testing.assert_close(fi.renyi_entropy(x + 1e8, sigma=sigma), fi.renyi_entropy(x, sigma=sigma))
    torch.testing.assert_close(fi.kernel_width(x + 1e8, "median"), fi.kernel_width(x, "median"))


@pytest.mark.parametrize("size", [1e160, 1e-160])
def test_huge_and_tiny_samples_are_the_same_problem_at_their_scale(size):
    """Squared distances of samples at 1e160 overflowed (NaN, or an error blaming `a`); at 1e-160 the data rules
    underflowed to σ = 0."""
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    for rule in ("scott", "silverman", "median"):
        torch.testing.assert_close(fi.kernel_width(x * size, rule), fi.kernel_width(x, rule) * size)
    torch.testing.assert_close(fi.renyi_entropy(x * size, sigma=size), fi.renyi_entropy(x, sigma=1.0))
    torch.testing.assert_close(fi.renyi_entropy(x * size, sigma="scott"), fi.renyi_entropy(x, sigma="scott"))
    torch.testing.assert_close(
        fi.mutual_information(x * size, x, sigma=(size, 1.0)), fi.mutual_information(x, x, sigma=1.0)
    )


def test_large_alpha_tends_to_the_min_entropy():
    """S_α decreases to −log λ_max as α → ∞; λ^α underflowed to S = inf from α ≈ 500 on (Lanczos too)."""
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = fi.gram_matrix(x, 0.5)
    lam = torch.linalg.eigvalsh(a)
    min_entropy = -math.log2(float(lam.max()))
    plain = float(torch.log2((lam.clamp_min(0) ** 200).sum()) / (1 - 200))  # no underflow yet at α = 200
    s = {alpha: float(matrix_entropy(a, alpha=alpha)) for alpha in (200.0, 500.0, 1e6)}
    assert s[200.0] == pytest.approx(plain, abs=1e-12)
    assert s[200.0] > s[500.0] > s[1e6] > min_entropy
    assert s[500.0] == pytest.approx(min_entropy, rel=0.01) and s[1e6] == pytest.approx(min_entropy, rel=1e-5)
    assert float(matrix_entropy(a, alpha=500.0, method="lanczos")) == pytest.approx(s[500.0], abs=0.01)


def test_alpha_two_fast_path_matches_the_spectrum():
    a = fi.gram_matrix(torch.randn(4, 50, 3, dtype=torch.float64), 1.0)
    lam = torch.linalg.eigvalsh(a)
    torch.testing.assert_close(matrix_entropy(a, alpha=2.0), -torch.log2((lam**2).sum(-1)))


def test_float32_input_gives_float64_and_gradients():
    x = torch.randn(30, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(30, 2, dtype=torch.float64)
    assert fi.renyi_entropy(x.float().detach()).dtype == torch.float64
    torch.autograd.gradcheck(lambda x: fi.mutual_information(x, y, sigma=1.0), (x,))
    torch.autograd.gradcheck(lambda x: fi.renyi_entropy(x, alpha=2.0, sigma=1.0), (x,))


def test_lanczos_estimate_is_within_its_stated_error():
    """Measured spread at this N with the defaults (32 probes): standard deviation ≈ 0.15 bits for α ≈ 1 and
    ≈ 0.075 bits for α = 2 (docs/info.md); allow about 2.3 standard deviations."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(600, 3, generator=g, dtype=torch.float64)
    a = fi.gram_matrix(x, "scott")
    for alpha in (1.0, 1.01, 2.0):
        exact = matrix_entropy(a, alpha=alpha, method="exact")
        estimate = matrix_entropy(a, alpha=alpha, method="lanczos", generator=g)
        assert abs(float(estimate - exact)) < (0.35 if alpha < 2 else 0.2), alpha


@pytest.mark.parametrize("method", ["exact", "lanczos"])
def test_empty_batch_gives_empty_entropies(method):
    a = torch.eye(4, dtype=torch.float64).expand(0, 3, 4, 4) / 4
    assert matrix_entropy(a, method=method).shape == (0, 3)


@pytest.mark.slow
def test_lanczos_is_accurate_at_large_n():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4096, 4, generator=g, dtype=torch.float64)
    a = fi.gram_matrix(x, "scott")
    exact = matrix_entropy(a, method="exact")
    assert float(matrix_entropy(a)) == float(exact)  # "auto" stays exact below LANCZOS_MIN_N
    assert abs(float(matrix_entropy(a, method="lanczos") - exact)) < 0.35


def test_kernel_width_rules():
    x = torch.randn(2, 100, 10, dtype=torch.float64) * 3.0
    paper = torch.full((2,), 2.0 * 100 ** (-1 / 14), dtype=torch.float64)
    torch.testing.assert_close(fi.kernel_width(x, "iprl"), paper)
    scott = fi.kernel_width(x, "scott")
    assert bool(((scott / (3.0 * 100 ** (-1 / 14)) - 1).abs() < 0.1).all())
    assert bool((fi.kernel_width(x, "silverman") < scott).all())
    median = fi.kernel_width(x, "median")
    assert bool(((median / (3.0 * math.sqrt(2 * 10)) - 1).abs() < 0.1).all())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fi.renyi_entropy(torch.randn(5, 2), alpha=0.0), "alpha"),
        (lambda: fi.renyi_entropy(torch.randn(5, 2), alpha=-1.0), "alpha"),
        (lambda: fi.renyi_entropy(torch.randn(5, 2), alpha=float("nan")), "alpha"),
        (lambda: fi.renyi_entropy(torch.randn(5, 2), sigma=0.0), "sigma"),
        (lambda: fi.renyi_entropy(torch.randn(5, 2), sigma=-2.0), "sigma"),
        (lambda: fi.renyi_entropy(torch.randn(5, 2), sigma="widest"), "sigma"),
        (lambda: fi.renyi_entropy(torch.tensor([[float("nan"), 0.0], [1.0, 2.0]])), "NaN"),
        (lambda: fi.renyi_entropy(torch.randn(5)), "samples"),
        (lambda: fi.renyi_entropy(torch.randn(0, 2)), "N = 0"),
        (lambda: fi.mutual_information(torch.randn(1, 2), torch.randn(1, 2)), "N >= 2"),
        (lambda: fi.plane_mutual_information(torch.randn(5, 2), torch.randn(2, 6, 3), torch.randn(5, 1)), "same"),
        (lambda: fi.renyi_entropy(torch.arange(6).reshape(3, 2)), "floating"),
        (lambda: fi.renyi_entropy(torch.randn(5, 2), unit="dits"), "unit"),
        (lambda: fi.renyi_entropy(torch.randn(5, 2), compat="repitl"), "compat"),
        (lambda: fi.renyi_entropy(torch.randn(5, 2), compat="iprl", unit="nats"), "bits"),
        (lambda: fi.mutual_information(torch.randn(5, 2), torch.randn(6, 2)), "same samples"),
        (lambda: fi.renyi_entropy(torch.zeros(5, 2), sigma="scott"), "identical"),
    ],
)
def test_hostile_input_is_rejected_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()


NAN = torch.full((3, 3), float("nan"))
INDEFINITE = torch.tensor([[0.5, 0.9], [0.9, 0.5]])  # trace 1, eigenvalues 1.4 and −0.4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: matrix_entropy(NAN, alpha=2.0), "a contains NaN"),
        (lambda: matrix_entropy(NAN, method="lanczos"), "a contains NaN"),
        (lambda: matrix_entropy(torch.rand(3, 5), alpha=2.0), "a must be .* square"),
        (lambda: matrix_entropy(torch.arange(9).reshape(3, 3)), "a must be a floating"),
        (lambda: matrix_entropy(torch.eye(3)), "a must have trace 1 .*; got 3"),
        (lambda: matrix_entropy(-torch.eye(3) / 3, alpha=1.01), "a must have trace 1 .*; got -1"),
        (lambda: matrix_entropy(INDEFINITE), "a must be positive semi-definite; got an eigenvalue -0.4"),
        (lambda: fi.renyi_entropy(torch.randn(5, 3), method="lanczos", probes=0), "probes"),
        (lambda: fi.renyi_entropy(torch.randn(5, 3), method="lanczos", lanczos_steps=0), "lanczos_steps"),
        (lambda: fi.renyi_entropy(torch.randn(5, 3), lanczos_steps=2.5), "lanczos_steps"),
        (
            lambda: fi.mutual_information(torch.randn(5, 2), torch.randn(5, 2), sigma=(1.0, 1.0, 1.0)),
            "sigma_x, sigma_y",
        ),
        (
            lambda: fi.plane_mutual_information(
                torch.randn(5, 2), torch.randn(2, 5, 3), torch.randn(5, 1), sigma=(1.0, 1.0)
            ),
            "sigma_x, sigma_t, sigma_y",
        ),
        (lambda: fi.gram_matrix(torch.randn(5, 2), compat="bogus"), "compat must be None or 'iprl'"),
        (lambda: fi.kernel_width(torch.randn(5, 3), gamma=-1.0), "gamma"),
        (lambda: fi.kernel_width(torch.randn(5, 3), gamma=float("nan")), "gamma"),
        (lambda: fi.kernel_width(torch.tensor([[float("nan"), 0.0], [1.0, 2.0]]), "scott"), "x contains NaN"),
        (lambda: fi.kernel_width(torch.tensor([[float("nan"), 0.0], [1.0, 2.0]]), "median"), "x contains NaN"),
        (lambda: fi.kernel_width(torch.ones(0, 3)), "N >= 1"),
    ],
)
def test_hostile_matrices_and_settings_are_rejected_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_kernel_width_of_integers_is_a_type_error():
    with pytest.raises(TypeError, match="x must be a floating tensor"):
        fi.kernel_width(torch.ones(5, 3, dtype=torch.int64), "median")
