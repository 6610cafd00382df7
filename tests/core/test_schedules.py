"""SGDR and the lr sweep as pure functions, checked against torch's own scheduler."""

from __future__ import annotations

import math

import pytest
import torch

from guiclassifier.core.schedules import SGDR, group_lrs, lr_sweep


@pytest.mark.parametrize("n_cycle,cycle_len,cycle_mult", [(3, 1, 2), (2, 2, 1), (4, 1, 3)])
def test_sgdr_matches_torch_cosine_annealing_warm_restarts(n_cycle: int, cycle_len: int, cycle_mult: int) -> None:
    steps_per_epoch, base_lr = 7, 0.1
    schedule = SGDR(n_cycle, cycle_len, cycle_mult)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    torch_sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=cycle_len * steps_per_epoch, T_mult=cycle_mult, eta_min=0.0)
    for step in range(schedule.total_epochs() * steps_per_epoch):
        assert base_lr * schedule.multiplier(step, steps_per_epoch) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
        opt.step()
        torch_sched.step()


def test_cycle_mult_two_runs_seven_epochs() -> None:
    schedule = SGDR(3, cycle_len=1, cycle_mult=2)
    assert schedule.cycle_epochs() == [1, 2, 4]
    assert schedule.total_epochs() == 7
    mults = schedule.multipliers(10)
    assert len(mults) == 70
    restarts = [i for i, m in enumerate(mults) if m == 1.0]
    assert restarts == [0, 10, 30]


def test_without_cycle_len_lr_is_constant() -> None:
    schedule = SGDR(2)
    assert schedule.total_epochs() == 2
    assert set(schedule.multipliers(5)) == {1.0}


def test_invalid_schedules() -> None:
    for args in ((0,), (1, 0), (1, 1, 0)):
        with pytest.raises(ValueError):
            SGDR(*args)


def test_lr_sweep_is_exponential_and_inclusive() -> None:
    lrs = lr_sweep(1e-7, 10, 100)
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(10)
    ratios = {round(b / a, 9) for a, b in zip(lrs, lrs[1:])}
    assert len(ratios) == 1
    with pytest.raises(ValueError):
        lr_sweep(1, 0.1, 10)


def test_group_lrs() -> None:
    assert group_lrs(0.01, 3) == (0.01, 0.01, 0.01)
    assert group_lrs([1e-4, 1e-3, 1e-2], 3) == (1e-4, 1e-3, 1e-2)
    for bad in ([1, 2], [0.1, -1, 1], [math.nan] * 3):
        with pytest.raises(ValueError):
            group_lrs(bad, 3)
