"""Stages (one-click steps) and recipes (named lists of stages), with the built-in lesson1.

The window's buttons, the guided recipe and the command line all run these same stage objects.
A recipe is saved as human-editable JSON and validated on load; errors name the bad field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Union

from guiclassifier.core.cancel import Cancelled, CancelToken
from guiclassifier.core.checkpoint import CheckpointConfig, read_checkpoint
from guiclassifier.core.data import ImageData
from guiclassifier.core.errors import GuiClassifierError
from guiclassifier.core.events import Callback, Emitter, StageEnded, StageStarted
from guiclassifier.core.learner import Evaluation, FitResult, Learner
from guiclassifier.core.lr_finder import SUGGESTION_NAMES, LRFindResult


class RecipeError(GuiClassifierError):
    """A recipe file or stage is invalid; the message names the field."""


@dataclass(frozen=True)
class SuggestedLR:
    """The last lr_find's suggestion, divided per layer group (e.g. divisors 100, 10, 1)."""

    suggestion: str = "valley"
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

    def describe(self) -> str:
        if self.cycle_len is None:
            return f"Train {self.n_cycle} epoch{'s' if self.n_cycle != 1 else ''}"
        epochs = sum(self.cycle_len * self.cycle_mult ** i for i in range(self.n_cycle))
        mult = f", cycle_mult {self.cycle_mult}" if self.cycle_mult != 1 else ""
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
        return cls(str(raw.get("name", "recipe")),
                   tuple(stage_from_dict(s, f"stages[{i}]") for i, s in enumerate(stages)))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        try:
            raw = json.loads(Path(path).read_text())
        except OSError as exc:
            raise RecipeError(f"cannot read the recipe file {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise RecipeError(f"{path} is not valid JSON: {exc}") from None
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


def _number(value: Any, where: str, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0):
        raise RecipeError(f"{where} must be a positive number (got {value!r})")
    return float(value)


def _lr_spec(value: Any, where: str) -> LRSpec:
    if isinstance(value, dict):
        unknown = set(value) - {"suggestion", "divisors", "fallback"}
        if unknown:
            raise RecipeError(f"unknown field {where}.{sorted(unknown)[0]}")
        name = value.get("suggestion", "valley")
        if name not in SUGGESTION_NAMES:
            raise RecipeError(f"{where}.suggestion must be one of {', '.join(SUGGESTION_NAMES)} (got {name!r})")
        divisors = value.get("divisors", [1.0])
        if not isinstance(divisors, list) or not divisors:
            raise RecipeError(f"{where}.divisors must be a list of numbers")
        return SuggestedLR(name, tuple(_number(d, f"{where}.divisors") for d in divisors),
                           _number(value.get("fallback", 1e-2), f"{where}.fallback"))
    if isinstance(value, list):
        if not value:
            raise RecipeError(f"{where} must not be empty")
        return tuple(_number(v, where) for v in value)
    return _number(value, where)


def stage_from_dict(raw: Any, where: str = "stage") -> Stage:
    if not isinstance(raw, dict) or "stage" not in raw:
        raise RecipeError(f"{where} must be an object with a 'stage' field")
    kind = raw["stage"]
    cls = STAGE_TYPES.get(kind)
    if cls is None:
        raise RecipeError(f"{where}.stage {kind!r} is not one of {', '.join(STAGE_TYPES)}")
    known = {f.name for f in fields(cls)}
    for key in raw:
        if key != "stage" and key not in known:
            raise RecipeError(f"unknown field {where}.{key} for a {kind} stage "
                              f"(known: {', '.join(sorted(known)) or 'none'})")
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        here = f"{where}.{key}"
        if key == "stage":
            continue
        if key == "lrs":
            kwargs[key] = _lr_spec(value, here)
        elif key in ("start_lr", "end_lr"):
            kwargs[key] = _number(value, here)
        elif key in ("num_it", "n_cycle", "cycle_mult") or (key == "cycle_len" and value is not None):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RecipeError(f"{here} must be a whole number of at least 1 (got {value!r})")
            kwargs[key] = value
        elif key == "ratios":
            kwargs[key] = None if value is None else tuple(_number(v, here) for v in value)
        elif key in ("on", "tta"):
            if not isinstance(value, bool):
                raise RecipeError(f"{here} must be true or false (got {value!r})")
            kwargs[key] = value
        else:
            kwargs[key] = value
    return cls(**kwargs)


def lesson1() -> Recipe:
    """The fast.ai lesson-1 recipe from the seed notes."""
    return Recipe("lesson1", (
        SetPrecompute(True),
        LRFind(),
        Train(SuggestedLR("valley"), n_cycle=2),
        SetPrecompute(False),
        Train(SuggestedLR("valley"), n_cycle=3, cycle_len=1),
        Unfreeze(),
        LRFind(ratios=(0.01, 0.1, 1.0)),
        Train(SuggestedLR("valley", divisors=(100.0, 10.0, 1.0), fallback=1e-3), n_cycle=3, cycle_len=1,
              cycle_mult=2),
        Evaluate(tta=True),
    ))


BUILTIN_RECIPES = {"lesson1": lesson1}


# ----- running ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RecipeResult:
    completed: int
    total: int
    cancelled: bool
    stopped_reason: str
    evaluation: Evaluation | None
    ran: tuple[dict[str, Any], ...]


def run_stage(learner: Learner, stage: Stage, last_lr_find: LRFindResult | None,
              callbacks: Callback | Sequence[Callback] | None = None, cancel: CancelToken | None = None,
              checkpoints: CheckpointConfig | None = None, context: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
    """Run one stage; returns (its result, a record of what actually ran, lrs resolved)."""
    record = stage_to_dict(stage)
    if isinstance(stage, LRFind):
        result = learner.lr_find(stage.start_lr, stage.end_lr, stage.num_it, stage.ratios, callbacks, cancel)
        record["suggestions"] = dict(result.suggestions)
        return result, record
    if isinstance(stage, Freeze):
        learner.freeze()
        return None, record
    if isinstance(stage, Unfreeze):
        learner.unfreeze()
        return None, record
    if isinstance(stage, SetPrecompute):
        if stage.on and learner.frozen_groups < learner.n_groups - 1:
            learner.freeze()
        learner.precompute = stage.on
        return None, record
    if isinstance(stage, Train):
        lrs = stage.lrs.resolve(last_lr_find, learner.n_groups) if isinstance(stage.lrs, SuggestedLR) \
            else stage.lrs
        record["lrs_used"] = list(lrs) if isinstance(lrs, tuple) else lrs
        result = learner.fit(lrs, stage.n_cycle, stage.cycle_len, stage.cycle_mult, callbacks, cancel,
                             checkpoints, context)
        return result, record
    if isinstance(stage, Evaluate):
        evaluation = learner.evaluate(stage.tta, callbacks, cancel)
        record["accuracy"] = evaluation.accuracy
        return evaluation, record
    raise RecipeError(f"unknown stage {stage!r}")


def _summary(result: Any) -> str:
    if isinstance(result, FitResult):
        last = result.epochs[-1] if result.epochs else None
        tail = f", accuracy {last.accuracy:.1%}" if last else ""
        return result.message.rstrip(".") + tail
    if isinstance(result, LRFindResult):
        valley = result.suggested("valley")
        return f"suggested lr {valley:.2e} (valley)" if valley else result.stopped_reason
    if isinstance(result, Evaluation):
        return f"accuracy {result.accuracy:.1%} on {result.n} validation images"
    return "done"


def run_recipe(learner: Learner, recipe: Recipe, callbacks: Callback | Sequence[Callback] | None = None,
               cancel: CancelToken | None = None, start: int = 0, checkpoints: CheckpointConfig | None = None,
               last: LRFindResult | None = None) -> RecipeResult:
    """Run the stages in order from `start`; a stop, a divergence or a cancel ends the run.
    With `checkpoints`, training stages write checkpoints that resume_recipe can go on from;
    `last` is the lr_find result that suggested-lr stages use (for a run started midway)."""
    emit = Emitter(callbacks)
    cancel = cancel or CancelToken()
    total = len(recipe.stages)
    evaluation: Evaluation | None = None
    ran: list[dict[str, Any]] = []
    cancelled, reason = False, ""
    done = start
    for index in range(start, total):
        stage = recipe.stages[index]
        if cancel.cancelled:
            cancelled, reason = True, "stopped by the user"
            break
        emit(StageStarted(index, total, stage.describe()))
        try:
            context = {"recipe": recipe.to_dict(), "stage": index,
                       "lr_find": dict(last.suggestions) if last is not None else None}
            result, record = run_stage(learner, stage, last, emit, cancel, checkpoints, context)
        except Cancelled:
            result, record = None, stage_to_dict(stage)
            cancelled = True
        if isinstance(result, LRFindResult):
            last = result
            cancelled = cancelled or result.cancelled
        if isinstance(result, FitResult):
            cancelled = cancelled or result.cancelled
            if result.failed:
                reason = result.message
        if isinstance(result, Evaluation):
            evaluation = result
        ran.append(record)
        emit(StageEnded(index, total, stage.describe(), _summary(result) if result is not None else
                        ("stopped" if cancelled else "done"), cancelled))
        if cancelled:
            reason = reason or "stopped by the user"
            break
        if reason:
            break
        done = index + 1
    learner.history.append({"kind": "recipe", "name": recipe.name, "stages_run": ran,
                            "completed": done - start, "cancelled": cancelled, "stopped": reason})
    return RecipeResult(done - start, total - start, cancelled, reason, evaluation, tuple(ran))


def resume_recipe(path: str | Path, data: ImageData, callbacks: Callback | Sequence[Callback] | None = None,
                  cancel: CancelToken | None = None, checkpoints: CheckpointConfig | None = None,
                  device: str = "auto", payload: dict[str, Any] | None = None) -> tuple[Learner, RecipeResult]:
    """Go on with the recipe whose training stage wrote the checkpoint at `path`: that stage
    finishes on its own schedule, then the recipe continues with the next stage. `payload`: the
    checkpoint, when the caller has already read it."""
    payload = payload if payload is not None else read_checkpoint(Path(path))
    context = payload.get("context")
    if not isinstance(context, dict) or "recipe" not in context:
        raise RecipeError(f"{path} was not written by a recipe run; resume it with Learner.resume")
    recipe = Recipe.from_dict(context["recipe"])
    index = int(context["stage"])
    last = LRFindResult((), (), (), dict(context["lr_find"])) if context.get("lr_find") else None
    emit = Emitter(callbacks)
    stage = recipe.stages[index]
    emit(StageStarted(index, len(recipe.stages), f"{stage.describe()} (resumed)"))
    learner, fit = Learner.resume(path, data, emit, cancel, checkpoints, device, payload)
    emit(StageEnded(index, len(recipe.stages), stage.describe(), _summary(fit), fit.cancelled))
    if fit.cancelled or fit.failed:
        return learner, RecipeResult(0, len(recipe.stages) - index, fit.cancelled,
                                     fit.message if fit.failed else "stopped by the user", None, ())
    rest = run_recipe(learner, recipe, emit, cancel, index + 1, checkpoints, last)
    return learner, replace(rest, completed=rest.completed + 1, total=rest.total + 1)
