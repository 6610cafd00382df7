"""Training throughput with the window showing live plots vs headless, and the longest stall of
the Qt event loop while the window trains.

The headless baseline runs in a subprocess of its own, like the CLI. Both runs train the same stage (demo data, MobileNetV2 head with augmentation, precompute off,
64 px, bs 32) from the same seed, each with its own way of starting image-loading processes
(headless forks them, as the CLI does; the window uses a forkserver). The window run measures images/s from the engine's own events
and records the ticks of a 10 ms QTimer on the GUI thread.
Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/window_overhead.py [--epochs 3]
(or under a real display without QT_QPA_PLATFORM).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import DEMO, fresh_cache, machine  # noqa: E402

from guiclassifier import ImageData, Learner  # noqa: E402
from guiclassifier.core.events import BatchEnded, FitEnded, FitStarted  # noqa: E402

SIZE, BS, ARCH = 64, 32, "mobilenet_v2"


class Rate:
    """images/s between FitStarted and FitEnded, from engine events (same clock for both runs)."""

    def __init__(self) -> None:
        self.start = self.end = 0.0
        self.images = 0

    def __call__(self, event) -> None:
        if isinstance(event, FitStarted):
            self.start = time.perf_counter()
        elif isinstance(event, BatchEnded):
            self.images += event.n_images
        elif isinstance(event, FitEnded):
            self.end = time.perf_counter()

    @property
    def per_second(self) -> float:
        return self.images / (self.end - self.start)


def headless_in_subprocess(epochs: int) -> float:
    """The headless baseline in a process of its own, as the CLI runs: training on the main thread
    of this process would leave it an OpenMP pool that slows the window's worker thread (see
    gui.worker.run_on_short_thread)."""
    out = subprocess.run([sys.executable, __file__, "--headless-once", "--epochs", str(epochs)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def headless(epochs: int) -> float:
    data = ImageData.from_folder(DEMO, size=SIZE, bs=BS, seed=42)
    learner = Learner.pretrained(ARCH, data, device="cpu")
    rate = Rate()
    learner.fit(1e-3, epochs, callbacks=rate)
    return rate.per_second


def with_window(epochs: int) -> tuple[float, float, float, float]:
    """images/s, longest and median gap between timer ticks, and the share of one core the GUI
    thread used (steadier than throughput on a machine whose speed drifts)."""
    import tempfile

    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from guiclassifier.gui import MainWindow
    from guiclassifier.workspace.engine import load_engine

    load_engine()  # torch is loaded: the window then starts without its loading job
    _app = QApplication.instance() or QApplication([])  # must stay referenced while the window lives
    settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
    window = MainWindow(None, settings)
    window.data_panel.size_spin.setValue(SIZE)
    window.data_panel.bs_spin.setValue(BS)
    window.model_panel.arch_combo.setCurrentIndex(window.model_panel.arch_combo.findData(ARCH))
    window.model_panel.device_combo.setCurrentIndex(window.model_panel.device_combo.findData("cpu"))
    window.show()
    scanned = QEventLoop()
    window.runner.finished.connect(scanned.quit)
    window.open_dataset(str(DEMO))
    scanned.exec()
    window.runner.finished.disconnect(scanned.quit)
    window.model_panel.precompute_check.setChecked(False)
    window.training_panel.lr_edit.setText("1e-3")
    window.training_panel.cycles_spin.setValue(epochs)
    window.training_panel.cycle_len_spin.setValue(0)
    rate = Rate()
    window.runner.events.connect(lambda batch: [rate(e) for e in batch])
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    loop = QEventLoop()  # the GUI thread idles in the event loop, as in the real app
    window.runner.finished.connect(loop.quit)
    window.runner.failed.connect(loop.quit)
    gui_cpu, wall = time.thread_time(), time.perf_counter()
    window.training_panel.train_button.click()
    loop.exec()
    gui_cpu, wall = time.thread_time() - gui_cpu, time.perf_counter() - wall
    timer.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    window.unsaved_answer = lambda doing: "discard"  # "Save changes?" would wait for an answer
    window.close()
    return rate.per_second, max(gaps), statistics.median(gaps), gui_cpu / wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--headless-once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # A checkpoint left by an interrupted run in the user's folder would make the window ask
    # whether to resume it, and nobody answers an offscreen dialog: the run would wait for ever.
    os.environ["GUICLASSIFIER_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="guiclassifier-bench-")
    if args.headless_once:
        fresh_cache()
        print(headless(args.epochs))
        return
    print(machine())
    # As the app does once its window shows (loader server, garbage collector), before timing.
    from PySide6.QtWidgets import QApplication

    from guiclassifier.gui.app import after_start

    _app = QApplication.instance() or QApplication([])
    after_start()
    time.sleep(5)
    bases, shown_rates, longest = [], [], 0.0
    medians, gui_shares = [], []
    for _ in range(args.repeats):  # interleaved, so drifts of the machine hit both alike
        bases.append(headless_in_subprocess(args.epochs))
        fresh_cache()
        rate, gap, median, gui_share = with_window(args.epochs)
        gui_shares.append(gui_share)
        print(f"  repeat: headless {bases[-1]:6.1f}  window {rate:6.1f} images/s  longest gap {gap * 1000:.0f} ms"
              f"  GUI thread {gui_share:.1%} of a core")
        shown_rates.append(rate)
        longest = max(longest, gap)
        medians.append(median)
    base, shown, median = statistics.median(bases), statistics.median(shown_rates), statistics.median(medians)
    # Each repeat pairs a headless and a window run taken seconds apart: the median of the paired
    # ratios is steadier than the ratio of medians on a machine whose speed drifts.
    ratios = sorted(w / b for w, b in zip(shown_rates, bases))
    print(f"{args.repeats} repeats of {args.epochs} epochs; medians")
    print(f"headless            {base:8.1f} images/s")
    print(f"window, live plots  {shown:8.1f} images/s")
    print(f"ratio window/headless, median of the paired repeats {statistics.median(ratios):.3f} "
          f"(target >= 0.95; repeats {ratios[0]:.2f}-{ratios[-1]:.2f})")
    print(f"GUI thread while training: {statistics.median(gui_shares):.1%} of one core (median), "
          f"the most the window can take from training")
    print(f"event loop: longest gap {longest * 1000:.0f} ms (target < 100), median {median * 1000:.1f} ms")


if __name__ == "__main__":
    main()
