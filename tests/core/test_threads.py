"""PyTorch's thread count follows what else keeps the CPU busy."""

from __future__ import annotations

import multiprocessing
import sys
import time

import pytest
import torch

from guiclassifier.core.threads import THREADS_ENV, adapt_threads, busy_cores_elsewhere, choose_threads


def test_threads_are_the_cores_nobody_else_uses() -> None:
    assert choose_threads(2, 0.0) == 2 and choose_threads(2, 0.2) == 2
    assert choose_threads(2, 1.0) == 1 and choose_threads(2, 2.0) == 1  # never none
    assert choose_threads(16, 3.6) == 12


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_another_busy_process_is_seen() -> None:
    quiet = busy_cores_elsewhere()
    spinner = multiprocessing.get_context("spawn").Process(target=_spin, args=(3.0,))
    spinner.start()
    time.sleep(1.0)  # the child has started spinning
    try:
        busy = busy_cores_elsewhere()
    finally:
        spinner.join()
    assert quiet is not None and busy is not None and busy > quiet + 0.6


def test_a_fixed_count_wins(monkeypatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv(THREADS_ENV, "1")
    try:
        assert adapt_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
