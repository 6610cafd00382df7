"""The Learner: fastai 0.7's workflow (freeze, precompute, lr_find, SGDR fit, TTA) on plain PyTorch.

Every long call is synchronous, reports through `callbacks` (plain callables receiving events from
`core.events`) and checks `cancel` between batches. A cancelled or diverged fit returns normally
with a result that says so, and the model is left usable.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from torch.utils.data import DataLoader

from guiclassifier.core.cancel import Cancelled, CancelToken
from guiclassifier.core.collapse import accuracy_before, collapse_message, is_collapse, majority_share
from guiclassifier.core.checkpoint import (
    CheckpointConfig,
    read_checkpoint,
    rng_from_payload,
    rng_to_payload,
    write_checkpoint,
)
from guiclassifier.core.data import ImageData, Item
from guiclassifier.core.device import resolve_device, to_device, uses_channels_last
from guiclassifier.core.distributed import (
    DistInfo,
    average_gradients,
    barrier,
    broadcast_state,
    shard,
    sum_across,
)
from guiclassifier.core.errors import ImageError, ModelFileError, TrainingError
from guiclassifier.core.events import (
    BatchEnded,
    Callback,
    CycleEnded,
    Emitter,
    EpochEnded,
    EpochStarted,
    Event,
    FilePredicted,
    FileSkipped,
    FitEnded,
    FitStarted,
    PredictProgress,
)
from guiclassifier.core.lr_finder import LRFindResult, run_lr_find
from guiclassifier.core.models import N_GROUPS, Classifier, build_classifier
from guiclassifier.core.overfit import CycleJudge, CycleRecord, stop_message
from guiclassifier.core.precompute import Activations, activations, body_digest
from guiclassifier.core.progress import EtaClock
from guiclassifier.core.rng import get_rng_state, seed_everything, set_rng_state
from guiclassifier.core.schedules import SGDR, group_lrs
from guiclassifier.core.text import plural
from guiclassifier.core.weights import WeightsSource

OPTIMIZERS = ("sgd", "adamw")
TTA_AUGMENTED = 4
TTA_SEED = 1234
"""TTA draws its augmentations from a fixed seed: the same image always gets the same answer
(see core.predict, the one prediction path)."""


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    valid_loss: float
    accuracy: float
    seconds: float
    lrs: tuple[float, ...]


def _is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or a CPU allocator that could not allocate."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text


@dataclass(frozen=True)
class FitResult:
    epochs: tuple[EpochRecord, ...]
    cancelled: bool = False
    diverged: bool = False
    message: str = ""
    out_of_memory: bool = False
    cycles: tuple[CycleRecord, ...] = ()
    kept_cycle: int | None = None  # until_overfit: the cycle whose weights the model now has
    stopped_early: bool = False  # until_overfit: a cycle was worse than the best one
    collapsed: bool = False  # accuracy fell to chance: stopped, the last good weights kept

    @property
    def epochs_done(self) -> int:
        return len(self.epochs)

    @property
    def final_accuracy(self) -> float | None:
        """Validation accuracy of the weights the fit left (the kept cycle's, if one was kept)."""
        if self.kept_cycle is not None:
            return next(c.accuracy for c in self.cycles if c.cycle == self.kept_cycle)
        kept = self.epochs[:-1] if self.collapsed else self.epochs  # the collapsed epoch was undone
        return kept[-1].accuracy if kept else None

    @property
    def failed(self) -> bool:
        """Stopped by a fault (diverged, collapsed, out of memory); `message` says what was kept."""
        return self.diverged or self.out_of_memory or self.collapsed


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float
    confusion: tuple[tuple[int, ...], ...]  # rows: actual class, columns: predicted class
    n: int
    tta: bool


@dataclass
class Snapshot:
    """Everything lr_find may change, to put back afterwards."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    scaler: dict[str, Any]
    rng: dict[str, Any]
    training: bool


@dataclass
class _Smoother:
    """Debiased exponential moving average, as fastai shows the training loss."""

    beta: float = 0.98
    avg: float = 0.0
    n: int = 0

    def add(self, value: float) -> float:
        self.n += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * value
        return self.avg / (1 - self.beta ** self.n)


@dataclass
class _Running:
    """Sum and count, for epoch means."""

    total: float = 0.0
    n: int = 0

    def add(self, value: float, count: int) -> None:
        self.total += value * count
        self.n += count

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan


class Learner:
    """A classifier, its dataset (optional for prediction-only use), and how to train it."""

    def __init__(self, model: Classifier, arch: str, classes: Sequence[str], data: ImageData | None = None, *,
                 size: int | None = None, augment: str = "side_on", max_zoom: float = 1.1,
                 precompute: bool = False, device: str | torch.device = "auto", opt: str = "adamw",
                 momentum: float = 0.9, wd: float | None = None, mixed_precision: bool | None = None,
                 bn_freeze: bool = False, train_bn: bool = True, dist_info: DistInfo | None = None,
                 weights_source: WeightsSource | None = None, history: list[dict[str, Any]] | None = None,
                 cache_dir: str | Path | None = None) -> None:
        if opt not in OPTIMIZERS:
            raise TrainingError(f"unknown optimizer {opt!r}: choose one of {', '.join(OPTIMIZERS)}")
        self.model = model
        self.arch = arch
        self.classes = tuple(classes)
        self.data = data
        self.size = data.size if data is not None else (size or 224)
        self.augment = data.augment if data is not None else augment
        self.max_zoom = data.max_zoom if data is not None else max_zoom
        self.device = resolve_device(device)
        self.opt_name = opt
        self.momentum = momentum
        self.wd = wd if wd is not None else (1e-4 if opt == "sgd" else 1e-2)
        self.amp = self.device.type == "cuda" if mixed_precision is None else mixed_precision
        self.weights_source = weights_source or WeightsSource("random", "random")
        self.history: list[dict[str, Any]] = list(history or [])
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.model.set_bn_modes(bn_freeze, train_bn)
        self.model.to(self.device, memory_format=torch.channels_last if uses_channels_last(self.device)
                      else torch.preserve_format)
        self.dist = dist_info
        broadcast_state(self.model, dist_info)
        self.criterion = nn.CrossEntropyLoss()
        self._optimizer: torch.optim.Optimizer | None = None
        self._scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self._activations: dict[str, Activations] = {}
        self._digest: str | None = None
        self._digest_version = -1
        self._body_version = 0  # bumped whenever the body's weights may have changed
        self._precompute = False
        self.reference: Any = None  # core.predict.FeatureReference: what training images look like
        if data is not None and tuple(data.classes) != self.classes:
            raise TrainingError(f"the dataset's classes {list(data.classes)} differ from the model's "
                                f"{list(self.classes)}")
        self.precompute = precompute

    # ----- construction ---------------------------------------------------------------------

    @classmethod
    def pretrained(cls, arch: str, data: ImageData, precompute: bool = False,
                   weights: str | Path | None = "auto", seed: int | None = None, **kwargs: Any) -> Learner:
        """A new learner on `data` with ImageNet weights (or a weights file, or None for random),
        body frozen as in fastai's ConvLearner.pretrained. `seed` defaults to the data's seed."""
        seed_everything(data.seed if seed is None else seed)
        model, source = build_classifier(arch, data.c, weights)
        model.freeze_to(N_GROUPS - 1)
        return cls(model, arch, data.classes, data, precompute=precompute, weights_source=source, **kwargs)

    @classmethod
    def load(cls, path: str | Path, data: ImageData | None = None, **kwargs: Any) -> Learner:
        """A learner from a model file saved with `save` (read without running any code)."""
        from guiclassifier.core.modelfile import read_model_file

        return read_model_file(Path(path), data=data, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write weights, classes, architecture, size, normalisation and history atomically."""
        from guiclassifier.core.modelfile import write_model_file

        return write_model_file(self, Path(path))

    # ----- layer groups, freezing and precompute ---------------------------------------------

    @property
    def n_groups(self) -> int:
        return N_GROUPS

    @property
    def frozen_groups(self) -> int:
        return self.model.frozen_groups

    def freeze_to(self, n: int) -> None:
        self.model.freeze_to(n)
        if n < N_GROUPS - 1 and self._precompute:
            self._precompute = False

    def freeze(self) -> None:
        """Only the head trains."""
        self.freeze_to(N_GROUPS - 1)

    def unfreeze(self) -> None:
        """Every layer group trains; precompute is turned off (the body's output will change)."""
        self.freeze_to(0)

    @property
    def bn_freeze(self) -> bool:
        """Body BatchNorm statistics stay fixed even when unfrozen (fastai 0.7's bn_freeze)."""
        return self.model.bn_freeze

    @bn_freeze.setter
    def bn_freeze(self, on: bool) -> None:
        self.model.set_bn_modes(on, self.model.train_bn)

    @property
    def train_bn(self) -> bool:
        """Frozen groups' BatchNorm layers train (fastai v2's train_bn)."""
        return self.model.train_bn

    @train_bn.setter
    def train_bn(self, on: bool) -> None:
        self.model.set_bn_modes(self.model.bn_freeze, on)

    def describe_trainable(self) -> str:
        return {0: "all layers", 1: "upper body and head", 2: "head only"}[self.frozen_groups]

    @property
    def precompute(self) -> bool:
        return self._precompute

    @precompute.setter
    def precompute(self, on: bool) -> None:
        if on and self.frozen_groups < N_GROUPS - 1:
            raise TrainingError("precompute needs a frozen body: call freeze() first")
        self._precompute = bool(on)

    def attach_data(self, data: ImageData) -> None:
        """Use `data` from now on (same classes): new image size, batch size or augmentation."""
        if tuple(data.classes) != self.classes:
            raise TrainingError(f"the dataset's classes {list(data.classes)} differ from the model's "
                                f"{list(self.classes)}")
        if data is not self.data:
            self.data = data
            self.size, self.augment, self.max_zoom = data.size, data.augment, data.max_zoom
            self._activations.clear()

    def _require_data(self) -> ImageData:
        if self.data is None:
            raise TrainingError("this model has no dataset attached: open a dataset folder to train it")
        return self.data

    def _split_activations(self, split: str, emit: Emitter, cancel: CancelToken) -> Activations:
        data = self._require_data()
        if self._digest_version != self._body_version:
            digest = body_digest(self.model)
            if digest != self._digest:
                self._activations.clear()
            self._digest, self._digest_version = digest, self._body_version
        if split not in self._activations:
            items = data.train_items if split == "train" else data.valid_items
            main = self.dist is None or self.dist.is_main
            if not main:
                barrier(self.dist)  # rank 0 builds the shared cache entry; the others then read it
            self._activations[split] = activations(self.model, data, split, items, self.device, emit, cancel,
                                                   self.cache_dir, self._digest, self.amp)
            if main:
                barrier(self.dist)
        return self._activations[split]

    # ----- the training step (shared by fit and lr_find) ------------------------------------

    def optimizer(self) -> torch.optim.Optimizer:
        """One optimizer for the learner's life, a parameter group per layer group. Frozen
        parameters get no gradient, so the optimizer leaves them (and their decay) alone."""
        if self._optimizer is None:
            groups = [{"params": [p for m in g for p in m.parameters()]} for g in self.model.layer_groups]
            if self.opt_name == "sgd":
                self._optimizer = torch.optim.SGD(groups, lr=1e-3, momentum=self.momentum, weight_decay=self.wd)
            else:
                # fastai v2's Adam settings: a shorter memory of squared gradients, larger eps.
                self._optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), eps=1e-5,
                                                    weight_decay=self.wd)
        return self._optimizer

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from images, or from cached features when precompute is on."""
        return self.model.head(x) if self._precompute else self.model(x)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, lrs: Sequence[float]) -> float:
        """One optimisation step at the given per-group lrs; returns the batch loss. A non-finite
        loss is returned without stepping, so the weights stay as they were."""
        opt = self.optimizer()
        for group, lr in zip(opt.param_groups, lrs):
            group["lr"] = lr
        if not self.model.training:  # train() walks every module: a quarter of a cached head epoch
            self.model.train()
        with torch.autocast(self.device.type, enabled=self.amp):
            loss = self.criterion(self._forward(x), y)
        value = float(loss.item())
        if self.dist is not None:  # every process must see the same loss to decide the same
            value = sum_across([value], self.dist, self.device)[0] / self.dist.world_size
        if not math.isfinite(value):
            opt.zero_grad(set_to_none=True)
            return value
        if self.model.body_trains and not self._precompute:
            self._body_version += 1
        self._scaler.scale(loss).backward()
        average_gradients(self.model.parameters(), self.dist)
        self._scaler.step(opt)
        self._scaler.update()
        opt.zero_grad(set_to_none=True)
        return value

    def training_batches(self, cycle: bool = False, emit: Emitter | None = None,
                         cancel: CancelToken | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x, y) batches on the device for one epoch, or endlessly with `cycle`."""
        emit = emit or Emitter(None)
        cancel = cancel or CancelToken()
        data = self._require_data()
        pin = self.device.type == "cuda"
        while True:
            if self._precompute:
                source = self._split_activations("train", emit, cancel).batches(data.bs, True, self.dist)
            else:
                source = self._readable_batches(self._train_loader(pin), emit)
            for x, y in source:
                yield to_device(x, self.device), y.to(self.device, non_blocking=True)
            if not cycle:
                return

    @staticmethod
    def _readable_batches(loader: DataLoader, emit: Emitter) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x, y) of each batch; files that could not be read this time are reported and left out."""
        for batch in loader:
            for failed in batch.failed:
                emit(FileSkipped(failed.path, failed.reason, "training"))
            if batch.x is not None:
                yield batch.x, batch.y

    def _train_loader(self, pin: bool = False) -> DataLoader:
        """One epoch of augmented training images; with several processes, this one's shard."""
        data = self._require_data()
        if self.dist is None:
            return data.train_loader(augment=True, pin_memory=pin)
        # Every process draws the same permutation (same seed, same draws) and takes its shard.
        order = shard(torch.randperm(len(data.train_items)).tolist(), self.dist)
        seed = int(torch.randint(2**62, ()).item()) + self.dist.rank
        return data.loader([data.train_items[i] for i in order], data.train_tfm(), pin_memory=pin,
                           for_training=True, generator=torch.Generator().manual_seed(seed))

    def _n_train_batches(self, emit: Emitter, cancel: CancelToken) -> int:
        data = self._require_data()
        if self._precompute:
            return self._split_activations("train", emit, cancel).n_batches(data.bs, True, self.dist)
        n = len(shard(range(len(data.train_items)), self.dist))
        n -= 1 if n % data.bs == 1 and n > 1 else 0
        return -(-n // data.bs)

    def _validate(self, emit: Emitter, cancel: CancelToken) -> tuple[float, float]:
        """(valid loss, accuracy) on the validation set, without augmentation; with several
        processes each takes a share and the sums are combined."""
        probs, targets, loss = self._valid_outputs(emit, cancel, tta=False, progress=False,
                                                   sharded=self.dist is not None)
        n = len(targets)
        correct = float((probs.argmax(1) == targets).sum()) if n else 0.0
        loss_sum, correct, n = sum_across([loss * n if n else 0.0, correct, float(n)], self.dist, self.device)
        return (loss_sum / n, correct / n) if n else (math.nan, math.nan)

    # ----- snapshots (lr_find restores; fit keeps last good weights) ------------------------

    def snapshot(self) -> Snapshot:
        opt = self._optimizer
        return Snapshot(copy.deepcopy(self.model.state_dict()),
                        copy.deepcopy(opt.state_dict()) if opt is not None else None,
                        copy.deepcopy(self._scaler.state_dict()), get_rng_state(), self.model.training)

    def restore(self, snap: Snapshot) -> None:
        self.model.load_state_dict(snap.model)
        self._body_version += 1
        if snap.optimizer is not None:
            self.optimizer().load_state_dict(snap.optimizer)
        elif self._optimizer is not None:
            self._optimizer = None
        if snap.scaler:
            self._scaler.load_state_dict(snap.scaler)
        set_rng_state(snap.rng)
        self.model.train(snap.training)

    # ----- lr_find and fit ----------------------------------------------------------------

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
                ratios: Sequence[float] | None = None, callbacks: Callback | Sequence[Callback] | None = None,
                cancel: CancelToken | None = None) -> LRFindResult:
        """The lr range test; the learner is left exactly as it was (see core.lr_finder)."""
        self._require_data()
        result = run_lr_find(self, start_lr, end_lr, num_it, ratios, callbacks, cancel)
        self.history.append({"kind": "lr_find", "start_lr": start_lr, "end_lr": end_lr, "num_it": num_it,
                             "precompute": self._precompute, "trainable": self.describe_trainable(),
                             "suggestions": dict(result.suggestions), "stopped": result.stopped_reason})
        return result

    def fit(self, lrs: float | Sequence[float], n_cycle: int, cycle_len: int | None = None,
            cycle_mult: int = 1, callbacks: Callback | Sequence[Callback] | None = None,
            cancel: CancelToken | None = None, checkpoints: CheckpointConfig | None = None,
            checkpoint_context: dict[str, Any] | None = None, until_overfit: bool = False,
            _resume: dict[str, Any] | None = None) -> FitResult:
        """Train with SGDR: `n_cycle` cycles of `cycle_len` epochs growing by `cycle_mult`
        (without cycle_len: `n_cycle` epochs at a constant lr). `lrs`: one or one per group.
        `until_overfit`: `n_cycle` is the most; stop after the first cycle whose end is not better
        (validation loss) than the best so far, and keep the best cycle end's weights (see
        core.overfit). With `checkpoints`, a checkpoint is written at epoch ends (see
        core.checkpoint and Learner.resume); `checkpoint_context` is stored with them (a recipe's
        place, for one)."""
        skipped: dict[str, str] = {}  # path -> reason, for the closing message
        emit = Emitter(callbacks).also(
            lambda e: skipped.setdefault(e.path, e.reason) if isinstance(e, FileSkipped) else None)
        cancel = cancel or CancelToken()
        base_lrs = group_lrs(lrs, N_GROUPS)
        schedule = SGDR(n_cycle, cycle_len, cycle_mult)
        judge = CycleJudge(schedule)
        self.reference = None  # the features change with training
        total_epochs = schedule.total_epochs()
        records: list[EpochRecord] = []
        cancelled = diverged = out_of_memory = collapsed = False
        message = ""
        chance = majority_share([item.label for item in self.data.valid_items]) if self.data is not None else None
        reached = accuracy_before(self.history)
        fit_clock = EtaClock(1)
        last_good: dict[str, torch.Tensor] | None = None
        checkpoint_error = ""
        epoch = 0
        try:
            steps_per_epoch = self._n_train_batches(emit, cancel)
            if steps_per_epoch == 0:
                raise TrainingError("the training set has no usable batches")
            if self._precompute:
                self._split_activations("valid", emit, cancel)
            total_steps = total_epochs * steps_per_epoch
            clock = EtaClock(total_steps)
            emit(FitStarted(total_epochs, steps_per_epoch, base_lrs, n_cycle, cycle_len, cycle_mult,
                            self._precompute, N_GROUPS - self.frozen_groups))
            last_good = self._weights_copy()
            smoother = _Smoother()
            start_epoch = 0
            if _resume is not None:
                if _resume["steps_per_epoch"] != steps_per_epoch:
                    raise TrainingError("the dataset changed since the checkpoint was written "
                                        f"({_resume['steps_per_epoch']} batches per epoch then, "
                                        f"{steps_per_epoch} now): the run cannot go on where it was")
                start_epoch = int(_resume["epochs_done"])
                records = [EpochRecord(**{**r, "lrs": tuple(r["lrs"])}) for r in _resume["records"]]
                for r in records:
                    judge.add(r.epoch + 1, r.valid_loss, r.accuracy)
                judge.load_state_payload(_resume.get("best"))
                # The generators as they were at that epoch's end: the same batch order follows.
                set_rng_state(rng_from_payload(_resume["rng"]))
            step = start_epoch * steps_per_epoch
            for epoch in range(start_epoch, total_epochs):
                if until_overfit and judge.last_was_worse:  # resumed after the stopping cycle
                    break
                emit(EpochStarted(epoch, total_epochs))
                epoch_start = time.perf_counter()
                running = _Running()
                for batch, (x, y) in enumerate(self.training_batches(emit=emit, cancel=cancel)):
                    cancel.raise_if_cancelled()
                    mult = schedule.multiplier(step, steps_per_epoch)
                    step_lrs = tuple(lr * mult for lr in base_lrs)
                    loss = self.train_step(x, y, step_lrs)
                    if not math.isfinite(loss):
                        self.model.load_state_dict(last_good)
                        self._body_version += 1
                        self._optimizer = None  # momentum built on a diverging path is useless
                        diverged = True
                        message = (f"Training diverged in epoch {epoch + 1} (the loss became "
                                   f"{'NaN' if math.isnan(loss) else 'infinite'}): the weights from "
                                   f"{'the end of epoch ' + str(epoch) if epoch else 'before this fit'} "
                                   "were kept. Try a learning rate about 10x lower.")
                        raise _Stop()
                    step += 1
                    running.add(loss, len(y))
                    emit(BatchEnded(epoch, batch, steps_per_epoch, step, total_steps, loss,
                                    smoother.add(loss), step_lrs, len(y), clock.elapsed(), clock.eta(step)))
                broadcast_state(self.model, self.dist, buffers_only=True)
                valid_loss, accuracy = self._validate(emit, cancel)
                train_total, train_n = sum_across([running.total, running.n], self.dist, self.device)
                record = EpochRecord(epoch, train_total / train_n if train_n else math.nan, valid_loss, accuracy,
                                     time.perf_counter() - epoch_start, base_lrs)
                records.append(record)
                emit(EpochEnded(epoch, total_epochs, record.train_loss, valid_loss, accuracy, record.seconds,
                                clock.elapsed(), clock.eta(step)))
                if chance is not None and is_collapse(accuracy, reached, chance):
                    self._restore_state(last_good, None)  # momentum built on the way down is useless
                    collapsed = True
                    message = collapse_message(epoch, accuracy, chance, valid_loss,
                                               records[-2].valid_loss if len(records) > 1 else None)
                    raise _Stop()
                reached = max(reached or 0.0, accuracy)
                last_good = self._weights_copy()
                cycle = judge.add(epoch + 1, valid_loss, accuracy)
                stopping = until_overfit and judge.last_was_worse
                if cycle is not None and (cycle_len is not None or until_overfit):  # epochs aren't cycles
                    if until_overfit and cycle.best:
                        judge.keep(cycle, last_good, self.optimizer().state_dict())
                    emit(CycleEnded(cycle.cycle, len(judge.ends), epoch + 1, valid_loss, accuracy,
                                    judge.best_cycle if judge.best_cycle is not None else cycle.cycle, stopping))
                if checkpoints is not None and ((epoch + 1) % checkpoints.every == 0 or epoch + 1 == total_epochs
                                                or stopping) \
                        and (self.dist is None or self.dist.is_main):
                    try:
                        self._write_checkpoint(checkpoints, base_lrs, n_cycle, cycle_len, cycle_mult,
                                               epoch + 1, steps_per_epoch, records, checkpoint_context,
                                               until_overfit, judge.state_payload())
                    except ModelFileError as exc:  # a full disk must not end the training itself
                        checkpoint_error = checkpoint_error or str(exc)
                if stopping:
                    break
        except Cancelled:
            cancelled = True
            message = f"Stopped by the user after {len(records)} of {total_epochs} epochs."
        except _Stop:
            pass
        except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
            if not _is_out_of_memory(exc):
                raise
            out_of_memory = True
            self._recover_from_out_of_memory(last_good)
            data = self.data
            settings = f" (batch size {data.bs}, {data.size} px images on {self.device.type})" if data else ""
            message = (f"Out of memory in epoch {epoch + 1}{settings}: the stage was stopped and "
                       f"the weights from {'the end of epoch ' + str(epoch) if records else 'before this fit'} "
                       "were kept. Try a smaller batch size or image size, or a smaller architecture.")
        kept_cycle, stopped_early = None, False
        if until_overfit and not (cancelled or diverged or out_of_memory or collapsed) and judge.state is not None:
            kept_cycle, stopped_early = judge.state.cycle, judge.last_was_worse
            if stopped_early:
                self._restore_state(judge.state.model, judge.state.optimizer)
                message = stop_message(judge.cycles[-1], judge.state)
            else:
                message = (f"Trained {plural(len(records), 'epoch')}: every cycle improved on the one before, so the "
                           f"last (cycle {kept_cycle + 1}) is kept. More cycles may help.")
        if not message:
            message = f"Trained {plural(len(records), 'epoch')}."
        if checkpoint_error:
            message += f" Checkpoints could not be written, so this run cannot be resumed: {checkpoint_error}"
        if skipped:
            path, reason = next(iter(skipped.items()))
            message += (f" {plural(len(skipped), 'file')} could not be read during the run and were left out "
                        f"(e.g. {Path(path).name}: {reason}).")
        result = FitResult(tuple(records), cancelled, diverged, message, out_of_memory, tuple(judge.cycles),
                           kept_cycle, stopped_early, collapsed)
        self.history.append({"kind": "fit", "lrs": list(base_lrs), "n_cycle": n_cycle, "cycle_len": cycle_len,
                             "cycle_mult": cycle_mult, "precompute": self._precompute,
                             "trainable": self.describe_trainable(), "cancelled": cancelled,
                             "diverged": diverged, "out_of_memory": out_of_memory, "collapsed": collapsed,
                             "until_overfit": until_overfit, "kept_cycle": kept_cycle,
                             "final_accuracy": result.final_accuracy,
                             "cycles": [asdict(c) for c in judge.cycles],
                             "epochs": [asdict(r) for r in records]})
        emit(FitEnded(len(records), cancelled, diverged, message, fit_clock.elapsed(), kept_cycle))
        return result

    def _write_checkpoint(self, config: CheckpointConfig, base_lrs: tuple[float, ...], n_cycle: int,
                          cycle_len: int | None, cycle_mult: int, epochs_done: int, steps_per_epoch: int,
                          records: list[EpochRecord], context: dict[str, Any] | None, until_overfit: bool,
                          best: dict[str, Any] | None) -> None:
        from guiclassifier.core.modelfile import model_payload

        opt = self.optimizer()
        write_checkpoint(config, {
            "model": model_payload(self),
            "optimizer": opt.state_dict(),
            "scaler": self._scaler.state_dict(),
            "fit": {"lrs": list(base_lrs), "n_cycle": n_cycle, "cycle_len": cycle_len, "cycle_mult": cycle_mult,
                    "until_overfit": until_overfit},
            "best": best,
            "epochs_done": epochs_done,
            "steps_per_epoch": steps_per_epoch,
            "records": [{**asdict(r), "lrs": list(r.lrs)} for r in records],
            "rng": rng_to_payload(get_rng_state()),
            "precompute": self._precompute,
            "data_path": self.data.path if self.data is not None else None,
            "data_settings": {"size": self.data.size, "bs": self.data.bs, "augment": self.data.augment,
                              "max_zoom": self.data.max_zoom, "seed": self.data.seed,
                              "valid_pct": self.data.report.valid_pct,
                              "resized_cache": self.data.resized_cache} if self.data is not None else None,
            "context": context,
        }, f"checkpoint-{time.time_ns()}-epoch{epochs_done:04d}")

    @classmethod
    def resume(cls, path: str | Path, data: ImageData, callbacks: Callback | Sequence[Callback] | None = None,
               cancel: CancelToken | None = None, checkpoints: CheckpointConfig | None = None,
               device: str | torch.device = "auto", payload: dict[str, Any] | None = None
               ) -> tuple[Learner, FitResult]:
        """Go on with the fit that wrote the checkpoint at `path`, on `data` (the same dataset):
        same weights, optimizer state, batch order and lr for every remaining batch. `payload`:
        the checkpoint as read_checkpoint returned it, when the caller has already read it."""
        from guiclassifier.core.modelfile import check_model_payload, learner_from_payload

        payload = payload if payload is not None else read_checkpoint(Path(path))
        model = check_model_payload(payload.get("model"), Path(path))
        learner = learner_from_payload(model, Path(path), data, device=device)
        learner.precompute = bool(payload.get("precompute", False))
        learner.optimizer().load_state_dict(payload["optimizer"])
        if payload.get("scaler"):
            learner._scaler.load_state_dict(payload["scaler"])
        fit = payload["fit"]
        result = learner.fit(fit["lrs"], fit["n_cycle"], fit["cycle_len"], fit["cycle_mult"], callbacks, cancel,
                             checkpoints, payload.get("context"), bool(fit.get("until_overfit", False)),
                             _resume=payload)
        return learner, result

    def _restore_state(self, model: dict[str, torch.Tensor], optimizer: dict[str, Any] | None) -> None:
        """Put back weights (and the optimizer state that went with them)."""
        self.model.load_state_dict(model)
        self._body_version += 1
        if optimizer is not None:
            self.optimizer().load_state_dict(optimizer)
        else:
            self._optimizer = None

    def _recover_from_out_of_memory(self, last_good: dict[str, torch.Tensor] | None) -> None:
        """Drop what the failed step held, and go back to the last completed epoch's weights."""
        if self._optimizer is not None:
            self._optimizer.zero_grad(set_to_none=True)
        if last_good is not None:
            self.model.load_state_dict(last_good)
            self._body_version += 1
            self._optimizer = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _weights_copy(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    # ----- prediction ---------------------------------------------------------------------

    def _probabilities(self, items: Sequence[Item], tta: bool, emit: Emitter, cancel: CancelToken,
                       progress: bool = True, skip_unreadable: bool = False) -> tuple[torch.Tensor, list[int]]:
        """Softmax outputs (n, classes) on the CPU for the readable `items`, and their positions,
        through core.predict (the one prediction path: plain view, averaged with TTA_AUGMENTED
        augmented views when `tta`). An unreadable file raises ImageError, or with
        `skip_unreadable` is reported as FileSkipped and left out."""
        from guiclassifier.core.predict import predict_files

        def relay(event: Event) -> None:  # per-file results are for predict_files' callers
            if not isinstance(event, FilePredicted) and (progress or not isinstance(event, PredictProgress)):
                emit(event)

        results = predict_files(self, [i.path for i in items], tta, None, relay, cancel)
        kept = []
        for i, r in enumerate(results):
            if r.error is None:
                kept.append(i)
            elif skip_unreadable:
                emit(FileSkipped(r.path, r.error, "validation"))
            else:
                raise ImageError(r.path, r.error)
        if not kept:
            return torch.zeros(0, len(self.classes)), kept
        return torch.tensor([results[i].probabilities for i in kept]), kept

    def predict(self, paths: Sequence[str | Path], tta: bool = False,
                callbacks: Callback | Sequence[Callback] | None = None,
                cancel: CancelToken | None = None) -> np.ndarray:
        """Class probabilities (n, n_classes) for image files, in `classes` order."""
        items = [Item(str(p), -1) for p in paths]
        return self._probabilities(items, tta, Emitter(callbacks), cancel or CancelToken())[0].numpy()

    def _valid_outputs(self, emit: Emitter, cancel: CancelToken, tta: bool, progress: bool = True,
                       sharded: bool = False) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(probabilities, targets, mean loss) on the validation set. Without `progress` no
        PredictProgress is sent (validation inside fit is part of the fit's own progress);
        `sharded` takes only this process's share."""
        data = self._require_data()
        part = slice(self.dist.rank, None, self.dist.world_size) if sharded and self.dist else slice(None)
        if self._precompute and not tta:
            acts = self._split_activations("valid", emit, cancel)
            acts = replace(acts, rows=acts.rows[part])
            was_training = self.model.training
            self.model.eval()
            outs, targets = [], []
            try:
                with torch.no_grad():
                    for x, y in acts.batches(data.bs, shuffle=False):
                        cancel.raise_if_cancelled()
                        outs.append(self.model.head(to_device(x, self.device)).float().cpu())
                        targets.append(y)
            finally:
                self.model.train(was_training)
            logits, target = torch.cat(outs), torch.cat(targets)
            return torch.softmax(logits, 1), target, float(self.criterion(logits, target))
        items = list(data.valid_items)[part]
        probs, kept = self._probabilities(items, tta, emit, cancel, progress, skip_unreadable=True)
        target = torch.tensor([items[i].label for i in kept], dtype=torch.int64)
        loss = float(nn.functional.nll_loss(probs.clamp_min(1e-12).log(), target))
        return probs, target, loss

    def predict_valid(self, tta: bool = False, callbacks: Callback | Sequence[Callback] | None = None,
                      cancel: CancelToken | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, targets) for the validation set."""
        probs, targets, _ = self._valid_outputs(Emitter(callbacks), cancel or CancelToken(), tta)
        return probs.numpy(), targets.numpy()

    def evaluate(self, tta: bool = False, callbacks: Callback | Sequence[Callback] | None = None,
                 cancel: CancelToken | None = None) -> Evaluation:
        """Accuracy, loss and confusion matrix on the validation set."""
        probs, targets, loss = self._valid_outputs(Emitter(callbacks), cancel or CancelToken(), tta)
        preds = probs.argmax(1)
        n = len(self.classes)
        confusion = torch.zeros(n, n, dtype=torch.int64)
        for actual, predicted in zip(targets.tolist(), preds.tolist()):
            confusion[actual, predicted] += 1
        accuracy = float((preds == targets).float().mean()) if len(targets) else math.nan
        return Evaluation(accuracy, loss, tuple(tuple(r) for r in confusion.tolist()), len(targets), tta)


class _Stop(Exception):
    """Internal: ends a fit early (divergence) after the message is set."""
