"""Start-up as a user feels it: launch to a visible window, and drop to first prediction.

1. `python -m guiclassifier resources/demo` in a fresh process, as `make run` starts it: time to
   the window's first paint (target < 2 s), to PyTorch loaded, and to the demo dataset scanned.
2. A window with a model opened from a file (the usual way to predict): time from dropping one
   image on the Predict tab to its row showing, then a second drop. And a model just trained in
   the window (no file: the first drop also builds the "unlike the training images" reference).
Each measurement runs in a fresh process; settings, checkpoints and caches go to a temporary
folder. Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEMO, REPO, machine  # noqa: E402

SIZE, ARCH = 128, "mobilenet_v2"
IMAGE = DEMO / "valid" / "bag" / sorted(os.listdir(DEMO / "valid" / "bag"))[0]


def child_launch(t0: float) -> dict[str, float]:
    """Run the real entry point; report when the window paints, the engine loads, data is in."""
    import runpy

    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication(["guiclassifier"])  # run_app reuses it
    times: dict[str, float] = {}

    class Probe(QObject):
        def eventFilter(self, obj, event) -> bool:
            if "painted" not in times and event.type() == QEvent.Type.Paint and isinstance(obj, QMainWindow):
                times["painted"] = time.time() - t0
                times["torch imported before the window showed"] = float(_torch_done())
                poll.timeout.connect(lambda: check(obj))
                poll.start(5)
            return False

    def check(window) -> None:
        from guiclassifier.workspace.engine import engine_loaded

        if "engine" not in times and engine_loaded():
            times["engine"] = time.time() - t0
        if window.workspace.data is not None and not window.runner.busy:
            times["dataset"] = time.time() - t0
            print(json.dumps(times), flush=True)
            os._exit(0)  # the window's own close would ask nothing, but skip tearing down Qt

    poll = QTimer()
    probe = Probe()
    app.installEventFilter(probe)
    sys.argv = ["guiclassifier", str(DEMO)]
    runpy.run_module("guiclassifier", run_name="__main__")
    return times


def _torch_done() -> bool:
    """torch fully imported (not merely started on the worker thread)."""
    torch = sys.modules.get("torch")
    return torch is not None and not getattr(torch.__spec__, "_initializing", False)


def child_predict(model: str | None, t0: float) -> dict[str, float]:
    """A fresh window; open `model` (or train one for an epoch when None); time two drops."""
    from PySide6.QtCore import QEventLoop, QMimeData, QPointF, QSettings, Qt, QUrl
    from PySide6.QtGui import QDropEvent
    from PySide6.QtWidgets import QApplication

    from guiclassifier.gui.main_window import MainWindow

    app = QApplication(["guiclassifier"])  # noqa: F841 (must live as long as the window)
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(None, settings)
    window.show()
    times: dict[str, float] = {}

    def wait_idle() -> None:
        while window.runner.busy:
            loop = QEventLoop()
            window.runner.busy_changed.connect(loop.quit)
            loop.exec()
            window.runner.busy_changed.disconnect(loop.quit)

    wait_idle()
    times["engine"] = time.time() - t0
    window.data_panel.size_spin.setValue(SIZE)
    window.model_panel.arch_combo.setCurrentIndex(window.model_panel.arch_combo.findData(ARCH))
    if model is not None:
        window.open_model(model)
        wait_idle()
    else:
        window.open_dataset(str(DEMO))
        wait_idle()
        window.training_panel.cycles_spin.setValue(1)
        window.training_panel.train_button.click()
        wait_idle()
    times["model ready"] = time.time() - t0
    window.tabs.setCurrentWidget(window.predict_panel)
    for name in ("first drop", "second drop"):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(IMAGE))])
        before = len(window.predict_panel.results())
        start = time.perf_counter()
        window.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                    Qt.KeyboardModifier.NoModifier))
        while len(window.predict_panel.results()) == before:
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 5)
        times[name] = time.perf_counter() - start
        wait_idle()
        assert window.predict_panel.results()[-1].probabilities is not None, "the prediction failed"
    print(json.dumps(times), flush=True)
    os._exit(0)


def run_child(args: list[str], env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, *args, "--t0", repr(time.time())], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def isolated_env() -> dict[str, str]:
    home = Path(tempfile.mkdtemp(prefix="gc-startup-"))
    return {**os.environ, "XDG_CONFIG_HOME": str(home / "config"), "GUICLASSIFIER_CACHE_DIR": str(home / "cache"),
            "GUICLASSIFIER_CHECKPOINT_DIR": str(home / "checkpoints")}


def train_model_file(path: Path) -> None:
    from guiclassifier import ImageData, Learner

    data = ImageData.from_folder(DEMO, size=SIZE, bs=64, seed=42)
    learner = Learner.pretrained(ARCH, data, precompute=True, device="cpu")
    learner.fit(1e-2, 1)
    learner.save(path)


def report(rows: list[dict[str, float]], keys: list[str], unit: str = "s") -> None:
    for key in keys:
        values = [r[key] for r in rows]
        print(f"  {key:<16} median {statistics.median(values):7.3f} {unit}   "
              f"(runs: {', '.join(f'{v:.3f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["launch", "predict-file", "predict-trained"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "launch":
        child_launch(args.t0)
        return
    if args.child:
        child_predict(args.model if args.child == "predict-file" else None, args.t0)
        return

    print(machine())
    env = isolated_env()
    subprocess.run([sys.executable, "-c", "import torch, torchvision, PySide6.QtWidgets"], check=True)  # warm disk
    launches = [run_child(["--child", "launch"], env) for _ in range(args.repeats)]
    print("launch to (seconds from process start):")
    report(launches, ["painted", "engine", "dataset"])
    print(f"  torch fully imported when the window first painted: {sum(r['torch imported before the window showed'] for r in launches):.0f} of {len(launches)} runs")

    model = Path(tempfile.mkdtemp()) / "demo.gcm"
    train_model_file(model)
    print(f"drop to prediction row, {ARCH} at {SIZE} px, model opened from a file:")
    report([run_child(["--child", "predict-file", "--model", str(model)], env) for _ in range(args.repeats)],
           ["first drop", "second drop"])
    print("drop to prediction row, model just trained in the window (1 head epoch, precompute):")
    report([run_child(["--child", "predict-trained"], env) for _ in range(max(1, args.repeats // 2))],
           ["first drop", "second drop"])


if __name__ == "__main__":
    main()
