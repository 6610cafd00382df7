"""Stages, recipe files and the recipe runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guiclassifier import Learner
from guiclassifier.core.cancel import CancelToken
from guiclassifier.core.events import EpochEnded, StageEnded, StageStarted
from guiclassifier.core.lr_finder import WHOLE_NETWORK_LR
from guiclassifier.core.recipe import (
    Evaluate,
    LRFind,
    Recipe,
    RecipeError,
    SetPrecompute,
    SuggestedLR,
    Train,
    Unfreeze,
    lesson1,
    stage_from_dict,
)
from guiclassifier.core.recipe_runner import run_recipe


def test_lesson1_follows_the_seed_notes() -> None:
    stages = lesson1().stages
    kinds = [type(s).__name__ for s in stages]
    assert kinds == ["SetPrecompute", "LRFind", "Train", "SetPrecompute", "Train", "Unfreeze", "LRFind",
                     "Train", "Evaluate"]
    assert stages[2].n_cycle == 2 and stages[2].cycle_len is None
    assert (stages[4].n_cycle, stages[4].cycle_len) == (3, 1)
    final = stages[7]
    # cycle_mult 2 until it over-fits: at most 4 cycles (1 + 2 + 4 + 8 epochs)
    assert (final.n_cycle, final.cycle_len, final.cycle_mult, final.until_overfit) == (4, 1, 2, True)
    # 3x between layer groups (the seed: 3x-10x), the unfrozen sweep with the same ratios
    assert final.lrs.suggestion == "lesson" and final.lrs.divisors == (9.0, 3.0, 1.0)
    assert stages[6].ratios == pytest.approx((1 / 9, 1 / 3, 1.0))
    # the whole network keeps the lesson's lr; its sweep only checks that the loss holds past it
    assert final.lrs.fallback == WHOLE_NETWORK_LR and stages[6].end_lr >= 2 * WHOLE_NETWORK_LR
    assert stages[6].num_it < 50 and stages[1].num_it == 100
    assert stages[8].tta


def test_recipe_file_round_trip(tmp_path: Path) -> None:
    lesson1().save(tmp_path / "r.json")
    assert Recipe.load(tmp_path / "r.json") == lesson1()


@pytest.mark.parametrize("stage,words", [
    ({"stage": "Train", "n_cylce": 3}, "n_cylce"),
    ({"stage": "Train", "lrs": {"suggestion": "valley", "divisor": [10]}}, "divisor"),
    ({"stage": "Train", "lrs": -1}, "stages[0].lrs"),
    ({"stage": "Train", "cycle_len": 0}, "stages[0].cycle_len"),
    ({"stage": "Fly"}, "Fly"),
    ({"stage": "SetPrecompute", "on": "yes"}, "stages[0].on"),
    ({"stage": "Train", "lrs": {"suggestion": "best"}}, "stages[0].lrs.suggestion"),
])
def test_bad_recipe_files_name_the_field(tmp_path: Path, stage: dict, words: str) -> None:
    (tmp_path / "r.json").write_text(json.dumps({"name": "x", "stages": [stage]}))
    with pytest.raises(RecipeError) as info:
        Recipe.load(tmp_path / "r.json")
    assert words in str(info.value)


def test_not_json(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("{stages: [")
    with pytest.raises(RecipeError, match="not valid JSON"):
        Recipe.load(tmp_path / "r.json")


def test_suggested_lr_resolution() -> None:
    from guiclassifier.core.lr_finder import LRFindResult

    result = LRFindResult((1.0,), (1.0,), (1.0,), {"valley": 0.01})
    assert SuggestedLR("valley", (100, 10, 1)).resolve(result, 3) == pytest.approx((1e-4, 1e-3, 1e-2))
    assert SuggestedLR("steep", (1,), fallback=0.5).resolve(result, 3) == (0.5, 0.5, 0.5)
    assert SuggestedLR().resolve(None, 3) == (1e-2,) * 3


def test_scaled_recipe_shrinks_cycles() -> None:
    quick = lesson1().scaled(0.34)
    assert [s.n_cycle for s in quick.stages if isinstance(s, Train)] == [1, 1, 1]
    assert [s.num_it for s in quick.stages if isinstance(s, LRFind)] == [34, 20]  # at least 20 batches


def test_run_recipe_emits_stages_and_records_history(tiny_learner: Learner) -> None:
    recipe = Recipe("mini", (SetPrecompute(True), LRFind(num_it=10), Train(SuggestedLR(), 1),
                             SetPrecompute(False), Unfreeze(), Train((1e-4, 1e-3, 1e-2), 1, cycle_len=1),
                             Evaluate(tta=False)))
    events: list = []
    result = run_recipe(tiny_learner, recipe, events.append)
    started = [e.index for e in events if isinstance(e, StageStarted)]
    ended = [e for e in events if isinstance(e, StageEnded)]
    assert started == list(range(7)) and len(ended) == 7
    assert sum(isinstance(e, EpochEnded) for e in events) == 2
    assert result.completed == 7 and not result.cancelled and result.evaluation is not None
    record = tiny_learner.history[-1]
    assert record["kind"] == "recipe" and record["name"] == "mini"
    train_record = record["stages_run"][2]
    suggested = record["stages_run"][1]["suggestions"].get("lesson", 1e-2)
    assert train_record["lrs_used"] == pytest.approx([suggested] * 3)
    assert tiny_learner.frozen_groups == 0 and not tiny_learner.precompute


def test_cancel_ends_the_recipe_within_a_stage(tiny_learner: Learner) -> None:
    token = CancelToken()

    def cb(event) -> None:
        if isinstance(event, EpochEnded):
            token.cancel()

    recipe = Recipe("r", (Train(0.01, 3), Train(0.01, 1), Evaluate(False)))
    result = run_recipe(tiny_learner, recipe, cb, token)
    assert result.cancelled and result.completed == 0
    assert tiny_learner.history[-1]["cancelled"] is True


def test_until_overfit_is_a_recipe_field_on_in_lesson1s_last_stage() -> None:
    last = [s for s in lesson1().stages if isinstance(s, Train)][-1]
    assert last.until_overfit and last.cycle_mult == 2 and "over-fits" in last.describe()
    assert not any(s.until_overfit for s in lesson1().stages[:-2] if isinstance(s, Train))
    assert Recipe.from_dict(lesson1().to_dict()) == lesson1()
    off = lesson1().with_until_overfit(False)
    assert not any(s.until_overfit for s in off.stages if isinstance(s, Train))
    with pytest.raises(RecipeError, match="until_overfit must be true or false"):
        stage_from_dict({"stage": "Train", "until_overfit": "yes"}, "stages[0]")

