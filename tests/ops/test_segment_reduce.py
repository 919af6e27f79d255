import pytest
import torch

import fastsim
from fastsim.ops import reference


def random_indptr(num_segments: int, num_items: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    cuts = torch.sort(torch.randint(0, num_items + 1, (max(num_segments - 1, 0),), generator=gen)).values
    return torch.cat([torch.zeros(1, dtype=torch.long), cuts, torch.tensor([num_items])])[: num_segments + 1]


@pytest.mark.parametrize("reduce", ["sum", "mean", "min", "max"])
@pytest.mark.parametrize("shape", [(0,), (13,), (13, 1), (13, 4), (13, 2, 3)])
@pytest.mark.parametrize("num_segments", [0, 1, 6])
def test_matches_reference(device, reduce, shape, num_segments):
    src = torch.randn(*shape, dtype=torch.float64, device=device)
    if num_segments == 0:
        src = src[:0]
    indptr = random_indptr(num_segments, src.shape[0], seed=len(shape)).to(device)
    result = fastsim.ops.segment_reduce(src, indptr, reduce)
    expected, expected_arg = reference.segment_reduce(src, indptr, reduce)
    if reduce in ("min", "max"):
        torch.testing.assert_close(result.values, expected, rtol=0, atol=0)
        torch.testing.assert_close(result.indices, expected_arg)
    else:
        torch.testing.assert_close(result, expected, rtol=1e-12, atol=1e-12)


def test_empty_segments_give_zero_and_arg_minus_one():
    src = torch.tensor([[3.0], [1.0], [2.0]])
    indptr = torch.tensor([0, 0, 3, 3])
    result = fastsim.ops.segment_reduce(src, indptr, "max")
    assert result.values.flatten().tolist() == [0.0, 3.0, 0.0]
    assert result.indices.flatten().tolist() == [-1, 0, -1]


def test_ties_keep_first_and_nan_wins():
    src = torch.tensor([2.0, 5.0, 5.0, 1.0, float("nan"), 7.0])
    indptr = torch.tensor([0, 3, 6])
    result = fastsim.ops.segment_reduce(src, indptr, "max")
    assert result.values[0] == 5.0 and result.indices[0] == 1
    assert torch.isnan(result.values[1]) and result.indices[1] == 4
    assert torch.isnan(fastsim.ops.segment_reduce(src, indptr, "sum")[1])


@pytest.mark.parametrize("reduce", ["sum", "mean", "min", "max"])
def test_gradcheck(device, reduce):
    src = torch.randn(11, 3, dtype=torch.float64, device=device, requires_grad=True)
    indptr = torch.tensor([0, 0, 4, 5, 11], device=device)

    def f(s):
        out = fastsim.ops.segment_reduce(s, indptr, reduce)
        return out.values if reduce in ("min", "max") else out

    assert torch.autograd.gradcheck(f, (src,))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_opcheck(device, reduce):
    src = torch.randn(11, 3, dtype=torch.float64, device=device, requires_grad=True)
    indptr = torch.tensor([0, 0, 4, 5, 11], device=device)
    torch.library.opcheck(torch.ops.fastsim.segment_reduce.default, (src, indptr, reduce))
