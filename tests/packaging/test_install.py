"""The app as a user installs it: the wheel holds the code, the icon and the demo; installed into a
fresh environment it runs its commands and opens its window; the desktop entry; --demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_pyproject_lists_every_package() -> None:
    """The wheel's packages are listed by hand (resources/ is mapped in): a new subpackage must be added."""
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    in_tree = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "guiclassifier").rglob("__init__.py")}
    assert listed == in_tree | {"guiclassifier.resources"}


def _run(*args: str | Path, env: dict[str, str] | None = None, timeout: int = 300, cwd: Path = REPO) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


@pytest.mark.timeout(900)
def test_the_wheel_installs_into_a_fresh_environment_and_runs(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", tmp_path / "dist")
    wheel = next((tmp_path / "dist").glob("guiclassifier-*.whl"))
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # torch, Qt and the rest come from this environment (no download): a path file, which is not
    # itself a site folder, so this environment's editable guiclassifier stays out of sight.
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "_guiclassifier_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": ""}
    command = python.parent / "guiclassifier"
    assert _run(command, "--version", env=env, cwd=tmp_path).strip().startswith("guiclassifier ")
    where = json.loads(_run(python, "-c", "import json, guiclassifier, guiclassifier.bundled as b; "
                                          "print(json.dumps([guiclassifier.__file__, str(b.demo_path()), "
                                          "str(b.icon_path())]))", env=env, cwd=tmp_path))
    assert all(Path(p).is_relative_to(venv) for p in where), where  # the installed copy, not this tree
    declared = json.loads(_run(python, "-c", "import json, importlib.metadata as m; "
                                             "print(json.dumps(m.requires('guiclassifier')))", env=env))
    plain = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in declared if "extra ==" not in r}
    assert {"onnx", "onnxscript", "onnxruntime"} <= plain, declared  # Export > ONNX works after a plain install
    scan = json.loads(_run(command, "scan", where[1], "--json", env=env, cwd=tmp_path))
    assert sorted(scan["classes"]) == ["bag", "coat", "dress", "trouser"]
    window = (
        "import pkgutil, importlib, guiclassifier\n"
        "for m in pkgutil.walk_packages(guiclassifier.__path__, 'guiclassifier.'):\n"
        "    importlib.import_module(m.name)  # every module made it into the wheel\n"
        "from PySide6.QtCore import QSettings\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from guiclassifier.gui.main_window import MainWindow\n"
        f"w = MainWindow(None, QSettings({str(tmp_path / 's.ini')!r}, QSettings.Format.IniFormat))\n"
        "print('icon', not w.windowIcon().isNull())\n"
        "from PySide6.QtGui import QAction  # (QAction.menu() fails in PySide6 6.11.0)\n"
        "print('demo in menu', any(a.text() == 'Open the demo dataset' for a in w.findChildren(QAction)))\n"
        "w.runner.shutdown()  # the engine is still loading on the worker\n"
    )
    out = _run(python, "-c", window, env=env, cwd=tmp_path)
    assert "icon True" in out and "demo in menu True" in out, out


def test_install_desktop_writes_a_menu_entry_and_its_icon(tmp_path: Path, monkeypatch, capsys) -> None:
    from guiclassifier.cli import main

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert main(["--install-desktop"]) == 0
    entry = (tmp_path / "applications" / "guiclassifier.desktop").read_text()
    assert "Exec=" in entry and "Icon=guiclassifier" in entry and "Terminal=false" in entry
    assert (tmp_path / "icons" / "hicolor" / "256x256" / "apps" / "guiclassifier.png").stat().st_size > 1000
    assert "application menu" in capsys.readouterr().out


def test_demo_opens_the_bundled_dataset(monkeypatch) -> None:
    from guiclassifier import bundled
    from guiclassifier.cli import main
    from guiclassifier.gui import app

    opened: list = []
    monkeypatch.setattr(app, "run_app", lambda data: opened.append(data) or 0)
    assert main(["--demo"]) == 0
    assert opened == [bundled.demo_path()] and (opened[0] / "train" / "bag").is_dir()
