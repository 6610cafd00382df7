"""The Check data tab with its job: check the open dataset (core.audit) on the worker, before or
after training, and fix what it finds by moving files, with undo (panels.file_moves)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guiclassifier.core.text import plural
from guiclassifier.gui.panels import file_moves
from guiclassifier.gui.widgets.audit_view import AuditView
from guiclassifier.workspace.jobs import Audited, Scanned, audit_job, bind

if TYPE_CHECKING:
    from guiclassifier.gui.panels.data_panel import DataPanel
    from guiclassifier.gui.panels.host import Host

AUDIT_JOB = "Checking data"


class AuditPanel(AuditView):
    def __init__(self, host: Host, data_panel: DataPanel) -> None:
        super().__init__()
        self.host, self.data_panel = host, data_panel
        self.checkRequested.connect(self.start_audit)
        self.moveRequested.connect(self.move_file)
        self.undoRequested.connect(self.undo_last_move)
        data_panel.view.check_button.clicked.connect(lambda _=False: self.start_audit())
        data_panel.datasetOpened.connect(self._dataset_opened)

    def set_busy(self, busy: bool) -> None:
        workspace = self.host.workspace
        self.set_state(busy, workspace.data is not None, bool(workspace.moves))

    def start_audit(self) -> None:
        """Check the open dataset on the worker; progress and Stop are the status bar's."""
        if self.host.runner.busy:
            return
        run = self.host.run_settings()
        if run is None:
            self.host.show_error("Open a dataset first (Browse... in the Dataset box, or drop a folder on "
                                 "the window), then check it.")
            return
        self.host.show_tab(self)
        self.host.start(AUDIT_JOB, bind(audit_job, run, self.data_panel.settings()), self._audited)

    def _audited(self, done: Audited) -> None:
        data = self.host.workspace.data
        if data is None or str(data.path) != done.root:
            return  # another dataset was opened meanwhile (not possible while busy; kept safe)
        if done.rescanned is not None:  # files changed outside the app: the Data tab follows
            self.data_panel.show_scanned(Scanned(done.rescanned, None, rescan=True))
        self.set_result(done)
        report = done.report
        if report.cancelled:
            self.host.set_status(f"Check stopped: showing the {plural(len(report.findings), 'finding')} "
                                 "made until then.")
        else:
            self.host.set_status(f"Checked {plural(report.n_images, 'image')}: "
                                 f"{plural(len(report.findings), 'finding')}.")

    def _dataset_opened(self, rescan: bool) -> None:
        """A rescan after a move keeps the findings (moved files leave them); another dataset, or
        another split of this one, makes them stale."""
        if rescan:
            self.set_moved({move.source for move in self.host.workspace.moves})
        else:
            self.set_result(None)

    def move_file(self, path: str, target: str) -> None:
        file_moves.move_file(self.host, self.data_panel, path, target, self.file_moved)

    def undo_last_move(self) -> None:
        file_moves.undo_last_move(self.host, self.data_panel, self.file_restored)
