"""How many threads PyTorch uses on the CPU, chosen from what else keeps the CPU busy.

Measured (benchmarks/threads_under_load.py, 2 cores): on a quiet machine 2 threads make a training
step 1.44x faster than 1; with one other program spinning a core, 2 threads made it 2.9x
*slower* than 1 (0.97 s vs 0.33 s), because each step waits for its slowest thread. So before a
job the CPU's load is sampled and PyTorch gets the cores nobody else is using.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

THREADS_ENV = "GUICLASSIFIER_THREADS"
"""A fixed thread count (tests and benchmarks pin it so runs compare bit for bit); 0: PyTorch's own."""
SAMPLE_SECONDS = 0.25
BUSY_SHARE = 0.3  # a core busier than this with other work counts as taken
log = logging.getLogger(__name__)


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores from /proc/stat; None where there is none (not Linux)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores_elsewhere(seconds: float = SAMPLE_SECONDS) -> float | None:
    """Cores' worth of CPU that other programs used over `seconds` (this process not counted)."""
    start, own_start = _cpu_ticks(), time.process_time()
    if start is None:
        return None
    time.sleep(seconds)
    end, own = _cpu_ticks(), time.process_time() - own_start
    if end is None or end[1] <= start[1]:
        return None
    cores = os.cpu_count() or 1
    busy = (end[0] - start[0]) / (end[1] - start[1]) * cores
    return max(0.0, busy - own / seconds)


def choose_threads(cores: int, busy: float) -> int:
    """The cores nobody else is using (at least one)."""
    return max(1, cores - max(0, math.ceil(busy - BUSY_SHARE)))


def adapt_threads() -> int:
    """Set PyTorch's CPU thread count for the next job from the current load; returns it."""
    import torch

    fixed = os.environ.get(THREADS_ENV)
    if fixed is not None and fixed.strip().isdigit():
        if int(fixed) > 0:
            torch.set_num_threads(int(fixed))
        return torch.get_num_threads()
    cores = os.cpu_count() or 1
    busy = busy_cores_elsewhere()
    threads = cores if busy is None else choose_threads(cores, busy)
    if threads != torch.get_num_threads():
        log.info("using %d of %d cores for PyTorch (other programs keep %.1f busy)", threads, cores, busy or 0.0)
        torch.set_num_threads(threads)
    return threads
