"""Whether loading processes may be started here without running the user's script again.

Processes started by "spawn" (Windows, macOS) or "forkserver" import the main script again as
`__mp_main__`. A script that opens the window at its top level, with no
`if __name__ == "__main__":` guard, the way quick scripts are written, would then open it again
in every loading process and wait there for ever, and the window would wait for them."""

from __future__ import annotations

import ast
import functools
import logging
import multiprocessing
import sys
from pathlib import Path

log = logging.getLogger(__name__)
_said = False


def _is_main_guard(test: ast.expr) -> bool:
    """`__name__ == "__main__"` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and \
        any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)


@functools.cache  # asked for every loader (each epoch): the script is read once
def unguarded_main_script() -> Path | None:
    """The main script, if new processes would run it again and it has no main guard at its top
    level; None for `python -m ...` (never run again), an interactive session or a guarded script."""
    main = sys.modules.get("__main__")
    if main is None or getattr(getattr(main, "__spec__", None), "name", None) is not None:
        return None
    path = getattr(main, "__file__", None)
    if not path or not Path(path).is_file():
        return None
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None  # not Python we can read: assume it is guarded, as the docs ask
    if any(isinstance(node, ast.If) and _is_main_guard(node.test) for node in tree.body):
        return None
    return Path(path)


def processes_would_rerun_script(worker_start: str | None) -> bool:
    """True (and said once in the log) when loading processes started the `worker_start` way
    (None: the default) would run an unguarded main script again: images are then loaded in
    this process."""
    global _said
    # Without fixing the default as get_start_method() would; the platform's default comes first.
    method = worker_start or multiprocessing.get_start_method(allow_none=True) or \
        multiprocessing.get_all_start_methods()[0]
    if method not in ("spawn", "forkserver"):
        return False
    script = unguarded_main_script()
    if script is None:
        return False
    if not _said:
        _said = True
        log.warning("Images are loaded in this process, not in loading processes: %s has no "
                    "'if __name__ == \"__main__\":' guard, so each loading process would run it again. "
                    "Put the script's code under that guard to load images in parallel.", script.name)
    return True
