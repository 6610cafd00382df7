"""Moving a dataset file to another class folder or to quarantine, and undoing the last move: the
one way the Interpret and Check data tabs change the user's files (core.curate does the moving,
`workspace.moves` keeps them for undo, newest last)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from guiclassifier.core.errors import DataError
from guiclassifier.gui.widgets.file_gallery import QUARANTINE

if TYPE_CHECKING:
    from guiclassifier.core.curate import FileMove
    from guiclassifier.gui.panels.data_panel import DataPanel
    from guiclassifier.gui.panels.host import Host


def move_file(host: Host, data_panel: DataPanel, path: str, target: str,
              on_moved: Callable[[FileMove], None]) -> FileMove | None:
    """Move an image to the `target` class folder (or to quarantine when `target` is QUARANTINE),
    after asking; `on_moved` updates the caller's view, then the dataset is rescanned, decoding
    only what changed. None when nothing was moved (declined, busy, or a message shown)."""
    workspace = host.workspace
    if workspace.data is None or host.runner.busy:
        return None
    root = workspace.data.path
    where = f"the quarantine folder {Path(root) / '_quarantine'}" if target == QUARANTINE else \
        f"the {target} folder"
    if not host.confirm(f"Move {Path(path).name} to {where}?\n\nUse Undo last move to put it back."):
        return None
    from guiclassifier.core.curate import move_to_class, move_to_quarantine

    try:
        move = move_to_quarantine(path, root) if target == QUARANTINE else \
            move_to_class(path, target, tuple(workspace.data.classes))
    except DataError as exc:
        host.show_error(str(exc))
        return None
    workspace.moves.append(move)
    on_moved(move)
    host.set_status(f"Moved {move.describe()}")
    data_panel.open_dataset(str(root), rescan=True)
    return move


def undo_last_move(host: Host, data_panel: DataPanel,
                   on_restored: Callable[[FileMove], None]) -> FileMove | None:
    """Put the newest moved file back (whichever tab moved it), then rescan."""
    workspace = host.workspace
    if not workspace.moves or workspace.data is None or host.runner.busy:
        return None
    from guiclassifier.core.curate import undo_move

    move = workspace.moves[-1]
    try:
        undo_move(move)
    except DataError as exc:
        host.show_error(str(exc))
        return None
    workspace.moves.pop()
    on_restored(move)
    host.set_status(f"Put {Path(move.source).name} back in {Path(move.source).parent}")
    data_panel.open_dataset(str(workspace.data.path), rescan=True)
    return move
