"""Running a recipe's stages on a Learner, with events, cancellation and checkpoints to resume from.

(core.recipe defines the stages and recipes; it needs no torch, so the window lists recipes
before torch has loaded.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from guiclassifier.core.cancel import Cancelled, CancelToken
from guiclassifier.core.checkpoint import CheckpointConfig, read_checkpoint
from guiclassifier.core.data import ImageData
from guiclassifier.core.distributed import DistInfo
from guiclassifier.core.events import Callback, Emitter, StageEnded, StageStarted
from guiclassifier.core.learner import Evaluation, FitResult, Learner
from guiclassifier.core.lr_finder import LRFindResult
from guiclassifier.core.recipe import (
    Evaluate,
    Freeze,
    LRFind,
    Recipe,
    RecipeError,
    SetPrecompute,
    Stage,
    SuggestedLR,
    Train,
    Unfreeze,
    stage_to_dict,
)


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
        result, used = train_with_rollback(learner, stage, lrs, callbacks, cancel, checkpoints, context)
        record["lrs_used"] = list(used) if isinstance(used, tuple) else used
        if result.kept_cycle is not None:
            record["kept_cycle"] = result.kept_cycle
        return result, record
    if isinstance(stage, Evaluate):
        evaluation = learner.evaluate(stage.tta, callbacks, cancel)
        record["accuracy"] = evaluation.accuracy
        return evaluation, record
    raise RecipeError(f"unknown stage {stage!r}")


def train_with_rollback(learner: Learner, stage: Train, lrs: Any, callbacks: Any, cancel: CancelToken | None,
                        checkpoints: CheckpointConfig | None, context: dict[str, Any] | None
                        ) -> tuple[FitResult, Any]:
    """Run a Train stage; if it collapses to chance (Learner.fit stops on that), or if a stage
    trained until it over-fits keeps weights worse than it started from (validation loss), roll
    back and retry once at a tenth of the lr; if that fails too, keep the weights from before the
    stage and go on. Returns (result, lrs used)."""
    before = learner.snapshot()
    start = _start_loss(learner, stage, cancel)

    def fit(rates: Any) -> FitResult:
        return learner.fit(rates, stage.n_cycle, stage.cycle_len, stage.cycle_mult, callbacks, cancel,
                           checkpoints, context, stage.until_overfit)

    result = fit(lrs)
    failure = _failure(result, start, lrs)
    if failure is None:
        return result, lrs
    first = f"{failure}: rolled back and trained again at a tenth of it."
    learner.restore(before)
    lower = lrs / 10 if isinstance(lrs, float) else tuple(lr / 10 for lr in lrs)
    retry = fit(lower)
    if _failure(retry, start, lower) is not None:
        learner.restore(before)
        again = "collapsed" if retry.collapsed else "ended worse than it began"
        return replace(retry, collapsed=False, message=f"{first} That {again} too, so the weights from before "
                                                       "this stage were kept."), lower
    return replace(retry, message=f"{first} {retry.message}"), lower


def _start_loss(learner: Learner, stage: Train, cancel: CancelToken | None) -> float | None:
    """The validation loss a stage trained until it over-fits starts from (it must end below it)."""
    if not stage.until_overfit:
        return None
    evaluation = learner.evaluate(False, None, cancel)
    return None if evaluation.cancelled or not math.isfinite(evaluation.loss) else evaluation.loss


def _failure(result: FitResult, start: float | None, lrs: Any) -> str | None:
    """Why a finished fit must be rolled back, or None."""
    if result.collapsed:
        return f"The first try collapsed at lr {_lr_text(lrs)} ({result.epochs[-1].accuracy:.1%} accuracy)"
    if start is None or result.cancelled or result.failed or not result.epochs:
        return None
    kept = next((c.valid_loss for c in result.cycles if c.cycle == result.kept_cycle), result.epochs[-1].valid_loss)
    if kept > start:
        return (f"At lr {_lr_text(lrs)} the best this stage kept was worse than where it began (validation loss "
                f"{kept:.4f} against {start:.4f})")
    return None


def _lr_text(lrs: Any) -> str:
    return f"{lrs:.2e}" if isinstance(lrs, float) else ", ".join(f"{lr:.2e}" for lr in lrs)


def _summary(result: Any) -> str:
    if isinstance(result, FitResult):
        final = result.final_accuracy
        tail = f", accuracy {final:.1%}" if final is not None else ""
        return result.message.rstrip(".") + tail
    if isinstance(result, LRFindResult):
        lr = result.suggested()
        return f"suggested lr {result.explain()}" if lr else result.stopped_reason
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
        if learner.stop_agreed(cancel):  # under torchrun, every process gives the same answer
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
            cancelled = cancelled or result.cancelled
            evaluation = None if result.cancelled else result
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
                  device: str = "auto", payload: dict[str, Any] | None = None,
                  dist_info: DistInfo | None = None, precision: str = "auto") -> tuple[Learner, RecipeResult]:
    """Go on with the recipe whose training stage wrote the checkpoint at `path`: that stage
    finishes on its own schedule, then the recipe continues with the next stage. `payload`: the
    checkpoint, when the caller has already read it; `dist_info`: under torchrun."""
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
    learner, fit = Learner.resume(path, data, emit, cancel, checkpoints, device, payload, dist_info, precision)
    emit(StageEnded(index, len(recipe.stages), stage.describe(), _summary(fit), fit.cancelled))
    if fit.cancelled or fit.failed:
        return learner, RecipeResult(0, len(recipe.stages) - index, fit.cancelled,
                                     fit.message if fit.failed else "stopped by the user", None, ())
    rest = run_recipe(learner, recipe, emit, cancel, index + 1, checkpoints, last)
    return learner, replace(rest, completed=rest.completed + 1, total=rest.total + 1)
