"""`symmetric_eigvalsh` against `torch.linalg.eigvalsh` (float64, to 1e-12 of the spectral norm) on random symmetric
and rank-deficient PSD Gram matrices of orders on both sides of the CPU's switch from the shared bisection code to
LAPACK (32) and of the CUDA kernel's limit (128); batch shapes, float32, known degenerate spectra, gradients,
opcheck, torch.compile and hostile input."""

from pathlib import Path

import pytest
import torch
from torch.utils.cpp_extension import load_inline

from fastsim.ops import symmetric_eigvalsh
from tests.conftest import assert_compiles_like_eager

ORDERS = [1, 2, 3, 7, 20, 32, 33, 57, 100, 128, 130]


def symmetric(shape, device="cpu", seed=0, dtype=torch.float64):
    s = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return ((s + s.transpose(-1, -2)) / 2).to(device=device, dtype=dtype)


def gram(batch, n, device="cpu", seed=0):
    """Trace-1 Gram matrices of n samples in n // 3 + 1 dimensions: rank-deficient, many eigenvalues ≈ 0."""
    x = torch.randn(*batch, n, n // 3 + 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    a = x @ x.transpose(-1, -2)
    return (a / a.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None]).to(device)


def assert_matches_torch(ours, a, rel=1e-12):
    ref = torch.linalg.eigvalsh(a.double())
    assert ours.shape == ref.shape and ours.dtype == a.dtype
    norm = ref.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    err = ((ours.double() - ref).abs() / norm).max().item() if ref.numel() else 0.0
    assert err <= rel, f"max error {err:.2e} of the spectral norm"


@pytest.mark.parametrize("n", ORDERS)
def test_matches_torch(device, n):
    a = symmetric((3, n, n), device, seed=n)
    assert_matches_torch(symmetric_eigvalsh(a), a)
    g = gram((3,), n, device, seed=n)
    out = symmetric_eigvalsh(g)
    assert_matches_torch(out, g)
    assert bool((out[:, 1:] >= out[:, :-1]).all())  # ascending


def test_random_orders_and_batch_shapes(device):
    gen = torch.Generator().manual_seed(7)
    for n in torch.randint(1, 120, (4,), generator=gen).tolist():
        a = symmetric((2, 3, n, n), device, seed=n)
        assert_matches_torch(symmetric_eigvalsh(a), a)
    a = symmetric((6, 6), device)
    assert_matches_torch(symmetric_eigvalsh(a), a)  # no batch dimension
    assert_matches_torch(symmetric_eigvalsh(a.t()), a)  # a non-contiguous view
    assert symmetric_eigvalsh(torch.empty(0, 5, 5, dtype=torch.float64, device=device)).shape == (0, 5)
    assert symmetric_eigvalsh(torch.empty(2, 0, 4, 4, device=device)).shape == (2, 0, 4)
    assert symmetric_eigvalsh(torch.empty(3, 0, 0, device=device)).shape == (3, 0)


def test_float32(device):
    a = symmetric((4, 40, 40), device, seed=3, dtype=torch.float32)
    out = symmetric_eigvalsh(a)
    assert out.dtype == torch.float32
    assert_matches_torch(out, a, rel=1e-6)  # float32 accuracy (eps 1.2e-7 of the norm, a few ulps)
    g = gram((4,), 24, device, seed=4).float()
    assert_matches_torch(symmetric_eigvalsh(g), g, rel=1e-6)


def test_only_lower_triangle_is_read(device):
    a = symmetric((3, 9, 9), device, seed=5)
    garbage = a + torch.triu(torch.randn(9, 9, dtype=torch.float64, device=device), diagonal=1)
    torch.testing.assert_close(symmetric_eigvalsh(garbage), symmetric_eigvalsh(a), rtol=0, atol=0)


@pytest.mark.parametrize("n", [5, 50])
def test_repeated_and_known_spectra(device, n):
    eye = torch.eye(n, dtype=torch.float64, device=device)
    u = torch.linspace(-1, 2, n, dtype=torch.float64, device=device)
    rank_one = torch.outer(u, u)
    expected_rank_one = torch.zeros(n, dtype=torch.float64, device=device)
    expected_rank_one[-1] = u.square().sum()
    diag = torch.tensor([3.0, -1.0, 3.0, 0.0, -1.0] * (n // 5), dtype=torch.float64, device=device)
    cases = [
        (2.5 * eye, torch.full((n,), 2.5, dtype=torch.float64, device=device)),
        (eye / n, torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)),  # trace-1 Gram of distant points
        (torch.zeros(n, n, dtype=torch.float64, device=device), torch.zeros(n, dtype=torch.float64, device=device)),
        (rank_one, expected_rank_one),
        (torch.diag(diag), diag.sort().values),
    ]
    out = symmetric_eigvalsh(torch.stack([m for m, _ in cases]))
    for got, (matrix, expected) in zip(out, cases, strict=True):
        norm = max(expected.abs().max().item(), 1e-300)
        assert (got - expected).abs().max().item() <= 1e-13 * norm, (matrix[:2, :2], got, expected)


@pytest.mark.parametrize("magnitude", [1e-150, 1e150])
def test_extreme_magnitudes(device, magnitude):
    a = symmetric((2, 30, 30), device, seed=11) * magnitude
    assert_matches_torch(symmetric_eigvalsh(a), a)


def test_gradcheck(device):
    x = symmetric((2, 5, 5), device, seed=2).requires_grad_()
    torch.autograd.gradcheck(lambda x: symmetric_eigvalsh(x + x.transpose(-1, -2)), (x,))
    torch.autograd.gradgradcheck(lambda x: symmetric_eigvalsh(x + x.transpose(-1, -2)).square(), (x,))


def test_gradient_at_repeated_eigenvalues(device):
    # At a repeated eigenvalue the gradient of a function of the spectrum that treats the copies alike is still
    # defined: for Σ λ_k² it is 2A, whatever eigenvectors eigh picks inside the eigenspace.
    u = torch.linspace(-1, 2, 8, dtype=torch.float64, device=device)
    for a in (torch.eye(8, dtype=torch.float64, device=device) / 8, torch.outer(u, u)):
        a = a.clone().requires_grad_()
        (grad,) = torch.autograd.grad(symmetric_eigvalsh(a).square().sum(), a)
        torch.testing.assert_close(grad, 2 * a.detach())


def test_opcheck(device):
    a = symmetric((3, 6, 6), device, seed=4).requires_grad_()
    torch.library.opcheck(torch.ops.fastsim.symmetric_eigvalsh.default, (a,))
    torch.library.opcheck(torch.ops.fastsim.symmetric_eigvalsh.default, (gram((2,), 40, device).float(),))


def test_compiled_renyi_entropy_has_no_graph_breaks():
    x = torch.randn(3, 12, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64).requires_grad_()

    def renyi2(x):  # S_2(A) = −log Σ λ² of the trace-1 Gram matrix
        a = x @ x.transpose(1, 2)
        a = a / a.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None]
        return -symmetric_eigvalsh(a).clamp_min(0).square().sum(-1).log().sum()

    assert_compiles_like_eager(renyi2, x)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: symmetric_eigvalsh([[1.0]]), "float32 or float64"),
        (lambda: symmetric_eigvalsh(torch.ones(3, 3, dtype=torch.int64)), "float32 or float64"),
        (lambda: symmetric_eigvalsh(torch.ones(3, 3, dtype=torch.float16)), "float32 or float64"),
        (lambda: symmetric_eigvalsh(torch.ones(3, dtype=torch.float64)), "square matrices"),
        (lambda: symmetric_eigvalsh(torch.ones(2, 3, 4, dtype=torch.float64)), "square"),
        (lambda: symmetric_eigvalsh(torch.tensor([[1.0, 0.0], [float("nan"), 1.0]])), "NaN"),
        (lambda: symmetric_eigvalsh(torch.tensor([[[float("inf")]]], dtype=torch.float64)), "infinite"),
    ],
)
def test_hostile_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# The CUDA kernel runs the shared code of csrc/mi/symmetric_eigvalsh.h with a thread block as the team; the CPU op
# with a one-thread team. Without a GPU, this runs that code with a team of std::threads: the same member
# numbering, a real barrier, and reductions folded in the same order by every member, so a missing barrier, an
# index no member or two members handle, or a non-uniform barrier (a hang) shows up here.
TEAM_SOURCE = r"""
#include <torch/extension.h>

#include <barrier>
#include <cmath>
#include <thread>
#include <vector>

#include "mi/symmetric_eigvalsh.h"

struct ThreadTeam {
  int member, members;
  std::barrier<>* barrier;
  double* slots;
  int rank() const { return member; }
  int size() const { return members; }
  void sync() const { barrier->arrive_and_wait(); }
  double reduce(double v, bool take_max) const {
    slots[member] = v;
    sync();
    double total = slots[0];
    for (int m = 1; m < members; ++m) total = take_max ? std::fmax(total, slots[m]) : total + slots[m];
    sync();
    return total;
  }
  double sum(double v) const { return reduce(v, false); }
  double max(double v) const { return reduce(v, true); }
};

torch::Tensor team_eigvalsh(torch::Tensor a, int64_t members) {
  a = a.contiguous();
  const int64_t batch = a.size(0), n = a.size(1);
  torch::Tensor out = torch::empty({batch, n}, a.options());
  std::vector<double> work(fastsim::eigvalsh::work_size(n)), slots(members);
  for (int64_t b = 0; b < batch; ++b) {
    std::barrier<> barrier(members);
    std::vector<std::thread> threads;
    for (int member = 0; member < members; ++member) {
      threads.emplace_back([&, member] {
        const ThreadTeam team{member, int(members), &barrier, slots.data()};
        fastsim::eigvalsh::symmetric_eigvalsh(team, a.data_ptr<double>() + b * n * n, n, work.data(),
                                              out.data_ptr<double>() + b * n, 1);
      });
    }
    for (auto& thread : threads) thread.join();
  }
  return out;
}
"""


@pytest.mark.slow
def test_shared_code_with_a_team_of_threads(tmp_path):
    csrc = Path(__file__).resolve().parents[2] / "csrc"
    module = load_inline(
        "fastsim_eigvalsh_team",
        cpp_sources=TEAM_SOURCE,
        functions=["team_eigvalsh"],
        extra_include_paths=[str(csrc)],
        extra_cflags=["-std=c++20", "-O2"],
        extra_ldflags=["-pthread"],
        build_directory=str(tmp_path),
    )
    for n, members in [(1, 3), (2, 2), (5, 7), (13, 3), (37, 4)]:
        for a in (symmetric((2, n, n), seed=n), gram((2,), n, seed=n)):
            assert_matches_torch(module.team_eigvalsh(a, members), a)
