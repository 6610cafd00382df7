"""Hostile and odd recipe files are refused with one line naming the field (issue 14, 3-4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guiclassifier.core.recipe import Recipe, RecipeError, lesson1

GOOD_TRAIN = {"stage": "Train", "lrs": 0.01, "n_cycle": 1}


def _recipe(*stages: dict, name="t") -> dict:
    return {"name": name, "stages": list(stages)}


BAD = {
    "ratios a number": (_recipe({"stage": "LRFind", "ratios": 5}), "stages[0].ratios"),
    "stage a list": (_recipe({"stage": ["Train"]}), "stages[0].stage"),
    "lr 1e308": (_recipe({**GOOD_TRAIN, "lrs": 1e308}), "stages[0].lrs must be a positive number up to 10"),
    "6 divisors for 3 groups": (_recipe({**GOOD_TRAIN, "lrs": {"divisors": [1, 2, 3, 4, 5, 6]}}),
                                "stages[0].lrs.divisors must be a list of 1 or 3"),
    "5 explicit lrs": (_recipe({**GOOD_TRAIN, "lrs": [0.1] * 5}), "stages[0].lrs must be a list of 1 or 3"),
    "a lone surrogate in the name": (_recipe(GOOD_TRAIN, name="bad\ud800name"), "name must be printable"),
    "a 5 MB name": (_recipe(GOOD_TRAIN, name="x" * 5_000_000), "name must be printable"),
    "a NUL in the name": (_recipe(GOOD_TRAIN, name="a\x00b"), "name must be printable"),
    "right-to-left override": (_recipe(GOOD_TRAIN, name="abc\u202egnp.exe"), "name must be printable"),
    "n_cycle 10**9": (_recipe({**GOOD_TRAIN, "n_cycle": 10**9}), "stages[0].n_cycle must be a whole number"),
    "num_it 10**9": (_recipe({"stage": "LRFind", "num_it": 10**9}), "stages[0].num_it must be a whole number"),
    "cycles that double 60 times": (_recipe({**GOOD_TRAIN, "n_cycle": 60, "cycle_len": 1, "cycle_mult": 2}),
                                    "would train"),
    "start above end": (_recipe({"stage": "LRFind", "start_lr": 1.0, "end_lr": 0.1}), "start_lr must be below"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_recipe_is_refused_naming_the_field(case: str) -> None:
    raw, words = BAD[case]
    with pytest.raises(RecipeError, match=words.replace("[", r"\[").replace("]", r"\]")) as info:
        Recipe.from_dict(raw)
    message = str(info.value)
    assert len(message) < 300 and "\x00" not in message and "\u202e" not in message


def test_a_deeply_nested_or_huge_file_is_refused_before_it_is_used(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RecipeError, match="nested too deeply|not valid JSON"):
        Recipe.load(deep)
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps(_recipe(GOOD_TRAIN, name="x" * 2_000_000)))
    with pytest.raises(RecipeError, match="over 1 MB"):
        Recipe.load(huge)


def test_the_builtin_recipe_round_trips(tmp_path: Path) -> None:
    lesson1().save(tmp_path / "l.json")
    assert Recipe.load(tmp_path / "l.json") == lesson1()
