"""The window's jobs: module-level functions that run on the worker thread and return a frozen
result. Each takes its inputs as arguments (read on the GUI thread before it starts) and the
worker's `(callback, cancel)` last; `bind` makes one a `job(callback, cancel)` for the runner.

Engine modules are imported inside the functions: this module loads with the window, before torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from guiclassifier.workspace.engine import load_engine
from guiclassifier.workspace.settings import DataSettings, ModelKey, RunSettings

if TYPE_CHECKING:
    from guiclassifier.core.audit import AuditReport
    from guiclassifier.core.cancel import CancelToken
    from guiclassifier.core.checkpoint import CheckpointConfig
    from guiclassifier.core.data import ImageData, ScanReport
    from guiclassifier.core.events import Event
    from guiclassifier.core.export import Exported
    from guiclassifier.core.gradcam import Heatmap
    from guiclassifier.core.interpret import Interpretation
    from guiclassifier.core.learner import FitResult, Learner
    from guiclassifier.core.lr_finder import LRFindResult
    from guiclassifier.core.predict import Predictions
    from guiclassifier.core.recipe import Recipe
    from guiclassifier.core.recipe_runner import RecipeResult

Callback = Callable[["Event"], None]
R = TypeVar("R")
SPREAD_SEED = 1000  # lr_find sweeps after the first draw their batch orders from SPREAD_SEED + i


def bind(fn: Callable[..., R], *args: Any, **kwargs: Any) -> Callable[[Callback, CancelToken], R]:
    """`fn` with its inputs given: what JobRunner.start takes."""
    return partial(fn, *args, **kwargs)


# ----- results ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class EngineLoaded:
    pass


@dataclass(frozen=True)
class Scanned:
    data: ImageData
    typical_side: int | None  # the images' median shorter side, for the default image size
    rescan: bool


@dataclass(frozen=True)
class LRFound:
    learner: Learner
    key: ModelKey
    sweeps: tuple[LRFindResult, ...]  # the first, then any repeats with other batch orders


@dataclass(frozen=True)
class Trained:
    learner: Learner
    key: ModelKey
    result: FitResult


@dataclass(frozen=True)
class Refrozen:
    learner: Learner
    key: ModelKey


@dataclass(frozen=True)
class RecipeRan:
    learner: Learner
    key: ModelKey
    result: RecipeResult


@dataclass(frozen=True)
class Resumed:
    """An interrupted fit or recipe, finished: shown like one."""

    learner: Learner
    data: ImageData
    result: FitResult | RecipeResult


@dataclass(frozen=True)
class Interpreted:
    learner: Learner
    key: ModelKey
    interpretation: Interpretation


@dataclass(frozen=True)
class Audited:
    """A data check (core.audit) of the dataset as opened, with what the view needs beside it."""

    report: AuditReport  # `cancelled` when stopped: what was found until then
    classes: tuple[str, ...]
    root: str
    skipped: int  # files the scan could not read (the audit never sees them)
    seconds: float
    features: str  # whose features compared the images, for people
    random_features: bool  # an untrained network with random weights: copies and labels found less well
    rescanned: ImageData | None = None  # the folder as it is now, when files changed since it was scanned


@dataclass(frozen=True)
class Predicted:
    learner: Learner
    predictions: Predictions  # `cancelled` when stopped: the files done until then
    asked: int  # how many image files there were


@dataclass(frozen=True)
class HeatmapsMade:
    heatmaps: tuple[Heatmap, ...]  # in the order asked; fewer when stopped


@dataclass(frozen=True)
class ModelOpened:
    learner: Learner
    key: ModelKey
    path: str


# ----- jobs -------------------------------------------------------------------------------------

def load_engine_job(cb: Callback, cancel: CancelToken) -> EngineLoaded:
    load_engine()
    return EngineLoaded()


def scan_job(folder: str, settings: DataSettings, previous: ScanReport | None, cb: Callback,
             cancel: CancelToken) -> Scanned:
    from guiclassifier.core.data import ImageData
    from guiclassifier.core.image_size import typical_side

    data = ImageData.from_folder(folder, callbacks=cb, cancel=cancel, previous=previous, **settings.scan_kwargs())
    # A few image headers, read here rather than on the GUI thread: for the default size.
    return Scanned(data, typical_side([item.path for item in data.train_items]), previous is not None)


def lr_find_job(run: RunSettings, precompute: bool, ratio: float, sweeps: int, cb: Callback,
                cancel: CancelToken) -> LRFound:
    import torch

    learner = run.learner()
    if learner.frozen_groups == learner.n_groups - 1:
        learner.precompute = precompute
    # Unfrozen, the sweep keeps the groups' ratios, as training will.
    ratios = (1 / ratio ** 2, 1 / ratio, 1.0) if learner.frozen_groups == 0 else None
    results = [learner.lr_find(ratios=ratios, callbacks=cb, cancel=cancel)]
    for i in range(1, sweeps):  # other batch orders, for the spread band
        if cancel.cancelled:
            break
        with torch.random.fork_rng():
            torch.manual_seed(SPREAD_SEED + i)
            results.append(learner.lr_find(ratios=ratios, callbacks=None, cancel=cancel))
    return LRFound(learner, run.key, tuple(results))


def train_job(run: RunSettings, lrs: Sequence[float], n_cycle: int, cycle_len: int | None, cycle_mult: int,
              precompute: bool, until_overfit: bool, checkpoints: CheckpointConfig | None, cb: Callback,
              cancel: CancelToken) -> Trained:
    learner = run.learner()
    if learner.frozen_groups == learner.n_groups - 1:
        learner.precompute = precompute
    result = learner.fit(list(lrs), n_cycle, cycle_len, cycle_mult, callbacks=cb, cancel=cancel,
                         checkpoints=checkpoints, until_overfit=until_overfit)
    return Trained(learner, run.key, result)


def freeze_job(run: RunSettings, freeze: bool, cb: Callback, cancel: CancelToken) -> Refrozen:
    learner = run.learner()
    learner.freeze() if freeze else learner.unfreeze()
    return Refrozen(learner, run.key)


def recipe_job(run: RunSettings, recipe: Recipe, fresh: bool, checkpoints: CheckpointConfig | None,
               cb: Callback, cancel: CancelToken) -> RecipeRan:
    from guiclassifier.core.recipe_runner import run_recipe

    learner = run.learner(fresh)
    return RecipeRan(learner, run.key, run_recipe(learner, recipe, cb, cancel, checkpoints=checkpoints))


def resume_job(path: Path, payload: dict[str, Any], folder: str, settings: dict[str, Any], device: str,
               precision: str, checkpoints: CheckpointConfig, cb: Callback, cancel: CancelToken) -> Resumed:
    from guiclassifier.core.data import ImageData
    from guiclassifier.core.learner import Learner
    from guiclassifier.core.recipe_runner import resume_recipe

    data = ImageData.from_folder(folder, callbacks=cb, cancel=cancel, **settings)
    if (payload.get("context") or {}).get("recipe"):
        learner, result = resume_recipe(path, data, cb, cancel, checkpoints, device, payload, precision=precision)
    else:
        learner, result = Learner.resume(path, data, cb, cancel, checkpoints, device, payload, precision=precision)
    return Resumed(learner, data, result)


def interpret_job(run: RunSettings, tta: bool, cb: Callback, cancel: CancelToken) -> Interpreted:
    from guiclassifier.core.interpret import interpret

    learner = run.learner()
    return Interpreted(learner, run.key, interpret(learner, tta, cb, cancel))


def audit_job(run: RunSettings, settings: DataSettings, cb: Callback, cancel: CancelToken) -> Audited:
    """Check the dataset for copies, leaks, wrong labels and odd classes or images, as the folder is
    now: it is rescanned first (only changed files are decoded), since files may have been added or
    moved outside the app. Before any training this builds a pretrained learner from the model
    settings (not adopted: an untrained model is not the project's); its cached activations serve
    the next precompute."""
    import dataclasses
    import time

    from guiclassifier.core.audit import audit
    from guiclassifier.core.data import ImageData

    start = time.perf_counter()
    data = ImageData.from_folder(str(run.data.path), callbacks=cb, cancel=cancel, previous=run.data.report,
                                 **settings.scan_kwargs())
    rescanned = None if _items(data) == _items(run.data) else data
    if rescanned is not None:
        run = dataclasses.replace(run, data=rescanned)
    learner = run.learner()
    reused = learner is run.current
    features = f"the current model's features ({learner.arch})" if reused else \
        f"{learner.arch}'s features, {learner.weights_source.describe()}"
    report = audit(learner, cb, cancel)
    untrained_random = learner.weights_source.kind == "random" and not learner.history
    return Audited(report, tuple(run.data.classes), str(run.data.path), len(run.data.report.skipped),
                   time.perf_counter() - start, features, untrained_random, rescanned)


def _items(data: ImageData) -> tuple[tuple[tuple[str, int], ...], ...]:
    return tuple(tuple((i.path, i.label) for i in items) for items in (data.train_items, data.valid_items))


def predict_job(learner: Learner, files: Sequence[str], tta: bool, cb: Callback, cancel: CancelToken) -> Predicted:
    from guiclassifier.core.predict import predict_files

    ensure_reference(learner, cb, cancel)
    return Predicted(learner, predict_files(learner, files, tta, learner.reference, cb, cancel), len(files))


def heatmap_job(learner: Learner, paths: Sequence[str], cb: Callback, cancel: CancelToken) -> HeatmapsMade:
    from guiclassifier.core.gradcam import heatmaps

    return HeatmapsMade(tuple(heatmaps(learner, paths, callbacks=cb, cancel=cancel)))


def open_model_job(path: str, data: ImageData | None, key: ModelKey, precision: str, cb: Callback,
                   cancel: CancelToken) -> ModelOpened:
    from guiclassifier.core.learner import Learner

    learner = Learner.load(path, device=key.device, precision=precision)
    if data is not None and tuple(data.classes) == learner.classes:
        learner.attach_data(data)
    return ModelOpened(learner, ModelKey(learner.arch, key.weights, key.device), path)


def export_job(learner: Learner, path: str, fmt: str, cb: Callback, cancel: CancelToken) -> Exported:
    """Export, then prove the file answers like the app (core.parity) before it is written."""
    from guiclassifier.core.export import export_model

    return export_model(learner, path, fmt, cancel=cancel)


def ensure_reference(learner: Learner, cb: Callback | None, cancel: CancelToken) -> None:
    """Give the learner its picture of the training images (for "unlike the training images"
    warnings) if it has none and its data is attached; the window and the CLI both use this."""
    if learner.reference is None and learner.data is not None:
        from guiclassifier.core.predict import reference_from_training

        learner.reference = reference_from_training(learner, cb, cancel)
