"""The engine must stay usable without Qt: importing it never loads PySide6 or pyqtgraph."""

import subprocess
import sys


def test_core_imports_without_qt() -> None:
    code = ("import sys, guiclassifier, guiclassifier.core, guiclassifier.core.learner; "
            "bad = [m for m in ('PySide6', 'pyqtgraph', 'shiboken6') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_sources_do_not_mention_qt() -> None:
    from pathlib import Path

    import guiclassifier.core

    for path in Path(guiclassifier.core.__file__).parent.glob("*.py"):
        text = path.read_text()
        for name in ("PySide6", "pyqtgraph", "PyQt"):
            assert f"import {name}" not in text and f"from {name}" not in text, f"{path.name} imports {name}"


def test_window_modules_and_the_command_import_without_torch() -> None:
    """torch takes 3-4 s to import: the window must be able to show before it has (gui.engine)."""
    code = ("import sys, guiclassifier, guiclassifier.cli, guiclassifier.core.recipe, guiclassifier.core.archs, "
            "guiclassifier.gui.app, guiclassifier.gui.main_window; "
            "bad = [m for m in ('torch', 'torchvision') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_still_offers_the_engine_by_name() -> None:
    from guiclassifier import ImageData, Learner
    from guiclassifier.core.data import ImageData as DataImageData
    from guiclassifier.core.learner import Learner as LearnerLearner

    assert ImageData is DataImageData and Learner is LearnerLearner
