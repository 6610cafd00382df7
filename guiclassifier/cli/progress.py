"""Turning engine events into terminal output: progress bars with ETA on stderr, an epoch table
on stdout, and optionally every event as a JSON line."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import IO, Any

from tqdm import tqdm

from guiclassifier.core.events import (
    AuditProgress,
    BatchEnded,
    CycleEnded,
    EpochEnded,
    Event,
    FileSkipped,
    FitEnded,
    FitStarted,
    LRFindEnded,
    LRFindPoint,
    LRFindStarted,
    PrecomputeEnded,
    PrecomputeProgress,
    PrecomputeStarted,
    PredictProgress,
    ScanProgress,
    StageEnded,
    StageStarted,
)


EPOCH_HEADER = f"{'epoch':>5}  {'train loss':>10}  {'valid loss':>10}  {'accuracy':>8}  {'time':>7}"


class ConsoleReporter:
    """A callback for any engine call; `quiet` drops the bars, `json_log` records every event."""

    def __init__(self, out: IO[str] | None = None, err: IO[str] | None = None, quiet: bool = False,
                 json_log: IO[str] | None = None) -> None:
        # Looked up now, not at import: the caller may have redirected the streams since.
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        self.json_log = json_log
        self._bar: tqdm | None = None
        self._bar_desc = ""
        self._epoch_offset = 0

    def _open_bar(self, total: int, desc: str, unit: str) -> None:
        self.close()
        if not self.quiet:
            # disable=None: no bars when stderr is not a terminal (a log file, a pipe)
            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.err, leave=False, dynamic_ncols=True,
                             disable=None)

    def _advance_to(self, n: int, **postfix: Any) -> None:
        if self._bar is not None:
            self._bar.update(n - self._bar.n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def print(self, text: str) -> None:
        if self._bar is not None:
            self._bar.clear()
        print(text, file=self.out, flush=True)
        if self._bar is not None:
            self._bar.refresh()

    def __call__(self, event: Event) -> None:
        if self.json_log is not None:
            self.json_log.write(json.dumps({"event": type(event).__name__, **asdict(event)}) + "\n")
            self.json_log.flush()
        if isinstance(event, StageStarted):
            self.print(f"\n[{event.index + 1}/{event.total}] {event.description}")
        elif isinstance(event, StageEnded):
            self.close()
            self.print(f"      -> {event.summary}")
        elif isinstance(event, PrecomputeStarted):
            self._open_bar(event.total, f"precompute {event.split}", "img")
        elif isinstance(event, PrecomputeProgress):
            self._advance_to(event.done)
        elif isinstance(event, PrecomputeEnded):
            self.close()
            if event.from_cache:
                self.print(f"      {event.split}: activations from cache ({event.total} images)")
        elif isinstance(event, LRFindStarted):
            self._open_bar(event.num_it, "lr_find", "it")
        elif isinstance(event, LRFindPoint):
            self._advance_to(event.iteration + 1, lr=f"{event.lr:.1e}", loss=f"{event.smooth_loss:.3f}")
        elif isinstance(event, LRFindEnded):
            self.close()
        elif isinstance(event, FitStarted):
            self._open_bar(event.total_epochs * event.batches_per_epoch, "train", "batch")
            self.print(EPOCH_HEADER)
        elif isinstance(event, BatchEnded):
            self._advance_to(event.step, loss=f"{event.smooth_loss:.3f}")
        elif isinstance(event, EpochEnded):
            self.print(f"{self._epoch_offset + event.epoch + 1:>5}  {event.train_loss:>10.4f}  "
                       f"{event.valid_loss:>10.4f}  {event.accuracy:>8.1%}  {event.epoch_time:>6.1f}s")
        elif isinstance(event, CycleEnded):
            verdict = "best so far" if event.best_cycle == event.cycle else \
                f"worse than cycle {event.best_cycle + 1}" + (": stopping" if event.stopping else "")
            self.print(f"      end of cycle {event.cycle + 1}: {verdict}")
        elif isinstance(event, FitEnded):
            self.close()
            self._epoch_offset += event.epochs_done
            if event.cancelled or event.diverged:
                self.print(f"      {event.message}")
        elif isinstance(event, FileSkipped):
            self.print(f"      skipped {event.path} during {event.during}: {event.reason}")
        elif isinstance(event, AuditProgress):
            if self._bar is None or self._bar_desc != event.step:
                self._open_bar(event.total, event.step, "step" if event.step != "Reading images" else "img")
                self._bar_desc = event.step
            self._advance_to(event.done)
        elif isinstance(event, ScanProgress):
            if self._bar is None:
                self._open_bar(event.total, "checking images", "file")
            self._advance_to(event.done)
            if event.done >= event.total:
                self.close()
        elif isinstance(event, PredictProgress):
            if self._bar is None or event.done < self._bar.n:
                self._open_bar(event.total, "predict", "img")
            self._advance_to(event.done)
            if event.done >= event.total:
                self.close()
