"""lr_find: the sweep, its suggestions, and that it leaves the learner exactly as it was."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from guiclassifier import ImageData, Learner
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.events import LRFindEnded, LRFindPoint, PrecomputeProgress
from guiclassifier.core.lr_finder import WHOLE_NETWORK_LR, LRFindResult, suggest, suggest_with_reasons


def fresh(root: Path, precompute: bool) -> Learner:
    data = ImageData.from_folder(root, size=32, bs=8, num_workers=0, seed=0)
    learner = Learner.pretrained("resnet18", data, weights=None, device="cpu", precompute=precompute)
    if not precompute:
        learner.unfreeze()
    return learner


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("precompute", [True, False])
def test_fit_after_lr_find_is_bit_identical(dataset: Path, precompute: bool) -> None:
    plain = fresh(dataset, precompute)
    plain.fit(1e-2, 1, cycle_len=1)
    swept = fresh(dataset, precompute)
    result = swept.lr_find(num_it=12)
    assert len(result.lrs) > 3
    swept.fit(1e-2, 1, cycle_len=1)
    assert states_equal(plain.model.state_dict(), swept.model.state_dict())


def test_lr_find_restores_weights_optimizer_and_rng(tiny_learner: Learner) -> None:
    tiny_learner.fit(1e-2, 1)  # gives the optimizer its moving averages
    before_model = {k: v.clone() for k, v in tiny_learner.model.state_dict().items()}
    before_opt = copy.deepcopy(tiny_learner.optimizer().state_dict())
    before_rng = torch.get_rng_state()
    tiny_learner.lr_find(num_it=10)
    assert states_equal(before_model, tiny_learner.model.state_dict())
    after_opt = tiny_learner.optimizer().state_dict()
    assert before_opt["state"]
    for key, state in before_opt["state"].items():
        for name, value in state.items():
            assert torch.equal(value, after_opt["state"][key][name]), name
    assert torch.equal(before_rng, torch.get_rng_state())


def test_sweep_events_and_result(tiny_learner: Learner) -> None:
    events: list = []
    result = tiny_learner.lr_find(start_lr=1e-5, end_lr=1.0, num_it=20, callbacks=events.append)
    points = [e for e in events if isinstance(e, LRFindPoint)]
    assert [p.lr for p in points] == list(result.lrs)
    assert result.lrs[0] == pytest.approx(1e-5)
    assert all(b > a for a, b in zip(result.lrs, result.lrs[1:]))
    assert len(result.losses) == len(result.raw_losses) == len(result.lrs)
    assert isinstance(events[-1], LRFindEnded)
    assert tiny_learner.history[-1]["kind"] == "lr_find"


def test_stops_when_loss_explodes(tiny_learner: Learner) -> None:
    result = tiny_learner.lr_find(start_lr=1e-3, end_lr=1e6, num_it=60)
    assert len(result.lrs) < 60
    assert "stopped" in result.stopped_reason


def test_cancel_stops_and_restores(tiny_learner: Learner) -> None:
    token = CancelToken()
    before = {k: v.clone() for k, v in tiny_learner.model.state_dict().items()}
    seen: list = []

    def cb(event) -> None:
        if isinstance(event, LRFindPoint):
            seen.append(event)
            if event.iteration == 2:
                token.cancel()

    result = tiny_learner.lr_find(num_it=30, callbacks=cb, cancel=token)
    assert result.cancelled and len(seen) == 3
    assert states_equal(before, tiny_learner.model.state_dict())


def test_differential_ratios_scale_groups_together(tiny_learner: Learner) -> None:
    tiny_learner.unfreeze()
    seen: list[tuple[float, ...]] = []
    original = tiny_learner.train_step

    def spy(x, y, lrs):
        seen.append(tuple(lrs))
        return original(x, y, lrs)

    tiny_learner.train_step = spy
    result = tiny_learner.lr_find(num_it=5, ratios=(0.01, 0.1, 1.0))
    for lrs, lr in zip(seen, result.lrs):
        assert lrs == pytest.approx((lr / 100, lr / 10, lr))


def test_suggestions_on_a_known_curve() -> None:
    lrs = np.logspace(-6, 1, 100)
    x = np.log10(lrs)
    losses = 2.0 - 1.5 / (1 + np.exp(-(x + 3) * 3)) + np.where(x > -0.5, (x + 0.5) ** 2 * 4, 0)
    s = suggest(lrs.tolist(), losses.tolist(), 100)
    assert set(s) == {"valley", "steep", "minimum"}  # the lesson rule needs the raw losses
    assert 1e-4 < s["steep"] < 1e-2  # steepest fall is around 1e-3
    assert s["minimum"] == pytest.approx(lrs[int(np.argmin(losses))] / 10)
    assert 1e-5 < s["valley"] < s["minimum"] * 10
    assert suggest([1e-3, 1e-2], [1.0, math.nan], 100) == {}


def test_the_lesson_rule_reads_the_raw_curve_without_the_moving_averages_lag() -> None:
    lrs = np.logspace(-7, 1, 100)
    x = np.log10(lrs)
    true_curve = 1.5 - 1.0 / (1 + np.exp(-(x + 3.5) * 2)) + np.where(x > -2, (x + 2) ** 2 * 0.3, 0)
    raw = true_curve + np.random.default_rng(0).normal(0, 0.05, len(x))
    avg, smooth = 0.0, []
    for i, value in enumerate(raw):  # the finder's debiased moving average, beta 0.98
        avg = 0.98 * avg + 0.02 * value
        smooth.append(avg / (1 - 0.98 ** (i + 1)))
    bottom = lrs[int(np.argmin(true_curve))]  # 1e-2
    assert lrs[int(np.argmin(smooth))] > 10 * bottom  # what the shown curve would say
    s, reasons = suggest_with_reasons(lrs.tolist(), smooth, 100, raw.tolist())
    assert bottom / 10 / 1.5 < s["lesson"] < bottom / 10 * 1.5
    assert reasons["lesson"].startswith("10x below where the raw loss bottoms out")
    result = LRFindResult(tuple(lrs), tuple(smooth), tuple(raw), s, "", False, reasons)
    assert result.explain() == f"{s['lesson']:.2e} by the lesson rule: {reasons['lesson']}"
    assert LRFindResult((), (), (), {}, "stopped at iteration 3").explain() == \
        "no suggestion (stopped at iteration 3)"


def test_lr_find_shows_and_can_stop_the_precomputing_it_starts_with(dataset: Path) -> None:
    cancel = CancelToken()
    result = fresh(dataset, precompute=True).lr_find(
        num_it=5, cancel=cancel, callbacks=lambda e: isinstance(e, PrecomputeProgress) and cancel.cancel())
    assert result.cancelled and result.lrs == ()

    events: list = []
    fresh(dataset, precompute=True).lr_find(num_it=5, callbacks=events.append)  # the cache is still cold
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("LRFindStarted") < kinds.index("PrecomputeProgress") < kinds.index("LRFindPoint")


def test_a_sweep_stopped_after_a_few_batches_suggests_nothing_and_never_below_its_start() -> None:
    lrs = np.logspace(-7, 1, 100)
    x = np.log10(lrs)
    losses = 1.0 + np.where(x > -6.5, (x + 6.5) ** 2 * 0.2, 0)  # lowest at the very start
    s = suggest(lrs[:4].tolist(), losses[:4].tolist(), 100, losses[:4].tolist())
    assert s == {}
    s = suggest(lrs.tolist(), losses.tolist(), 100, losses.tolist())
    assert s and all(lr >= lrs[0] for lr in s.values())
    assert "minimum" not in s  # a tenth of the lowest loss's lr lies below the sweep


def test_a_flat_curve_is_not_read_at_its_noisy_bottom() -> None:
    """An already trained network: the loss wobbles flat, then rises past 1e-2. Its lowest point
    can sit at the sweep's very start (the rule once picked 1.5e-07 there)."""
    lrs = np.logspace(-7, 1, 100)
    x = np.log10(lrs)
    raw = 0.2 + np.where(x > -2, (x + 2) ** 2 * 0.5, 0) + np.random.default_rng(3).normal(0, 0.02, len(x))
    raw[:8] -= 0.03  # the noise happens to be lowest at the start
    s, reasons = suggest_with_reasons(lrs.tolist(), raw.tolist(), 100, raw.tolist())
    assert 3e-4 < s["lesson"] < 3e-3, s["lesson"]
    assert reasons["lesson"].startswith("the loss never clearly fell")


def test_the_whole_network_keeps_the_lessons_lr_unless_the_sweep_diverged_near_it() -> None:
    lrs = np.logspace(-7, -0.7, 80).tolist()  # an unfrozen sweep that diverged at 0.2
    flat = [0.2] * len(lrs)
    s, reasons = suggest_with_reasons(lrs, flat, 100, flat, whole_network=True, diverged=True)
    assert s["lesson"] == WHOLE_NETWORK_LR
    assert reasons["lesson"].startswith("the lesson's lr for the whole network") and "2.0e-01" in reasons["lesson"]
    early = lrs[:58]  # diverged at 1.1e-2: just past the lesson's lr, so half of where it did
    s, reasons = suggest_with_reasons(early, flat[:58], 100, flat[:58], whole_network=True, diverged=True)
    assert s["lesson"] == pytest.approx(early[-1] / 2) and "lowered" in reasons["lesson"]
    short = np.logspace(-7, -3, 40).tolist()  # a sweep the user ended at 1e-3, no divergence
    s, _ = suggest_with_reasons(short, flat[:40], 40, flat[:40], whole_network=True)
    assert s["lesson"] == pytest.approx(1e-3)


def test_an_unfrozen_sweep_suggests_the_lessons_lr_and_a_head_sweep_reads_its_curve(tiny_learner: Learner) -> None:
    tiny_learner.unfreeze()
    result = tiny_learner.lr_find(start_lr=1e-5, end_lr=1.0, num_it=20)
    assert result.suggested() == WHOLE_NETWORK_LR or "lowered" in result.reasons["lesson"]
    assert "whole network" in result.explain()
    tiny_learner.freeze()
    assert "whole network" not in tiny_learner.lr_find(start_lr=1e-5, end_lr=1.0, num_it=20).explain()
