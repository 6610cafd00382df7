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
