"""The Interpret tab with its jobs: analyse the validation set's mistakes, and move mislabelled
files to another class or to quarantine, with undo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from guiclassifier.core.errors import DataError
from guiclassifier.gui.widgets.interpret_view import QUARANTINE, InterpretView
from guiclassifier.workspace.jobs import Interpreted, bind, interpret_job

if TYPE_CHECKING:
    from guiclassifier.gui.panels.data_panel import DataPanel
    from guiclassifier.gui.panels.host import Host


class InterpretPanel(InterpretView):
    def __init__(self, host: Host, data_panel: DataPanel) -> None:
        super().__init__()
        self.host, self.data_panel = host, data_panel
        self.analyseRequested.connect(self.start_interpret)
        self.moveRequested.connect(self.move_file)
        self.undoRequested.connect(self.undo_last_move)

    def set_busy(self, busy: bool) -> None:
        workspace = self.host.workspace
        self.set_state(busy, workspace.classes_match(), bool(workspace.moves))

    def start_interpret(self) -> None:
        """Predict the validation set on the worker and show the confusion matrix and top losses."""
        workspace = self.host.workspace
        if workspace.learner is None or workspace.data is None or self.host.runner.busy:
            return
        if not workspace.classes_match():
            self.host.show_error("The open dataset's classes differ from the model's: open the dataset the "
                                 "model was trained on to analyse its mistakes.")
            return
        self.host.show_tab(self)
        self.host.start("Analysing", bind(interpret_job, self.host.run_settings(), self.tta_check.isChecked()),
                        self._interpreted)

    def _interpreted(self, done: Interpreted) -> None:
        self.host.adopt(done.learner, done.key)
        self.set_interpretation(done.interpretation)
        if done.interpretation.cancelled:
            self.host.set_status(f"Analysis stopped: the tab shows the {len(done.interpretation.paths)} validation "
                                 "images analysed until then.")
        else:
            self.host.set_status(self.summary.text())

    def move_file(self, path: str, target: str) -> None:
        """Move an image to another class folder (or to quarantine when `target` is QUARANTINE),
        after asking; then rescan, decoding only what changed."""
        workspace = self.host.workspace
        if workspace.data is None or self.host.runner.busy:
            return
        root = workspace.data.path
        where = f"the quarantine folder {Path(root) / '_quarantine'}" if target == QUARANTINE else \
            f"the {target} folder"
        if not self.host.confirm(f"Move {Path(path).name} to {where}?\n\nUse Undo last move to put it back."):
            return
        from guiclassifier.core.curate import move_to_class, move_to_quarantine

        try:
            move = move_to_quarantine(path, root) if target == QUARANTINE else \
                move_to_class(path, target, tuple(workspace.data.classes))
        except DataError as exc:
            self.host.show_error(str(exc))
            return
        workspace.moves.append(move)
        self.file_moved(move)
        self.host.set_status(f"Moved {move.describe()}")
        self.data_panel.open_dataset(str(root), rescan=True)

    def undo_last_move(self) -> None:
        workspace = self.host.workspace
        if not workspace.moves or workspace.data is None or self.host.runner.busy:
            return
        from guiclassifier.core.curate import undo_move

        move = workspace.moves[-1]
        try:
            undo_move(move)
        except DataError as exc:
            self.host.show_error(str(exc))
            return
        workspace.moves.pop()
        self.file_restored(move)
        self.host.set_status(f"Put {Path(move.source).name} back in {Path(move.source).parent}")
        self.data_panel.open_dataset(str(workspace.data.path), rescan=True)
