"""Start-up: the window is built and shown before torch has loaded, then catches up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import sys, time
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from guiclassifier.workspace.engine import engine_loaded
from guiclassifier.gui.main_window import MainWindow

assert "torch" not in sys.modules, "imported torch before the window was built"
app = QApplication([])
window = MainWindow(sys.argv[1], QSettings(sys.argv[2], QSettings.Format.IniFormat))
window.show()
app.processEvents()
print("busy at start:", window.runner.busy, window.last_status)
print("device label:", window.status.device_label.text())
print("buttons disabled:", not window.training_panel.lr_find_button.isEnabled(), not window.training_panel.stop_button.isEnabled())
print("path shown:", window.data_panel.data_path_edit.text() == sys.argv[1])
deadline = time.time() + 240
while (window.workspace.data is None or window.runner.busy) and time.time() < deadline:
    app.processEvents()
    time.sleep(0.01)
print("engine loaded:", engine_loaded())
print("status:", window.last_status)
print("classes:", window.workspace.data.classes if window.workspace.data else None)
print("mobilenet_v2 item:", window.model_panel.arch_combo.itemText(window.model_panel.arch_combo.findData("mobilenet_v2")))
print("chosen arch:", window.model_panel.arch_combo.currentData())
print("device label:", window.status.device_label.text())
'''

CLOSE_EARLY = r'''
import sys
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from guiclassifier.gui.main_window import MainWindow

app = QApplication([])
window = MainWindow(None, QSettings(sys.argv[1], QSettings.Format.IniFormat))
window.show()
app.processEvents()
def refuse():
    raise SystemExit("asked a question while PyTorch was loading")
window.confirm_stop_and_quit = refuse
print("busy:", window.runner.busy)
print("closed:", window.close())
print("worker left:", window.runner.busy)
'''


def run(code: str, *args: str) -> str:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_window_shows_first_then_loads_torch_and_the_dataset(dataset: Path, tmp_path: Path) -> None:
    out = run(CHILD, str(dataset), str(tmp_path / "settings.ini"))
    assert "busy at start: True Loading PyTorch..." in out
    assert "device label: device: (loading PyTorch)" in out
    assert "buttons disabled: True True" in out  # Stop too: an import cannot be stopped
    assert "path shown: True" in out
    assert "engine loaded: True" in out
    assert "classes: ('cat', 'dog')" in out
    assert "Loaded " in out  # the dataset given on the command line was scanned after loading
    assert "mobilenet_v2 item: mobilenet_v2  (weights here)" in out
    assert "chosen arch: mobilenet_v2" in out  # the best architecture with weights on this machine
    assert "device label: device: CPU" in out or "device label: device: CUDA" in out


def test_closing_while_pytorch_loads_asks_nothing_and_waits_for_it(tmp_path: Path) -> None:
    out = run(CLOSE_EARLY, str(tmp_path / "settings.ini"))
    assert "busy: True" in out
    assert "closed: True" in out
    assert "worker left: False" in out


def test_a_broken_pytorch_install_is_a_message(tmp_path: Path) -> None:
    code = r'''
import sys
sys.modules["torch"] = None  # what a missing or broken torch looks like to an import
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from guiclassifier.gui.main_window import MainWindow

app = QApplication([])
window = MainWindow(None, QSettings(sys.argv[1], QSettings.Format.IniFormat))
window.show_error = lambda message: print("error shown:", message)
window.show()
while window.runner.busy:
    app.processEvents()
print("window still open:", window.isVisible())
'''
    out = run(code, str(tmp_path / "settings.ini"))
    assert "error shown: PyTorch could not be loaded" in out and "reinstall" in out
    assert "window still open: True" in out
