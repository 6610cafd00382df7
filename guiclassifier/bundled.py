"""Files that ship inside the package: the window's icon and the demo dataset.

In the repository they live in resources/; an installed copy holds them as the package
guiclassifier.resources (see pyproject.toml), read with importlib.resources. Run from a source
tree that was never installed, the repository's folder is used."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SOURCE_TREE = Path(__file__).resolve().parent.parent / "resources"


def bundled(name: str) -> Path | None:
    """A bundled file or folder on disk, or None if this copy of the app lacks it."""
    try:
        path = Path(str(files("guiclassifier.resources") / name))
    except ModuleNotFoundError:  # not installed: a source tree on PYTHONPATH
        path = SOURCE_TREE / name
    return path if path.exists() else None


def icon_path() -> Path | None:
    return bundled("icon.png")


def demo_path() -> Path | None:
    """The demo dataset: Fashion-MNIST trouser/dress/coat/bag, 150 train and 50 valid images each."""
    return bundled("demo")
