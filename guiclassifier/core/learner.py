"""The Learner: fastai 0.7's workflow (freeze, precompute, lr_find, SGDR fit, TTA) on plain PyTorch.

Every long call is synchronous, reports through `callbacks` (plain callables receiving events from
`core.events`) and checks `cancel` between batches. A cancelled or diverged fit returns normally
with a result that says so, and the model is left usable.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from guiclassifier.core.cache_dirs import trim_caches_quietly
from guiclassifier.core.cancel import Cancelled, CancelToken
from guiclassifier.core.checkpoint import Checkpoint, CheckpointConfig, TrainingState, read_checkpoint
from guiclassifier.core.checkpoint_writer import CheckpointWriter
from guiclassifier.core.collapse import accuracy_before, majority_share
from guiclassifier.core.data import ImageData, Item
from guiclassifier.core.device import is_out_of_memory, resolve_device, to_device, uses_channels_last
from guiclassifier.core.distributed import (
    DistInfo,
    barrier,
    broadcast_state,
    data_parallel,
    shard,
    sum_across,
)
from guiclassifier.core.errors import ImageError, TrainingError
from guiclassifier.core.events import (
    Callback,
    Emitter,
    Event,
    FilePredicted,
    FileSkipped,
    PredictProgress,
)
from guiclassifier.core.fit_records import EpochRecord, FitPlan, FitProgress, FitResult
from guiclassifier.core.fit_run import FitRun
from guiclassifier.core.lr_finder import LRFindResult, run_lr_find
from guiclassifier.core.modelfile import ModelRecord, model_record, read_model_file, write_model_file
from guiclassifier.core.models import N_GROUPS, Classifier, build_classifier
from guiclassifier.core.precision import resolve_precision
from guiclassifier.core.precompute import Activations, activations, body_digest
from guiclassifier.core.predict import predict_files
from guiclassifier.core.coverage import CoverageCurve, coverage_curve
from guiclassifier.core.reference import FeatureReference
from guiclassifier.core.rng import get_rng_state, seed_everything, set_rng_state
from guiclassifier.core.schedules import group_lrs
from guiclassifier.core.weights import WeightsSource

__all__ = ["OPTIMIZERS", "EpochRecord", "Evaluation", "FitResult", "Learner", "Snapshot", "learner_from_payload"]

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float
    confusion: tuple[tuple[int, ...], ...]  # rows: actual class, columns: predicted class
    n: int
    tta: bool
    cancelled: bool = False  # stopped before the end: no figures (accuracy and loss are NaN)
    coverage: CoverageCurve | None = None  # accuracy against the share answered (core.coverage)


@dataclass
class Snapshot:
    """Everything lr_find may change, to put back afterwards."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    scaler: dict[str, Any]
    rng: dict[str, Any]
    training: bool


class Learner:
    """A classifier, its dataset (optional for prediction-only use), and how to train it."""

    def __init__(self, model: Classifier, arch: str, classes: Sequence[str], data: ImageData | None = None, *,
                 size: int | None = None, augment: str = "side_on", max_zoom: float = 1.1,
                 precompute: bool = False, device: str | torch.device = "auto", opt: str = "adamw",
                 momentum: float = 0.9, wd: float | None = None, precision: str = "auto",
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
        self.precision = resolve_precision(precision, self.device)
        self.weights_source = weights_source or WeightsSource("random", "random")
        self.history: list[dict[str, Any]] = list(history or [])
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.model.set_bn_modes(bn_freeze, train_bn)
        self.model.to(self.device, memory_format=torch.channels_last if uses_channels_last(self.device)
                      else torch.preserve_format)
        self.dist = dist_info
        broadcast_state(self.model, dist_info)
        self._parallel: nn.Module | None = None  # the DDP wrapper for the trainable part (see _trainable)
        self._parallel_key: tuple[bool, tuple[bool, ...]] | None = None
        self._caller_cancel: CancelToken | None = None  # under torchrun: the running call's token (_engine_cancel)
        self.criterion = nn.CrossEntropyLoss()
        self._optimizer: torch.optim.Optimizer | None = None
        self._scaler = self._loss_scaler()
        self._activations: dict[str, Activations] = {}
        self._digest: str | None = None
        self._digest_version = -1
        self._body_version = 0  # bumped whenever the body's weights may have changed
        self._precompute = False
        self.reference: FeatureReference | None = None  # what training images look like (core.reference)
        # Answers below this confidence are "not sure" (core.coverage); 0 answers everything.
        self.confidence_threshold = 0.0
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
    def from_record(cls, record: ModelRecord, data: ImageData | None = None, **kwargs: Any) -> Learner:
        """A learner for a model read from a file (core.modelfile); `data`, when given, must have
        the same classes. `kwargs` (Learner's) override how the model was trained."""
        learner = cls(record.model, record.arch, record.classes, data, size=record.size, augment=record.augment,
                      max_zoom=record.max_zoom, weights_source=record.weights_source, history=list(record.history),
                      **{**record.settings, **kwargs})
        learner.reference = record.reference
        learner.confidence_threshold = record.confidence_threshold
        return learner

    def model_record(self) -> ModelRecord:
        """What a model file keeps of this learner (see core.modelfile)."""
        settings = {"opt": self.opt_name, "momentum": self.momentum, "wd": self.wd, "bn_freeze": self.bn_freeze,
                    "train_bn": self.train_bn}
        return ModelRecord(self.model, self.arch, self.classes, self.size, self.augment, self.max_zoom,
                           self.weights_source, settings, tuple(self.history), self.reference,
                           self.confidence_threshold)

    @classmethod
    def load(cls, path: str | Path, data: ImageData | None = None, **kwargs: Any) -> Learner:
        """A learner from a model file saved with `save` (read without running any code)."""
        return cls.from_record(read_model_file(Path(path)), data, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write weights, classes, architecture, size, normalisation and history atomically."""
        return write_model_file(self.model_record(), Path(path))

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

    def require_data(self) -> ImageData:
        """The attached dataset; a TrainingError in words when there is none."""
        if self.data is None:
            raise TrainingError("this model has no dataset attached: open a dataset folder to train it")
        return self.data

    def split_activations(self, split: str, callbacks: Callback | Sequence[Callback] | None = None,
                          cancel: CancelToken | None = None) -> Activations:
        """The body's activations of the "train" or "valid" images, from the cache when they are
        there (core.precompute): what precompute trains the head on."""
        return self._split_activations(split, Emitter(callbacks), cancel or CancelToken())

    def _split_activations(self, split: str, emit: Emitter, cancel: CancelToken) -> Activations:
        data = self.require_data()
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
                                                   self.cache_dir, self._digest, self.precision)
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

    def set_precision(self, asked: str) -> None:
        """Change the arithmetic between calls (core.precision: auto, fp32, bf16, fp16); float16's
        loss scaling starts afresh, and activations cached under the old one are not used."""
        precision = resolve_precision(asked, self.device)
        if precision.name != self.precision.name:
            self._activations.clear()
        self.precision = precision
        self._scaler = self._loss_scaler()

    def _loss_scaler(self) -> torch.amp.GradScaler:
        """A fresh loss scaler, on only where the precision needs one (float16)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision.scales_loss)

    def _trainable(self) -> nn.Module:
        """What a training step runs: the head alone from cached features (precompute), else the
        whole model on images.
        Under torchrun it is wrapped in DistributedDataParallel for the parameters trainable
        now, wrapped again after a freeze, an unfreeze or a precompute switch."""
        module = self.model.head if self._precompute else self.model
        if self.dist is None or self.dist.world_size == 1:
            return module
        key = (self._precompute, tuple(p.requires_grad for p in module.parameters()))
        if self._parallel is None or key != self._parallel_key:
            self._parallel = None  # its gradient buckets go before the new wrapper's are made
            self._parallel, self._parallel_key = data_parallel(module, self.dist, self.device), key
        return self._parallel

    # ----- stopping together under torchrun -----------------------------------------------------

    def _engine_cancel(self, cancel: CancelToken | None) -> CancelToken | None:
        """The token the engine's own checks see during a call. Under torchrun it is one that only
        a stop every process agreed on sets (train_step, _validate, stop_agreed): a process that
        left a loop alone would leave the others waiting in a collective. `cancel` then counts as
        this process's stop request, like DistInfo.stop_request."""
        if self.dist is None:
            return cancel
        self._caller_cancel = cancel
        return CancelToken()

    def _stop_asked_here(self) -> float:
        asked = self.dist is not None and self.dist.stop_request.cancelled
        return float(asked or (self._caller_cancel is not None and self._caller_cancel.cancelled))

    def _agreed(self, asked: float) -> bool:
        """`asked`: the processes' stop requests summed; any one stops all of them."""
        if asked and self._caller_cancel is not None:
            self._caller_cancel.cancel()  # the caller (a recipe, say) learns of it on every process
        return bool(asked)

    def stop_agreed(self, cancel: CancelToken | None = None) -> bool:
        """Whether to stop now, the same answer on every process: under torchrun a stop asked of
        any one of them (or `cancel` set on it) counts for all, and sets `cancel` on each."""
        if self.dist is None:
            return cancel is not None and cancel.cancelled
        self._caller_cancel = cancel
        return self._agreed(sum_across([self._stop_asked_here()], self.dist, self.device)[0])

    def train_step(self, x: torch.Tensor, y: torch.Tensor, lrs: Sequence[float]) -> float:
        """One optimisation step at the given per-group lrs; returns the batch loss. A non-finite
        loss is returned without stepping, so the weights stay as they were. Under torchrun, a
        stop asked of any process (see _engine_cancel) raises Cancelled in all of them here,
        before this batch changes anything."""
        opt = self.optimizer()
        for group, lr in zip(opt.param_groups, lrs):
            group["lr"] = lr
        if not self.model.training:  # train() walks every module: a quarter of a cached head epoch
            self.model.train()
        with self.precision.autocast(self.device):
            loss = self.criterion(self._trainable()(x), y)
        value = float(loss.item())
        if self.dist is not None:  # every process must see the same loss, and stop, to decide the same
            total, asked = sum_across([value, self._stop_asked_here()], self.dist, self.device)
            value = total / self.dist.world_size
            if self._agreed(asked):
                raise Cancelled()
        if not math.isfinite(value):
            opt.zero_grad(set_to_none=True)
            return value
        if self.model.body_trains and not self._precompute:
            self._body_version += 1
        self._scaler.scale(loss).backward()  # under torchrun, DDP averages the gradients meanwhile
        self._scaler.step(opt)
        self._scaler.update()
        opt.zero_grad(set_to_none=True)
        return value

    def training_batches(self, cycle: bool = False, emit: Emitter | None = None,
                         cancel: CancelToken | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(x, y) batches on the device for one epoch, or endlessly with `cycle`."""
        emit = emit or Emitter(None)
        cancel = cancel or CancelToken()
        data = self.require_data()
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
        data = self.require_data()
        if self.dist is None:
            return data.train_loader(augment=True, pin_memory=pin)
        # Every process draws the same permutation (same seed, same draws) and takes its shard.
        order = shard(torch.randperm(len(data.train_items)).tolist(), self.dist)
        seed = int(torch.randint(2**62, ()).item()) + self.dist.rank
        return data.train_loader(pin_memory=pin, order=[data.train_items[i] for i in order],
                                 generator=torch.Generator().manual_seed(seed))

    def _n_train_batches(self, emit: Emitter, cancel: CancelToken) -> int:
        data = self.require_data()
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
        loss_sum, correct, n, asked = sum_across([loss * n if n else 0.0, correct, float(n), self._stop_asked_here()],
                                                 self.dist, self.device)
        if self._agreed(asked):  # (always 0 with one process)
            raise Cancelled()
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
        self.require_data()
        try:
            result = run_lr_find(self, start_lr, end_lr, num_it, ratios, callbacks, self._engine_cancel(cancel))
        finally:
            self._parallel = self._caller_cancel = None  # a sweep ends with no backward pending
        self.history.append({"kind": "lr_find", "start_lr": start_lr, "end_lr": end_lr, "num_it": num_it,
                             "precompute": self._precompute, "trainable": self.describe_trainable(),
                             "suggestions": dict(result.suggestions), "stopped": result.stopped_reason})
        return result

    def fit(self, lrs: float | Sequence[float], n_cycle: int, cycle_len: int | None = None,
            cycle_mult: int = 1, callbacks: Callback | Sequence[Callback] | None = None,
            cancel: CancelToken | None = None, checkpoints: CheckpointConfig | None = None,
            checkpoint_context: dict[str, Any] | None = None, until_overfit: bool = False,
            _resume: FitProgress | None = None) -> FitResult:
        """Train with SGDR: `n_cycle` cycles of `cycle_len` epochs growing by `cycle_mult`
        (without cycle_len: `n_cycle` epochs at a constant lr). `lrs`: one or one per group.
        `until_overfit`: `n_cycle` is the most; stop after the first cycle whose end is not better
        (validation loss) than the best so far, and keep the best cycle end's weights (see
        core.overfit). With `checkpoints`, a checkpoint is written at epoch ends (see
        core.checkpoint_writer and Learner.resume); `checkpoint_context` is stored with them (a
        recipe's place, for one)."""
        plan = FitPlan(group_lrs(lrs, N_GROUPS), n_cycle, cycle_len, cycle_mult, until_overfit)
        chance = majority_share([item.label for item in self.data.valid_items]) if self.data is not None else None
        run = FitRun(plan, callbacks, self._engine_cancel(cancel), chance, accuracy_before(self.history))
        if checkpoints is not None and self._is_main:
            run.listen(CheckpointWriter(checkpoints, run, self.training_state, checkpoint_context))
        self.reference = None  # the features change with training
        self.confidence_threshold = 0.0  # picked on the old model's confidences: pick again
        try:
            self._begin_fit(run, _resume)
            for epoch in run.epochs():
                if self._train_epoch(run, epoch):
                    self._end_epoch(run)
        except Cancelled:
            run.stop_by_user()
        except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            if self.dist is not None:  # the others wait in a collective: end them all (torchrun does)
                self._parallel = None
                raise TrainingError(f"process {self.dist.rank} ran out of memory: use a smaller --bs or --size") \
                    from exc
            self._recover_from_out_of_memory(run.last_good)
            data = self.data
            run.run_out_of_memory(f" (batch size {data.bs}, {data.size} px images on {self.device.type})"
                                  if data else "")
        return self._end_fit(run)

    def _begin_fit(self, run: FitRun, resume: FitProgress | None) -> None:
        steps_per_epoch = self._n_train_batches(run.emit, run.cancel)
        if steps_per_epoch == 0:
            raise TrainingError("the training set has no usable batches")
        if self._precompute:
            self._split_activations("valid", run.emit, run.cancel)
        run.start(steps_per_epoch, self._precompute, N_GROUPS - self.frozen_groups)
        run.last_good = self._weights_copy()
        if resume is not None:
            run.resume_from(resume)

    def _train_epoch(self, run: FitRun, epoch: int) -> bool:
        """One epoch of training steps; False if the loss diverged (the last good weights are back)."""
        run.begin_epoch(epoch)
        for batch, (x, y) in enumerate(self.training_batches(emit=run.emit, cancel=run.cancel)):
            run.cancel.raise_if_cancelled()
            lrs = run.lrs_now()
            loss = self.train_step(x, y, lrs)
            if not math.isfinite(loss):
                self._restore_state(run.last_good, None)  # momentum built on a diverging path is useless
                run.diverge(loss)
                return False
            run.batch_done(batch, loss, len(y), lrs)
        return True

    def _end_epoch(self, run: FitRun) -> None:
        """Validate, then book the epoch: undo it if its validation loss is not a number or it
        collapsed, else judge its cycle."""
        broadcast_state(self.model, self.dist, buffers_only=True)
        valid_loss, accuracy = self._validate(run.emit, run.cancel)
        if math.isfinite(accuracy) and not math.isfinite(valid_loss):  # images seen, loss not a number
            self._restore_state(run.last_good, None)  # seen with float16 on a GPU: logits overflowed
            run.diverge(valid_loss, "validation loss")
            return
        loss_sum, n_images = sum_across(run.epoch_loss(), self.dist, self.device)
        record = run.epoch_record(loss_sum, n_images, valid_loss, accuracy)
        if run.collapses(accuracy):
            run.collapse(record)
            run.end_epoch(record, None)
            self._restore_state(run.last_good, None)  # momentum built on the way down is useless
            return
        run.last_good = self._weights_copy()
        cycle = run.judge_epoch(record)
        if run.keeps(cycle):
            run.judge.keep(cycle, run.last_good, self.optimizer().state_dict())
        run.end_epoch(record, cycle)

    def _end_fit(self, run: FitRun) -> FitResult:
        self._parallel = self._caller_cancel = None  # wrapped per fit, as fastai's DistributedTrainer
        best = run.choose_cycle()
        if best is not None:
            self._restore_state(best.model, best.optimizer)
        result = run.result()
        self.history.append(run.history_entry(result, self._precompute, self.describe_trainable()))
        if self._is_main:
            trim_caches_quietly()  # the fit may have added shrunk photos (core.resized)
        run.end(result)
        return result

    @property
    def _is_main(self) -> bool:
        """This process writes files (the only one, or rank 0 of several)."""
        return self.dist is None or self.dist.is_main

    def training_state(self) -> TrainingState:
        """What a checkpoint keeps of this learner (core.checkpoint)."""
        data = self.data
        return TrainingState(self.model_record(), self.optimizer().state_dict(), self._scaler.state_dict(),
                             self._precompute, data.path if data is not None else None,
                             data.settings() if data is not None else None)

    @classmethod
    def resume(cls, path: str | Path, data: ImageData, callbacks: Callback | Sequence[Callback] | None = None,
               cancel: CancelToken | None = None, checkpoints: CheckpointConfig | None = None,
               device: str | torch.device = "auto", payload: dict[str, Any] | None = None,
               dist_info: DistInfo | None = None, precision: str = "auto") -> tuple[Learner, FitResult]:
        """Go on with the fit that wrote the checkpoint at `path`, on `data` (the same dataset):
        same weights, optimizer state, batch order and lr for every remaining batch. `payload`:
        the checkpoint as read_checkpoint returned it, when the caller has already read it. Under
        torchrun every process reads the same checkpoint (rank 0 wrote it) and goes on with its
        shard."""
        payload = payload if payload is not None else read_checkpoint(Path(path))
        checkpoint = Checkpoint.from_payload(payload, Path(path))
        learner = cls.from_record(checkpoint.state.model, data, device=device, dist_info=dist_info,
                                  precision=precision)
        learner._load_training_state(checkpoint.state)
        plan = checkpoint.plan
        result = learner.fit(plan.lrs, plan.n_cycle, plan.cycle_len, plan.cycle_mult, callbacks, cancel,
                             checkpoints, checkpoint.context, plan.until_overfit, _resume=checkpoint.progress)
        return learner, result

    def _load_training_state(self, state: TrainingState) -> None:
        """Precompute, optimizer and loss scaler as a checkpoint kept them (the model is built from it)."""
        self.precompute = state.precompute
        self.optimizer().load_state_dict(state.optimizer)
        if state.scaler:
            self._scaler.load_state_dict(state.scaler)

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
            self._restore_state(last_good, None)
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
        def relay(event: Event) -> None:  # per-file results are for predict_files' callers
            if not isinstance(event, FilePredicted) and (progress or not isinstance(event, PredictProgress)):
                emit(event)

        results = predict_files(self, [i.path for i in items], tta, None, relay, cancel)
        if results.cancelled:
            raise Cancelled  # inside a fit or an evaluation, which report the stop themselves
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
                callbacks: Callback | Sequence[Callback] | None = None) -> np.ndarray:
        """Class probabilities (n, n_classes) for image files, in `classes` order. A call for
        scripts that runs to the end; core.predict.predict_files is the one to stop."""
        items = [Item(str(p), -1) for p in paths]
        return self._probabilities(items, tta, Emitter(callbacks), CancelToken())[0].numpy()

    def _valid_outputs(self, emit: Emitter, cancel: CancelToken, tta: bool, progress: bool = True,
                       sharded: bool = False) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(probabilities, targets, mean loss) on the validation set. Without `progress` no
        PredictProgress is sent (validation inside fit is part of the fit's own progress);
        `sharded` takes only this process's share."""
        data = self.require_data()
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

    def predict_valid(self, tta: bool = False, callbacks: Callback | Sequence[Callback] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, targets) for the validation set."""
        probs, targets, _ = self._valid_outputs(Emitter(callbacks), CancelToken(), tta)
        return probs.numpy(), targets.numpy()

    def evaluate(self, tta: bool = False, callbacks: Callback | Sequence[Callback] | None = None,
                 cancel: CancelToken | None = None) -> Evaluation:
        """Accuracy, loss and confusion matrix on the validation set; stopped through `cancel`,
        an Evaluation marked `cancelled`, without figures."""
        try:
            probs, targets, loss = self._valid_outputs(Emitter(callbacks), cancel or CancelToken(), tta)
        except Cancelled:
            return Evaluation(math.nan, math.nan, (), 0, tta, cancelled=True)
        preds = probs.argmax(1)
        n = len(self.classes)
        confusion = torch.zeros(n, n, dtype=torch.int64)
        for actual, predicted in zip(targets.tolist(), preds.tolist()):
            confusion[actual, predicted] += 1
        accuracy = float((preds == targets).float().mean()) if len(targets) else math.nan
        return Evaluation(accuracy, loss, tuple(tuple(r) for r in confusion.tolist()), len(targets), tta,
                          coverage=coverage_curve(probs.numpy(), targets.numpy()))



def learner_from_payload(payload: dict[str, Any], path: Path, data: ImageData | None = None,
                         **kwargs: Any) -> Learner:
    """A learner from a checked model file's dict (modelfile.check_model_payload); `path` names it in errors."""
    return Learner.from_record(model_record(payload, path), data, **kwargs)
