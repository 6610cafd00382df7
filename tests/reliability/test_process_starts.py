"""Loading processes on every platform's process model: spawn (Windows, macOS) works, and a user's
script without an `if __name__ == "__main__":` guard never makes the window hang."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guiclassifier import ImageData

UNGUARDED_WINDOW = r"""
import sys, time
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from guiclassifier.gui.main_window import MainWindow
window = MainWindow(None, QSettings(sys.argv[2], QSettings.Format.IniFormat))
def wait(done, limit=240):
    end = time.time() + limit
    while not done():
        app.processEvents()
        time.sleep(0.02)
        if time.time() > end:
            print("still waiting"); sys.exit(3)
wait(lambda: window.workspace.checkpoints is not None and not window.runner.busy)
window.model_panel.arch_combo.setCurrentIndex(window.model_panel.arch_combo.findData("resnet18"))
window.model_panel.weights_combo.setCurrentIndex(1)  # random: no weights on this machine
import guiclassifier.core.data
guiclassifier.core.data.fits_in_memory = lambda n, side: False  # as if too big: loading processes
window.open_dataset(sys.argv[1])
wait(lambda: window.workspace.data is not None and not window.runner.busy)
window.data_panel.size_spin.setValue(32)
window.model_panel.precompute_check.setChecked(False)  # the sweep reads images through loaders
window.training_panel.lr_find_button.click()
wait(lambda: not window.runner.busy)
print("status:", window.last_status)
"""


def test_the_loader_works_under_spawn(dataset: Path) -> None:
    data = ImageData.from_folder(dataset, size=32, bs=8, num_workers=1, worker_start="spawn", seed=0)
    loader = data.train_loader()
    assert loader.num_workers == 1  # run by pytest as a module: nothing to run again
    batches = list(loader)
    assert sum(len(b.y) for b in batches) == len(data.train_items)


def test_an_unguarded_script_is_recognised(tmp_path: Path) -> None:
    probe = "from guiclassifier.core.main_script import unguarded_main_script\nprint(unguarded_main_script())\n"
    plain, guarded = tmp_path / "plain.py", tmp_path / "guarded.py"
    plain.write_text(probe)
    guarded.write_text(probe + "if __name__ == '__main__':\n    pass\n")
    outputs = [subprocess.run([sys.executable, str(s)], capture_output=True, text=True, timeout=120).stdout.strip()
               for s in (plain, guarded)]
    assert outputs == [str(plain), "None"]


@pytest.mark.timeout(400)
def test_lr_find_from_an_unguarded_script_does_not_hang(dataset: Path, tmp_path: Path) -> None:
    """Before: each forkserver loading process ran the script again, opening another window there,
    and the sweep waited for them for ever (found in session 4 as "idle for 10 minutes")."""
    script = tmp_path / "my_window.py"
    script.write_text(UNGUARDED_WINDOW)
    done = subprocess.run([sys.executable, str(script), str(dataset), str(tmp_path / "s.ini")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "status: Suggested learning rate" in done.stdout or "status: LR Find" in done.stdout, done.stdout
    assert "has no 'if __name__" in done.stderr  # said once, in words
