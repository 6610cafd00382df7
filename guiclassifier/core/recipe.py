"""Stages (one-click steps) and recipes (named lists of stages), with the built-in lesson1.

The window's buttons, the guided recipe and the command line all run these same stage objects.
A recipe is saved as human-editable JSON and validated on load; errors name the bad field.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Union

from guiclassifier.core.archs import N_GROUPS
from guiclassifier.core.errors import GuiClassifierError
from guiclassifier.core.lr_finder import (DEFAULT_SUGGESTION, DIVERGED_MARGIN, SUGGESTION_NAMES, WHOLE_NETWORK_LR,
                                          LRFindResult)
from guiclassifier.core.schedules import SGDR

MAX_FILE_BYTES = 1_000_000  # a recipe is a few hundred bytes
MAX_NAME = 100
MAX_LR = 10.0  # lr_find's default end: beyond it every network diverges
MAX_NUM_IT = 100_000
MAX_EPOCHS = 10_000  # one Train stage, all its cycles
MAX_COUNT = {"n_cycle": 100, "cycle_len": 1000, "cycle_mult": 10, "num_it": MAX_NUM_IT}


class RecipeError(GuiClassifierError):
    """A recipe file or stage is invalid; the message names the field."""


@dataclass(frozen=True)
class SuggestedLR:
    """The last lr_find's suggestion, divided per layer group (e.g. divisors 100, 10, 1)."""

    suggestion: str = DEFAULT_SUGGESTION
    divisors: tuple[float, ...] = (1.0,)
    fallback: float = 1e-2  # used when no lr_find ran or it gave no suggestion

    def resolve(self, last: LRFindResult | None, n_groups: int) -> tuple[float, ...]:
        lr = last.suggested(self.suggestion) if last is not None else None
        lr = self.fallback if lr is None or not math.isfinite(lr) else lr
        divisors = self.divisors if len(self.divisors) == n_groups else (self.divisors[-1],) * n_groups
        return tuple(lr / d for d in divisors)


LRSpec = Union[float, tuple[float, ...], SuggestedLR]


@dataclass(frozen=True)
class LRFind:
    start_lr: float = 1e-7
    end_lr: float = 10.0
    num_it: int = 100
    ratios: tuple[float, ...] | None = None

    def describe(self) -> str:
        return "Find the learning rate"


@dataclass(frozen=True)
class Freeze:
    def describe(self) -> str:
        return "Freeze the body (train the head only)"


@dataclass(frozen=True)
class Unfreeze:
    def describe(self) -> str:
        return "Unfreeze all layers"


@dataclass(frozen=True)
class SetPrecompute:
    on: bool = True

    def describe(self) -> str:
        return "Precompute on (train from cached activations)" if self.on else \
            "Precompute off (train with augmentation)"


@dataclass(frozen=True)
class Train:
    lrs: LRSpec = field(default_factory=SuggestedLR)
    n_cycle: int = 1
    cycle_len: int | None = None
    cycle_mult: int = 1
    until_overfit: bool = False  # n_cycle is the most; stop when a cycle is worse, keep the best

    def describe(self) -> str:
        if self.cycle_len is None:
            text = f"Train {self.n_cycle} epoch{'s' if self.n_cycle != 1 else ''}"
            return text + (" until it over-fits" if self.until_overfit else "")
        epochs = sum(self.cycle_len * self.cycle_mult ** i for i in range(self.n_cycle))
        mult = f", cycle_mult {self.cycle_mult}" if self.cycle_mult != 1 else ""
        if self.until_overfit:
            return (f"Train until it over-fits: up to {self.n_cycle} cycles of {self.cycle_len} epoch{mult} "
                    f"(at most {epochs} epochs), keeping the best cycle")
        return f"Train {self.n_cycle} cycles of {self.cycle_len} epoch{mult} ({epochs} epochs)"


@dataclass(frozen=True)
class Evaluate:
    tta: bool = True

    def describe(self) -> str:
        return "Evaluate with TTA" if self.tta else "Evaluate"


Stage = Union[LRFind, Freeze, Unfreeze, SetPrecompute, Train, Evaluate]
STAGE_TYPES: dict[str, type] = {cls.__name__: cls for cls in (LRFind, Freeze, Unfreeze, SetPrecompute, Train, Evaluate)}


@dataclass(frozen=True)
class Recipe:
    name: str
    stages: tuple[Stage, ...]

    def scaled(self, epochs_scale: float) -> Recipe:
        """The same recipe with fewer (or more) cycles and lr_find iterations, for quick runs."""
        stages: list[Stage] = []
        for stage in self.stages:
            if isinstance(stage, Train):
                stage = replace(stage, n_cycle=max(1, round(stage.n_cycle * epochs_scale)))
            elif isinstance(stage, LRFind):
                stage = replace(stage, num_it=max(20, round(stage.num_it * epochs_scale)))
            stages.append(stage)
        return Recipe(self.name, tuple(stages))

    def with_until_overfit(self, on: bool) -> Recipe:
        """The same recipe with every Train stage's until_overfit set to `on`."""
        return Recipe(self.name, tuple(replace(s, until_overfit=on) if isinstance(s, Train) else s
                                       for s in self.stages))

    # ----- files --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "stages": [stage_to_dict(s) for s in self.stages]}

    @classmethod
    def from_dict(cls, raw: Any) -> Recipe:
        if not isinstance(raw, dict):
            raise RecipeError("a recipe must be an object with 'name' and 'stages'")
        unknown = set(raw) - {"name", "stages"}
        if unknown:
            raise RecipeError(f"unknown field {sorted(unknown)[0]!r} in the recipe (expected name, stages)")
        stages = raw.get("stages")
        if not isinstance(stages, list) or not stages:
            raise RecipeError("'stages' must be a non-empty list")
        if len(stages) > 1000:
            raise RecipeError(f"'stages' has {len(stages)} stages; a recipe has at most 1000")
        return cls(_name(raw.get("name", "recipe")),
                   tuple(stage_from_dict(s, f"stages[{i}]") for i, s in enumerate(stages)))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise RecipeError(f"cannot read the recipe file {path}: {exc.strerror}") from None
        if len(data) > MAX_FILE_BYTES:
            raise RecipeError(f"{path} is over {MAX_FILE_BYTES // 1_000_000} MB: not a recipe")
        try:
            raw = json.loads(data.decode("utf-8"))
        except RecursionError:
            raise RecipeError(f"{path} is nested too deeply to be a recipe") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise RecipeError(f"{path} is not valid JSON: {str(exc)[:200]}") from None
        return cls.from_dict(raw)


def stage_to_dict(stage: Stage) -> dict[str, Any]:
    out: dict[str, Any] = {"stage": type(stage).__name__}
    for key, value in asdict(stage).items():
        if isinstance(getattr(stage, key), SuggestedLR):
            value = {"suggestion": value["suggestion"], "divisors": list(value["divisors"]),
                     "fallback": value["fallback"]}
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def _shown(value: Any) -> str:
    """A value for a message: short, with control characters escaped."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or not value.isprintable():
        raise RecipeError(f"name must be printable text of 1 to {MAX_NAME} characters (got {_shown(value)})")
    return value


def _number(value: Any, where: str, positive: bool = True, most: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0) or value > most:
        bound = f" up to {most:g}" if math.isfinite(most) else ""
        raise RecipeError(f"{where} must be a positive number{bound} (got {_shown(value)})")
    return float(value)


def _per_group(values: Any, where: str, most: float = math.inf) -> tuple[float, ...]:
    """One number for every layer group, or one for all: a list of 1 or N_GROUPS."""
    if not isinstance(values, list) or len(values) not in (1, N_GROUPS):
        raise RecipeError(f"{where} must be a list of 1 or {N_GROUPS} numbers, one per layer group "
                          f"(got {_shown(values)})")
    return tuple(_number(v, where, most=most) for v in values)


def _lr_spec(value: Any, where: str) -> LRSpec:
    if isinstance(value, dict):
        unknown = set(value) - {"suggestion", "divisors", "fallback"}
        if unknown:
            raise RecipeError(f"unknown field {where}.{sorted(unknown)[0]}")
        name = value.get("suggestion", DEFAULT_SUGGESTION)
        if name not in SUGGESTION_NAMES:
            raise RecipeError(f"{where}.suggestion must be one of {', '.join(SUGGESTION_NAMES)} (got {name!r})")
        return SuggestedLR(name, _per_group(value.get("divisors", [1.0]), f"{where}.divisors"),
                           _number(value.get("fallback", 1e-2), f"{where}.fallback", most=MAX_LR))
    if isinstance(value, list):
        return _per_group(value, where, most=MAX_LR)
    return _number(value, where, most=MAX_LR)


def stage_from_dict(raw: Any, where: str = "stage") -> Stage:
    if not isinstance(raw, dict) or "stage" not in raw:
        raise RecipeError(f"{where} must be an object with a 'stage' field")
    kind = raw["stage"]
    cls = STAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise RecipeError(f"{where}.stage {_shown(kind)} is not one of {', '.join(STAGE_TYPES)}")
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key != "stage" and key not in known:
            raise RecipeError(f"unknown field {where}.{_shown(key)} for a {kind} stage "
                              f"(known: {', '.join(sorted(known)) or 'none'})")
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        here = f"{where}.{key}"
        if key == "stage":
            continue
        if key == "lrs":
            kwargs[key] = _lr_spec(value, here)
        elif key in ("start_lr", "end_lr"):
            kwargs[key] = _number(value, here, most=100 * MAX_LR)
        elif key in MAX_COUNT and (key != "cycle_len" or value is not None):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT[key]:
                raise RecipeError(f"{here} must be a whole number from 1 to {MAX_COUNT[key]} (got {_shown(value)})")
            kwargs[key] = value
        elif key == "ratios":
            kwargs[key] = None if value is None else _per_group(value, here)
        elif key in ("on", "tta", "until_overfit"):
            if not isinstance(value, bool):
                raise RecipeError(f"{here} must be true or false (got {value!r})")
            kwargs[key] = value
        else:
            kwargs[key] = value
    stage = cls(**kwargs)
    if isinstance(stage, Train):
        epochs = SGDR(stage.n_cycle, stage.cycle_len, stage.cycle_mult).total_epochs()
        if epochs > MAX_EPOCHS:
            raise RecipeError(f"{where} would train {epochs} epochs; a stage trains at most {MAX_EPOCHS}")
    if isinstance(stage, LRFind) and stage.start_lr >= stage.end_lr:
        raise RecipeError(f"{where}.start_lr must be below end_lr")
    return stage


GROUP_RATIO = 3.0
"""Each layer group trains at this many times the lr of the group before it (the seed: 3x-10x;
fastai v2's slice(lr/9, lr)). Chosen by benchmarks/recipe_quality.py, see benchmarks/README.md."""
DIVISORS = (GROUP_RATIO ** 2, GROUP_RATIO, 1.0)


UNFROZEN_SWEEP = (1e-5, WHOLE_NETWORK_LR * DIVERGED_MARGIN, 42)
"""lesson1's check of the whole network's lr (start, end, batches): only whether the loss diverges
below WHOLE_NETWORK_LR x DIVERGED_MARGIN decides it, and a trained network's loss is flat below
1e-5; at the default sweep's 12.4 batches a decade this is 42 batches instead of about 78. Shorter
was measured and changed the pick: from 1e-4 in 24 batches, fm-tops3 seed 1 (losses near 0.03, so
4x its best is soon reached) "diverged" at 1.3e-2 and trained at 6.3e-3, 97.0% instead of 97.7%
(benchmarks/README.md, section 8)."""


def lesson1() -> Recipe:
    """The fast.ai lesson-1 recipe from the seed notes; the last stage trains until it over-fits."""
    return Recipe("lesson1", (
        SetPrecompute(True),
        LRFind(),
        Train(SuggestedLR(), n_cycle=2),
        SetPrecompute(False),
        Train(SuggestedLR(), n_cycle=3, cycle_len=1),
        Unfreeze(),
        LRFind(*UNFROZEN_SWEEP, ratios=tuple(1 / d for d in DIVISORS)),
        Train(SuggestedLR(divisors=DIVISORS, fallback=WHOLE_NETWORK_LR), n_cycle=4, cycle_len=1, cycle_mult=2,
              until_overfit=True),
        Evaluate(tta=True),
    ))


BUILTIN_RECIPES = {"lesson1": lesson1}
