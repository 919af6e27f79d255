import math

import pytest

from fastsim.training import CyclicSchedule


def paper_cosine(epoch: int, lr_max=1e-3, lr_min=1e-5, warmup=20, period=200, mult=0.5) -> float:
    """The NGS schedule written out for fixed-length cycles: linear warmup, cosine down, peak halved per cycle."""
    cycle, t = divmod(epoch, warmup + period)
    peak = lr_max * mult**cycle
    if t < warmup:
        return lr_min + (peak - lr_min) * t / warmup
    return lr_min + 0.5 * (peak - lr_min) * (1 + math.cos(math.pi * (t - warmup) / period))


def test_cosine_matches_the_formula_over_the_seven_paper_cycles():
    schedule = CyclicSchedule()  # defaults are the paper's dynamical-systems settings
    values = [schedule(e) for e in range(1540)]
    assert values == pytest.approx([paper_cosine(e) for e in range(1540)], rel=1e-12, abs=0)
    assert values[0] == 1e-5 and values[20] == pytest.approx(1e-3) and values[240] == pytest.approx(5e-4)
    assert values[219] == pytest.approx(1e-5, rel=1e-2)  # bottom of the first cycle
    assert max(values[220:440]) == pytest.approx(5e-4) and max(values[1320:]) == pytest.approx(1e-3 / 64)


def test_period_growth_and_peak_floor():
    schedule = CyclicSchedule(lr=1e-2, lr_min=1e-3, warmup_epochs=0, period_epochs=4, lr_max_mult=0.1, period_mult=1.5)
    assert [schedule.cycle(e)[:2] for e in (0, 3, 4, 9, 10, 18)] == [(0, 0), (0, 3), (1, 0), (1, 5), (2, 0), (2, 8)]
    assert [schedule.cycle(e)[2] for e in (0, 4, 10)] == [4, 6, 9]
    assert all(schedule(e) == pytest.approx(1e-3) for e in range(10, 19))  # peak 1e-4 < lr_min: held at lr_min


def test_step_schedule_halves_per_growing_cycle_with_a_floor():
    # GNRK's Burgers schedule: 4e-3 halving per cycle, floor 1e-4, cycles of 20·1.5^k epochs.
    schedule = CyclicSchedule(kind="step", lr=4e-3, lr_min=1e-4, warmup_epochs=0, period_epochs=20, period_mult=1.5)
    starts = [0, 20, 50, 95, 162, 262]
    assert [schedule(s) for s in starts] == pytest.approx([4e-3, 2e-3, 1e-3, 5e-4, 2.5e-4, 1.25e-4])
    assert schedule(19) == pytest.approx(4e-3) and schedule(411) == pytest.approx(1.25e-4)
    assert schedule(412) == pytest.approx(1e-4)  # seventh cycle: 6.25e-5 floored


def test_constant_and_hostile():
    assert {CyclicSchedule(kind="constant", lr=3e-4)(e) for e in range(500)} == {3e-4}
    for fields, message in [
        ({"kind": "exp"}, "kind must be one of"),
        ({"lr": 0.0}, "lr must be"),
        ({"lr_min": 2e-3}, "lr_min must be in"),
        ({"period_epochs": 0}, "period_epochs"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
        ({"period_mult": 0.5}, "period_mult"),
        ({"lr_max_mult": math.inf}, "lr_max_mult"),
    ]:
        with pytest.raises(ValueError, match=message):
            CyclicSchedule(**fields)
    with pytest.raises(ValueError, match="epoch must be an int >= 0"):
        CyclicSchedule()(-1)
