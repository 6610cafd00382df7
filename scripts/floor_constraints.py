"""Print pip constraints that pin each runtime dependency to the lowest version pyproject.toml allows.

`make test-floors` installs them into .venv-floors and runs the test suite there: a test that
passes there shows the declared floors are enough (an import or a call that needs a newer
release than declared fails it). Test tools (the `test` extra) are left at their newest.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement


def floor_constraints(pyproject: Path) -> list[str]:
    """'name==floor; marker' for each dependency with a >= floor."""
    lines = []
    for text in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        req = Requirement(text)
        floors = [spec.version for spec in req.specifier if spec.operator == ">="]
        if not floors:
            continue
        marker = f"; {req.marker}" if req.marker else ""
        lines.append(f"{req.name}=={floors[0]}{marker}")
    return lines


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    print("\n".join(floor_constraints(root / "pyproject.toml")), file=sys.stdout)
