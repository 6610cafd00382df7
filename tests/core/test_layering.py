"""The engine must stay usable without Qt: importing it never loads PySide6 or pyqtgraph. The
layers (cli > gui > workspace > core) and an engine without import cycles are import-linter
contracts in pyproject.toml, run here."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
    """torch takes 3-4 s to import: the window must be able to show before it has (workspace.engine)."""
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


def test_the_import_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts; imports inside functions count too."""
    lint = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    result = subprocess.run([sys.executable, "-c", lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_chain_of_imports_leads_from_an_engine_module_back_to_it() -> None:
    """Stricter than the acyclic_siblings contract, which only sees imports between the engine's
    own modules: no loop through any module, the packages' lazy re-exports included."""
    import grimp  # with import-linter: only these two tests need the test extra's newest package

    graph = grimp.build_graph("guiclassifier", cache_dir=None)
    loops = [(module, imported) for module in sorted(graph.modules) if module.startswith("guiclassifier.core")
             for imported in sorted(graph.find_modules_directly_imported_by(module))
             if graph.chain_exists(imported, module)]
    assert not loops, "\n".join(" -> ".join((m, *graph.find_shortest_chain(i, m))) for m, i in loops)
