import pytest
import torch

import fastsim
from fastsim.ops import reference, rk_error_norm, rk_stage
from tests.conftest import skip_unless_triton_runs_on

DOPRI5_B = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0]


def stages(batch, n, count, device="cpu", dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, n, generator=gen, dtype=dtype).to(device) for _ in range(count)]


@pytest.mark.parametrize("backend", ["cpp", "triton"])
@pytest.mark.parametrize("shape", [(3, 17), (1, 1), (0, 4), (4, 0)])
@pytest.mark.parametrize("coeffs", [DOPRI5_B, [0.5], [], [0.1] * 12])
def test_stage_matches_reference(device, backend, shape, coeffs):
    if backend == "triton":
        skip_unless_triton_runs_on(device)
    ks = stages(*shape, max(len(coeffs), 1), device)
    y = torch.randn(*shape, dtype=torch.float64, device=device)
    dt = torch.rand(shape[0], dtype=torch.float64, device=device)
    fastsim.set_backend(backend)
    try:
        out = rk_stage(y, dt, ks, coeffs)
    finally:
        fastsim.set_backend("auto")
    torch.testing.assert_close(out, reference.rk_stage(y, dt, ks, coeffs), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("backend", ["cpp", "triton"])
@pytest.mark.parametrize("aux", [False, True])
def test_error_norm_matches_reference(device, backend, aux):
    if backend == "triton":
        skip_unless_triton_runs_on(device)
    ks = stages(5, 33, 7, device)
    y0, y1 = torch.randn(5, 33, dtype=torch.float64, device=device), torch.randn(5, 33, dtype=torch.float64)
    y1 = y1.to(device)
    dt = torch.rand(5, dtype=torch.float64, device=device) - 0.5
    b_err = [0.01, 0, -0.02, 0.03, 0, 0.01, -0.005]
    b_aux = [0.1, 0, 0.2, -0.1, 0, 0, 0] if aux else None
    fastsim.set_backend(backend)
    try:
        out = rk_error_norm(y0, y1, dt, ks, b_err, 1e-6, 1e-9, b_aux)
    finally:
        fastsim.set_backend("auto")
    torch.testing.assert_close(
        out, reference.rk_error_norm(y0, y1, dt, ks, b_err, 1e-6, 1e-9, b_aux), rtol=1e-12, atol=0
    )


def test_stage_gradcheck(device):
    ks = [k.requires_grad_() for k in stages(3, 4, 3, device)]
    y = torch.randn(3, 4, dtype=torch.float64, device=device, requires_grad=True)
    dt = torch.rand(3, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda y, dt, *ks: rk_stage(y, dt, ks, [0.3, -1.0, 2.0]), (y, dt, *ks))


def test_opcheck(device):
    ks = stages(3, 4, 3, device)
    y = torch.randn(3, 4, dtype=torch.float64, device=device, requires_grad=True)
    dt = torch.rand(3, dtype=torch.float64, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.fastsim.rk_stage.default, (y, dt, ks, [0.3, -1.0, 2.0]))
    torch.library.opcheck(
        torch.ops.fastsim.rk_error_norm.default,
        (y.detach(), y.detach(), dt.detach(), ks, [0.1, 0.2], [], 1e-6, 1e-9),
    )


def test_hostile_inputs():
    y, dt = torch.randn(3, 4), torch.rand(3)
    with pytest.raises(ValueError, match="ks holds 1 stages but 2"):
        rk_stage(y, dt, [y], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"dt must be a \(3,\) tensor"):
        rk_stage(y, dt[:2], [y], [1.0])
    with pytest.raises(ValueError, match=r"ks\[0\] must match y"):
        rk_stage(y, dt, [y.double()], [1.0])
    for rtol, atol in ((0.0, 0.0), (-1e-6, 1e-9), (float("nan"), 1e-9), (1e-6, float("inf"))):
        with pytest.raises(ValueError, match="rtol and atol must be finite and >= 0, not both 0"):
            rk_error_norm(y, y, dt, [y], [1.0], rtol, atol)
