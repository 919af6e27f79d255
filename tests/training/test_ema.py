import pytest
import torch
from torch import nn

from fastsim.training import EMA, ema_decay


def test_decay_rule_values():
    assert [ema_decay(n) for n in (1, 999, 1000, 1001)] == [0.0, 0.0, 0.0, 0.0]  # 1 − 1^(−2/3) = 0
    assert ema_decay(1008) == pytest.approx(1 - 8 ** (-2 / 3))  # 0.75
    assert ema_decay(1000 + 125) == pytest.approx(0.96)
    assert ema_decay(1000 + 31623) == 0.999  # 1 − 31623^(−2/3) ≈ 0.99900003 clipped
    assert ema_decay(10, warmup_steps=0, power=1.0, max_decay=0.5) == 0.5


def test_shadow_follows_the_recurrence_and_copies_integer_buffers():
    model = nn.BatchNorm1d(3)
    ema = EMA(model, warmup_steps=2)
    expected = model.weight.detach().clone()
    for step in range(1, 8):
        with torch.no_grad():
            model.weight.add_(float(step))
            model.num_batches_tracked += 1
        decay = ema.decay(step)
        expected = decay * expected + (1 - decay) * model.weight.detach()
        ema.update(model)
        torch.testing.assert_close(ema.shadow["weight"], expected)
    assert ema.shadow["num_batches_tracked"] == 7 and ema.num_updates == 7


def test_swapped_in_restores_on_exit_and_on_error():
    model = nn.Linear(2, 2)
    ema = EMA(model, warmup_steps=0)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    ema.shadow["weight"].fill_(7.0)
    with ema.swapped_in(model):
        assert torch.all(model.weight == 7.0)
    with pytest.raises(KeyError), ema.swapped_in(model):
        raise KeyError
    for name, value in model.state_dict().items():
        assert torch.equal(value, original[name])


def test_state_round_trip_and_hostile():
    model = nn.Linear(2, 2)
    ema = EMA(model)
    ema.update(model)
    other = EMA(nn.Linear(2, 2))
    other.load_state_dict(ema.state_dict())
    assert other.num_updates == 1 and torch.equal(other.shadow["weight"], ema.shadow["weight"])
    with pytest.raises(ValueError, match="tensor names differ"):
        EMA(nn.Linear(2, 2, bias=False)).load_state_dict(ema.state_dict())
    with pytest.raises(ValueError, match="max_decay"):
        EMA(model, max_decay=1.0)
    with pytest.raises(TypeError, match="nn.Module"):
        EMA("model")
